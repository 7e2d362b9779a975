"""Compiling a template version, once: every part validated (MJML structure, template tags, the
layout around it), the layout's header and footer composed into the MJML, and the MJML compiled
to HTML with the template tags still in it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from campaigns.content.errors import TemplateProblem, TemplateProblems
from campaigns.content.mjml import check_mjml, mjml_to_html
from campaigns.content.sandbox import CompiledTemplate, compile_template
from campaigns.content.selectors import LayoutParts
from campaigns.models import MessageClass


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
