"""The builder's side panel beyond its forms, through Django's test client: a condition's rules
and a series' flow filter edited with the segment builder (one component), a send step's email
rendered as a thumbnail for a sample contact, and a webhook step's signed test call — each
limited to its workspace, read by viewers and tried only by marketers."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import Client

from audiences.models import Contact, MailingList
from automations import webhooks
from automations.models import Enrollment, Series, WebhookDelivery
from automations.services import SeriesInput, series_create
from campaigns.models import EmailTemplate, MessageClass
from esp import net
from esp.models import Role, Workspace
from tests.automations.series_helpers import contact, live_series, track
from tests.conftest import logged_in
from tests.factories import EmailTemplateFactory, member

pytestmark = pytest.mark.usefixtures("clock")
HTMX = {"HTTP_HX_REQUEST": "true"}
GERMANS = {
    "match": "all",
    "negate": False,
    "conditions": [
        {"kind": "attribute", "field": "country", "operator": "eq", "value": "DE"},
    ],
}
CART_MJML = (
    "<mjml><mj-body><mj-section><mj-column><mj-text>Hi {{ contact.first_name }}, your cart of "
    "{{ event.total }} is waiting</mj-text></mj-column></mj-section></mj-body></mjml>"
)


def _steps(series: Series) -> dict[str, Any]:
    return series.versions.order_by("-number").first().steps  # type: ignore[union-attr]


def _step(series: Series, key: str) -> dict[str, Any]:
    return next(s for s in _steps(series)["steps"] if s["key"] == key)


@pytest.fixture
def cart(acme: Workspace, templates: dict[str, EmailTemplate]) -> Series:
    """Checkout Started → remind (email) → check (condition: has ordered?) → hook (webhook)."""
    return live_series(
        acme,
        [
            {"key": "remind", "type": "send", "template": templates["welcome"].pk, "next": "check"},
            {
                "key": "check",
                "type": "condition",
                "events_since_entry": [{"event": "Order Completed"}],
                "yes": None,
                "no": "hook",
            },
            {"key": "hook", "type": "webhook", "url": "https://hooks.example.com/esp"},
        ],
        name="Cart",
        trigger={"type": "event", "event": "Checkout Started", "key": "cart_id"},
    )


# --- conditions and the flow filter: the segment builder -------------------------------------


def test_the_condition_panel_draws_the_segment_builder_with_this_workspaces_schema(
    acme: Workspace, acme_client: Client, cart: Series, globex: Workspace
) -> None:
    MailingList.objects.create(workspace=acme, name="Acme newsletter")
    MailingList.objects.create(workspace=globex, name="Globex secret list")
    html = acme_client.get(f"/series/{cart.pk}/builder/?step=check").content.decode()
    # One component: the container names its textarea, the page carries the schema and the
    # words once, and the segment page's script draws it.
    assert 'data-rule-builder="id_rules"' in html and 'name="rules"' in html
    assert 'data-preview-url="/audience/segments/preview/"' in html
    assert "segment_builder.js" in html
    schema = json.loads(html.split('id="rule-builder-schema" type="application/json">')[1].split("</script>")[0])
    lists = next(kind for kind in schema["kinds"] if kind["kind"] == "list")["lists"]
    assert [item["label"] for item in lists] == ["Acme newsletter"]
    assert "Globex secret list" not in html
    assert 'id="rule-builder-text"' in html
    # Another kind of step loads no schema.
    send = acme_client.get(f"/series/{cart.pk}/builder/?step=remind").content.decode()
    assert "rule-builder-schema" not in send


def test_rules_built_in_the_panel_are_saved_and_an_empty_tree_is_no_rule(acme_client: Client, cart: Series) -> None:
    page = acme_client.post(
        f"/series/{cart.pk}/builder/",
        {"op": "update", "step": "check", "rules": json.dumps(GERMANS), "event": "Order Completed"},
        **HTMX,
    )
    assert page.status_code == 200
    saved = _step(cart, "check")
    assert saved["rules"]["conditions"] == GERMANS["conditions"]
    assert saved["events_since_entry"][0]["event"] == "Order Completed"
    assert "Country (ISO code) is DE" in page.content.decode()  # the card says it

    # The builder posts an empty tree once every condition is removed: that is no rule at all,
    # so the step says what it lacks instead of matching everyone.
    empty = json.dumps({"match": "all", "negate": False, "conditions": []})
    page = acme_client.post(f"/series/{cart.pk}/builder/", {"op": "update", "step": "check", "rules": empty}, **HTMX)
    assert "rules" not in _step(cart, "check")
    assert "Say what to check" in page.content.decode()


def test_the_flow_filter_uses_the_same_builder_and_an_empty_tree_lets_everyone_in(
    acme: Workspace, acme_client: Client, cart: Series
) -> None:
    html = acme_client.get(f"/series/{cart.pk}/edit/").content.decode()
    assert 'data-rule-builder="id_flow_filter"' in html and 'id="rule-builder-schema"' in html
    assert "segment_builder.js" in html
    form = {
        "name": "Cart",
        "kind": "trigger",
        "trigger_type": "event",
        "trigger_event": "Checkout Started",
        "trigger_key": "cart_id",
        "re_entry": "always",
        "holdout_percent": "0",
        "smart_sending": "on",
    }
    saved = acme_client.post(f"/series/{cart.pk}/edit/", {**form, "flow_filter": json.dumps(GERMANS)})
    assert saved.status_code == 302
    cart.refresh_from_db()
    assert cart.flow_filter["conditions"] == GERMANS["conditions"]
    empty = json.dumps({"match": "all", "negate": False, "conditions": []})
    assert acme_client.post(f"/series/{cart.pk}/edit/", {**form, "flow_filter": empty}).status_code == 302
    cart.refresh_from_db()
    assert cart.flow_filter == {}
    # A viewer sees the builder read-only (the script draws a read-only textarea's tree so).
    viewer = logged_in(member(acme, Role.VIEWER))
    page = viewer.get(f"/series/{cart.pk}/edit/").content.decode()
    textarea = page.split('id="id_flow_filter"')[0].rsplit("<textarea", 1)[1]
    assert "readonly" in textarea


# --- send: the email as a thumbnail ----------------------------------------------------------


def _preview(client: Client, series: Series, **params: Any) -> Any:
    return client.get(f"/series/{series.pk}/builder/email-preview/", params, **HTMX)


def test_the_send_panel_asks_for_the_thumbnail_of_the_chosen_template(acme_client: Client, cart: Series) -> None:
    html = acme_client.get(f"/series/{cart.pk}/builder/?step=remind").content.decode()
    assert f'hx-get="/series/{cart.pk}/builder/email-preview/"' in html
    assert "change from:#id_template" in html and "from:#id_subject" in html


def test_the_thumbnail_is_the_email_as_the_newest_entrant_gets_it(acme: Workspace, acme_client: Client) -> None:
    template = EmailTemplateFactory(
        workspace=acme, name="Cart reminder", subject="{{ contact.first_name }}, your cart", mjml=CART_MJML
    )
    series = live_series(
        acme,
        [{"key": "remind", "type": "send", "template": template.pk}],
        trigger={"type": "event", "event": "Checkout Started", "key": "cart_id"},
    )
    contact(acme, "newest@example.com", first_name="Newest")  # newer, but never entered
    ann = contact(acme, "ann@example.com", first_name="Ann")
    track(ann, "Checkout Started", cart_id="c1", total=180)
    newest = Contact.objects.create(workspace=acme, email="zed@example.com", first_name="Zed")
    assert Enrollment.objects.filter(series=series, contact=ann).exists()

    page = _preview(acme_client, series, template=template.pk)
    assert page.status_code == 200
    html = page.content.decode()
    # Personalised for the series' newest entrant, with the data of their entry.
    assert 'id="thumb-subject">Ann, your cart<' in html
    frame = html.split('srcdoc="')[1].split('"')[0]
    assert "Hi Ann, your cart of 180 is waiting" in frame.replace("&amp;", "&")
    assert "their last entry into this series" in html
    assert f'<option value="{ann.pk}" selected>' in html and f'value="{newest.pk}"' in html
    assert "Goes as marketing mail" in html

    # The step's own subject replaces the template's, personalised the same way.
    page = _preview(acme_client, series, template=template.pk, subject="Still there, {{ contact.first_name }}?")
    assert 'id="thumb-subject">Still there, Ann?<' in page.content.decode()
    # Another contact of the workspace: their name, and the sample cart of the trigger event.
    page = _preview(acme_client, series, template=template.pk, sample_contact=newest.pk)
    html = page.content.decode()
    assert 'id="thumb-subject">Zed, your cart<' in html and "a sample “Checkout Started”" in html


def test_the_thumbnail_says_what_cannot_be_rendered_and_refuses_bad_input(
    acme: Workspace, acme_client: Client, cart: Series
) -> None:
    template = EmailTemplate.objects.get(workspace=acme, name="Welcome")
    assert "Choose a template" in _preview(acme_client, cart, template="").content.decode()
    broken = _preview(acme_client, cart, template=template.pk, subject="{% if %}")
    assert broken.status_code == 200 and 'id="email-thumb-problem"' in broken.content.decode()
    for params in ({"template": "abc"}, {"template": template.pk, "sample_contact": "x"}):
        refused = _preview(acme_client, cart, **params)
        assert refused.status_code == 400 and "cannot be made" in refused.content.decode()
    assert _preview(acme_client, cart, template=template.pk, subject="x" * 999).status_code == 400


def test_a_transactional_series_says_its_emails_go_as_transactional(acme: Workspace, acme_client: Client) -> None:
    template = EmailTemplateFactory(workspace=acme, name="Receipt", message_class=MessageClass.MARKETING)
    series = series_create(
        workspace=acme,
        data=SeriesInput(
            name="Receipts",
            kind="transactional",
            trigger={"type": "api"},
            steps={"steps": [{"key": "receipt", "type": "send", "template": template.pk}]},
        ),
    )
    html = _preview(acme_client, series, template=template.pk).content.decode()
    assert "Goes as transactional mail: every email of a transactional series does." in html


def test_the_thumbnail_shows_nothing_of_another_workspace(
    acme: Workspace, acme_client: Client, cart: Series, globex: Workspace
) -> None:
    theirs = EmailTemplateFactory(workspace=globex, name="Globex secret", subject="Globex secret")
    their_contact = contact(globex, "gina@globex.test", first_name="Gina")
    mine = EmailTemplate.objects.get(workspace=acme, name="Welcome")
    assert _preview(acme_client, cart, template=theirs.pk).status_code == 404
    assert _preview(acme_client, cart, template=mine.pk, sample_contact=their_contact.pk).status_code == 404
    other = logged_in(member(globex, Role.OWNER))
    assert _preview(other, cart, template=mine.pk).status_code == 404
    # Without contacts of its own, the workspace previews for the built-in sample person,
    # never for another workspace's contact.
    html = _preview(acme_client, cart, template=mine.pk).content.decode()
    assert "gina" not in html.lower() and "A sample person" in html


def test_viewers_see_the_thumbnail(acme: Workspace, cart: Series) -> None:
    viewer = logged_in(member(acme, Role.VIEWER))
    template = EmailTemplate.objects.get(workspace=acme, name="Welcome")
    page = _preview(viewer, cart, template=template.pk)
    assert page.status_code == 200 and 'id="email-thumb-frame"' in page.content.decode()


# --- webhook: a signed test call --------------------------------------------------------------


class Receiver:
    """A receiver on 127.0.0.1 that answers each POST with the next (status, body)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[tuple[int, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append((dict(self.headers.items()), body))
                status, answer = receiver.answers.pop(0) if receiver.answers else (200, b"")
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/esp"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def _test_call(client: Client, series: Series, **data: Any) -> Any:
    return client.post(f"/series/{series.pk}/builder/webhook-test/", {"step": "hook", **data}, **HTMX)


def test_the_webhook_panel_offers_a_test_call_to_marketers_only(
    acme: Workspace, acme_client: Client, cart: Series
) -> None:
    html = acme_client.get(f"/series/{cart.pk}/builder/?step=hook").content.decode()
    assert f'hx-post="/series/{cart.pk}/builder/webhook-test/"' in html and "Send a test call" in html
    assert 'hx-include="#step-form [name=url]"' in html
    viewer = logged_in(member(acme, Role.VIEWER))
    assert "Send a test call" not in viewer.get(f"/series/{cart.pk}/builder/?step=hook").content.decode()
    assert _test_call(viewer, cart).status_code == 403


@pytest.mark.usefixtures("local_outbound")
def test_a_test_call_posts_a_signed_sample_and_shows_the_answer(
    acme_client: Client, cart: Series, receiver: Receiver, clock: Any
) -> None:
    receiver.answers = [(200, b'{"ok": true, "note": "received <b>fine</b>"}')]
    page = _test_call(acme_client, cart, url=receiver.url)  # the URL typed, not saved yet
    assert page.status_code == 200
    ((headers, body),) = receiver.requests
    now = int(clock.now().timestamp())
    assert webhooks.signature_valid(cart.webhook_secret, headers["X-ESP-Signature"], body, now=now)
    assert headers["X-ESP-Delivery"].startswith("test-") and headers["X-ESP-Attempt"] == "1"
    payload = json.loads(body)
    assert payload["test"] is True and payload["step"] == "hook"
    assert payload["series"] == {"id": cart.pk, "name": "Cart"}
    assert payload["contact"]["email"] == "alex@example.com"
    assert payload["data"]["cart_id"]  # the built-in sample of the trigger event
    html = page.content.decode()
    summary = html.split('id="webhook-test-summary"')[1].split("</p>")[0]
    assert "HTTP 200 after" in summary and "ms: a real call would count as delivered" in summary
    assert "received &lt;b&gt;fine&lt;/b&gt;" in html  # the answer's start, escaped
    assert not WebhookDelivery.objects.exists()  # nothing recorded


@pytest.mark.usefixtures("local_outbound")
def test_a_test_call_says_a_failure_and_a_redirect_in_words(
    acme_client: Client, cart: Series, receiver: Receiver
) -> None:
    receiver.answers = [(500, b"boom")]
    html = _test_call(acme_client, cart, url=receiver.url).content.decode()
    assert "HTTP 500 after" in html and "would be retried" in html and "boom" in html
    from django.core.cache import cache

    cache.clear()  # the next call at once
    receiver.answers = [(302, b"")]
    html = _test_call(acme_client, cart, url=receiver.url).content.decode()
    assert "HTTP 302 after" in html and "redirects are not followed" in html
    assert len(receiver.requests) == 2  # the redirect to the metadata address was not followed


def test_loopback_private_and_metadata_addresses_are_refused_in_words(
    acme_client: Client, cart: Series, monkeypatch: Any
) -> None:
    from django.core.cache import cache

    for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/x"):
        cache.clear()
        page = _test_call(acme_client, cart, url=url)
        assert page.status_code == 400
        assert "This address is not allowed" in page.content.decode()
    cache.clear()
    assert "Expected an http or https URL" in _test_call(acme_client, cart, url="ftp://example.com/").content.decode()

    # A name public when checked and private when connected to (DNS rebinding): refused at
    # the connection by the same guard as every delivery.
    answers = iter(["93.184.216.34", "10.0.0.7"])

    def resolve(host: str, port: int, type_: int = 0) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers, "10.0.0.7"), port))]

    monkeypatch.setattr(net, "_resolve", resolve)
    cache.clear()
    page = _test_call(acme_client, cart, url="http://rebind.example.com/hook")
    assert page.status_code == 200
    assert "Refused: the URL leads to an address the server never calls" in page.content.decode()


