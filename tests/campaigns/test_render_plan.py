"""The render plan (campaigns.content.plan) gives exactly what Django's nodes give for the same
compiled template — the output, its type, the characters the budget counted, and on failure
the same problem on the same line — and keeps every guarantee of the sandbox."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import random
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.template import Context
from django.template.defaulttags import AutoEscapeControlNode, IfNode, WithNode
from django.utils.safestring import SafeString, mark_safe

from campaigns.content.errors import TemplateProblem
from campaigns.content.rendering import email_context, render_parts, template_compile
from campaigns.content.rendering import parts as rendering_parts
from campaigns.content.rendering import text as rendering_text
from campaigns.content.sandbox import (
    BudgetForNode,
    CompiledTemplate,
    Lazy,
    compile_template,
    freeze,
    render_budget,
    render_compiled,
)
from campaigns.content.sandbox import budget as sandbox_budget
from campaigns.content.sandbox import filters as sandbox_filters
from campaigns.content.sandbox import tags as sandbox_tags
from campaigns.content.selectors import DEFAULT_LAYOUT
from campaigns.content.starters import SAMPLE_CONTACT, SAMPLE_EVENTS, SAMPLE_RECOMMENDATIONS, STARTERS
from campaigns.models import MessageClass
from esp.models import Workspace

Outcome = tuple[Any, ...]


def outcome(compiled: CompiledTemplate, context: dict[str, Any], **options: Any) -> Outcome:
    """What one render gives: ("ok", type, output, characters counted) or ("problem", message,
    line, the tag named by template_debug, characters counted)."""
    sandbox_filters._remembered.clear()  # each path computes its filters itself
    with render_budget(**options):
        budget = sandbox_budget._BUDGET.get()
        assert budget is not None
        try:
            output = render_compiled(compiled, freeze(context))
        except TemplateProblem as problem:
            during = (getattr(problem, "template_debug", None) or {}).get("during")
            return ("problem", problem.message, problem.line, during, budget.produced)
        return ("ok", type(output), output, budget.produced)


def through_django(compiled: CompiledTemplate) -> CompiledTemplate:
    return dataclasses.replace(compiled, plan=None)


def assert_same(source: str, make: Callable[[], dict[str, Any]], *, autoescape: bool = True) -> Outcome:
    """The plan and Django's nodes agree on `source` over a context from `make` (called once
    per render: a Lazy value is computed afresh each time)."""
    compiled = compile_template(source, autoescape=autoescape)
    assert compiled.plan is not None
    got = outcome(compiled, make())
    expected = outcome(through_django(compiled), make())
    assert got == expected, source
    if expected[0] == "ok":
        # And Django's own Template.render of the same template, called directly.
        sandbox_filters._remembered.clear()
        with render_budget():
            direct = compiled.template.render(Context(dict(freeze(make())), autoescape=autoescape))
        assert (type(direct), direct) == (got[1], got[2]), source
    return got


def without_plans(parts: Any) -> Any:
    """Compiled parts (rendering.parts._Parts) rendered through Django's nodes."""
    values = {field.name: getattr(parts, field.name) for field in dataclasses.fields(parts)}
    return type(parts)(
        **{
            name: through_django(value) if isinstance(value, CompiledTemplate) else value
            for name, value in values.items()
        }
    )


# --- the starters and the delivery benchmark's template, as the sender renders them ------------

