"""From a template and one recipient's data to the email's subject, preheader, HTML and text.

Compiling is done once per template version: `template_compile` validates every part (MJML
structure, template tags, the layout around it), composes the layout's header and footer into
the MJML and compiles it to HTML with the template tags still in it; services store the result
in EmailTemplate.compiled_html. `render_email` parses that HTML (and the subject, preheader and
text) into sandboxed templates once per (template, version, compiled HTML) — the compiled HTML
changes when the layout does — keeps them in this process, and per recipient only renders.

What the send loop rendered is kept: `template_version_snapshot` writes each (template,
version, compiled HTML) once as an EmailTemplateVersion, and `render_as_sent` shows a sent
message from it, whatever the template and the layout have become since.

The context is plain data (DESIGN rule 7): `email_context` builds it from a contact snapshot
(`contact_as_dict`), the event's properties and the message's links.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import connection
from django.utils import timezone, translation
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from audiences.models import Contact
from campaigns.content import selectors
from campaigns.content.errors import TemplateProblem, TemplateProblems
from campaigns.content.mjml import check_mjml, mjml_to_html
from campaigns.content.sandbox import (
    CompiledTemplate,
    Lazy,
    compile_template,
    freeze,
    render_budget,
    render_compiled,
)
from campaigns.content.selectors import LayoutParts
from campaigns.models import EmailTemplate, EmailTemplateVersion, MessageClass
from campaigns.tracking.links import safe_links
from esp.models import Workspace

MAX_SUBJECT_CHARS = 998


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    preheader: str
    html: str
    text: str


# --- compiling -------------------------------------------------------------------------------


@dataclass
class _Segment:
    start: int  # byte offset in the composed document
    end: int
    part: str
    source: str  # the part's own source
    offset: int  # byte offset of this segment in the part's source


@dataclass
class _Composed:
    source: str
    segments: list[_Segment] = field(default_factory=list)

    def add(self, text: str, part: str, part_source: str, part_offset_chars: int) -> None:
        start = len(self.source.encode())
        self.source += text
        offset = len(part_source[:part_offset_chars].encode())
        self.segments.append(_Segment(start, start + len(text.encode()), part, part_source, offset))

    def locate(self, byte_offset: int) -> tuple[str, int | None]:
        for segment in self.segments:
            if segment.start <= byte_offset < segment.end:
                inner = segment.offset + byte_offset - segment.start
                return segment.part, segment.source.encode()[:inner].count(b"\n") + 1
        return "mjml", None


_BODY_OPEN = re.compile(r"<mj-body\b[^>]*>", re.IGNORECASE)
_BODY_CLOSE = re.compile(r"</mj-body\s*>", re.IGNORECASE)
_HEAD_OPEN = re.compile(r"<mj-head\b[^>]*>", re.IGNORECASE)
_ROOT_OPEN = re.compile(r"<mjml\b[^>]*>", re.IGNORECASE)


def _compose(mjml: str, *, preheader: bool, layout: LayoutParts | None) -> _Composed:
    """The template's MJML with the subject and preheader in its head and the layout's header
    and footer as the first and last children of its body."""
    head_bits = ""
    if "<mj-title" not in mjml:
        head_bits += "<mj-title>{{ subject }}</mj-title>"
    if preheader and "<mj-preview" not in mjml:
        head_bits += "<mj-preview>{{ preheader }}</mj-preview>"
    cuts: list[tuple[int, str, str]] = []  # (offset in mjml, text, part)
    if head_bits:
        head = _HEAD_OPEN.search(mjml)
        if head:
            cuts.append((head.end(), head_bits, "mjml"))
        else:
            root = _ROOT_OPEN.search(mjml)
            if root:
                cuts.append((root.end(), f"<mj-head>{head_bits}</mj-head>", "mjml"))
    if layout is not None:
        body_open = _BODY_OPEN.search(mjml)
        closes = list(_BODY_CLOSE.finditer(mjml))
        body_close = closes[-1] if closes else None
        if body_open and body_close:
            cuts.append((body_open.end(), layout.header, "header"))
            cuts.append((body_close.start(), layout.footer, "footer"))
    cuts.sort(key=lambda cut: cut[0])
    composed = _Composed("")
    position = 0
    for offset, text, part in cuts:
        composed.add(mjml[position:offset], "mjml", mjml, position)
        source = {"header": layout.header if layout else "", "footer": layout.footer if layout else ""}.get(part, "")
        # Inserted text maps to the start of the layout part (or, for the head, to the template).
        composed.add(text, part, source or mjml, 0 if source else offset)
        position = offset
    composed.add(mjml[position:], "mjml", mjml, position)
    return composed


def _check_fragment(source: str, part: str) -> None:
    """A header or footer: MJML body children, checked inside a body on the same lines."""
    try:
        check_mjml(f"<mjml><mj-body>{source}</mj-body></mjml>")
    except TemplateProblem as problem:
        problem.part = part
        raise


def _tags(source: str, part: str, *, autoescape: bool = True) -> CompiledTemplate | None:
    try:
        return compile_template(source, autoescape=autoescape)
    except TemplateProblem as problem:
        problem.part = part
        raise


def layout_problems(*, header: str, footer: str) -> list[TemplateProblem]:
    """What is wrong with a layout (each part checked; the footer must carry the links and
    the postal address every marketing email needs)."""
    problems: list[TemplateProblem] = []
    for part, source in (("header", header), ("footer", footer)):
        try:
            _check_fragment(source, part)
            _tags(source, part)
        except TemplateProblem as problem:
            problems.append(problem)
    if "unsubscribe_url" not in footer:
        problems.append(
            TemplateProblem(_("The footer needs the unsubscribe link: {{ unsubscribe_url }}."), None, "footer")
        )
    if "postal_address" not in footer:
        problems.append(
            TemplateProblem(_("The footer needs the postal address: {{ workspace.postal_address }}."), None, "footer")
        )
    if not problems:
        try:
            mjml_to_html(f"<mjml><mj-body>{header}\n{footer}</mj-body></mjml>")
        except TemplateProblem as problem:
            problem.part = "footer"
            problems.append(problem)
    return problems


def template_compile(
    *,
    subject: str,
    preheader: str,
    mjml: str,
    text_body: str,
    use_layout: bool,
    message_class: str,
    layout: LayoutParts | None,
) -> str:
    """Validate every part of a template and return its compiled HTML (template tags kept).
    Raises TemplateProblems listing each problem with its part and line."""
    problems: list[TemplateProblem] = []
    if not subject.strip():
        problems.append(TemplateProblem(_("The subject is empty."), None, "subject"))
    for part, source, autoescape in (
        ("subject", subject, False),
        ("preheader", preheader, False),
        ("text_body", text_body, False),
    ):
        try:
            _tags(source, part, autoescape=autoescape)
        except TemplateProblem as problem:
            problems.append(problem)
    mjml_ok = True
    try:
        check_mjml(mjml)
        _tags(mjml, "mjml")
    except TemplateProblem as problem:
        problem.part = "mjml"
        problems.append(problem)
        mjml_ok = False
    effective_layout = layout if use_layout else None
    if message_class == MessageClass.MARKETING and text_body.strip() and "unsubscribe_url" not in text_body:
        # The plain-text part is all some readers see: it needs the link as much as the HTML.
        message = _("The plain-text part of a marketing email needs the unsubscribe link: {{ unsubscribe_url }}.")
        problems.append(TemplateProblem(message, None, "text_body"))
    if message_class == MessageClass.MARKETING and effective_layout is None:
        # DESIGN rule 8: every marketing email shows an unsubscribe link and the postal address.
        if "unsubscribe_url" not in mjml:
            message = _(
                "A marketing email needs a visible unsubscribe link: add {{ unsubscribe_url }} "
                "or use the workspace's layout."
            )
            problems.append(TemplateProblem(message, None, "mjml"))
        if "postal_address" not in mjml:
            message = _(
                "A marketing email must show the postal address: add {{ workspace.postal_address }} "
                "or use the workspace's layout."
            )
            problems.append(TemplateProblem(message, None, "mjml"))
    if problems or not mjml_ok:
        raise TemplateProblems(problems)
    composed = _compose(mjml, preheader=bool(preheader.strip()), layout=effective_layout)
    try:
        html = mjml_to_html(composed.source)
    except TemplateProblem as problem:
        offset = getattr(problem, "byte_offset", None)
        if offset is not None:
            problem.part, problem.line = composed.locate(offset)
        else:
            problem.part = "mjml"
        raise TemplateProblems([problem]) from None
    try:
        compile_template(html)
    except TemplateProblem as problem:
        raise TemplateProblems(
            [
                TemplateProblem(
                    _(
                        "After MJML compilation the template tags no longer fit together (%(error)s): "
                        "keep {%% for %%} and {%% if %%} blocks within one element, or around whole elements."
                    )
                    % {"error": problem.message},
                    None,
                    "mjml",
                )
            ]
        ) from None
    return html


# --- rendering -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parts:
    subject: CompiledTemplate
    preheader: CompiledTemplate | None
    html: CompiledTemplate
    text: CompiledTemplate | None
    # True when `text` was made from the compiled HTML (no text_body of its own).
    text_generated: bool = False


_CACHE: dict[tuple[int, int, str], _Parts] = {}
_CACHE_SIZE = 256


def _parts(*, subject: str, preheader: str, html: str, text_body: str) -> _Parts:
    def parse(source: str, part: str, autoescape: bool) -> CompiledTemplate:
        compiled = _tags(source, part, autoescape=autoescape)
        assert compiled is not None
        return compiled

    text: CompiledTemplate | None = None
    generated = False
    if text_body.strip():
        text = parse(text_body, "text_body", False)
    else:
        # The plain-text part is made from the compiled HTML once, template tags and all, and
        # then rendered like the HTML: converting each recipient's HTML would cost ~6× the
        # render itself. Should tags end up split across hidden parts (nothing that MJML
        # does), each recipient's HTML is converted instead.
        try:
            text = compile_template(html_to_text(html), autoescape=False)
            generated = True
        except TemplateProblem:
            text = None
    return _Parts(
        subject=parse(subject, "subject", False),
        preheader=parse(preheader, "preheader", False) if preheader.strip() else None,
        html=parse(html, "mjml", True),
        text=text,
        text_generated=generated,
    )


_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_NO_LINK = re.compile(r" \(#[^)\s]*\)")


def _tidy_text(text: str) -> str:
    """A rendered generated text part: loops and conditions leave blank lines and spaces;
    filters such as linebreaksbr leave <br>; links that go nowhere ("#") are dropped."""
    # (Each substitution only where it can match: this runs for every recipient.)
    if "<" in text:
        text = _BR.sub("\n", text)
    if " (#" in text:
        text = _NO_LINK.sub("", text)
    # re.sub(r"[ \t]*\n[ \t]*", "\n") and then re.sub(r"\n{3,}", "\n\n"), with str methods:
    # the regular expressions cost ~15 µs an email, these ~3 (tests/campaigns/test_render_plan.py
    # checks that both give the same text).
    lines = text.split("\n")
    last = len(lines) - 1
    if last:
        lines[0] = lines[0].rstrip(" \t")
        for index in range(1, last):
            lines[index] = lines[index].strip(" \t")
        lines[last] = lines[last].lstrip(" \t")
        text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


def _compiled_html(template: EmailTemplate) -> str:
    """The stored compiled HTML; a template saved without it (not through the services) is
    compiled now and the result stored for the next recipient."""
    if template.compiled_html:
        return template.compiled_html
    layout = selectors.layout_of(workspace=template.workspace) if template.use_layout else None
    try:
        html = template_compile(
            subject=template.subject,
            preheader=template.preheader,
            mjml=template.mjml,
            text_body=template.text_body,
            use_layout=template.use_layout,
            message_class=template.message_class,
            layout=layout,
        )
    except TemplateProblems as problems:
        raise problems.problems[0] from None
    template.compiled_html = html
    if template.pk:
        EmailTemplate.objects.filter(pk=template.pk, version=template.version, compiled_html="").update(
            compiled_html=html
        )
    return html


def _cached_parts(
    template_id: int | None, version: int, *, subject: str, preheader: str, html: str, text_body: str
) -> _Parts:
    # (template, version, compiled HTML) names the same parts whether they come from the
    # template or from a snapshot of that version.
    key = (template_id or 0, version, html)
    parts = _CACHE.get(key) if template_id else None
    if parts is None:
        parts = _parts(subject=subject, preheader=preheader, html=html, text_body=text_body)
        if template_id:
            if len(_CACHE) >= _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = parts
    return parts


def _parts_of(template: EmailTemplate) -> _Parts:
    html = _compiled_html(template)
    return _cached_parts(
        template.pk,
        template.version,
        subject=template.subject,
        preheader=template.preheader,
        html=html,
        text_body=template.text_body,
    )


# Snapshots this process knows to exist: (template, version, compiled HTML) -> their id.
_SNAPSHOTS: dict[tuple[int, int, str], int] = {}
_SNAPSHOTS_SIZE = 256
_INSERT_SNAPSHOT = """
INSERT INTO campaigns_emailtemplateversion
    (workspace_id, template_id, version, subject, preheader, mjml, text_body, compiled_html, digest, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (template_id, version, digest) DO NOTHING
RETURNING id
"""


def template_version_snapshot(template: EmailTemplate) -> int:
    """The id of the snapshot (EmailTemplateVersion) of the template as it renders now, written
    the first time any process asks for it. The send loop asks for every message: per message
    it is a lookup in this process; per process and version one INSERT … ON CONFLICT DO NOTHING
    (and a SELECT when another worker wrote the row first)."""
    html = _compiled_html(template)
    key = (template.pk, template.version, html)
    found = _SNAPSHOTS.get(key)
    if found is not None:
        return found
    digest = hashlib.sha256(
        "\0".join((template.subject, template.preheader, template.text_body, html)).encode()
    ).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_SNAPSHOT,
            [
                template.workspace_id,
                template.pk,
                template.version,
                template.subject,
                template.preheader,
                template.mjml,
                template.text_body,
                html,
                digest,
                timezone.now(),
            ],
        )
        row = cursor.fetchone()
    if row is not None:
        snapshot_id: int = row[0]
    else:
        snapshot_id = (
            EmailTemplateVersion.objects.filter(template_id=template.pk, version=template.version, digest=digest)
            .values_list("id", flat=True)
            .get()
        )
    # (The send loop runs in autocommit: the row is committed before its id is remembered.)
    if len(_SNAPSHOTS) >= _SNAPSHOTS_SIZE:
        _SNAPSHOTS.pop(next(iter(_SNAPSHOTS)))
    _SNAPSHOTS[key] = snapshot_id
    return snapshot_id


def _one_line(text: str) -> str:
    # A header: no line breaks (header injection), no runs of spaces.
    return " ".join(text.split())[:MAX_SUBJECT_CHARS]


def _line_in(source: str, problem: TemplateProblem) -> int | None:
    """The line of the MJML source holding the template tag a render failed at (the compiled
    HTML keeps tags verbatim, so the first occurrence is found)."""
    during = (getattr(problem, "template_debug", None) or {}).get("during")
    index = source.find(during) if during else -1
    return source.count("\n", 0, index) + 1 if index >= 0 else None


def render_parts(parts: _Parts, context: dict[str, Any], *, mjml: str = "") -> RenderedEmail:
    frozen = dict(freeze(context))
    with render_budget():
        part = "subject"
        try:
            subject = _one_line(render_compiled(parts.subject, frozen))
            part = "preheader"
            preheader = _one_line(render_compiled(parts.preheader, frozen)) if parts.preheader else ""
            frozen["subject"], frozen["preheader"] = subject, preheader
            part = "mjml"
            # Links written from personalisation data get safe schemes only (before the text
            # version is made from the HTML, and before click tracking reads the links).
            html = safe_links(render_compiled(parts.html, frozen))
            part = "text_body"
            if parts.text is None:
                text = html_to_text(html)
            elif parts.text_generated:
                part = "mjml"
                text = _tidy_text(render_compiled(parts.text, frozen))
            else:
                text = render_compiled(parts.text, frozen)
        except TemplateProblem as problem:
            problem.part = problem.part or part
            if part == "mjml":
                # A line of the compiled HTML means nothing to the marketer: find the tag.
                problem.line = _line_in(mjml, problem)
            raise
    # Plain str, not Django's SafeString: whoever shows the email in a page must escape it.
    return RenderedEmail(
        subject=str.__str__(subject),
        preheader=str.__str__(preheader),
        html=str.__str__(html),
        text=str.__str__(text.strip()) + "\n",
    )


def render_email(template: EmailTemplate, context: dict[str, Any]) -> RenderedEmail:
    """One recipient's email. `context` comes from `email_context`. Raises TemplateProblem
    when this recipient's data cannot be rendered (over the time or size budget)."""
    return render_parts(_parts_of(template), context, mjml=template.mjml)


def render_as_sent(template: EmailTemplate, context: dict[str, Any], *, version_id: int | None) -> RenderedEmail:
    """A sent message's email again (view in browser, the send log's preview): from the
    snapshot it was rendered with (`version_id`: Message.template_version), so that later
    edits of the template or the layout do not show; a message without one (not sent yet, or
    sent before snapshots were kept) from the template's current version. Raises
    TemplateProblem like render_email."""
    snapshot = None
    if version_id is not None:
        snapshot = (
            EmailTemplateVersion.objects.filter(
                pk=version_id, template_id=template.pk, workspace_id=template.workspace_id
            )
            .only("version", "subject", "preheader", "mjml", "text_body", "compiled_html")
            .first()
        )
    if snapshot is None:
        return render_email(template, context)
    parts = _cached_parts(
        template.pk,
        snapshot.version,
        subject=snapshot.subject,
        preheader=snapshot.preheader,
        html=snapshot.compiled_html,
        text_body=snapshot.text_body,
    )
    return render_parts(parts, context, mjml=snapshot.mjml)


@dataclass(frozen=True)
class Draft:
    """An unsaved template as the editor shows it: rendered for the sample, and the template
    of its plain-text part (template tags kept) for the marketer to edit by hand."""

    rendered: RenderedEmail
    text_template: str


def render_draft(
    *,
    subject: str,
    preheader: str,
    mjml: str,
    text_body: str,
    use_layout: bool,
    message_class: str,
    layout: LayoutParts | None,
    context: dict[str, Any],
) -> Draft:
    """An unsaved template rendered for the editor's preview (nothing cached). Raises
    TemplateProblems."""
    html = template_compile(
        subject=subject,
        preheader=preheader,
        mjml=mjml,
        text_body=text_body,
        use_layout=use_layout,
        message_class=message_class,
        layout=layout,
    )
    try:
        parts = _parts(subject=subject, preheader=preheader, html=html, text_body=text_body)
        rendered = render_parts(parts, context, mjml=mjml)
    except TemplateProblem as problem:
        raise TemplateProblems([problem]) from None
    # The text made from the HTML, as _parts makes it: its tags render per recipient.
    return Draft(rendered, text_body if text_body.strip() else html_to_text(html))


# --- the context -----------------------------------------------------------------------------

CONTACT_FIELDS = (
    "email", "external_id", "first_name", "last_name", "gender", "phone", "city", "country",
    "time_zone", "locale",
)  # fmt: skip
FACT_FIELDS = (
    "orders_count", "revenue", "average_order_value", "refunds_count", "refunded", "first_order_at",
    "last_order_at", "products", "categories", "median_days_between_orders", "predicted_next_order_at",
    "rfm_segment", "lifecycle_stage",
)  # fmt: skip
_DATE_FIELDS = ("birth_date",)
_DATETIME_FIELDS = ("created_at",)
_FACT_DATETIMES = ("first_order_at", "last_order_at", "predicted_next_order_at")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "as_tuple"):  # Decimal
        return float(value)
    return value


