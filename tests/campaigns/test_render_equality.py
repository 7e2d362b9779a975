"""The send path's speed-ups that copy Django give Django's bytes.

ESP_RENDER_PLAIN_DJANGO renders through Django's own template nodes, filter expressions and
filters (no render plan, no memoised filters, no shortcuts in the variable node) and writes the
MIME message with Django's EmailMessage.message().as_bytes(). Everything here is rendered and
written both ways and compared byte for byte: the starters, generated templates, and whole
messages with awkward headers and parts. A Django upgrade that changes what Django writes makes
this fail, instead of the fast path silently drifting from Django.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from django.core.mail import EmailMultiAlternatives
from django.test import override_settings

from audiences.models import Contact
from campaigns.content import plan, sandbox
from campaigns.content.errors import TemplateProblem
from campaigns.content.rendering import parts as rendering_parts
from campaigns.content.rendering import render_parts, template_compile
from campaigns.content.sandbox import CompiledTemplate, compile_template, freeze, render_budget, render_compiled
from campaigns.content.sandbox import engine as sandbox_engine
from campaigns.content.sandbox import filters as sandbox_filters
from campaigns.content.selectors import DEFAULT_LAYOUT
from campaigns.content.starters import SAMPLE_EVENTS, STARTERS
from campaigns.delivery import composer
from campaigns.delivery.composer import compose, contact_as_dict
from campaigns.models import DeliverySettings, EmailTemplate, Message, MessageClass
from esp.models import Workspace
from tests.campaigns.test_render_plan import BENCH_EMAIL, fuzz_context, generate, sender_contexts

BOUNDARY = "===============" + "0123456789abcdef" * 2 + "=="
DATE = "Mon, 07 Dec 2026 10:00:00 -0000"


def plain_django() -> Any:
    return override_settings(ESP_RENDER_PLAIN_DJANGO=True)


def both_ways(make: Callable[[], Any]) -> tuple[Any, Any]:
    """make() with the speed-ups, then the plain Django way (each computing its own filters)."""
    sandbox_filters._remembered.clear()
    fast = make()
    with plain_django():
        assert sandbox.plain_django()
        plain = make()
    assert not sandbox.plain_django()
    return fast, plain


def outcome(compiled: CompiledTemplate, context: dict[str, Any]) -> tuple[Any, ...]:
    try:
        with render_budget():
            output = render_compiled(compiled, freeze(context))
    except TemplateProblem as problem:
        return ("problem", problem.message, problem.line)
    return ("ok", type(output), output)


def test_the_setting_renders_through_djangos_own_nodes() -> None:
    """The plain way takes none of the shortcuts (or it would compare them with themselves)."""
    source = (
        "{% for p in people %}{{ p.name|upper }} {{ f|floatformat:2 }} {{ day|date:'j F Y' }}"
        "{% if p.age > 20 %}!{% endif %}{% endfor %}"
    )
    compiled = compile_template(source)
    fast = render_compiled(compiled, freeze(fuzz_context()))
    broken = mock.Mock(side_effect=AssertionError("a shortcut ran"))
    with (
        plain_django(),
        mock.patch.object(plan.Plan, "render", broken),
        mock.patch.object(sandbox_engine._FastFilterExpression, "apply_filters", broken),
        mock.patch.object(sandbox_engine, "_lookup", broken),
        mock.patch.object(sandbox_filters, "_remembered_key", broken),
    ):
        assert render_compiled(compiled, freeze(fuzz_context())) == fast


def test_the_plain_way_still_keeps_the_budget() -> None:
    compiled = compile_template("{% for a in x %}{% for b in x %}{% for c in x %}{% endfor %}{% endfor %}{% endfor %}")
    with plain_django(), pytest.raises(TemplateProblem, match="longer than"):
        render_compiled(compiled, freeze({"x": list(range(1000))}))
    with plain_django(), pytest.raises(TemplateProblem, match="limit"):
        render_compiled(compile_template("{{ s|ljust:'100000' }}"), freeze({"s": "a"}))


# --- what is rendered ----------------------------------------------------------------------


def email_parts(subject: str, preheader: str, mjml: str, text_body: str = "") -> Any:
    html = template_compile(
        subject=subject, preheader=preheader, mjml=mjml, text_body=text_body, use_layout=True,
        message_class=MessageClass.MARKETING, layout=DEFAULT_LAYOUT,
    )  # fmt: skip
    return rendering_parts._parts(subject=subject, preheader=preheader, html=html, text_body=text_body)


@pytest.mark.parametrize("key", sorted(STARTERS))
def test_starters_render_the_same_both_ways(key: str) -> None:
    starter = STARTERS[key]
    parts = email_parts(starter.subject, starter.preheader, starter.mjml)
    for make in sender_contexts(starter.sample_event):
        fast, plain = both_ways(lambda make=make: render_parts(parts, make(), mjml=starter.mjml))
        assert (fast.subject, fast.html, fast.text) == (plain.subject, plain.html, plain.text)
        assert fast == plain


def test_the_benchmark_email_renders_the_same_both_ways() -> None:
    parts = email_parts(BENCH_EMAIL.SUBJECT, "", BENCH_EMAIL.MJML)
    for make in sender_contexts("order"):
        fast, plain = both_ways(lambda make=make: render_parts(parts, make(), mjml=BENCH_EMAIL.MJML))
        assert fast == plain


@pytest.mark.parametrize("autoescape", [True, False], ids=["html", "text"])
def test_generated_templates_render_the_same_both_ways(autoescape: bool) -> None:
    """Loops, filters, autoescape, if/else, with, cycles, unicode: what renders, renders alike;
    what fails, fails with the same message on the same line."""
    chance = random.Random(20261207 + autoescape)  # noqa: S311 - reproducible templates
    seen: dict[str, int] = {}
    for _ in range(1200):
        source = generate(chance)
        try:
            # Once for both ways: a template that shows `forloop` shows its nodes' addresses.
            compiled = compile_template(source, autoescape=autoescape)
        except TemplateProblem:
            continue
        fast, plain = both_ways(lambda compiled=compiled: outcome(compiled, fuzz_context()))
        assert fast == plain, source
        seen[fast[0]] = seen.get(fast[0], 0) + 1
    assert seen["ok"] > 500 and seen["problem"] > 10, seen


# --- what is written -----------------------------------------------------------------------


@pytest.fixture
def fixed_ids() -> Iterator[None]:
    """Message-ID, Date and the MIME boundary are random or the clock's: fixed here, so that
    the two writers' bytes can be compared whole."""
    boundary = classmethod(lambda cls, text=None: BOUNDARY)
    with (
        mock.patch.object(composer, "make_msgid", return_value="<fixed.1@esp.test>"),
        mock.patch.object(composer, "formatdate", return_value=DATE),
        mock.patch("email.generator.Generator._make_boundary", boundary),
        mock.patch.object(composer._Generator, "_make_boundary", boundary),
    ):
        yield