WORKSPACE = Workspace(name="Acme <Shop> & Co", postal_address="1 Market Street\nSpringfield")
URLS = {
    "unsubscribe_url": "https://esp.test/e/u/t0k&n",
    "preferences_url": "https://esp.test/e/p/t0k",
    "view_in_browser_url": "https://esp.test/e/v/t0k",
}
PRODUCTS = [
    {"product_id": "SKU-1", "name": "Чай <Earl Grey> & «мята»", "price": 4.5, "quantity": 2, "currency": "RUB",
     "url": "https://shop.example/p/1?a=1&b=2", "image_url": "https://cdn.example/1.jpg", "category": "Tea"},
    {"product_id": "SKU-2", "name": "No price, no picture", "price": None, "quantity": 1},
    {"sku": "SKU-3", "price": Decimal("1234.50"), "quantity": 3, "name": 'Quote "it"'},
]  # fmt: skip
CYRILLIC = {
    "id": 7, "email": "d@example.ru", "first_name": "Дмитрий", "last_name": "Иванов", "full_name": "Дмитрий Иванов",
    "city": "Москва", "country": "RU", "created_at": "2025-02-28T21:30:00+00:00", "birth_date": "1990-03-01",
    "tags": ["vip", "<b>"], "facts": {"orders_count": 3, "revenue": 1234.5, "products": ["SKU-1"],
                                      "last_order_at": "2026-03-01T10:00:00+00:00"},
}  # fmt: skip
MISSING_FIELDS = {"first_name": None, "last_name": "", "facts": None, "created_at": "not a date"}


def sender_contexts(sample_event: str) -> list[Callable[[], dict[str, Any]]]:
    """Recipients as `email_context` makes them: nobody known, the sample person, a Cyrillic
    person with odd products, a person with missing fields and an empty cart. The
    recommendations are given (a list, a Lazy, an empty Lazy) so that no query runs."""
    sample = SAMPLE_EVENTS.get(sample_event)
    event = dict(sample.properties) if sample else {}

    def make(contact: dict[str, Any], event: dict[str, Any], recommended: Any) -> Callable[[], dict[str, Any]]:
        def context() -> dict[str, Any]:
            made = email_context(workspace=WORKSPACE, contact=dict(contact), event=dict(event), urls=URLS)
            made["recommended_products"] = recommended() if callable(recommended) else recommended
            return made

        return context

    return [
        make({}, {}, []),
        make(SAMPLE_CONTACT, event, SAMPLE_RECOMMENDATIONS),
        make(
            CYRILLIC,
            {**event, "products": PRODUCTS, "total": 1250.25, "currency": "₽", "order_id": "A-1"},
            lambda: Lazy(lambda: SAMPLE_RECOMMENDATIONS),
        ),
        make(MISSING_FIELDS, {"products": [], "coupon": None}, lambda: Lazy(list)),
    ]


def assert_sender_renders_alike(subject: str, preheader: str, mjml: str, sample_event: str) -> None:
    html = template_compile(
        subject=subject, preheader=preheader, mjml=mjml, text_body="", use_layout=True,
        message_class=MessageClass.MARKETING, layout=DEFAULT_LAYOUT,
    )  # fmt: skip
    parts = rendering_parts._parts(subject=subject, preheader=preheader, html=html, text_body="")
    assert parts.text is not None and parts.text_generated
    for make in sender_contexts(sample_event):
        # Each part, as render_parts gives it its context…
        for compiled in (parts.subject, parts.preheader, parts.html, parts.text):
            if compiled is not None:
                context = make()
                context.update(subject="The subject", preheader="The preheader")
                assert_same(compiled.source, lambda context=context: context, autoescape=compiled.autoescape)
        # …and the whole email.
        assert render_parts(parts, make(), mjml=mjml) == render_parts(without_plans(parts), make(), mjml=mjml)


@pytest.mark.parametrize("key", sorted(STARTERS))
def test_starters_render_alike(key: str) -> None:
    starter = STARTERS[key]
    assert_sender_renders_alike(starter.subject, starter.preheader, starter.mjml, starter.sample_event)