def contact_as_dict(contact: Contact) -> dict[str, Any]:
    """A JSON-safe snapshot of the contact as templates see it: standard fields, custom fields
    by key (a standard field wins a clash), tags, and `facts` (purchase facts; {} for a
    prospect). Load contacts with select_related("facts") to spare a query each."""
    data: dict[str, Any] = {"id": contact.pk}
    for name in CONTACT_FIELDS:
        data[name] = getattr(contact, name)
    data["full_name"] = contact.full_name
    data["birth_date"] = _json_value(contact.birth_date)
    data["created_at"] = _json_value(contact.created_at)
    data["tags"] = list(contact.tags or [])
    attributes = contact.attributes if isinstance(contact.attributes, dict) else {}
    for key, value in attributes.items():
        data.setdefault(str(key), _json_value(value))
    try:
        facts = contact.facts
    except ObjectDoesNotExist:
        facts = None
    data["facts"] = {name: _json_value(getattr(facts, name)) for name in FACT_FIELDS} if facts is not None else {}
    return data


def _revive(data: dict[str, Any], dates: tuple[str, ...], datetimes: tuple[str, ...]) -> dict[str, Any]:
    """ISO strings of a snapshot back to dates, so that |date and |timesince work on them."""
    revived = dict(data)
    for name in dates:
        value = revived.get(name)
        if isinstance(value, str):
            revived[name] = parse_date(value) or value
    for name in datetimes:
        value = revived.get(name)
        if isinstance(value, str):
            try:
                revived[name] = parse_datetime(value) or value
            except ValueError:
                pass
    return revived


