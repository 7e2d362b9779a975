"""Rendering emails: compiled once per version, rendered per recipient over plain data; the
context (contact snapshot, event, links, recommendations), the layout and the text part."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from unittest import mock

import pytest
from django.utils import timezone

from audiences.facts import purchase_facts_refresh
from audiences.models import Contact, CustomerFacts
from campaigns.content import services
from campaigns.content.blocks import PRODUCTS, RECOMMENDED, document
from campaigns.content.errors import TemplateProblem, TemplateProblems
from campaigns.content.rendering import compiling, contact_as_dict, email_context, html_to_text, render_email
from campaigns.content.rendering import parts as rendering_parts
from campaigns.content.selectors import recommended_products
from campaigns.models import EmailTemplate, Layout
from esp.models import Workspace
from tests.factories import EventFactory, WorkspaceFactory, order_event

pytestmark = pytest.mark.django_db

URLS = {
    "unsubscribe_url": "https://esp.test/e/u/tok",
    "preferences_url": "https://esp.test/e/p/tok",
    "view_in_browser_url": "https://esp.test/e/v/tok",
}
BODY = """<mjml>
<mj-body>
<mj-section><mj-column>
<mj-text>Hi {{ contact.first_name|default:'there' }}, <a href="https://shop.test/new">see what is new</a></mj-text>
</mj-column></mj-section>
</mj-body>
</mjml>"""


def make_template(workspace: Workspace, **data: object) -> EmailTemplate:
    values: dict[str, object] = {"name": "T", "subject": "Hello {{ contact.first_name|default:'there' }}", "mjml": BODY}
    values.update(data)
    return services.template_create(workspace=workspace, data=values)


def context_for(workspace: Workspace, contact: Contact | None = None, event: dict | None = None) -> dict:
    snapshot = contact_as_dict(contact) if contact else {}
    return email_context(workspace=workspace, contact=snapshot, event=event or {}, urls=URLS)


def test_personalised_subject_preheader_html_and_text(acme: Workspace) -> None:
    template = make_template(acme, preheader="{{ contact.city|default:'Your town' }} deals inside")
    anna = Contact.objects.create(workspace=acme, email="anna@example.com", first_name="Анна", city="Москва")
    rendered = render_email(template, context_for(acme, anna))
    assert rendered.subject == "Hello Анна"
    assert rendered.preheader == "Москва deals inside"
    assert "Hi Анна, " in rendered.html
    assert "<title>Hello Анна</title>" in rendered.html
    assert "Москва deals inside" in rendered.html  # the hidden preview text
    # The default layout: header with the workspace name, footer with links and address.
    assert 'href="https://esp.test/e/u/tok"' in rendered.html
    assert "1 Market Street, Springfield" in rendered.html
    # Text part: visible text only, links as "text (url)", the preheader not repeated.
    assert "Hi Анна, see what is new (https://shop.test/new)" in rendered.text
    assert "Unsubscribe (https://esp.test/e/u/tok)" in rendered.text
    assert "Москва deals inside" not in rendered.text
    assert "<" not in rendered.text

    nobody = render_email(template, context_for(acme))
    assert nobody.subject == "Hello there"
    assert nobody.preheader == "Your town deals inside"


def test_the_built_in_texts_speak_the_contacts_or_the_workspaces_language(acme: Workspace) -> None:
    acme.name, acme.language = "Ромашка & Co", "ru"
    acme.save()
    template = make_template(acme)
    ivan = Contact.objects.create(workspace=acme, email="ivan@example.ru", first_name="Иван")
    jane = Contact.objects.create(workspace=acme, email="jane@example.com", first_name="Jane", locale="en-GB")
    hans = Contact.objects.create(workspace=acme, email="hans@example.de", first_name="Hans", locale="de_DE")
    russian = render_email(template, context_for(acme, ivan))
    assert ">Отписаться</a>" in russian.html and "Отписаться (https://esp.test/e/u/tok)" in russian.text
    assert "клиент или подписчик Ромашка &amp; Co." in russian.html  # the shop's name escaped as data
    english = render_email(template, context_for(acme, jane))
    assert ">Unsubscribe</a>" in english.html and "customer or subscriber of Ромашка &amp; Co." in english.html
    # A language the service does not speak: the workspace's.
    assert ">Отписаться</a>" in render_email(template, context_for(acme, hans)).html


def test_subject_is_one_line_and_not_html_escaped(acme: Workspace) -> None:
    template = make_template(acme, subject="{{ contact.last_name }} & {{ event.title }}")
    context = email_context(
        workspace=acme, contact={"last_name": "O'Brien <3"}, event={"title": "Line\r\nBcc: x@evil.test"}, urls=URLS
    )
    assert render_email(template, context).subject == "O'Brien <3 & Line Bcc: x@evil.test"


def test_own_text_part_is_rendered_instead_of_generated(acme: Workspace) -> None:
    template = make_template(acme, text_body="Hi {{ contact.first_name|default:'there' }} & co\n{{ unsubscribe_url }}")
    rendered = render_email(template, context_for(acme))
    assert rendered.text == "Hi there & co\nhttps://esp.test/e/u/tok\n"


def test_compiled_once_per_version_rendered_per_recipient(acme: Workspace) -> None:
    with mock.patch.object(compiling, "mjml_to_html", wraps=compiling.mjml_to_html) as mjml_calls:
        template = make_template(acme)
        assert mjml_calls.call_count == 1
        assert "{{ contact.first_name|default:'there' }}" in template.compiled_html
        contacts = [Contact(workspace=acme, email=f"c{i}@example.com", first_name=f"N{i}") for i in range(25)]
        Contact.objects.bulk_create(contacts)
        stored = EmailTemplate.objects.get(pk=template.pk)  # as the sender loads it
        # The subject and the HTML are parsed by compiling._tags, the generated text by parts._parts.
        with (
            mock.patch.object(compiling, "compile_template", wraps=compiling.compile_template) as tag_parses,
            mock.patch.object(rendering_parts, "compile_template", wraps=rendering_parts.compile_template) as texts,
        ):
            subjects = [render_email(stored, context_for(acme, c)).subject for c in contacts]
            # subject, HTML and text, parsed for the first recipient only
            assert (tag_parses.call_count, texts.call_count) == (2, 1)
        assert subjects == [f"Hello N{i}" for i in range(25)]
        assert mjml_calls.call_count == 1  # no compilation at send time

        # A new version compiles again, once; a change of name alone does not.
        services.template_update(workspace=acme, template_id=template.pk, data={"name": "Renamed"})
        assert mjml_calls.call_count == 1
        updated = services.template_update(
            workspace=acme, template_id=template.pk, data={"mjml": BODY.replace("see what is new", "look")}
        )
        assert mjml_calls.call_count == 2
        assert updated.version == 2
        assert "Hi N0, look (https://shop.test/new)" in render_email(updated, context_for(acme, contacts[0])).text


def test_saving_an_invalid_template_is_refused(acme: Workspace) -> None:
    template = make_template(acme)
    broken = BODY.replace("<mj-text>", "<mj-txt>", 1)
    with pytest.raises(TemplateProblems) as caught:
        services.template_update(workspace=acme, template_id=template.pk, data={"mjml": broken})
    assert [(p.part, p.line) for p in caught.value.problems] == [("mjml", 4)]
    template.refresh_from_db()
    assert template.version == 1 and template.mjml == BODY


def test_layout_changes_reach_templates_without_a_new_version(acme: Workspace) -> None:
    template = make_template(acme)
    plain = make_template(
        acme,
        name="No layout",
        use_layout=False,
        mjml=BODY.replace("see what is new", "{{ unsubscribe_url }} {{ workspace.postal_address }}"),
    )
    footer = (
        '<mj-section><mj-column><mj-text>NEW FOOTER <a href="{{ unsubscribe_url }}">Stop</a> '
        "{{ workspace.postal_address }}</mj-text></mj-column></mj-section>"
    )
    services.layout_save(workspace=acme, header_mjml="", footer_mjml=footer)
    assert Layout.objects.get(workspace=acme).version == 1
    stored = EmailTemplate.objects.get(pk=template.pk)
    assert stored.version == 1
    html = render_email(stored, context_for(acme)).html
    assert "NEW FOOTER" in html and "Stop" in html
    assert "NEW FOOTER" not in render_email(EmailTemplate.objects.get(pk=plain.pk), context_for(acme)).html

    with pytest.raises(TemplateProblems) as caught:
        services.layout_save(workspace=acme, header_mjml="<mj-section>", footer_mjml="<mj-section></mj-section>")
    parts = {(p.part, p.line) for p in caught.value.problems}
    assert ("header", 1) in parts and ("footer", None) in parts  # unclosed; no unsubscribe link


def test_render_time_problems_name_the_template_line(acme: Workspace) -> None:
    mjml = BODY.replace(
        "</mj-column>",
        "{% for a in x %}{% for b in x %}<mj-text>{{ b }}</mj-text>{% endfor %}{% endfor %}\n</mj-column>",
    )
    template = make_template(acme, mjml=mjml)
    context = context_for(acme)
    context["x"] = list(range(5000))
    with pytest.raises(TemplateProblem) as caught:
        render_email(template, context)
    assert caught.value.part == "mjml"
    assert caught.value.line == 5


def test_template_saved_without_compiled_html_is_compiled_on_first_render(acme: Workspace) -> None:
    template = EmailTemplate.objects.create(workspace=acme, name="Raw", subject="S {{ contact.first_name }}", mjml=BODY)
    rendered = render_email(template, email_context(workspace=acme, contact={"first_name": "Z"}, event={}, urls=URLS))
    assert rendered.subject == "S Z"
    assert "{{ contact.first_name|default:'there' }}" in EmailTemplate.objects.get(pk=template.pk).compiled_html


def test_contact_snapshot_and_context(acme: Workspace) -> None:
    contact = Contact.objects.create(
        workspace=acme,
        email="bo@example.com",
        first_name="Bo",
        last_name="Ek",
        birth_date=dt.date(1990, 5, 17),
        attributes={"shoe_size": 42, "first_name": "shadowed"},
        tags=["vip"],
    )
    CustomerFacts.objects.create(
        workspace=acme, contact=contact, orders_count=3, revenue=Decimal("120.50"), products=["p1"],
        last_order_at=timezone.make_aware(dt.datetime(2024, 3, 1, 12)),
    )  # fmt: skip
    contact = Contact.objects.select_related("facts").get(pk=contact.pk)
    snapshot = contact_as_dict(contact)
    assert snapshot["first_name"] == "Bo" and snapshot["shoe_size"] == 42 and snapshot["full_name"] == "Bo Ek"
    assert snapshot["birth_date"] == "1990-05-17" and snapshot["tags"] == ["vip"]
    assert snapshot["facts"]["orders_count"] == 3 and snapshot["facts"]["revenue"] == 120.5
    import json

    json.dumps(snapshot)  # storable in Message.data as it is

    context = email_context(
        workspace=acme, contact=snapshot, event={"products": [{"sku": "S1", "image": "i.png"}]}, urls=URLS
    )
    assert context["contact"]["birth_date"] == dt.date(1990, 5, 17)  # |date works on it
    assert context["contact"]["facts"]["last_order_at"].year == 2024
    assert context["workspace"] == {"name": "Acme", "postal_address": "1 Market Street, Springfield"}
    assert context["event"]["products"][0]["product_id"] == "S1"
    assert context["event"]["products"][0]["image_url"] == "i.png"
    assert context["unsubscribe_url"] == URLS["unsubscribe_url"]
    template = make_template(
        acme, subject="{{ contact.birth_date|date:'j F' }} · {{ contact.shoe_size }} · {{ contact.facts.orders_count }}"
    )
    assert render_email(template, context).subject == "17 May · 42 · 3"


def test_products_block_loops_over_the_events_products(acme: Workspace) -> None:
    template = make_template(acme, mjml=document(PRODUCTS))
    tea = {"product_id": "p1", "name": "Tea", "price": 4.5, "quantity": 2, "url": "https://shop.test/tea"}
    tea["image_url"] = "https://shop.test/tea.png"
    mug = {"sku": "p2", "name": "Mug", "price": "9", "url": "https://shop.test/mug"}
    event = {"currency": "EUR", "products": [tea, mug]}
    rendered = render_email(template, context_for(acme, event=event))
    assert 'src="https://shop.test/tea.png"' in rendered.html
    assert "2 × " in rendered.html and "4.50 EUR" in rendered.html
    assert "9.00 EUR" in rendered.html
    assert rendered.html.count("<img") == 1  # the mug has no picture
    assert "Tea (https://shop.test/tea)" in rendered.text and "Mug (https://shop.test/mug)" in rendered.text
    empty = render_email(template, context_for(acme))
    assert "EUR" not in empty.html


@pytest.fixture
def shop(acme: Workspace, globex: Workspace) -> dict[str, Contact]:
    """Orders of five acme customers (and one of globex), facts computed by their refresh.

    A: p1 p2 · B: p1 p3 · C: p2 p3 p4 · D: p1 p3 p5 · E: p9 · (globex) G: p1 p6
    Bought together with A's p1/p2 by others: p3 ×3 (B, C, D), p4 ×1 (C), p5 ×1 (D)."""
    now = timezone.now()
    contacts = {}

    def item(pid: str, name: str, price: float) -> dict[str, object]:
        return {
            "product_id": pid,
            "name": name,
            "price": price,
            "url": f"https://shop.test/{pid}",
            "image_url": f"https://shop.test/{pid}.png",
        }

    orders = {
        "A": [item("p1", "Tea", 4), item("p2", "Cup", 6)],
        "B": [item("p1", "Tea", 4), item("p3", "Mug (old name)", 8)],
        "C": [item("p2", "Cup", 6), item("p3", "Mug", 9), item("p4", "Kettle", 30)],
        "D": [item("p1", "Tea", 4), item("p3", "Mug", 9), item("p5", "Spoon", 2)],
        "E": [item("p9", "Other", 1)],
    }
    for n, (name, products) in enumerate(orders.items()):
        contact = Contact.objects.create(workspace=acme, email=f"{name.lower()}@example.com", first_name=name)
        order_event(contact, f"o-{name}", None, now - dt.timedelta(days=10 - n), products=products)
        contacts[name] = contact
    # A later product view names the kettle differently and with its current price.
    EventFactory(
        contact=contacts["C"], name="Product Viewed", occurred_at=now - dt.timedelta(days=1),
        properties={"product_id": "p4", "name": "Kettle 2.0", "price": 35, "url": "https://shop.test/p4b"},
    )  # fmt: skip
    g = Contact.objects.create(workspace=globex, email="g@example.com")
    order_event(g, "o-G", None, now, products=[item("p1", "Tea", 4), item("p6", "Secret", 1)])
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[c.pk for c in contacts.values()])
    purchase_facts_refresh(workspace_id=globex.pk, contact_ids=[g.pk])
    return contacts


