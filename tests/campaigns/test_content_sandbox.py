"""The personalisation sandbox (DESIGN rule 7): plain data only, refused tags, budgets."""

from __future__ import annotations

import time

import pytest

from campaigns.content.errors import TemplateProblem
from campaigns.content.sandbox import MAX_OUTPUT_CHARS, Lazy, freeze, render_string

CONTEXT = {
    "contact": {"first_name": "Анна", "last_name": "", "tags": ["vip"], "facts": {"orders_count": 3}},
    "event": {"products": [{"name": "Tea <Earl Grey>", "price": 4.5, "quantity": 2}]},
}


def test_personalisation_with_fallbacks() -> None:
    source = (
        "Hi {{ contact.first_name|default:'there' }} {{ contact.last_name|default:'friend' }}, "
        "{{ contact.middle|default:'x' }}"
    )
    assert render_string(source, CONTEXT) == "Hi Анна friend, x"
    assert render_string("Hi {{ contact.first_name|default:'there' }}", {"contact": {}}) == "Hi there"
    assert render_string("Hi {{ contact.first_name|default:'there' }}", {}) == "Hi there"


def test_missing_variable_as_filter_argument_is_empty_not_an_error() -> None:
    # Django raises for a missing filter argument; emails must fall back instead.
    assert render_string("{{ event.total|default:event.revenue|default:'n/a' }}", {"event": {}}) == "n/a"


def test_loops_escaping_and_cyrillic() -> None:
    source = "{% for p in event.products %}{{ p.quantity }}× {{ p.name }} à {{ p.price|floatformat:2 }}{% endfor %}"
    assert render_string(source, CONTEXT) == "2× Tea &lt;Earl Grey&gt; à 4.50"
    assert render_string(source, CONTEXT, autoescape=False) == "2× Tea <Earl Grey> à 4.50"
    assert render_string("Привет, {{ contact.first_name }}! Ваш заказ №{{ contact.facts.orders_count }}", CONTEXT) == (
        "Привет, Анна! Ваш заказ №3"
    )


def test_settings_and_models_are_out_of_reach() -> None:
    assert render_string("[{{ settings.SECRET_KEY }}][{{ request.user }}][{{ SECRET_KEY }}]", CONTEXT) == "[][][]"
    with pytest.raises(TypeError):
        freeze({"contact": object()})  # a model instance, a request… never reaches a template


def test_underscore_walks_are_refused() -> None:
    with pytest.raises(TemplateProblem) as caught:
        render_string("line one\n{{ contact.__class__.__mro__ }}", CONTEXT)
    assert caught.value.line == 2
    assert "underscore" in caught.value.message
    with pytest.raises(TemplateProblem):
        render_string("{{ contact._meta }}", CONTEXT)


@pytest.mark.parametrize(
    "source, tag",
    [
        ("{% load static %}", "load"),
        ("{% include 'base.html' %}", "include"),
        ("{% extends 'base.html' %}", "extends"),
        ("{% debug %}", "debug"),
        ("{% ssi '/etc/passwd' %}", "ssi"),
        ("{% url 'home' %}", "url"),
        ("{% csrf_token %}", "csrf_token"),
        ("{% lorem 1000000 w %}", "lorem"),
        ("{% static 'x.css' %}", "static"),
    ],
)
def test_dangerous_tags_are_refused_with_a_clear_message(source: str, tag: str) -> None:
    with pytest.raises(TemplateProblem) as caught:
        render_string(f"Hello\n\n{source}", CONTEXT)
    assert caught.value.line == 3
    assert caught.value.message.startswith(f"{{% {tag} %}} is not allowed in emails")


def test_context_cannot_be_changed_by_a_template() -> None:
    # list.clear / dict.clear would empty the data for the rest of the email (or other emails).
    context = {"event": {"products": [{"name": "A"}, {"name": "B"}]}, "contact": {"x": 1}}
    out = render_string(
        "{{ event.products.clear }}{{ contact.clear }}{{ event.products|length }}{{ contact.x }}", context
    )
    assert out == "21"
    assert len(context["event"]["products"]) == 2 and context["contact"] == {"x": 1}


def test_a_huge_loop_stops_on_the_deadline() -> None:
    source = "a\n{% for a in x %}{% for b in x %}{% for c in x %}{% endfor %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(TemplateProblem) as caught:
        render_string(source, {"x": list(range(1000))})
    assert time.monotonic() - started < 3
    assert "longer than" in caught.value.message
    assert caught.value.line == 2


def test_a_huge_output_stops_on_the_size_cap() -> None:
    with pytest.raises(TemplateProblem) as caught:
        render_string(
            "{% for a in x %}{% for b in x %}{{ s }}{% endfor %}{% endfor %}", {"x": list(range(2000)), "s": "x" * 500}
        )
    assert "characters" in caught.value.message