def _event_dict(event: dict[str, Any]) -> dict[str, Any]:
    data = dict(event) if isinstance(event, dict) else {}
    products = data.get("products")
    if isinstance(products, list):
        data["products"] = [selectors.product_dict(item) for item in products if isinstance(item, dict)]
    return data


def email_language(*, workspace: Workspace, contact: dict[str, Any]) -> str:
    """The language of an email's built-in texts: the contact's (the language of their locale,
    "ru-RU" or "ru"), when the service speaks it, else the workspace's."""
    known = {code for code, _name in settings.LANGUAGES}
    spoken = str(contact.get("locale") or "").replace("_", "-").split("-")[0].lower()
    if spoken in known:
        return spoken
    return workspace.language if workspace.language in known else settings.LANGUAGE_CODE


@lru_cache(maxsize=256)
def email_labels(language: str, workspace_name: str) -> dict[str, str]:
    """The built-in texts of the default footer and the blocks (`labels.unsubscribe`, …), in
    `language`: a plain dict the sandbox renders like any other data."""
    with translation.override(language):
        return {
            "why_you_get_this": _("You receive this email because you are a customer or subscriber of %(shop)s.")
            % {"shop": workspace_name},
            "preferences": _("Email preferences"),
            "unsubscribe": pgettext("the link in an email's footer", "Unsubscribe"),
            "view_in_browser": _("View in browser"),
            "total": _("Total:"),
            "you_might_also_like": _("You might also like"),
            "view": pgettext("a product's button in an email", "View"),
        }


