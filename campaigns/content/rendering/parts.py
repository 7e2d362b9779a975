"""A template version's parts (subject, preheader, HTML, text) parsed into sandboxed templates,
once per (template, version, compiled HTML) and kept in this process."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from campaigns.content import selectors
from campaigns.content.errors import TemplateProblem, TemplateProblems
from campaigns.content.rendering.compiling import _tags, template_compile
from campaigns.content.rendering.text import html_to_text
from campaigns.content.sandbox import CompiledTemplate, compile_template
from campaigns.models import EmailTemplate


@dataclass(frozen=True)
class _Parts:
    subject: CompiledTemplate
    preheader: CompiledTemplate | None
    html: CompiledTemplate
    text: CompiledTemplate | None
    # True when `text` was made from the compiled HTML (no text_body of its own).
    text_generated: bool = False
    # Whether the HTML shows `{{ preheader }}` itself (a template with a preheader of its own);
    # when not, a preheader given per message is put in as MJML would have (render_parts).
    shows_preheader: bool = True


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
        shows_preheader="preheader" in html,
    )


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


@lru_cache(maxsize=256)
def _line_part(source: str, part: str) -> CompiledTemplate:
    # A series step's or a broadcast's own subject or preheader: their few distinct texts are
    # parsed once each, like the template's parts.
    compiled = _tags(source, part, autoescape=False)
    assert compiled is not None
    return compiled


def _with_overrides(parts: _Parts, subject: str, preheader: str = "") -> _Parts:
    """The parts with another subject and preheader (a message's subject_override and
    preheader_override); the same where they are empty."""
    if subject:
        parts = replace(parts, subject=_line_part(subject, "subject"))
    if preheader.strip():
        parts = replace(parts, preheader=_line_part(preheader, "preheader"))
    return parts
