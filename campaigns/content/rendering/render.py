"""One recipient's email from the parsed parts: per recipient only rendering (and the editor's
preview of an unsaved template)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from typing import Any

from campaigns.content.errors import TemplateProblem, TemplateProblems
from campaigns.content.rendering.compiling import template_compile
from campaigns.content.rendering.parts import _cached_parts, _line_part, _Parts, _parts, _parts_of, _with_overrides
from campaigns.content.rendering.text import _tidy_text, html_to_text
from campaigns.content.sandbox import freeze, render_budget, render_compiled
from campaigns.content.selectors import LayoutParts
from campaigns.models import EmailTemplate, EmailTemplateVersion
from campaigns.tracking.links import safe_links

MAX_SUBJECT_CHARS = 998


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    preheader: str
    html: str
    text: str


def _one_line(text: str) -> str:
    # A header: no line breaks (header injection), no runs of spaces.
    return " ".join(text.split())[:MAX_SUBJECT_CHARS]


def _line_in(source: str, problem: TemplateProblem) -> int | None:
    """The line of the MJML source holding the template tag a render failed at (the compiled
    HTML keeps tags verbatim, so the first occurrence is found)."""
    during = (getattr(problem, "template_debug", None) or {}).get("during")
    index = source.find(during) if during else -1
    return source.count("\n", 0, index) + 1 if index >= 0 else None


# The hidden preview text MJML's <mj-preview> writes first in the body: inbox lists show it
# after the subject.
_PREVIEW_DIV = (
    '<div style="display:none;font-size:1px;color:#ffffff;line-height:1px;max-height:0px;'
    'max-width:0px;opacity:0;overflow:hidden;">{}</div>'
)
_BODY_TAG = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


def _with_preview(html: str, preheader: str) -> str:
    """The HTML with the preview text first in its body (a per-message preheader on a
    template that has none of its own)."""
    div = _PREVIEW_DIV.format(escape(preheader))
    body = _BODY_TAG.search(html)
    return f"{html[: body.end()]}{div}{html[body.end() :]}" if body else div + html


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
            if preheader and not parts.shows_preheader:
                html = _with_preview(html, preheader)
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


def render_email(
    template: EmailTemplate, context: dict[str, Any], *, subject: str = "", preheader: str = ""
) -> RenderedEmail:
    """One recipient's email. `context` comes from `email_context`; `subject` and `preheader`,
    when given, replace the template's (Message.subject_override, preheader_override). Raises
    TemplateProblem when this recipient's data cannot be rendered (over the time or size
    budget)."""
    return render_parts(_with_overrides(_parts_of(template), subject, preheader), context, mjml=template.mjml)


def subject_problem(subject: str, part: str = "subject") -> TemplateProblem | None:
    """What is wrong with a subject (or, with part="preheader", a preheader) written apart
    from its template (a series step's or a broadcast's override), or None: checked where it is
    saved, so no message fails for it."""
    try:
        _line_part(subject, part)
    except TemplateProblem as problem:
        return problem
    return None


def render_as_sent(
    template: EmailTemplate, context: dict[str, Any], *, version_id: int | None, subject: str = "", preheader: str = ""
) -> RenderedEmail:
    """A sent message's email again (view in browser, the send log's preview): from the
    snapshot it was rendered with (`version_id`: Message.template_version), so that later
    edits of the template or the layout do not show; a message without one (not sent yet, or
    sent before snapshots were kept) from the template's current version. Raises
    TemplateProblem like render_email; `subject` as there."""
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
        return render_email(template, context, subject=subject, preheader=preheader)
    parts = _cached_parts(
        template.pk,
        snapshot.version,
        subject=snapshot.subject,
        preheader=snapshot.preheader,
        html=snapshot.compiled_html,
        text_body=snapshot.text_body,
    )
    return render_parts(_with_overrides(parts, subject, preheader), context, mjml=snapshot.mjml)


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