def _bench_email() -> Any:
    """bench/bench_email.py (the delivery benchmark's email), loaded by path: bench/ is no package."""
    spec = importlib.util.spec_from_file_location(
        "bench_email", Path(__file__).resolve().parents[2] / "bench" / "bench_email.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH_EMAIL = _bench_email()
BENCH_SEND_MJML: str = BENCH_EMAIL.MJML


def test_the_delivery_benchmark_template_renders_alike() -> None:
    assert_sender_renders_alike(BENCH_EMAIL.SUBJECT, "", BENCH_SEND_MJML, "order")


def test_an_error_names_the_same_mjml_line_both_ways() -> None:
    # rendering.render._line_in finds the failing tag (template_debug["during"]) in the MJML.
    mjml = BENCH_SEND_MJML.replace("{{ product.category }}", '{{ product.category|ljust:"5000" }}')
    html = template_compile(
        subject="Hi", preheader="", mjml=mjml, text_body="", use_layout=True,
        message_class=MessageClass.MARKETING, layout=DEFAULT_LAYOUT,
    )  # fmt: skip
    parts = rendering_parts._parts(subject="Hi", preheader="", html=html, text_body="")
    context = email_context(workspace=WORKSPACE, contact=CYRILLIC, event={"products": PRODUCTS}, urls=URLS)
    problems = []
    for variant in (parts, without_plans(parts)):
        with pytest.raises(TemplateProblem) as caught:
            render_parts(variant, context, mjml=mjml)
        problems.append(caught.value.as_dict())
    assert problems[0] == problems[1]
    assert problems[0]["line"] == 13 and problems[0]["part"] == "mjml" and "ljust" in str(problems[0]["message"])


def test_the_text_part_is_tidied_as_before() -> None:
    """rendering_text._tidy_text's str methods give what its regular expressions gave."""
    line_space, blank_lines = re.compile(r"[ \t]*\n[ \t]*"), re.compile(r"\n{3,}")

    def before(text: str) -> str:
        if "<" in text:
            text = rendering_text._BR.sub("\n", text)
        if " (#" in text:
            text = rendering_text._NO_LINK.sub("", text)
        text = line_space.sub("\n", text)
        return blank_lines.sub("\n\n", text) if "\n\n\n" in text else text

    chance = random.Random(5)  # noqa: S311 - reproducible test texts, not secrets
    pieces = [" ", "\t", "\n", "\n\n\n", "a", "Я", "<br>", "<BR />", " (#)", " (#x)", "\r", "\xa0", "b c"]
    for _ in range(20_000):
        text = "".join(chance.choice(pieces) for _ in range(chance.randint(0, 16)))
        assert rendering_text._tidy_text(text) == before(text), repr(text)


# --- generated templates -------------------------------------------------------------------


def fuzz_context() -> dict[str, Any]:
    people = [
        {"name": "Ann", "city": "Berlin", "age": 31},
        {"name": "Ben <b>", "city": "Berlin", "age": 17},
        {"name": "Борис", "city": "Москва", "age": 45},
    ]
    return {
        "contact": {"first_name": "Анна", "last_name": "O'Neil & <Co>", "city": None, "tags": ["a", "b"], "n": 3},
        "people": people,
        "items": [{"name": "Tea & <Cake>", "price": 4.5, "qty": 2}, {"name": "Socks", "price": 0, "qty": 1}],
        "pairs": [("a", 1), ("b", 2), ("c", 3)],
        "bad_pairs": [("a", 1), ("b", 2, 3)],
        "matrix": [[1, 2], [3, 4, 5], []],
        "words": ["x", "<y>", "z"],
        "empty": [],
        "s": "Hello <World> & 'you'",
        "cyr": "Привет, мир",
        "safe": mark_safe("<b>safe & sound</b>"),
        "n": 7,
        "zero": 0,
        "f": 1234.5678,
        "neg": -0.0,
        "dec": Decimal("10.50"),
        "yes": True,
        "no": False,
        "none": None,
        "blank": "",
        "day": dt.date(2026, 3, 1),
        "moment": dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC),
        "naive": dt.datetime(2026, 3, 1, 8, 5),
        "lazy": Lazy(lambda: [{"name": "Cap"}, {"name": "<Hat>"}]),
        "lazy_text": Lazy(lambda: "lazy <text>"),
        "lazy_none": Lazy(lambda: None),
        "numbers": [3, 1, 2],
        "nested": ["a", ["b", ["c"]]],
    }


