"""Browser pages of email content: the templates list, the starter gallery, the editor with its
live preview and "send test to me", and the workspace's layout. Viewers look; marketers edit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

from audiences.models import Contact
from campaigns.content import selectors, services
from campaigns.content.blocks import BLANK, BLOCKS
from campaigns.content.errors import TemplateProblem, TemplateProblems
from campaigns.content.forms import PART_LABELS, LayoutForm, NewTemplateForm, TemplateForm
from campaigns.content.rendering import RenderedEmail, contact_as_dict, email_context, render_draft
from campaigns.content.selectors import LayoutParts
from campaigns.content.starters import SAMPLE_CONTACT, SAMPLE_EVENTS, SAMPLE_RECOMMENDATIONS, STARTERS
from campaigns.models import EmailTemplate, MessageClass
from esp.forms import add_service_errors
from esp.input import parse_id
from esp.models import Role, Workspace
from esp.web import WorkspaceView

# Links of a preview: nothing to unsubscribe from yet; the sandboxed frame stays put.
PREVIEW_URLS = {"unsubscribe_url": "#unsubscribe", "preferences_url": "#preferences", "view_in_browser_url": "#browser"}


def _int(value: str | None) -> int | None:
    return parse_id(value) if value else None


@dataclass
class Preview:
    rendered: RenderedEmail | None
    problems: list[dict[str, Any]]
    # What "Edit this text as the plain-text part" copies: the text part's template, not the
    # sample's rendering of it (which would send the sample's name to everyone).
    text_template: str = ""


def _problem_rows(problems: list[TemplateProblem]) -> list[dict[str, Any]]:
    return [
        {
            "part": p.part or "mjml",
            "label": PART_LABELS.get(p.part or "mjml", p.part),
            "line": p.line,
            "message": p.message,
        }
        for p in problems
    ]


def event_options(*, workspace: Workspace, contact_id: int | None, selected: str) -> dict[str, Any]:
    """The choices of the preview's event dropdown: the contact's recent events, then the
    built-in samples."""
    contact = selectors.sample_contact(workspace=workspace, contact_id=contact_id)
    events = selectors.sample_events(workspace=workspace, contact=contact)
    return {
        "event_options": [
            {
                "value": f"event:{e.pk}",
                "label": f"{e.name} · {date_format(localtime(e.occurred_at), 'SHORT_DATETIME_FORMAT')}",
            }
            for e in events
        ],
        "sample_options": [{"value": f"sample:{s.key}", "label": s.label} for s in SAMPLE_EVENTS.values()],
        "selected": selected,
    }


def preview_context(*, workspace: Workspace, contact_id: int | None, event_key: str) -> dict[str, Any]:
    """The context of a preview: the chosen contact of the workspace (or a built-in sample
    person with sample recommendations) and the chosen event."""
    contact = selectors.sample_contact(workspace=workspace, contact_id=contact_id)
    event = selectors.sample_event(workspace=workspace, contact=contact, key=event_key)
    snapshot = contact_as_dict(contact) if contact is not None else dict(SAMPLE_CONTACT)
    context = email_context(workspace=workspace, contact=snapshot, event=event, urls=PREVIEW_URLS)
    if contact is None:
        context["recommended_products"] = SAMPLE_RECOMMENDATIONS
    return context


def preview(
    *, workspace: Workspace, data: dict[str, Any], layout: LayoutParts | None = None, context: dict[str, Any]
) -> Preview:
    use_layout = data.get("use_layout") in (True, "on", "true", "1")
    try:
        draft = render_draft(
            subject=str(data.get("subject", "")),
            preheader=str(data.get("preheader", "")),
            mjml=str(data.get("mjml", "")).replace("\r\n", "\n"),
            text_body=str(data.get("text_body", "")).replace("\r\n", "\n"),
            use_layout=use_layout,
            message_class=str(data.get("message_class") or MessageClass.MARKETING),
            layout=(layout or selectors.layout_of(workspace=workspace)) if use_layout else None,
            context=context,
        )
    except TemplateProblems as problems:
        return Preview(None, _problem_rows(problems.problems))
    return Preview(draft.rendered, [], draft.text_template)


class TemplatesView(WorkspaceView):
    def get(self, request: HttpRequest) -> HttpResponse:
        return render(
            request, "campaigns/content/templates.html", {"templates": selectors.templates(workspace=self.workspace)}
        )


class TemplateNewView(WorkspaceView):
    """The starter gallery (each starter previewed with sample data) and a blank template."""

    def get(self, request: HttpRequest) -> HttpResponse:
        cards = []
        layout = selectors.layout_of(workspace=self.workspace)
        for starter in STARTERS.values():
            sample = SAMPLE_EVENTS.get(starter.sample_event)
            context = email_context(
                workspace=self.workspace,
                contact=dict(SAMPLE_CONTACT),
                event=dict(sample.properties) if sample else {},
                urls=PREVIEW_URLS,
            )
            context["recommended_products"] = SAMPLE_RECOMMENDATIONS
            data = {
                "subject": starter.subject,
                "preheader": starter.preheader,
                "mjml": starter.mjml,
                "use_layout": True,
            }
            cards.append(
                {
                    "starter": starter,
                    "preview": preview(workspace=self.workspace, data=data, layout=layout, context=context),
                }
            )
        return render(request, "campaigns/content/new.html", {"cards": cards})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = NewTemplateForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Choose a starter or a blank template."))
            return redirect("content-template-new")
        key, name = form.cleaned_data["starter"], form.cleaned_data["name"]
        try:
            if key == "blank":
                template = services.template_create_blank(workspace=self.workspace, name=name)
            else:
                template = services.template_copy_starter(workspace=self.workspace, starter_key=key, name=name)
        except ValidationError as error:
            for message in error.messages:
                messages.error(request, message)
            return redirect("content-template-new")
        messages.success(request, _("Template created: edit it and watch the preview."))
        return redirect("content-template", template_id=template.pk)


class EditorView(WorkspaceView):
    """The editor's page and the save of its form, shared by Save and Save-and-test."""

    def _render(
        self,
        request: HttpRequest,
        template: EmailTemplate,
        form: TemplateForm,
        problems: list[dict[str, Any]],
        status: int = 200,
    ) -> HttpResponse:
        starter = STARTERS.get(template.starter)
        contacts = selectors.sample_contacts(workspace=self.workspace)
        if not self.can(Role.MARKETER):
            # Viewers see the content and may preview it; the fields stay posted to the preview.
            for field in form.fields.values():
                field.widget.attrs["readonly"] = True
        return render(
            request,
            "campaigns/content/editor.html",
            {
                "template": template,
                "form": form,
                "problems": problems,
                "contacts": contacts,
                **event_options(
                    workspace=self.workspace,
                    contact_id=None,
                    selected=f"sample:{starter.sample_event}" if starter and starter.sample_event else "",
                ),
                "blocks": [{"key": b.key, "label": str(b.label), "mjml": b.mjml} for b in BLOCKS],
            },
            status=status,
        )

    def _sample(self, request: HttpRequest) -> tuple[Contact | None, dict[str, Any]]:
        """The sample contact and event chosen in the editor's form."""
        contact_id = _int(request.POST.get("sample_contact"))
        contact = selectors.sample_contact(workspace=self.workspace, contact_id=contact_id)
        key = request.POST.get("sample_event", "")
        return contact, selectors.sample_event(workspace=self.workspace, contact=contact, key=key)

    def _save(self, request: HttpRequest, template: EmailTemplate) -> EmailTemplate | HttpResponse:
        """The posted editor saved (a new version when its content changed), or the editor
        again showing what stops the save."""
        form = TemplateForm(request.POST, instance=EmailTemplate.objects.get(pk=template.pk))
        if not form.is_valid():
            return self._render(request, template, form, [], status=400)
        try:
            return services.template_update(workspace=self.workspace, template_id=template.pk, data=form.cleaned_data)
        except TemplateProblems as problems:
            form.add_problems(problems.problems)
            messages.error(request, _("Not saved: fix the problems below first."))
            return self._render(request, template, form, _problem_rows(problems.problems), status=400)
        except ValidationError as error:
            add_service_errors(form, error)
            return self._render(request, template, form, [], status=400)


