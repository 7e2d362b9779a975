"""Tracking: opaque tokens, link rewriting with UTM, the open pixel, the click redirect,
machine-open detection, compliance headers and the tenant boundary of tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import random

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from audiences.models import Contact, MailingList
from audiences.services import contact_save, list_save
from campaigns.models import DeliverySettings, Message, MessageEvent
from campaigns.tracking import tokens
from campaigns.tracking.headers import compliance_headers, message_urls
from campaigns.tracking.links import add_utm, track_html, utm_pairs
from campaigns.tracking.machine import classify
from campaigns.tracking.tokens import b62decode, b62encode, link_token, message_token, read_link_token
from esp.models import Workspace

BASE = "https://mail.shop.test"
GIF = b"GIF89a"


@pytest.fixture(autouse=True)
def _public_base(settings: object) -> None:
    settings.PUBLIC_BASE_URL = BASE  # type: ignore[attr-defined]


def sent_message(
    workspace: Workspace,
    contact: Contact | None,
    *,
    links: list[str] | None = None,
    sent_ago: dt.timedelta = dt.timedelta(hours=1),
    mailing_list: MailingList | None = None,
    source: str = "broadcast:1",
    message_class: str = "marketing",
    **fields: object,
) -> Message:
    return Message.objects.create(
        workspace=workspace,
        contact=contact,
        source=source,
        to_email=contact.email if contact else "gone@example.com",
        message_class=message_class,
        mailing_list=mailing_list,
        state="sent",
        sent_at=timezone.now() - sent_ago,
        links=links or [],
        **fields,
    )


@pytest.fixture
def anna(acme: Workspace) -> Contact:
    return contact_save(workspace=acme, data={"email": "anna@example.com", "first_name": "Anna"})[0]


# --- tokens -------------------------------------------------------------------------------


def test_base62_by_hand() -> None:
    assert [b62encode(n) for n in (0, 9, 10, 35, 36, 61, 62, 3843, 3844, 62**3 + 5)] == [
        "0", "9", "A", "Z", "a", "z", "10", "zz", "100", "1005",
    ]  # fmt: skip
    assert b62encode(5, 4) == "0005"
    assert b62decode("1005") == 62**3 + 5 and b62decode("z") == 61
    # One spelling per number, nothing outside the alphabet.
    assert b62decode("01") is None and b62decode("") is None and b62decode("a-b") is None


def test_message_token_is_compact_opaque_and_tamper_proof() -> None:
    token = message_token(123456789)
    # 123456789 = 8·62⁴ + 22·62³ + 0·62² + 20·62 + 33 → "8M0kX", then 17 digits of MAC.
    assert token.startswith("8M0kX") and len(token) == 5 + 17 and token.isalnum()
    assert tokens.read_message_token(token) == 123456789
    for position in range(len(token)):
        # Every single-character change is refused, in the id as in the MAC.
        changed = token[:position] + ("1" if token[position] != "1" else "2") + token[position + 1 :]
        assert tokens.read_message_token(changed) is None, position
    # Another id under the same MAC.
    assert tokens.read_message_token("8M0kY" + token[5:]) is None
    assert tokens.read_message_token(token + "0") is None and tokens.read_message_token(token[:-1]) is None
    assert tokens.read_message_token("x" * 200) is None and tokens.read_message_token("") is None


def test_link_token_binds_message_and_index_and_purpose() -> None:
    token = link_token(42, 3)
    assert token.startswith("g-3") and read_link_token(token) == (42, 3)
    mac = token[3:]
    assert read_link_token("g-4" + mac) is None  # another link of the same message
    assert read_link_token("h-3" + mac) is None  # the same link of another message
    # A token made for one purpose does not verify for the other.
    assert tokens.read_message_token(token) is None
    assert read_link_token(message_token(42)) is None
    assert read_link_token("g-03" + mac) is None


def test_the_macs_digits_are_base62_of_seventeen() -> None:
    generator = random.Random(7)  # noqa: S311 - reproducible numbers, not secrets
    numbers = [0, 1, 61, 62, 62**8 - 1, 62**8, 62**16, 2**96 - 1, *(generator.getrandbits(96) for _ in range(2000))]
    for number in numbers:
        assert tokens._b62_mac(number) == b62encode(number, tokens.MAC_LENGTH), number


def test_tokens_signed_with_hmac_before_still_verify(settings: object) -> None:
    """Mail sent before the BLAKE2b MAC carries HMAC-SHA256 tokens: their links keep working."""
    secret = settings.SECRET_KEY  # type: ignore[attr-defined]

    def hmac_token(payload: str, purpose: str) -> str:
        key = hashlib.sha256(f"{purpose}:{secret}".encode()).digest()
        digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()[: tokens.MAC_BYTES]
        return payload + b62encode(int.from_bytes(digest, "big"), tokens.MAC_LENGTH)

    old_message = hmac_token(b62encode(77), tokens.MESSAGE_PURPOSE)
    old_link = hmac_token(f"{b62encode(77)}-5", tokens.LINK_PURPOSE)
    assert old_message != message_token(77) and old_link != link_token(77, 5)
    assert tokens.read_message_token(old_message) == 77
    assert read_link_token(old_link) == (77, 5)
    # Each under its own purpose only.
    assert read_link_token(hmac_token(f"{b62encode(77)}-5", tokens.MESSAGE_PURPOSE)) is None


def test_old_secret_still_verifies_after_rotation(settings: object) -> None:
    token = message_token(7)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]  # type: ignore[attr-defined]
    settings.SECRET_KEY = "a brand new secret key of fifty characters or so!!"  # type: ignore[attr-defined]
    assert tokens.read_message_token(token) == 7
    assert message_token(7) != token
    settings.SECRET_KEY_FALLBACKS = []  # type: ignore[attr-defined]
    assert tokens.read_message_token(token) is None


# --- links ---------------------------------------------------------------------------------

HTML = """<html><body>
<a href="https://shop.test/a?x=1&amp;y=2" class="btn">A</a>
<A HREF='https://shop.test/b?utm_source=own'>B</A>
<a title="href=https://evil.test/" href=https://shop.test/c#reviews>C</a>
<a href="mailto:help@shop.test">mail</a> <a href="tel:+4930123">call</a> <a href="#top">top</a>
<a href="https://mail.shop.test/e/u/TOKEN">unsubscribe</a>
<a data-esp-notrack href="https://shop.test/raw">raw</a>
<a name="anchor">no href</a> <abbr title="x">abbr</abbr>
<a href=" https://shop.test/d?utm_medium=sms&UTM_CAMPAIGN=x ">D</a>
</body></html>"""


def test_track_html_rewrites_http_links_adds_utm_and_pixel() -> None:
    message = Message(pk=1000)
    settings = DeliverySettings(utm_parameters={"utm_source": "esp", "utm_medium": "email"})
    html, links = track_html(HTML, message=message, settings=settings)
    assert links == [
        # &amp; decoded: the stored URL is the one the browser would have followed.
        "https://shop.test/a?x=1&y=2&utm_source=esp&utm_medium=email",
        # The link's own utm_source wins.
        "https://shop.test/b?utm_source=own&utm_medium=email",
        # Before the fragment; the title's "href=" is not the link.
        "https://shop.test/c?utm_source=esp&utm_medium=email#reviews",
        "https://shop.test/d?utm_medium=sms&UTM_CAMPAIGN=x&utm_source=esp",
    ]
    c = [f"{BASE}/e/c/{link_token(1000, i)}" for i in range(4)]
    assert f'<a href="{c[0]}" class="btn">A</a>' in html
    assert f'<A HREF="{c[1]}">B</A>' in html
    assert f'<a title="href=https://evil.test/" href="{c[2]}">C</a>' in html
    assert f'<a href="{c[3]}">D</a>' in html
    for untouched in (
        '<a href="mailto:help@shop.test">mail</a>',
        '<a href="tel:+4930123">call</a>',
        '<a href="#top">top</a>',
        '<a href="https://mail.shop.test/e/u/TOKEN">unsubscribe</a>',
        '<a name="anchor">no href</a>',
        '<abbr title="x">abbr</abbr>',
    ):
        assert untouched in html
    # Marked links keep their URL and lose the marker.
    assert '<a href="https://shop.test/raw">raw</a>' in html and "notrack" not in html
    pixel = f'<img src="{BASE}/e/o/{message_token(1000)}.gif" width="1" height="1" alt="" style="display:none">'
    assert html.endswith(f"{pixel}</body></html>")
    assert html.count("//shop.test/") == 1  # only the notrack link still names the shop


def test_track_html_honours_the_switches() -> None:
    message = Message(pk=5)
    off = DeliverySettings(track_clicks=False, track_opens=False, utm_parameters={"utm_source": "esp"})
    assert track_html(HTML, message=message, settings=off) == (HTML, [])
    opens_only = DeliverySettings(track_clicks=False, track_opens=True)
    html, links = track_html(HTML, message=message, settings=opens_only)
    assert links == [] and html.replace(f'<img src="{BASE}/e/o/{message_token(5)}.gif"', "", 1).count("<img") == 0
    assert html.count(f"/e/o/{message_token(5)}.gif") == 1 and 'href="https://shop.test/a?x=1&amp;y=2"' in html
    # No settings row: the defaults (both on, no UTM).
    html, links = track_html("<p><a href='https://x.test/'>x</a></p>", message=message, settings=None)
    assert links == ["https://x.test/"] and html.endswith('.gif" width="1" height="1" alt="" style="display:none">')


def test_add_utm_keeps_the_url_byte_for_byte() -> None:
    pairs = utm_pairs({"utm_source": "news letter", "utm_medium": "email", "empty": ""})
    assert add_utm("https://x.test/p", pairs) == "https://x.test/p?utm_source=news+letter&utm_medium=email"
    assert add_utm("https://x.test/p?", pairs) == "https://x.test/p?utm_source=news+letter&utm_medium=email"
    assert (
        add_utm("https://x.test/p?a=%20b&", pairs) == "https://x.test/p?a=%20b&utm_source=news+letter&utm_medium=email"
    )
    assert (
        add_utm("https://x.test/p?utm%5Fsource=1&utm_medium=2", pairs) == "https://x.test/p?utm%5Fsource=1&utm_medium=2"
    )
    assert add_utm("https://x.test/p", utm_pairs({})) == "https://x.test/p"


def test_track_html_tracks_every_link_of_a_long_message() -> None:
    """A 5 KB message with 12 links, as the send loop gives it (its cost is measured by
    bench/send.py --steps, step `wrap`, not here)."""
    block = (
        '<tr><td style="padding:10px 25px;word-break:break-word;"><div style="font-family:Arial;'
        'font-size:14px;color:#333;">Hello Anna, picked for you &amp; yours.</div></td></tr>'
        '<tr><td align="center"><a href="https://shop.test/p/{n}?ref=mail&amp;x=1" '
        'style="display:inline-block;background:#f45e43;color:#fff;" target="_blank">Product {n}</a></td></tr>'
    )
    body = "".join(block.replace("{n}", str(n)) for n in range(12))
    html = f"<html><body><table>{body}</table></body></html>"
    html = html.replace("</body>", "<!--" + "x" * (5000 - len(html)) + "--></body>")
    assert len(html) >= 5000
    message = Message(pk=987654)
    settings = DeliverySettings(utm_parameters={"utm_source": "esp", "utm_medium": "email"})
    tracked, links = track_html(html, message=message, settings=settings)
    assert links == [f"https://shop.test/p/{n}?ref=mail&x=1&utm_source=esp&utm_medium=email" for n in range(12)]
    assert "https://shop.test/" not in tracked and tracked.count(f"{BASE}/e/c/") == 12


# --- headers ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_message_urls_and_compliance_headers(acme: Workspace, anna: Contact) -> None:
    message = sent_message(acme, anna, source="broadcast:12")
    token = message_token(message.pk)
    urls = message_urls(message)
    assert urls == {
        "unsubscribe_url": f"{BASE}/e/u/{token}",
        "preferences_url": f"{BASE}/e/p/{token}",
        "view_in_browser_url": f"{BASE}/e/v/{token}",
    }
    assert compliance_headers(message, urls) == {
        "List-Unsubscribe": f"<{BASE}/e/u/{token}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Feedback-ID": f"broadcast-12:marketing:{acme.pk}:esp",
    }
    receipt = sent_message(acme, anna, source="tx:order-77", message_class="transactional")
    assert compliance_headers(receipt, message_urls(receipt)) == {"Feedback-ID": f"tx:transactional:{acme.pk}:esp"}


# --- open pixel ---------------------------------------------------------------------------

HUMAN_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"


def _opens(message: Message) -> list[MessageEvent]:
    return list(MessageEvent.objects.filter(message=message, type="opened").order_by("id"))


@pytest.mark.django_db
def test_pixel_records_one_open_per_minute_and_sets_opened_at(acme: Workspace, anna: Contact) -> None:
    message = sent_message(acme, anna)
    url = f"/e/o/{message_token(message.pk)}.gif"
    client = Client()
    first = client.get(url, HTTP_USER_AGENT=HUMAN_UA)
    assert first.status_code == 200 and first["Content-Type"] == "image/gif"
    assert first.content.startswith(GIF) and len(first.content) == 42
    assert "no-store" in first["Cache-Control"]
    for _ in range(5):  # a reload storm
        client.get(url, HTTP_USER_AGENT=HUMAN_UA)
    (event,) = _opens(message)
    assert event.user_agent == HUMAN_UA and not event.is_machine and event.contact_id == anna.pk
    message.refresh_from_db()
    assert message.opened_at == event.occurred_at


@pytest.mark.django_db
def test_a_later_minute_is_a_new_open(acme: Workspace, anna: Contact, monkeypatch: pytest.MonkeyPatch) -> None:
    message = sent_message(acme, anna)
    url = f"/e/o/{message_token(message.pk)}.gif"
    Client().get(url, HTTP_USER_AGENT=HUMAN_UA)
    later = timezone.now() + dt.timedelta(minutes=2)
    monkeypatch.setattr(timezone, "now", lambda: later)
    Client().get(url, HTTP_USER_AGENT=HUMAN_UA)
    assert len(_opens(message)) == 2
    message.refresh_from_db()
    assert message.opened_at is not None and message.opened_at < later  # the first open stays


@pytest.mark.django_db
def test_forged_pixel_still_answers_a_gif_and_records_nothing(acme: Workspace, anna: Contact) -> None:
    message = sent_message(acme, anna)
    token = message_token(message.pk)
    for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"), "nonsense", "a.b%20c"):
        response = Client().get(f"/e/o/{bad}.gif", HTTP_USER_AGENT=HUMAN_UA)
        assert response.status_code == 200 and response.content.startswith(GIF)
    assert MessageEvent.objects.count() == 0


@pytest.mark.django_db
def test_apple_privacy_protection_opens_are_machine_opens(acme: Workspace, anna: Contact) -> None:
    message = sent_message(acme, anna)
    url = f"/e/o/{message_token(message.pk)}.gif"
    Client().get(url, HTTP_USER_AGENT="Mozilla/5.0", REMOTE_ADDR="17.58.101.4")
    Client().get(url, HTTP_USER_AGENT=HUMAN_UA, REMOTE_ADDR="17.100.2.3")  # Apple's proxy network
    opens = _opens(message)
    assert [(e.is_machine, e.details) for e in opens] == [(True, {"machine": "apple_mpp"})] * 2
    message.refresh_from_db()
    assert message.opened_at is None  # machine opens are kept but are not opens of the message


@pytest.mark.django_db
def test_apple_opens_are_recognised_behind_a_trusted_proxy(acme: Workspace, anna: Contact) -> None:
    proxied, direct = sent_message(acme, anna), sent_message(acme, anna, source="broadcast:2")
    with override_settings(TRUSTED_PROXIES=[ipaddress.ip_network("10.0.0.0/8")]):
        Client().get(
            f"/e/o/{message_token(proxied.pk)}.gif",
            HTTP_USER_AGENT=HUMAN_UA,
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR="17.100.2.3",
        )
        # From an untrusted peer the same header is only the client's word: not believed.
        Client().get(
            f"/e/o/{message_token(direct.pk)}.gif",
            HTTP_USER_AGENT=HUMAN_UA,
            REMOTE_ADDR="198.51.100.7",
            HTTP_X_FORWARDED_FOR="17.100.2.3",
        )
    assert [e.is_machine for e in _opens(proxied)] == [True]
    assert [e.is_machine for e in _opens(direct)] == [False]


@pytest.mark.django_db
def test_google_image_proxy_is_a_human_open(acme: Workspace, anna: Contact) -> None:
    message = sent_message(acme, anna, sent_ago=dt.timedelta(seconds=2))
    ua = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    Client().get(f"/e/o/{message_token(message.pk)}.gif", HTTP_USER_AGENT=ua, REMOTE_ADDR="66.249.84.1")
    (event,) = _opens(message)
    assert not event.is_machine and event.details == {"proxy": "google"}


def test_machine_rules() -> None:
    now = timezone.now()
    long_ago = now - dt.timedelta(hours=3)

    def verdict(ua: str, *, ip: str = "203.0.113.9", method: str = "GET", sent_at: dt.datetime = long_ago) -> str:
        result = classify(kind="open", user_agent=ua, ip=ip, method=method, sent_at=sent_at, now=now)
        return result.reason if result.is_machine else "human"

    assert verdict(HUMAN_UA) == "human"
    assert verdict("Barracuda Sentinel (EE)") == "scanner_agent"
    assert verdict("Mozilla/4.0 (compatible; ms-office; MSOffice 16) Microsoft Office Protocol Discovery") == (
        "scanner_agent"
    )
    assert verdict("python-requests/2.31") == "scanner_agent" and verdict("curl/8.4.0") == "scanner_agent"
    assert verdict(HUMAN_UA, method="HEAD") == "head"
    assert verdict("") == "no_user_agent"
    assert verdict(HUMAN_UA, sent_at=now - dt.timedelta(seconds=3)) == "too_fast"
    assert verdict(HUMAN_UA, sent_at=now - dt.timedelta(seconds=30)) == "human"
    assert verdict(HUMAN_UA, ip="not an address") == "human"
    # A click from Apple's network is a person at Apple, not the image proxy.
    click = classify(kind="click", user_agent=HUMAN_UA, ip="17.1.1.1", method="GET", sent_at=long_ago, now=now)
    assert not click.is_machine


# --- click redirect -----------------------------------------------------------------------


@pytest.mark.django_db
def test_click_redirects_only_to_the_stored_url(acme: Workspace, anna: Contact) -> None:
    links = ["https://shop.test/a?x=1&utm_source=esp", "https://shop.test/b"]
    message = sent_message(acme, anna, links=links)
    response = Client().get(f"/e/c/{link_token(message.pk, 1)}", HTTP_USER_AGENT=HUMAN_UA)
    assert response.status_code == 302 and response["Location"] == "https://shop.test/b"
    assert response["Referrer-Policy"] == "no-referrer"
    (event,) = MessageEvent.objects.filter(message=message, type="clicked")
    assert event.url == "https://shop.test/b" and not event.is_machine and event.details == {"link": 1}
    message.refresh_from_db()
    assert message.clicked_at == event.occurred_at and message.opened_at == event.occurred_at

    good = link_token(message.pk, 0)
    mac = good[len(good) - tokens.MAC_LENGTH :]
    prefix = good[: -tokens.MAC_LENGTH]
    forged = [
        prefix[:-1] + "1" + mac,  # the index changed under the same MAC
        link_token(message.pk, 2),  # a genuine token of an index the message does not have
        message_token(message.pk),  # the message's own token is no link token
        "https:evil.test",
    ]
    for bad in forged:
        answer = Client().get(f"/e/c/{bad}")
        assert answer.status_code == 404 and "Location" not in answer, bad
        assert b"This link is not valid" in answer.content
    assert MessageEvent.objects.filter(type="clicked").count() == 1


@pytest.mark.django_db
def test_scanner_click_within_seconds_is_flagged(acme: Workspace, anna: Contact) -> None:
    message = sent_message(acme, anna, links=["https://shop.test/a"], sent_ago=dt.timedelta(seconds=2))
    response = Client().get(f"/e/c/{link_token(message.pk, 0)}", HTTP_USER_AGENT=HUMAN_UA)
    assert response.status_code == 302  # a scanner still gets the page, so it does not flag us
    head = Client().head(f"/e/c/{link_token(message.pk, 0)}", HTTP_USER_AGENT="Mimecast Safe Links")
    assert head.status_code == 302
    events = MessageEvent.objects.filter(message=message, type="clicked").order_by("id")
    assert [(e.is_machine, e.details["machine"]) for e in events] == [(True, "too_fast"), (True, "head")]
    message.refresh_from_db()
    assert message.clicked_at is None and message.opened_at is None


# --- tenant boundary ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_token_names_one_message_of_one_workspace(acme: Workspace, globex: Workspace, anna: Contact) -> None:
    """Message ids are global; the HMAC binds the id, so an acme token cannot be bent to reach
    globex's message, and what a token shows is its own workspace's."""
    list_save(workspace=globex, data={"name": "Globex secret deals", "is_public": True})
    list_save(workspace=acme, data={"name": "Acme news", "is_public": True})
    bob = contact_save(workspace=globex, data={"email": "bob@globex.test"})[0]
    ours = sent_message(acme, anna, links=["https://acme.test/"])
    theirs = sent_message(globex, bob, links=["https://globex.test/"])
    page = Client().get(f"/e/p/{message_token(ours.pk)}").content.decode()
    assert "Acme news" in page and "Globex" not in page and "bob@" not in page
    ours_token = message_token(ours.pk)
    ours_id = b62encode(ours.pk)
    bent = b62encode(theirs.pk) + ours_token[len(ours_id) :]
    for path in ("u", "p", "v"):
        assert Client().get(f"/e/{path}/{bent}").status_code == 404
    link = link_token(ours.pk, 0)
    bent_link = b62encode(theirs.pk) + link[len(ours_id) :]
    assert Client().get(f"/e/c/{bent_link}").status_code == 404
    Client().get(f"/e/o/{bent}.gif", HTTP_USER_AGENT=HUMAN_UA)
    assert not MessageEvent.objects.filter(workspace=globex).exists()


# --- view in browser ----------------------------------------------------------------------

MJML = """<mjml><mj-body><mj-section><mj-column>
<mj-text>Hello {{ contact.first_name|default:"there" }}, your {{ event.item }} wait.</mj-text>
<mj-button href="https://shop.test/cart">Back to the cart</mj-button>
<mj-text><a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ workspace.postal_address }}</mj-text>
</mj-column></mj-section></mj-body></mjml>"""


@pytest.fixture
def cart_template(acme: Workspace) -> object:
    from campaigns.models import EmailTemplate

    return EmailTemplate.objects.create(
        workspace=acme, name="Cart", subject="Your cart", mjml=MJML, use_layout=False, message_class="marketing"
    )


@pytest.mark.django_db
def test_view_in_browser_renders_the_message_with_its_own_tracked_links(
    acme: Workspace, anna: Contact, cart_template: object
) -> None:
    DeliverySettings.objects.create(workspace=acme, utm_parameters={"utm_source": "esp"})
    message = sent_message(
        acme, anna, template=cart_template, data={"event": {"item": "red shoes"}},
        links=["https://shop.test/cart?utm_source=esp"],
    )  # fmt: skip
    token = message_token(message.pk)
    response = Client().get(f"/e/v/{token}")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Hello Anna, your red shoes wait." in page and "1 Market Street, Springfield" in page
    assert f'href="{BASE}/e/c/{link_token(message.pk, 0)}"' in page
    assert f'href="{BASE}/e/u/{token}"' in page
    assert "/e/o/" not in page  # a page view is not an open
    assert response["Content-Security-Policy"].startswith("sandbox ")
    assert "allow-scripts" not in response["Content-Security-Policy"]
    assert not MessageEvent.objects.exists()


@pytest.mark.django_db
def test_view_in_browser_never_tracks_a_link_the_message_did_not_have(
    acme: Workspace, anna: Contact, cart_template: object
) -> None:
    message = sent_message(acme, anna, template=cart_template, links=["https://shop.test/old-cart"])
    page = Client().get(f"/e/v/{message_token(message.pk)}").content.decode()
    # The template's link changed since the send: shown as is, not as a token of index 0.
    assert 'href="https://shop.test/cart"' in page and "/e/c/" not in page


@pytest.mark.django_db
def test_view_in_browser_of_a_test_send_uses_its_snapshot(acme: Workspace, cart_template: object) -> None:
    message = sent_message(
        acme, None, template=cart_template, source="test:1",
        data={"test": True, "contact": {"first_name": "Sample"}, "event": {"item": "hats"}},
    )  # fmt: skip
    assert "Hello Sample, your hats wait." in Client().get(f"/e/v/{message_token(message.pk)}").content.decode()


@pytest.mark.django_db
def test_view_in_browser_when_contact_or_template_is_gone(
    acme: Workspace, anna: Contact, cart_template: object
) -> None:
    erased = sent_message(acme, None, template=cart_template)
    no_template = sent_message(acme, anna, source="broadcast:2")
    for message in (erased, no_template):
        response = Client().get(f"/e/v/{message_token(message.pk)}")
        assert response.status_code == 410 and b"This email can no longer be shown." in response.content