VALUES = [
    "contact.first_name", "contact.last_name", "contact.city", "contact.tags", "contact.n", "contact.missing",
    "people", "people.0.name", "items", "items.1.price", "pairs", "matrix", "words", "empty", "s", "cyr", "safe",
    "n", "zero", "f", "neg", "dec", "yes", "no", "none", "blank", "day", "moment", "naive", "lazy", "lazy.1.name",
    "lazy_text", "lazy_none", "numbers", "nested", "unknown", "settings.SECRET_KEY", "forloop.counter",
    "forloop.parentloop.counter", "forloop.first", "forloop.last", "forloop.revcounter0", "forloop", "v", "v.name",
    "w", "k", "x", "'lit <&>'", '"two"', "3", "2.5", '_("Hello")', "None", "True",
]  # fmt: skip
FILTERS = [
    "", "|default:'–'", "|default:s", "|default:unknown|default:'x'", "|default_if_none:'n/a'", "|upper",
    "|lower", "|title", "|capfirst", "|length", "|first", "|last", "|join:', '", "|join:s", "|slice:':2'",
    "|floatformat", "|floatformat:2", '|floatformat:"-3"', "|floatformat:n", "|add:1", "|add:s", "|add:'x'",
    "|date:'j F Y H:i'", "|date", "|time:'H:i'", "|linebreaksbr", "|linebreaks", "|escape", "|force_escape",
    "|safe", "|striptags", "|truncatechars:5", "|truncatewords:1", "|urlencode", "|urlize", "|cut:' '",
    "|ljust:'8'", "|rjust:n", "|center:'9'", "|stringformat:'05d'", "|stringformat:'s'", "|yesno:'y,n,?'",
    "|pluralize", "|wordcount", "|slugify", "|make_list", "|dictsort:'name'", "|unordered_list", "|safeseq",
    "|escapeseq", "|filesizeformat", "|divisibleby:2", "|get_digit:1", "|wordwrap:5", "|linenumbers",
    "|phone2numeric", "|addslashes", "|escapejs", "|iriencode", "|truncatechars_html:4", "|upper|lower",
    "|default:'<b>'|safe", "|ljust:'100000'", "|floatformat:99", '|default:_("Hi")', "|add:2", "|floatformat:2.5",
    '|floatformat:"3u"', "|floatformat:True", "|floatformat:-21", "|date:'F Y'", "|linebreaksbr|upper",
]  # fmt: skip
CONDITIONS = [
    "v", "not v", "n > 3", "n == 7", "s != blank", "'x' in words", "'Ann' not in people", "none is None",
    "yes and not no", "no or n", "contact.city", "forloop.first", "forloop.last", "k == 'b'", "lazy",
    "lazy_none", "unknown", "n|add:1 > 7", "s|length >= 3", "items|length|divisibleby:2", "dec < 11",
]  # fmt: skip
SEQUENCES = ["people", "items", "words", "empty", "matrix", "numbers", "lazy", "s", "unknown", "none", "nested"]
TEXTS = ["a", " ", "\n", "<i>", "&", "Ё", "x y", "\n  \n"]