class TemplateEditView(EditorView):
    def get(self, request: HttpRequest, template_id: int) -> HttpResponse:
        template = selectors.template_get(workspace=self.workspace, template_id=template_id)
        return self._render(request, template, TemplateForm(instance=template), [])

    def post(self, request: HttpRequest, template_id: int) -> HttpResponse:
        saved = self._save(request, selectors.template_get(workspace=self.workspace, template_id=template_id))
        if isinstance(saved, HttpResponse):
            return saved
        messages.success(request, _("Saved (version %(version)d).") % {"version": saved.version})
        return redirect("content-template", template_id=saved.pk)


class TemplatePreviewView(WorkspaceView):
    """The editor's live preview of the unsaved content (htmx), for marketers. Viewers see the
    saved version (TemplateSavedPreviewView)."""

    def post(self, request: HttpRequest) -> HttpResponse:
        context = preview_context(
            workspace=self.workspace,
            contact_id=_int(request.POST.get("sample_contact")),
            event_key=request.POST.get("sample_event", ""),
        )
        result = preview(workspace=self.workspace, data=request.POST.dict(), context=context)
        return render(request, "campaigns/content/partials/preview.html", {"preview": result})


class TemplateSavedPreviewView(WorkspaceView):
    """The saved template rendered for a sample contact and event (htmx, the viewers' preview)."""

    def get(self, request: HttpRequest, template_id: int) -> HttpResponse:
        template = selectors.template_get(workspace=self.workspace, template_id=template_id)
        context = preview_context(
            workspace=self.workspace,
            contact_id=_int(request.GET.get("sample_contact")),
            event_key=request.GET.get("sample_event", ""),
        )
        data = {field: getattr(template, field) for field in services.CONTENT_FIELDS}
        result = preview(workspace=self.workspace, data=data, context=context)
        return render(request, "campaigns/content/partials/preview.html", {"preview": result})