PEOPLE = [
    {"email": "ann@example.com", "first_name": "Ann", "city": "Berlin"},
    {"email": "dmitry@example.ru", "first_name": "Дмитрий", "last_name": "Иванов", "city": "Москва"},
    {"email": "zoe@example.com", "first_name": 'Zoë <b>&amp;</b> "Q"', "city": ""},
    {"email": "x@example.com", "first_name": "", "city": "São Paulo " * 11},
]


def written(
    workspace: Workspace, template: EmailTemplate, person: Contact, event: dict[str, Any], number: int
) -> tuple[bytes, bytes]:
    message = Message(
        id=10**12 + number, workspace=workspace, contact=person, source=f"broadcast:eq{number}",
        template=template, message_class=template.message_class, to_email=person.email,
    )  # fmt: skip
    rules = DeliverySettings(workspace=workspace, utm_parameters={"utm_source": "esp", "utm_medium": "émail"})

    def write() -> bytes:
        composed = compose(
            message, workspace=workspace, template=template, contact=contact_as_dict(person), event=event,
            delivery_settings=rules, sender=None, to_email=person.email,
        )  # fmt: skip
        return composed.prepared.as_bytes()

    return both_ways(write)


@pytest.mark.django_db
@pytest.mark.usefixtures("fixed_ids")
@pytest.mark.parametrize("key", sorted(STARTERS))
def test_starters_are_written_the_same_both_ways(acme: Workspace, key: str) -> None:
    acme.postal_address = "1 Market Street\nSpringfield"
    acme.default_from_name = "Acme Магазин"
    acme.default_from_email = "shop@acme.example"
    starter = STARTERS[key]
    template = EmailTemplate(
        workspace=acme, name=key, subject=starter.subject, preheader=starter.preheader, mjml=starter.mjml,
        use_layout=True, message_class=MessageClass.MARKETING,
    )  # fmt: skip
    sample = SAMPLE_EVENTS.get(starter.sample_event)
    event = dict(sample.properties) if sample else {}
    for number, fields in enumerate(PEOPLE):
        person = Contact.objects.create(workspace=acme, **fields)
        fast, plain = written(acme, template, person, event, number)
        assert fast == plain
        assert b"Message-ID: <fixed.1@esp.test>" in fast and BOUNDARY.encode() in fast