def generate(chance: random.Random, depth: int = 0) -> str:
    """A small template of every allowed tag, nested at random."""
    parts = []
    for _ in range(chance.randint(1, 4)):
        pick = chance.randrange(100 if depth < 3 else 40)
        if pick < 15:
            parts.append(chance.choice(TEXTS))
        elif pick < 40:
            parts.append("{{ " + chance.choice(VALUES) + chance.choice(FILTERS) + " }}")
        elif pick < 42:
            parts.append(chance.choice([
                "{% cycle 'a' 'b' %}", "{% cycle 'x' s as c %}{{ c }}", "{% cycle 'p' 'q' as d silent %}",
                "{% resetcycle %}", "{% firstof none blank s 'z' %}", "{% firstof unknown as z %}[{{ z }}]",
                "{% now 'Y' %}", "{% templatetag openblock %}", "{% widthratio n 10 100 %}",
                "{% widthratio f n 3 as wr %}{{ wr }}", "{% verbatim %}{{ s }}{% endverbatim %}",
                "{# a comment #}", "{% comment %}{{ s }}{% endcomment %}",
                "{% regroup people by city as groups %}{% for g in groups %}{{ g.grouper }}:"
                "{% for p in g.list %}{{ p.name }}{% endfor %};{% endfor %}",
            ]))  # fmt: skip
        elif pick < 60:
            body = generate(chance, depth + 1)
            tag = chance.choice(["v", "v", "w", "x"])
            sequence = chance.choice(SEQUENCES) + chance.choice(["", "", "|slice:':2'", "|dictsort:'name'"])
            head = f"{{% for {tag} in {sequence}{' reversed' if chance.random() < 0.2 else ''} %}}"
            if chance.random() < 0.2:
                head = f"{{% for k, v in {chance.choice(['pairs', 'bad_pairs', 'matrix'])} %}}"
            empty = "{% empty %}" + generate(chance, depth + 1) if chance.random() < 0.3 else ""
            parts.append(f"{head}{body}{empty}{{% endfor %}}")
        elif pick < 75:
            tag = f"{{% if {chance.choice(CONDITIONS)} %}}{generate(chance, depth + 1)}"
            for _ in range(chance.randint(0, 2)):
                tag += f"{{% elif {chance.choice(CONDITIONS)} %}}{generate(chance, depth + 1)}"
            if chance.random() < 0.5:
                tag += f"{{% else %}}{generate(chance, depth + 1)}"
            parts.append(tag + "{% endif %}")
        elif pick < 83:
            # (Not _("…"): Django's Token.split_contents fails on `{% with _("a")|f as v %}`.)
            value = chance.choice([value for value in VALUES if "_(" not in value]) + chance.choice(FILTERS)
            head = chance.choice([f"{{% with v={value} w=s %}}", f"{{% with {value} as v %}}"])
            parts.append(f"{head}{generate(chance, depth + 1)}{{% endwith %}}")
        elif pick < 88:
            setting = chance.choice(["on", "off"])
            parts.append(f"{{% autoescape {setting} %}}{generate(chance, depth + 1)}{{% endautoescape %}}")
        elif pick < 92:
            arguments = chance.choice(["", " v", " v.name k"])
            other = "{% else %}" + generate(chance, depth + 1) if chance.random() < 0.3 else ""
            parts.append(f"{{% ifchanged{arguments} %}}{generate(chance, depth + 1)}{other}{{% endifchanged %}}")
        elif pick < 96:
            filters = chance.choice(["upper", "lower|cut:' '", "title|truncatechars:9", "force_escape"])
            parts.append(f"{{% filter {filters} %}}{generate(chance, depth + 1)}{{% endfilter %}}")
        else:
            parts.append(f"{{% spaceless %}}<p> {generate(chance, depth + 1)} </p>{{% endspaceless %}}")
    return "\n".join(parts) if chance.random() < 0.3 else "".join(parts)


@pytest.mark.parametrize("autoescape", [True, False], ids=["html", "text"])
def test_generated_templates_render_alike(autoescape: bool) -> None:
    chance = random.Random(20260601 + autoescape)  # noqa: S311 - reproducible templates
    rendered = problems = 0
    for _ in range(1500):
        source = generate(chance)
        try:
            result = assert_same(source, fuzz_context, autoescape=autoescape)
        except TemplateProblem:
            continue  # does not compile: nothing to render either way
        if result[0] == "ok":
            rendered += 1
        else:
            problems += 1
    # Most render, and failures (over-wide filters, bad unpacking, …) are compared too.
    assert rendered > 600 and problems > 20