def test_recommendations_from_purchase_facts(acme: Workspace, shop: dict[str, Contact]) -> None:
    recs = recommended_products(workspace_id=acme.pk, contact_id=shop["A"].pk)
    assert [(r["product_id"], r["together"]) for r in recs] == [("p3", 3), ("p4", 1), ("p5", 1)]
    mug, kettle, spoon = recs
    # Details come from the newest event of a recent buyer that describes the product.
    assert (mug["name"], mug["price"], mug["url"]) == ("Mug", 9, "https://shop.test/p3")
    assert (kettle["name"], kettle["price"], kettle["url"]) == ("Kettle 2.0", 35, "https://shop.test/p4b")
    assert spoon["image_url"] == "https://shop.test/p5.png"
    # E bought nothing anyone else bought; a prospect has no facts at all.
    assert recommended_products(workspace_id=acme.pk, contact_id=shop["E"].pk) == []
    prospect = Contact.objects.create(workspace=acme, email="new@example.com")
    assert recommended_products(workspace_id=acme.pk, contact_id=prospect.pk) == []
    # B: others bought p2 (A, C), p4 (C), p5 (D) together with p1 or p3.
    recs_b = recommended_products(workspace_id=acme.pk, contact_id=shop["B"].pk)
    assert [(r["product_id"], r["together"]) for r in recs_b] == [("p2", 2), ("p4", 1), ("p5", 1)]


