"""MJML compilation: errors with the line they are on, and template tags that survive it."""

from __future__ import annotations

import pytest

from campaigns.content.errors import TemplateProblem, TemplateProblems
from campaigns.content.mjml import compile_mjml
from campaigns.content.rendering import template_compile
from campaigns.content.sandbox import render_string
from campaigns.content.selectors import LayoutParts


def doc(*lines: str) -> str:
    """An MJML document whose given lines start on line 5."""
    return "\n".join(
        [
            "<mjml>",
            "<mj-body>",
            "<mj-section>",
            "<mj-column>",
            *lines,
            "</mj-column>",
            "</mj-section>",
            "</mj-body>",
            "</mjml>",
        ]
    )


@pytest.mark.parametrize(
    "lines, line, words",
    [
        (["<mj-text>hi</mj-text>", "<mj-colum>x</mj-colum>"], 6, "Unknown MJML element <mj-colum>"),
        (["<mj-text>hi</mj-texts>"], 5, "</mj-texts>"),
        (["<mj-text>", "never closed"], 7, "</mj-column> found where <mj-text> (opened on line 5)"),
        (["<mj-text>a < b</mj-text>"], 5, "&lt;"),
        (["<mj-text>{% if a < b %}x{% endif %}</mj-text>"], 5, "turn the comparison around"),
        (['<mj-image src="{{ x|default:"a" }}" />'], 5, "single quotes"),
        (["", "", '<mj-text color="red>hi</mj-text>'], 7, "quote"),
        (["<p>loose html</p>"], 5, "must be inside mj-text"),
        (['<mj-include path="/etc/passwd" />'], 5, "not allowed"),
        (['<mj-image src="x.png">'], 5, "end it with “/>”"),
        (["<mj-section></mj-section>"], 5, "cannot stand inside <mj-column>"),
    ],
)
def test_mjml_errors_name_their_line(lines: list[str], line: int, words: str) -> None:
    with pytest.raises(TemplateProblem) as caught:
        compile_mjml(doc(*lines))
    assert caught.value.line == line, caught.value.message
    assert words in caught.value.message


@pytest.mark.parametrize(
    "last, words",
    [
        ("<mj-text>{% if a < b %}x{% endif %}</mj-text>", "turn the comparison around"),
        ("<mj-txt>x</mj-txt>", "Unknown MJML element <mj-txt>"),
    ],
)
def test_mistakes_at_the_end_of_a_long_source_name_their_line(last: str, words: str) -> None:
    # Thousands of tags and template tags before it: the spans and lines are found in order.
    texts = [f"<mj-text>{{{{ contact.first_name }}}} {{% if n %}}{n}{{% endif %}}</mj-text>" for n in range(4000)]
    with pytest.raises(TemplateProblem) as caught:
        compile_mjml(doc(*texts, last))
    assert caught.value.line == 5 + len(texts) and words in caught.value.message


def test_not_mjml_at_all() -> None:
    with pytest.raises(TemplateProblem) as caught:
        compile_mjml("Hello, plain text")
    assert caught.value.line == 1


def test_template_tags_survive_compilation() -> None:
    source = "\n".join(
        [
            "<mjml>",
            "<mj-body>",
            "{% for p in event.products %}",
            "<mj-section><mj-column>",
            '<mj-image src="{{ p.image_url }}" alt="{{ p.name|default:\'product\' }}" href="{{ p.url }}" />',
            "<mj-text>{{ p.name }} × {{ p.quantity }}</mj-text>",
            "</mj-column></mj-section>",
            "{% endfor %}",
            "<mj-section><mj-column>",
            '<mj-text>Hi {{ contact.first_name|default:"there" }}</mj-text>',
            '<mj-button href="{{ unsubscribe_url }}">Unsubscribe</mj-button>',
            "<mj-raw><table>{% for p in event.products %}<tr><td>{{ p.name }}</td></tr>{% endfor %}</table></mj-raw>",
            "<mj-table>{% for p in event.products %}<tr><td>{{ p.price }}</td></tr>{% endfor %}</mj-table>",
            "</mj-column></mj-section>",
            "</mj-body>",
            "</mjml>",
        ]
    )
    html = compile_mjml(source)
    for tag in (
        "{% for p in event.products %}",
        "{{ p.image_url }}",
        "{{ p.name|default:'product' }}",
        '{{ contact.first_name|default:"there" }}',
        'href="{{ unsubscribe_url }}"',
        "{% endfor %}",
    ):
        assert tag in html
    context = {
        "contact": {},
        "unsubscribe_url": "https://esp.test/u/1",
        "event": {
            "products": [
                {
                    "name": "Tea",
                    "quantity": 2,
                    "price": 3,
                    "url": "https://shop/tea",
                    "image_url": "https://shop/tea.png",
                },
                {"name": "Mug", "quantity": 1, "price": 9},
            ]
        },
    }
    out = render_string(html, context)
    assert "Hi there" in out
    assert 'href="https://esp.test/u/1"' in out
    assert out.count("Tea × 2") == 1 and out.count("Mug × 1") == 1
    assert 'src="https://shop/tea.png"' in out
    assert "<tr><td>Tea</td></tr><tr><td>Mug</td></tr>" in out
    assert "<tr><td>3</td></tr><tr><td>9</td></tr>" in out