@pytest.mark.parametrize(
    "source",
    [
        "{% for a in people %}{% for b in a.name %}{{ forloop.parentloop.counter }}.{{ forloop.counter }}"
        "{{ forloop.first|yesno }}{{ forloop.last|yesno }}{{ forloop.revcounter }}{% endfor %}|{% endfor %}",
        "{% for k, v in pairs reversed %}{{ k }}={{ v }}{% if not forloop.last %}, {% endif %}{% endfor %}",
        "{% for x in empty %}never{% empty %}{{ forloop.counter }}nothing {{ x }}{% endfor %}",
        "{% for x in unknown %}never{% empty %}none{% endfor %}{% for x in none %}{% endfor %}",
        "{% with a=s b=safe %}{{ a }}{{ b }}{% autoescape off %}{{ a }}{{ b|escape }}{% endautoescape %}{% endwith %}",
        "{% if n > 10 %}big{% elif n > 5 %}mid{% else %}small{% endif %}{% if unknown.x.y %}?{% endif %}",
        "{{ settings.SECRET_KEY }}{{ contact.items }}{{ contact.clear }}{{ people.0.name.upper }}",
        "{{ lazy.0.name }}{% for p in lazy %}{{ p.name }}{% endfor %}{{ lazy_text }}{{ lazy_text|upper }}",
        "{{ safe }}{{ safe|upper }}{{ s|safe }}{{ cyr|truncatechars:4 }}{{ dec }}{{ f }}{{ n }}{{ day }}{{ moment }}",
        "{% for x in people %}{% cycle 'odd' 'even' as parity %}{% ifchanged x.city %}[{{ x.city }}]{% endifchanged %}"
        "{{ parity }}{% endfor %}{{ parity }}",
        "{% for x in people %}{% regroup people by city as g %}{% endfor %}{{ g|length }}",
    ],
)
@pytest.mark.parametrize("autoescape", [True, False], ids=["html", "text"])
def test_chosen_templates_render_alike(source: str, autoescape: bool) -> None:
    assert assert_same(source, fuzz_context, autoescape=autoescape)[0] == "ok"


def test_the_plan_runs_the_common_nodes_itself() -> None:
    """for, if, with, autoescape and variables do not go through Django's nodes (or the gain
    would be lost); the other tags do."""
    source = (
        "{% for p in people %}{% if p.age > 10 %}{% with name=p.name %}{% autoescape off %}{{ name }}"
        "{% endautoescape %}{% endwith %}{% endif %}{% cycle 'a' 'b' %}{% endfor %}"
    )
    compiled = compile_template(source)
    broken = mock.Mock(side_effect=AssertionError("rendered by Django"))
    with (
        mock.patch.object(BudgetForNode, "render", broken),
        mock.patch.object(IfNode, "render", broken),
        mock.patch.object(WithNode, "render", broken),
        mock.patch.object(AutoEscapeControlNode, "render", broken),
        mock.patch.object(sandbox_tags._CountedVariableNode, "render", broken),
    ):
        assert render_compiled(compiled, freeze(fuzz_context())) == "AnnaBen <b>bБорисa"


# --- the budget through the plan -------------------------------------------------------------


def test_a_huge_loop_stops_on_the_deadline() -> None:
    source = "a\n{% for a in x %}{% for b in x %}{% for c in x %}{% endfor %}{% endfor %}{% endfor %}"
    compiled = compile_template(source)
    results = [outcome(variant, {"x": list(range(1000))}) for variant in (compiled, through_django(compiled))]
    for result in results:
        assert result[0] == "problem" and "longer than" in result[1] and result[2] == 2
    # Which of the nested loops the deadline falls in depends on the machine's speed: only the
    # rest must agree.
    assert results[0][:3] == results[1][:3] and {r[3] for r in results} <= {
        "{% for a in x %}",
        "{% for b in x %}",
        "{% for c in x %}",
    }


def test_every_iteration_ticks_the_deadline() -> None:
    compiled = compile_template("{% for a in x %}{% for b in x %}{{ b }}{% endfor %}{% empty %}-{% endfor %}")
    counts = []
    for variant in (compiled, through_django(compiled)):
        budget_class = sandbox_budget._Budget
        with mock.patch.object(budget_class, "tick", autospec=True, side_effect=budget_class.tick) as tick:
            assert outcome(variant, {"x": [1, 2, 3]})[2] == "123123123"
        counts.append(tick.call_count)
    assert counts == [12, 12]  # 3 outer iterations + 3 × 3 inner
    # A deadline already past stops the first iteration; a loop with no item does not tick.
    for variant in (compiled, through_django(compiled)):
        result = outcome(variant, {"x": [1]}, seconds=-1)
        assert result[0] == "problem" and "longer than" in result[1] and result[2] == 1
        assert outcome(variant, {"x": []}, seconds=-1)[2] == "-"