def email_context(
    *, workspace: Workspace, contact: dict[str, Any], event: dict[str, Any], urls: dict[str, str]
) -> dict[str, Any]:
    """The plain-data context of one recipient's email."""
    labels = email_labels(email_language(workspace=workspace, contact=contact or {}), workspace.name)
    contact_data = _revive(contact or {}, _DATE_FIELDS, _DATETIME_FIELDS)
    facts = contact_data.get("facts")
    contact_data["facts"] = _revive(facts, (), _FACT_DATETIMES) if isinstance(facts, dict) else {}
    contact_id = contact_data.get("id")
    workspace_id = workspace.pk
    return {
        "contact": contact_data,
        "event": _event_dict(event),
        "workspace": {"name": workspace.name, "postal_address": workspace.postal_address},
        "unsubscribe_url": urls.get("unsubscribe_url", ""),
        "preferences_url": urls.get("preferences_url", ""),
        "view_in_browser_url": urls.get("view_in_browser_url", ""),
        "labels": labels,
        # Only queried when the template shows recommendations.
        "recommended_products": Lazy(
            lambda: selectors.recommended_products(
                workspace_id=workspace_id, contact_id=contact_id if isinstance(contact_id, int) else None
            )
        ),
    }


# --- the plain-text part ---------------------------------------------------------------------