@pytest.mark.usefixtures("local_outbound")
def test_test_calls_are_a_few_seconds_apart_per_series(acme_client: Client, cart: Series, receiver: Receiver) -> None:
    assert _test_call(acme_client, cart, url=receiver.url).status_code == 200
    again = _test_call(acme_client, cart, url=receiver.url)
    assert again.status_code == 429 and "wait a few seconds" in again.content.decode()
    assert len(receiver.requests) == 1


def test_a_test_call_needs_a_webhook_step_of_this_workspaces_series(
    acme_client: Client, cart: Series, globex: Workspace
) -> None:
    refused = _test_call(acme_client, cart, step="remind")
    assert refused.status_code == 400 and "no webhook step remind" in refused.content.decode()
    other = logged_in(member(globex, Role.OWNER))
    assert _test_call(other, cart).status_code == 404


def test_without_javascript_the_answer_comes_back_on_the_builder(
    acme_client: Client, cart: Series, monkeypatch: Any
) -> None:
    def unreachable(host: str, port: int, type_: int = 0) -> list[tuple[Any, ...]]:
        raise socket.gaierror("no such name")

    monkeypatch.setattr(net, "_resolve", unreachable)
    # No URL posted: the step's saved URL is called.
    answer = acme_client.post(f"/series/{cart.pk}/builder/webhook-test/", {"step": "hook"})
    assert answer.status_code == 302 and answer["Location"] == f"/series/{cart.pk}/builder/?step=hook"
    page = acme_client.get(answer["Location"]).content.decode()
    assert "Test call: Could not connect (ConnectionError)" in page
