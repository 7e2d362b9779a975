"""Writes of email content: templates (validated and compiled on every change of their
content, version + 1), copies of the starters, and the workspace's layout."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.content import selectors
from campaigns.content.errors import TemplateProblems
from campaigns.content.rendering import layout_problems, template_compile
from campaigns.content.selectors import LayoutParts
from campaigns.content.starters import STARTERS
from campaigns.models import EmailTemplate, Layout, MessageClass, Provider, SenderIdentity
from esp.input import parse_id
from esp.models import Workspace

# Changing any of these makes a new version (the compiled HTML and the cache follow it).
CONTENT_FIELDS = ("subject", "preheader", "mjml", "text_body", "use_layout", "message_class")
# Who sends it and through which provider (ids; None: the workspace's defaults).
ROUTING_FIELDS = ("sender_id", "provider_id")
EDITABLE_FIELDS = ("name", "description", *CONTENT_FIELDS, *ROUTING_FIELDS)


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    values = {key: data[key] for key in EDITABLE_FIELDS if key in data}
    for key in ROUTING_FIELDS:
        if key in values:
            value = values[key]
            if value in (None, ""):
                values[key] = None
            elif parse_id(value) is not None:
                values[key] = int(value)
            else:
                raise ValidationError({key.removesuffix("_id"): _("Expected the id of one, or nothing.")})
    for key in ("name", "description", "subject", "preheader"):
        if key in values:
            values[key] = str(values[key] or "").strip()
    for key in ("mjml", "text_body"):
        if key in values:
            # Browsers post CRLF; line numbers and the stored text use LF.
            values[key] = str(values[key] or "").replace("\r\n", "\n")
    if "message_class" in values and values["message_class"] not in MessageClass.values:
        raise ValidationError({"message_class": _("Choose marketing or transactional.")})
    return values


def _check_routing(workspace: Workspace, values: dict[str, Any]) -> None:
    """The sender and provider named must be this workspace's (another's is "no such")."""
    errors = {}
    sender_id, provider_id = values.get("sender_id"), values.get("provider_id")
    if sender_id is not None and not SenderIdentity.objects.in_workspace(workspace).filter(pk=sender_id).exists():
        errors["sender"] = _("No such sender in this workspace.")
    if provider_id is not None and not Provider.objects.in_workspace(workspace).filter(pk=provider_id).exists():
        errors["provider"] = _("No such provider in this workspace.")
    if errors:
        raise ValidationError(errors)


def _check_name(workspace: Workspace, name: str, template_id: int | None = None) -> None:
    if not name:
        raise ValidationError({"name": _("Give the template a name.")})
    taken = EmailTemplate.objects.in_workspace(workspace).filter(name__iexact=name)
    if template_id is not None:
        taken = taken.exclude(pk=template_id)
    if taken.exists():
        raise ValidationError({"name": _("Another template already has this name.")})


def _compile(workspace: Workspace, values: dict[str, Any]) -> str:
    layout = selectors.layout_of(workspace=workspace) if values.get("use_layout", True) else None
    return template_compile(
        subject=values.get("subject", ""),
        preheader=values.get("preheader", ""),
        mjml=values.get("mjml", ""),
        text_body=values.get("text_body", ""),
        use_layout=values.get("use_layout", True),
        message_class=values.get("message_class", MessageClass.MARKETING),
        layout=layout,
    )


def template_create(*, workspace: Workspace, data: dict[str, Any], starter: str = "") -> EmailTemplate:
    """A new template. Raises ValidationError (name, kind) or TemplateProblems (content, with
    lines): an invalid template is never saved."""
    values = _clean(data)
    values.setdefault("use_layout", True)
    values.setdefault("message_class", MessageClass.MARKETING)
    _check_name(workspace, values.get("name", ""))
    _check_routing(workspace, values)
    compiled = _compile(workspace, values)
    try:
        with transaction.atomic():
            return EmailTemplate.objects.create(
                workspace=workspace, compiled_html=compiled, starter=starter, version=1, **values
            )
    except IntegrityError:
        raise ValidationError({"name": _("Another template already has this name.")}) from None


def template_update(*, workspace: Workspace, template_id: int, data: dict[str, Any]) -> EmailTemplate:
    """Change a template; a change of content is validated, compiled and makes a new version."""
    values = _clean(data)
    with transaction.atomic():
        template = selectors.template_get(workspace=workspace, template_id=template_id)
        # The row lock keeps two editors from making the same version number twice.
        template = EmailTemplate.objects.select_for_update().get(pk=template.pk)
        if "name" in values:
            _check_name(workspace, values["name"], template.pk)
        _check_routing(workspace, values)
        content_changed = any(key in values and values[key] != getattr(template, key) for key in CONTENT_FIELDS)
        for key, value in values.items():
            setattr(template, key, value)
        if content_changed:
            template.compiled_html = _compile(workspace, {key: getattr(template, key) for key in CONTENT_FIELDS})
            template.version += 1
        template.updated_at = timezone.now()
        try:
            with transaction.atomic():
                template.save()
        except IntegrityError:
            raise ValidationError({"name": _("Another template already has this name.")}) from None
    return template


def template_free_name(*, workspace: Workspace, name: str) -> str:
    """`name`, or "name (2)", "name (3)"… when taken; shortened to fit the column."""
    longest = EmailTemplate._meta.get_field("name").max_length or 200
    name = name[:longest].strip()
    taken = {
        n.lower()
        for n in EmailTemplate.objects.in_workspace(workspace)
        .filter(name__istartswith=name[: longest - 8])
        .values_list("name", flat=True)
    }
    candidate, number = name, 2
    while candidate.lower() in taken:  # the copies the marketer kept: a handful
        suffix = f" ({number})"
        candidate, number = f"{name[: longest - len(suffix)].rstrip()}{suffix}", number + 1
    return candidate


def template_copy_starter(*, workspace: Workspace, starter_key: str, name: str = "") -> EmailTemplate:
    """The starter copied into the workspace under a free name."""
    starter = STARTERS.get(starter_key)
    if starter is None:
        raise ValidationError({"starter": _("No such starter template.")})
    data = {
        "name": template_free_name(workspace=workspace, name=name.strip() or str(starter.name)),
        "description": str(starter.description),
        "subject": starter.subject,
        "preheader": starter.preheader,
        "mjml": starter.mjml,
        "message_class": starter.message_class,
    }
    return template_create(workspace=workspace, data=data, starter=starter.key)


def template_create_blank(*, workspace: Workspace, name: str = "") -> EmailTemplate:
    from campaigns.content.blocks import BLANK

    data = {
        "name": template_free_name(workspace=workspace, name=name.strip() or _("Untitled email")),
        "subject": _("News from {{ workspace.name }}"),
        "mjml": BLANK,
    }
    return template_create(workspace=workspace, data=data)


def template_delete(*, workspace: Workspace, template_id: int) -> None:
    template = selectors.template_get(workspace=workspace, template_id=template_id)
    template.delete()  # messages keep their row (template SET NULL)


def layout_save(*, workspace: Workspace, header_mjml: str, footer_mjml: str) -> Layout:
    """Save the workspace's header and footer and recompile every template that uses them
    (their content is unchanged, so their version stays; the compiled HTML changes, and with
    it the renderers' cache key). Raises TemplateProblems."""
    header = header_mjml.replace("\r\n", "\n").strip("\n")
    footer = footer_mjml.replace("\r\n", "\n").strip("\n")
    problems = layout_problems(header=header, footer=footer)
    if problems:
        raise TemplateProblems(problems)
    with transaction.atomic():
        layout, created = Layout.objects.select_for_update().get_or_create(workspace=workspace)
        layout.header_mjml = header
        layout.footer_mjml = footer
        if not created:
            layout.version += 1
        layout.updated_at = timezone.now()
        layout.save()
        parts = LayoutParts(header=header, footer=footer, version=layout.version)
        recompiled = []
        # A workspace has tens of templates, not millions: one compile each (~1 ms).
        for template in EmailTemplate.objects.in_workspace(workspace).filter(use_layout=True).select_for_update():
            try:
                template.compiled_html = template_compile(
                    subject=template.subject,
                    preheader=template.preheader,
                    mjml=template.mjml,
                    text_body=template.text_body,
                    use_layout=True,
                    message_class=template.message_class,
                    layout=parts,
                )
            except TemplateProblems:
                # Valid before, so the layout broke it: empty compiled HTML makes the next
                # render compile it again and report the problem.
                template.compiled_html = ""
            recompiled.append(template)
        EmailTemplate.objects.bulk_update(recompiled, ["compiled_html"])
    return layout