_BLOCKS = frozenset(
    {"p", "div", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "section", "article",
     "blockquote", "header", "footer", "center"}
)  # fmt: skip
_SKIPPED = frozenset({"head", "style", "script", "title", "template"})
_VOID = frozenset({"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr", "source"})


_DJANGO_BLOCK = re.compile(r"\{%.*?%\}")


class _TextMaker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden: list[str] = []  # tags whose content is not shown (by name, to close them)
        self.links: list[tuple[str, int]] = []  # (href, position in out)
        # A product's picture and its name usually link to the same page: say it once.
        self.last_link: tuple[str, int] | None = None  # (what was written, its index in out)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.hidden:
            if tag not in _VOID:
                self.hidden.append(tag)
            return
        attributes = dict(attrs)
        style = (attributes.get("style") or "").replace(" ", "").lower()
        if tag in _SKIPPED or "display:none" in style:
            if tag not in _VOID:
                self.hidden.append(tag)
            return
        if tag == "br":
            self.out.append("\n")
        elif tag == "hr":
            self.out.append("\n----------\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag in _BLOCKS:
            self.out.append("\n\n" if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6") else "\n")
        elif tag == "a":
            self.links.append((attributes.get("href") or "", len(self.out)))
        elif tag == "img" and self.links:
            alt = attributes.get("alt") or ""
            if alt:
                self.out.append(alt)

    def handle_endtag(self, tag: str) -> None:
        if self.hidden:
            if self.hidden[-1] == tag:
                self.hidden.pop()
            elif tag in self.hidden:
                while self.hidden and self.hidden.pop() != tag:
                    pass
            return
        if tag == "a" and self.links:
            href, start = self.links.pop()
            text = " ".join("".join(self.out[start:]).split())
            del self.out[start:]
            href = href.strip()
            if not href or href.startswith("#") or href == text:
                shown = text or href
            elif href.startswith("mailto:") and href[7:] == text:
                shown = text
            elif text:
                shown = f"{text} ({href})"
            else:
                shown = href
            if self.last_link is not None:
                previous, at = self.last_link
                between = _DJANGO_BLOCK.sub("", "".join(self.out[at + 1 :]))
                if previous == shown and not between.strip():
                    # The same link twice in a row (a product's picture, then its name): keep
                    # the second, which is the one outside any {% if picture %}.
                    self.out[at] = ""
            self.out.append(shown)
            self.last_link = (shown, len(self.out) - 1)
        elif tag in _BLOCKS:
            self.out.append("\n\n" if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6") else "\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.out.append(data)


def html_to_text(html: str) -> str:
    """The plain-text part of an HTML email: visible text, links as "text (url)", one blank
    line at most between blocks."""
    maker = _TextMaker()
    maker.feed(html)
    maker.close()
    text = "".join(maker.out).replace("\xa0", " ")
    lines = [" ".join(line.split()) for line in text.split("\n")]
    cleaned: list[str] = []
    for line in lines:
        if line or (cleaned and cleaned[-1]):
            cleaned.append(line)
    return "\n".join(cleaned).strip()