def test_cyrillic_survives_compilation() -> None:
    html = compile_mjml(doc("<mj-text>Здравствуйте, {{ contact.first_name|default:'друг' }}! Ёжик</mj-text>"))
    assert "Здравствуйте, {{ contact.first_name|default:'друг' }}! Ёжик" in html
    assert "Здравствуйте, друг! Ёжик" in render_string(html, {})


LAYOUT = LayoutParts(
    header="<mj-section><mj-column><mj-text>HEADER {{ workspace.name }}</mj-text></mj-column></mj-section>",
    footer="\n".join(
        [
            "<mj-section><mj-column>",
            '<mj-text><a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ workspace.postal_address }}</mj-text>',
            "</mj-column></mj-section>",
        ]
    ),
    version=1,
)


def compile_template(mjml: str, **fields: object) -> str:
    values: dict[str, object] = {
        "subject": "Hi",
        "preheader": "",
        "mjml": mjml,
        "text_body": "",
        "use_layout": True,
        "message_class": "marketing",
        "layout": LAYOUT,
    }
    values.update(fields)
    return template_compile(**values)  # type: ignore[arg-type]


def test_layout_wraps_the_template_and_errors_keep_the_template_lines() -> None:
    html = compile_template(doc("<mj-text>BODY</mj-text>"))
    assert html.index("HEADER") < html.index("BODY") < html.index("Unsubscribe")
    with pytest.raises(TemplateProblems) as caught:
        compile_template(doc("<mj-text>ok</mj-text>", "<mj-txt>bad</mj-txt>"))
    [problem] = caught.value.problems
    assert (problem.part, problem.line) == ("mjml", 6)


def test_every_part_is_checked_and_reported_together() -> None:
    with pytest.raises(TemplateProblems) as caught:
        compile_template(
            doc("<mj-text>{{ x|nope }}</mj-text>"),
            subject="Hi {% load x %}",
            text_body="a\n{% if %}\n{{ unsubscribe_url }}",
        )
    found = {(p.part, p.line) for p in caught.value.problems}
    assert found == {("subject", 1), ("text_body", 2), ("mjml", 5)}


def test_a_hand_written_text_part_of_marketing_needs_the_unsubscribe_link() -> None:
    with pytest.raises(TemplateProblems) as caught:
        compile_template(doc("<mj-text>hello</mj-text>"), text_body="Hello {{ contact.first_name }}")
    [problem] = caught.value.problems
    assert problem.part == "text_body" and "unsubscribe_url" in problem.message
    compile_template(doc("<mj-text>hello</mj-text>"), text_body="Hello\nUnsubscribe: {{ unsubscribe_url }}")
    compile_template(doc("<mj-text>Your order</mj-text>"), text_body="Your order", message_class="transactional")
    compile_template(doc("<mj-text>hello</mj-text>"), text_body="")  # made from the HTML, which has the link


def test_marketing_without_layout_needs_unsubscribe_link_and_address() -> None:
    with pytest.raises(TemplateProblems) as caught:
        compile_template(doc("<mj-text>hello</mj-text>"), use_layout=False)
    messages = " ".join(p.message for p in caught.value.problems)
    assert "unsubscribe_url" in messages and "postal_address" in messages
    # Transactional mail may go without them; marketing with them passes.
    compile_template(doc("<mj-text>receipt</mj-text>"), use_layout=False, message_class="transactional")
    compile_template(
        doc('<mj-text><a href="{{ unsubscribe_url }}">u</a> {{ workspace.postal_address }}</mj-text>'), use_layout=False
    )
