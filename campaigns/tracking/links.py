"""Click and open tracking in a rendered email's HTML.

`track_html` runs once per message in the send loop, so it is one pass of two compiled regular
expressions over the HTML: the first finds each `<a …>` start tag (quoted attribute values may
hold `>`), the second walks that tag's attributes the way an HTML parser does, so an `href`
inside another attribute's value is never taken for the link. Attribute values are HTML: the
URL is entity-decoded (`&amp;` → `&`) before it is stored and redirected to, and what we write
back is our own tracking URL, which needs no escaping."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus, urlencode

from django.conf import settings as django_settings

from campaigns.tracking.tokens import LinkSigner, link_token, message_token

if TYPE_CHECKING:
    from campaigns.models import DeliverySettings, Message
    from campaigns.tracking.rules import TrackingRules

_A_TAG = re.compile(r"""<a(?=[\s/>])(?:[^>"']++|"[^"]*"|'[^']*')*+>""", re.IGNORECASE)
# One attribute as an HTML parser reads it: name, then an optional double-, single- or unquoted value.
_ATTRIBUTE = re.compile(r"""[\s/]+([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?""")
# The first href of an <a> tag, stepping over whole attributes before it (so an "href=" inside
# another attribute's quoted value is never taken); the regex engine does the walk. Atomic
# groups and possessive quantifiers read each attribute once, as a parser does, so a tag
# without href fails in linear time (an unquoted value with "/" cannot be re-split).
_HREF = re.compile(
    r"""<a(?>[\s/]+(?!href\s*=)[^\s"'>/=]++(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]++))?)*+"""
    r"""[\s/]+href\s*=\s*(?P<value>"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<uq>[^\s"'=<>`]+))""",
    re.IGNORECASE,
)
_TRACKED_SCHEMES = ("http://", "https://")
NOTRACK_ATTRIBUTE = "data-esp-notrack"


def own_url_prefix() -> str:
    """Our public endpoints (unsubscribe, preferences, view in browser): never click-tracked,
    or the unsubscribe link would become a redirect to itself."""
    return f"{django_settings.PUBLIC_BASE_URL}/e/"


def click_url(message_id: int, index: int) -> str:
    return f"{django_settings.PUBLIC_BASE_URL}/e/c/{link_token(message_id, index)}"


def pixel_tag(message_id: int, token: str | None = None) -> str:
    """The open pixel; `token` is the message's token when the caller has it already."""
    src = f"{django_settings.PUBLIC_BASE_URL}/e/o/{token or message_token(message_id)}.gif"
    return f'<img src="{src}" width="1" height="1" alt="" style="display:none">'


# (lower-case key, "key=value" query-encoded) of the workspace's UTM parameters.
UtmPairs = tuple[tuple[str, str], ...]


def utm_pairs(parameters: Mapping[str, Any] | None) -> UtmPairs:
    items = parameters.items() if isinstance(parameters, Mapping) else ()
    cleaned = ((str(k).strip(), str(v).strip()) for k, v in items)
    return _encoded_pairs(tuple((k, v) for k, v in cleaned if k and v))


@lru_cache(maxsize=64)
def _encoded_pairs(pairs: tuple[tuple[str, str], ...]) -> UtmPairs:
    return tuple((k.lower(), urlencode([(k, v)])) for k, v in pairs)


def _query_keys(query: str) -> set[str]:
    keys = set()
    for part in query.split("&"):
        key = part.partition("=")[0]
        if "%" in key or "+" in key:
            key = unquote_plus(key)
        keys.add(key.lower())
    return keys


def add_utm(url: str, pairs: UtmPairs) -> str:
    """The URL with each UTM parameter it does not carry yet appended to its query, before any
    #fragment. The rest of the URL is kept byte for byte (no re-encoding of what was there)."""
    if not pairs:
        return url
    head, hash_mark, fragment = url.partition("#")
    _before, question_mark, query = head.partition("?")
    present = _query_keys(query) if query else set()
    missing = [encoded for key, encoded in pairs if key not in present]
    if not missing:
        return url
    if question_mark:
        separator = "" if head.endswith(("?", "&")) else "&"
    else:
        separator = "?"
    head = f"{head}{separator}{'&'.join(missing)}"
    return f"{head}{hash_mark}{fragment}"


# The schemes a link in an email may have. javascript:, vbscript:, data: and the rest run
# code or show attacker-made pages when a reader (or a webmail) follows them, and event or
# contact data (`<a href="{{ event.url }}">`) is the shop's customers' to write.
SAFE_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# What a browser ignores in a URL before it reads the scheme: tabs and newlines anywhere,
# C0 controls and spaces around it (so "java\tscript:" and " javascript:" are javascript:).
_URL_IGNORED = re.compile(r"[\t\n\r]")
_C0_AND_SPACE = "".join(chr(code) for code in range(0x21))
UNSAFE_LINK_REPLACEMENT = "#"


def link_is_safe(raw: str) -> bool:
    """Whether an href's value (as written in the HTML, entities and all) is a relative URL, an
    anchor, or has one of SAFE_SCHEMES."""
    value = html_lib.unescape(raw) if "&" in raw else raw
    value = _URL_IGNORED.sub("", value).strip(_C0_AND_SPACE)
    scheme = _SCHEME.match(value)
    return scheme is None or scheme.group(1).lower() in SAFE_SCHEMES


@lru_cache(maxsize=4096)
def _safe_tag(tag: str) -> str:
    href = _HREF.match(tag)
    if href is None:
        return tag
    raw = href.group("dq")
    if raw is None:
        raw = href.group("sq") if href.group("sq") is not None else href.group("uq")
    if link_is_safe(raw):
        return tag
    return f'{tag[: href.start("value")]}"{UNSAFE_LINK_REPLACEMENT}"{tag[href.end("value") :]}'


def safe_links(html: str) -> str:
    """A rendered email's HTML with every <a> whose href has an unsafe scheme pointed at "#"
    instead: for every render (sent, previewed, viewed in the browser), tracked or not."""
    if ":" not in html:
        return html
    return _A_TAG.sub(lambda match: _safe_tag(match.group(0)), html)


def _is_trackable(url: str, own_prefix: str) -> bool:
    lowered = url[:8].lower()
    return lowered.startswith(_TRACKED_SCHEMES) and not url.startswith(own_prefix)


# What _rewrite_links does with one <a> tag, apart from the message's own token: the same
# tags come back in every recipient's email (a campaign's product links), so the parsing, the
# entity decoding and the UTM parameters are worked out once per tag.
_KEEP = ("keep",)


@lru_cache(maxsize=4096)
def _tag_plan(tag: str, own_prefix: str, pairs: UtmPairs) -> tuple[str, ...]:
    """("keep",): the tag stays as it is; ("as", tag): it becomes `tag`; ("link", head, url,
    tail): a tracked link, written head + "<new href>" + tail."""
    if NOTRACK_ATTRIBUTE in tag.lower():
        for attribute in _ATTRIBUTE.finditer(tag, 2, len(tag) - 1):
            if attribute.group(1).lower() == NOTRACK_ATTRIBUTE:
                # Left as written, minus our marker.
                return ("as", tag[: attribute.start()] + tag[attribute.end() :])
    href = _HREF.match(tag)
    if href is None:
        return _KEEP
    raw = href.group("dq")
    if raw is None:
        raw = href.group("sq") if href.group("sq") is not None else href.group("uq")
    url = html_lib.unescape(raw).strip() if "&" in raw else raw.strip()
    if not _is_trackable(url, own_prefix):
        return _KEEP
    return ("link", tag[: href.start("value")], add_utm(url, pairs), tag[href.end("value") :])


def _rewrite_links(html: str, message_id: int, pairs: UtmPairs, index_of: Callable[[str], int | None]) -> str:
    own_prefix = own_url_prefix()
    click_prefix = f"{django_settings.PUBLIC_BASE_URL}/e/c/"
    sign = LinkSigner(message_id)

    def rewrite_tag(match: re.Match[str]) -> str:
        tag = match.group(0)
        plan = _tag_plan(tag, own_prefix, pairs)
        if plan[0] == "keep":
            return tag
        if plan[0] == "as":
            return plan[1]
        _, head, url, tail = plan
        index = index_of(url)
        if index is None:
            # Only in a re-render (view in browser) whose link the sent message did not have:
            # send the reader straight there, untracked.
            new_href = html_lib.escape(url, quote=True)
        else:
            new_href = click_prefix + sign(index)
        return f'{head}"{new_href}"{tail}'

    return _A_TAG.sub(rewrite_tag, html)


def _add_pixel(html: str, message_id: int, token: str | None = None) -> str:
    pixel = pixel_tag(message_id, token)
    end = html.rfind("</body")
    if end < 0:
        end = html.lower().rfind("</body")
    return html + pixel if end < 0 else f"{html[:end]}{pixel}{html[end:]}"


def track_html(
    html: str, *, message: Message, settings: DeliverySettings | TrackingRules | None, token: str | None = None
) -> tuple[str, list[str]]:
    """The message's HTML with its http(s) links sent through /e/c/<token> (UTM parameters
    added where the link has none of its own) and the open pixel before </body>; and the URLs
    by link index, to store in Message.links — the only places a click can redirect to.

    Left alone: mailto:, tel:, #anchors, our own unsubscribe / preferences / view-in-browser
    URLs and links marked `data-esp-notrack`. With click tracking off no link changes.
    `token` is the message's token (tokens.message_token) when the caller has it already."""
    track_clicks = settings.track_clicks if settings is not None else True
    track_opens = settings.track_opens if settings is not None else True
    links: list[str] = []
    if track_clicks:
        pairs = utm_pairs(settings.utm_parameters if settings is not None else None)

        def append(url: str) -> int:
            links.append(url)
            return len(links) - 1

        html = _rewrite_links(html, message.pk, pairs, append)
    if track_opens:
        html = _add_pixel(html, message.pk, token)
    return html, links


def retrack_html(html: str, *, message: Message, settings: DeliverySettings | TrackingRules | None) -> str:
    """A re-render of a sent message (view in browser) with the links pointing at the same
    click tokens as the email: each link is looked up among the message's stored URLs, so a
    template edited since the send can never redirect a click to a URL the message did not
    contain. No open pixel: a page view is not an open of the email."""
    if not message.links:
        return html
    first_index: dict[str, int] = {}
    for index, url in enumerate(message.links):
        first_index.setdefault(url, index)
    pairs = utm_pairs(settings.utm_parameters if settings is not None else None)
    return _rewrite_links(html, message.pk, pairs, first_index.get)