AWKWARD = [
    # Non-ASCII and long subjects (RFC 2047 words, folding), text parts with lines beyond 998
    # characters (quoted-printable), carriage returns, an 8-bit text part, plain ASCII.
    ("Привет, {{ contact.first_name }}! Скидка 20 % на всё «до пятницы»", "", ""),
    ("A long subject " + "that keeps going " * 12 + "{{ contact.first_name }}", "", "Short text.\n"),
    ("ASCII only", "", "Line one\nLine two " + "x" * 1200 + "\nLast"),
    ("Carriage {{ contact.first_name }}", "", "one\r\ntwo\rthree\n{{ contact.city }}\n"),
    ("Ünïcödé", "Préheader ✓", "Grüße, {{ contact.first_name|default:'Kunde' }} — ✓\n" + "é" * 600),
    ("Tabs\tand  spaces", "", "{% for n in '12345' %}{{ n }}\t{% endfor %}\n"),
]
AWKWARD_MJML = (
    """<mjml><mj-body><mj-section><mj-column>
<mj-text>{% autoescape off %}{{ contact.first_name }}{% endautoescape %} — {{ contact.first_name }}</mj-text>
<mj-text>{% if contact.city %}{{ contact.city|upper }}{% else %}nowhere{% endif %}
{% for p in event.products %}{{ forloop.counter }}. {{ p.name|truncatechars:20 }} {{ p.price|floatformat:2 }}
{% empty %}no products{% endfor %}</mj-text>
<mj-text>"""
    + "Lorem ipsum dolor sit amet " * 60
    + """</mj-text>
<mj-button href="https://shop.example/s?q={{ contact.city|urlencode }}&amp;x=1">Go</mj-button>
</mj-column></mj-section></mj-body></mjml>"""
)


@pytest.mark.django_db
@pytest.mark.usefixtures("fixed_ids")
@pytest.mark.parametrize(("subject", "preheader", "text_body"), AWKWARD)
def test_awkward_messages_are_written_the_same_both_ways(
    acme: Workspace, subject: str, preheader: str, text_body: str
) -> None:
    acme.postal_address = "Улица 1, Москва"
    acme.default_from_name = "A shop with a name long enough to be folded " * 3
    acme.default_from_email = "shop@acme.example"
    template = EmailTemplate(
        workspace=acme, name="awkward", subject=subject, preheader=preheader, mjml=AWKWARD_MJML,
        text_body=text_body and text_body + "\nUnsubscribe: {{ unsubscribe_url }}", use_layout=True,
        message_class=MessageClass.MARKETING,
    )  # fmt: skip
    event = {"products": [{"name": "Чай <Earl Grey> & «мята» " * 3, "price": 4.5}, {"name": "Socks", "price": 0}]}
    for number, fields in enumerate(PEOPLE):
        person = Contact.objects.create(workspace=acme, **fields)
        fast, plain = written(acme, template, person, event, number)
        assert fast == plain


@pytest.mark.django_db
@pytest.mark.usefixtures("fixed_ids")
def test_the_plain_way_writes_what_djangos_email_message_writes(acme: Workspace) -> None:
    """The reference is Django's own writer, not another copy of it."""
    acme.postal_address = "1 Market Street"
    person = Contact.objects.create(workspace=acme, email="ann@example.com", first_name="Ann")
    template = EmailTemplate(
        workspace=acme, name="t", subject="Hi {{ contact.first_name }}", mjml=AWKWARD_MJML, use_layout=True,
        message_class=MessageClass.MARKETING,
    )  # fmt: skip
    message = Message(
        id=10**12, workspace=acme, contact=person, source="broadcast:ref", template=template,
        message_class=MessageClass.MARKETING, to_email=person.email,
    )  # fmt: skip
    with plain_django():
        composed = compose(
            message, workspace=acme, template=template, contact=contact_as_dict(person), event={},
            delivery_settings=DeliverySettings(workspace=acme), sender=None, to_email=person.email,
        )  # fmt: skip
        prepared = composed.prepared
        django_email = EmailMultiAlternatives(
            subject=prepared.subject, body=prepared.text, from_email=prepared.from_email, to=prepared.to,
            headers={"Date": DATE, **prepared.headers}, reply_to=prepared.reply_to or None,
        )  # fmt: skip
        django_email.attach_alternative(prepared.html, "text/html")
        assert prepared.as_bytes() == django_email.message().as_bytes(linesep="\r\n")
        # Django's own class; only the Subject is folded the usual way (composer._FoldedSubject).
        assert type(prepared.email()).__mro__[1] is EmailMultiAlternatives