def test_a_growing_output_stops_on_the_size_cap() -> None:
    source = "{% for a in x %}\n{% for b in x %}{{ s }}{% endfor %}{% endfor %}"
    result = assert_same(source, lambda: {"x": list(range(2000)), "s": "x" * 500})
    assert result[0] == "problem" and "characters" in result[1] and result[4] > sandbox_budget.MAX_PRODUCED_CHARS
    # Loop bodies count once inside their loop and once more in the loop around it.
    result = assert_same("{% for a in x %}{% for b in x %}ab{{ s }}{% endfor %}{% endfor %}",
                         lambda: {"x": [1, 2], "s": "xyz"})  # fmt: skip
    assert result[0] == "ok" and result[3] == 4 * 3 + 4 * 5 + 2 * 10


def test_wide_filters_and_doubling_are_refused_through_the_plan() -> None:
    for source in ['{{ s|ljust:"100000000" }}', "{{ 5.5|floatformat:100000 }}", "{{ x|join:s }}"]:
        result = assert_same(source, lambda: {"s": "y" * 1000, "x": list(range(10_000))})
        assert result[0] == "problem", source
    doubling = "{% with a=s|add:s %}" + "{% with a=a|add:a %}" * 25 + "{{ a|length }}" + "{% endwith %}" * 26
    result = assert_same(doubling, lambda: {"s": "x" * 40})
    assert result[0] == "problem" and "size limit" in result[1]


def test_unknown_and_private_names_render_empty() -> None:
    result = assert_same("[{{ settings.SECRET_KEY }}][{{ request.user }}][{{ SECRET_KEY }}]", fuzz_context)
    assert result[2] == "[][][]"


@pytest.mark.parametrize(
    "source, line, during",
    [
        # A filter refusing its argument, in a loop body: the variable's line.
        ("{% for p in people %}\n{{ p.name }}\n{{ p.name|ljust:'5000' }}\n{% endfor %}", 3,
         "{{ p.name|ljust:'5000' }}"),
        # A loop that cannot unpack its item: the loop's line.
        ("one\n{% for k, v in bad_pairs %}{{ k }}\n{% endfor %}", 2, "{% for k, v in bad_pairs %}"),
        # A tag Django renders (widthratio) failing inside a loop and an if the plan runs.
        ("{% for p in people %}\n{% if p %}\n\n{% widthratio 1 2 p.name %}{% endif %}{% endfor %}", 4,
         "{% widthratio 1 2 p.name %}"),
        # A condition and a with value failing: their tag's line.
        ("\n{% if s|ljust:'5000' %}x{% endif %}", 2, "{% if s|ljust:'5000' %}"),
        ("{% for p in people %}{% with a=p.name|rjust:'5000' %}\n{% endwith %}{% endfor %}", 1,
         "{% with a=p.name|rjust:'5000' %}"),
    ],
)  # fmt: skip
def test_errors_name_the_same_line_and_tag(source: str, line: int, during: str) -> None:
    result = assert_same(source, fuzz_context)
    assert result[0] == "problem" and result[2] == line
    if "widthratio" not in source:  # a Django error becomes a TemplateProblem without template_debug
        assert result[3] == during


def test_safe_strings_and_autoescape_off() -> None:
    context = {"a": "<x>", "b": SafeString("<y>"), "c": 5}
    assert assert_same("{{ a }}{{ b }}{{ c }}", lambda: context)[2] == "&lt;x&gt;<y>5"
    assert assert_same("{{ a }}{{ b }}{{ c }}", lambda: context, autoescape=False)[2] == "<x><y>5"