def test_recommended_block_renders_from_the_context(acme: Workspace, shop: dict[str, Contact]) -> None:
    template = make_template(acme, mjml=document(RECOMMENDED))
    a = Contact.objects.select_related("facts").get(pk=shop["A"].pk)
    html = render_email(template, context_for(acme, a)).html
    assert html.index("Mug") < html.index("Kettle 2.0") < html.index("Spoon")
    assert "Secret" not in html
    e = Contact.objects.select_related("facts").get(pk=shop["E"].pk)
    assert "You might also like" not in render_email(template, context_for(acme, e)).html


def test_recommendations_are_queried_only_when_the_template_shows_them(
    acme: Workspace, shop: dict[str, Contact], django_assert_num_queries: object
) -> None:
    template = make_template(acme)
    stored = EmailTemplate.objects.get(pk=template.pk)
    context = context_for(acme, Contact.objects.select_related("facts").get(pk=shop["A"].pk))
    render_email(stored, context)  # warm the cache
    with django_assert_num_queries(0):  # type: ignore[operator]
        render_email(stored, context)


def test_html_to_text() -> None:
    html = """<html><head><title>T</title><style>p{color:red}</style></head><body>
    <div style="display:none">hidden preheader</div>
    <h1>Big&nbsp;news</h1><p>Read <a href="https://x.test/a">the story</a>, or <a href="https://x.test/b">https://x.test/b</a>.</p>
    <a href="https://x.test/p"><img src="p.png" alt="Shoe"></a><a href="https://x.test/p">Shoe</a>
    <ul><li>one</li><li>two &amp; three</li></ul><table><tr><td>a</td><td>b</td></tr></table></body></html>"""
    assert html_to_text(html) == (
        "Big news\n\nRead the story (https://x.test/a), or https://x.test/b.\n\n"
        "Shoe (https://x.test/p)\n\n- one\n- two & three\n\na b"
    )


def test_workspace_isolation_of_rendering(acme: Workspace) -> None:
    other = WorkspaceFactory(name="Other", slug="other", postal_address="9 Elm Road")
    template = make_template(acme)
    # The workspace in the context is the one given, never read from the template's.
    html = render_email(template, context_for(other)).html
    assert "9 Elm Road" in html and "Springfield" not in html
