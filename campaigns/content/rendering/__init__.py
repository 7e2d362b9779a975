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

The package, one concern a module: `compiling` (validate and compile a version), `parts` (the
parsed parts and their cache), `snapshots` (versions as sent), `render` (one recipient's
email), `context` (the template context) and `text` (the plain-text part). What the rest of
the project calls is importable from here.
"""

from campaigns.content.rendering.compiling import layout_problems, template_compile
from campaigns.content.rendering.context import (
    CONTACT_FIELDS,
    FACT_FIELDS,
    contact_as_dict,
    email_context,
    email_labels,
    email_language,
)
from campaigns.content.rendering.render import (
    MAX_SUBJECT_CHARS,
    Draft,
    RenderedEmail,
    render_as_sent,
    render_draft,
    render_email,
    render_parts,
    subject_problem,
)
from campaigns.content.rendering.snapshots import template_version_snapshot
from campaigns.content.rendering.text import html_to_text

__all__ = [
    "CONTACT_FIELDS",
    "FACT_FIELDS",
    "MAX_SUBJECT_CHARS",
    "Draft",
    "RenderedEmail",
    "contact_as_dict",
    "email_context",
    "email_labels",
    "email_language",
    "html_to_text",
    "layout_problems",
    "render_as_sent",
    "render_draft",
    "render_email",
    "render_parts",
    "subject_problem",
    "template_compile",
    "template_version_snapshot",
]