@pytest.mark.parametrize(
    "source, words",
    [
        ('{{ s|ljust:"100000000" }}', "ljust"),
        ('{{ s|rjust:"100000000" }}', "rjust"),
        ('{{ s|center:"100000000" }}', "center"),
        ('{{ 5|stringformat:"0999999999d" }}', "stringformat"),
        ("{{ 5.5|floatformat:100000 }}", "floatformat"),
    ],
)
def test_width_filters_cannot_blow_memory(source: str, words: str) -> None:
    with pytest.raises(TemplateProblem) as caught:
        render_string(source, {"s": "x"})
    assert words in caught.value.message
    assert render_string('{{ s|ljust:"5" }}|', {"s": "x"}) == "x    |"


def test_doubling_strings_is_capped() -> None:
    # Each {% with %} doubles the string: 2^25 × 40 characters if nothing stopped it.
    source = "{% with a=s|add:s %}" + "{% with a=a|add:a %}" * 25 + "{{ a|length }}"
    source += "{% endwith %}" * 26
    with pytest.raises(TemplateProblem) as caught:
        render_string(source, {"s": "x" * 40})
    assert "size limit" in caught.value.message


def test_join_with_a_long_separator_is_capped() -> None:
    with pytest.raises(TemplateProblem):
        render_string("{{ x|join:s }}", {"x": list(range(10_000)), "s": "y" * 1000})
    assert render_string("{{ x|join:', ' }}", {"x": [1, 2, 3]}) == "1, 2, 3"


def test_syntax_errors_name_their_line() -> None:
    with pytest.raises(TemplateProblem) as caught:
        render_string("one\ntwo\n{% if %}", {})
    assert caught.value.line == 3
    with pytest.raises(TemplateProblem) as caught:
        render_string("one\n{{ x|no_such_filter }}", {})
    assert caught.value.line == 2 and "no_such_filter" in caught.value.message
    with pytest.raises(TemplateProblem) as caught:
        render_string("{% for p in x %}\nno end", {})
    assert "endfor" in caught.value.message


def test_a_tag_the_parser_trips_on_is_a_template_problem_not_a_crash() -> None:
    # Django's parser raises StopIteration on a translated literal with a filter in {% with %}.
    with pytest.raises(TemplateProblem) as caught:
        render_string('first\n{% with _("a")|upper as v %}{{ v }}{% endwith %}', {})
    assert "cannot be read" in caught.value.message


def test_lazy_values_are_computed_only_when_used() -> None:
    calls = []

    def compute() -> list[dict[str, str]]:
        calls.append(1)
        return [{"name": "Cap"}]

    assert render_string("no products here", {"recommended_products": Lazy(compute)}) == "no products here"
    assert calls == []
    source = "{% if recommended_products %}{% for p in recommended_products %}{{ p.name }}{% endfor %}{% endif %}"
    assert render_string(source, {"recommended_products": Lazy(compute)}) == "Cap"
    assert calls == [1]


def test_output_cap_constant_is_a_megabyte() -> None:
    assert MAX_OUTPUT_CHARS == 1_000_000


def test_remembered_filters_follow_the_language_the_value_and_the_time_zone() -> None:
    """floatformat and date results are kept between renders (campaigns.content.sandbox:
    the same prices and dates come back in every recipient's email), keyed by what they depend
    on: the same call in another language, on an equal value of another type or on the same
    instant in another time zone gives that one's own result."""
    import datetime as dt

    from django.utils import timezone, translation

    source = "{{ v|floatformat:2 }} {{ d|date:'j F Y H:i' }}"
    instant = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)
    with translation.override("en"):
        assert render_string(source, {"v": 1234.5, "d": instant}) == "1234.50 1 March 2026 23:30"
    with translation.override("ru"):
        assert render_string(source, {"v": 1234.5, "d": instant}) == "1234,50 1 Март 2026 23:30"
    with translation.override("en"), timezone.override("Europe/Moscow"):
        assert render_string(source, {"v": 1234.5, "d": instant}) == "1234.50 2 March 2026 02:30"
    from decimal import Decimal

    from django.template import defaultfilters

    # Equal values of other types (and -0.0) get Django's own result each, whatever came first.
    values = [-0.0, 0.0, 0, False, Decimal("1.50"), Decimal("1.5"), 1.5, "1.5", True, 1]
    with translation.override("en"):
        for arg in ("", ":3", ':"-2"'):
            shown = render_string(" ".join(f"{{{{ v{i}|floatformat{arg} }}}}" for i in range(len(values))),
                                  {f"v{i}": value for i, value in enumerate(values)})  # fmt: skip
            django_arg = arg.strip(':"') or -1
            assert shown.split(" ") == [str(defaultfilters.floatformat(value, django_arg)) for value in values]