class SampleEventsView(WorkspaceView):
    """The event dropdown of the preview for the chosen contact (htmx)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        options = event_options(
            workspace=self.workspace,
            contact_id=_int(request.GET.get("sample_contact")),
            selected=request.GET.get("sample_event", ""),
        )
        response = render(request, "campaigns/content/partials/sample_events.html", options)
        response["HX-Trigger"] = "preview-refresh"
        return response


class TemplateDeleteView(WorkspaceView):
    def post(self, request: HttpRequest, template_id: int) -> HttpResponse:
        services.template_delete(workspace=self.workspace, template_id=template_id)
        messages.success(request, _("Template deleted."))
        return redirect("content-templates")


class LayoutView(WorkspaceView):
    """The header and footer wrapped around templates that use the layout."""

    def _render(
        self, request: HttpRequest, form: LayoutForm, problems: list[dict[str, Any]], status: int = 200
    ) -> HttpResponse:
        header = form.data.get("header_mjml") if form.is_bound else form.initial.get("header_mjml", "")
        footer = form.data.get("footer_mjml") if form.is_bound else form.initial.get("footer_mjml", "")
        sample = None
        if not problems:
            context = preview_context(workspace=self.workspace, contact_id=None, event_key="")
            sample = preview(
                workspace=self.workspace,
                data={"subject": _("Layout preview"), "mjml": BLANK, "use_layout": True},
                layout=LayoutParts(header=str(header or ""), footer=str(footer or ""), version=0),
                context=context,
            )
        return render(
            request,
            "campaigns/content/layout.html",
            {"form": form, "problems": problems, "sample": sample},
            status=status,
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        layout = selectors.layout_of(workspace=self.workspace)
        return self._render(
            request, LayoutForm(initial={"header_mjml": layout.header, "footer_mjml": layout.footer}), []
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        form = LayoutForm(request.POST)
        if not form.is_valid():
            return self._render(request, form, [], status=400)
        try:
            services.layout_save(
                workspace=self.workspace,
                header_mjml=form.cleaned_data["header_mjml"],
                footer_mjml=form.cleaned_data["footer_mjml"],
            )
        except TemplateProblems as problems:
            form.add_problems(problems.problems)
            return self._render(request, form, _problem_rows(problems.problems), status=400)
        messages.success(request, _("Layout saved; the templates that use it were updated."))
        return redirect("content-layout")
