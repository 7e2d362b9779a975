"""Browser pages of broadcasts, under /broadcasts/: the list, the composer (audience, content,
when, review) with its live count, the preview as any recipient, and the broadcast's page with
its live progress and report. The actions (schedule, pause, …) are in broadcasts.actions.
Viewers read everything; marketers change. Another workspace's broadcast is a 404."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from audiences import selectors as audience_selectors
from campaigns.broadcast_models import MAX_PREHEADER_CHARS, Broadcast, BroadcastStatus
from campaigns.broadcasts import ab, page_data, selectors, services
from campaigns.broadcasts.audience import audience_count
from campaigns.broadcasts.forms import BroadcastForm
from campaigns.broadcasts.services import EDITABLE
from campaigns.content import selectors as content_selectors
from campaigns.content import services as content_services
from campaigns.content.rendering import MAX_SUBJECT_CHARS
from campaigns.content.views import preview, preview_context
from campaigns.models import EmailTemplate
from esp.forms import add_service_errors
from esp.input import parse_id
from esp.models import Role, Workspace
from esp.web import WorkspaceView, request_user

PAGE_SIZE = 25
# The broadcast page refreshes its progress this often while the broadcast is under way.
REFRESH_SECONDS = 3
ACTIVE = (BroadcastStatus.SCHEDULED, BroadcastStatus.SENDING, BroadcastStatus.PAUSED)
AUDIENCE_FIELDS = ("include_lists", "include_segments", "include_tags", "exclude_lists", "exclude_segments",
                   "exclude_tags")  # fmt: skip


def broadcast_or_404(workspace: Workspace, broadcast_id: int) -> Broadcast:
    try:
        return selectors.broadcast_get(workspace=workspace, broadcast_id=broadcast_id)
    except Broadcast.DoesNotExist:
        raise Http404 from None


class BroadcastListView(WorkspaceView):
    """Newest first, by pages of PAGE_SIZE (keyset on the id); the figures of the whole page
    in one progress() call."""

    def get(self, request: HttpRequest) -> HttpResponse:
        before = parse_id(request.GET.get("before", ""))
        query = selectors.broadcasts(workspace=self.workspace).order_by("-pk")
        if before is not None:
            query = query.filter(pk__lt=before)
        shown = list(query[: PAGE_SIZE + 1])
        has_more = len(shown) > PAGE_SIZE
        shown = shown[:PAGE_SIZE]
        figures = selectors.progress(workspace=self.workspace, broadcast_ids=[b.pk for b in shown])
        names = page_data.names_for(self.workspace, shown)
        rows = [
            {
                "broadcast": b,
                "audience": page_data.audience_text(b, names),
                "figures": figures[b.pk],
                "open_rate": figures[b.pk].rate(figures[b.pk].opened),
                "click_rate": figures[b.pk].rate(figures[b.pk].clicked),
            }
            for b in shown
        ]
        return render(
            request,
            "campaigns/broadcasts/list.html",
            {"rows": rows, "next_before": shown[-1].pk if has_more else None, "paged": before is not None},
        )


class ComposerView(WorkspaceView):
    """Create and edit a draft or scheduled broadcast on one page. A refused save shows the
    page again with every typed value and the services' errors on their fields (400). Viewers
    see it read-only (as a series' or a segment's form); only marketers save."""

    def _form(self, broadcast: Broadcast | None, data: Any = None) -> BroadcastForm:
        choices = page_data.composer_choices(self.workspace, broadcast)
        initial = BroadcastForm.initial_for(broadcast) if broadcast else None
        return BroadcastForm(data, initial=initial, choices=choices)

    def _render(
        self, request: HttpRequest, form: BroadcastForm, broadcast: Broadcast | None, status: int = 200
    ) -> HttpResponse:
        if not self.can(Role.MARKETER):
            for field in form.fields.values():
                field.disabled = True
        context = {
            "form": form,
            "broadcast": broadcast,
            "time_zone": self.workspace.zone.key,
            "postal_address_missing": not self.workspace.postal_address.strip(),
            "locked": broadcast is not None and broadcast.status not in EDITABLE,
            "can_save": self.can(Role.MARKETER) and (broadcast is None or broadcast.status in EDITABLE),
            # The A/B split test's section slots in here (templates/campaigns/broadcasts/composer.html).
            "ab_section": None,
        }
        return render(request, "campaigns/broadcasts/composer.html", context, status=status)

    def _save(self, request: HttpRequest, broadcast: Broadcast | None) -> HttpResponse:
        with timezone.override(self.workspace.zone):
            form = self._form(broadcast, request.POST)
            if not form.is_valid():
                return self._render(request, form, broadcast, status=400)
            try:
                if broadcast is None:
                    saved = services.broadcast_create(
                        workspace=self.workspace, data=form.broadcast_input(), user=request_user(request)
                    )
                else:
                    saved = services.broadcast_update(
                        workspace=self.workspace, broadcast_id=broadcast.pk, data=form.broadcast_input()
                    )
            except ValidationError as error:
                add_service_errors(form, error)
                return self._render(request, form, broadcast, status=400)
        if request.POST.get("then") == "schedule" and saved.status == BroadcastStatus.DRAFT:
            return redirect("broadcast-schedule", broadcast_id=saved.pk)
        messages.success(request, _("Broadcast saved."))
        return redirect("broadcast", broadcast_id=saved.pk)


class BroadcastCreateView(ComposerView):
    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, self._form(None), None)

    def post(self, request: HttpRequest) -> HttpResponse:
        return self._save(request, None)


class BroadcastEditView(ComposerView):
    """A broadcast past scheduling shows its settings read-only here (duplicate it to change)."""

    def get(self, request: HttpRequest, broadcast_id: int) -> HttpResponse:
        broadcast = broadcast_or_404(self.workspace, broadcast_id)
        with timezone.override(self.workspace.zone):
            form = self._form(broadcast)
            if broadcast.status not in EDITABLE:
                for field in form.fields.values():
                    field.disabled = True
            return self._render(request, form, broadcast)

    def post(self, request: HttpRequest, broadcast_id: int) -> HttpResponse:
        broadcast = broadcast_or_404(self.workspace, broadcast_id)
        if broadcast.status not in EDITABLE:
            messages.error(request, _("Only a draft or scheduled broadcast can be changed; duplicate it instead."))
            return redirect("broadcast", broadcast_id=broadcast.pk)
        return self._save(request, broadcast)


class AudienceCountView(WorkspaceView):
    """The composer's live count and the review's warnings for the audience being composed
    (htmx, from the audience fields of the form, nothing saved)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        form = BroadcastForm(request.GET, choices=page_data.composer_choices(self.workspace))
        form.is_valid()  # only the audience fields are read; the rest may still be empty
        refused = [name for name in AUDIENCE_FIELDS if name in form.errors]
        if refused:
            return HttpResponse(
                _("Choose lists, segments and tags of this workspace."), status=400, content_type="text/plain"
            )
        draft = Broadcast(
            workspace=self.workspace, **{name: form.cleaned_data.get(name) or [] for name in AUDIENCE_FIELDS}
        )
        count = audience_count(self.workspace, draft)
        return render(
            request,
            "campaigns/broadcasts/partials/audience_count.html",
            {"count": count, "warnings": page_data.warnings_for(self.workspace, draft, count.recipients)},
        )


class PreviewView(WorkspaceView):
    """A template rendered as one recipient would get it (htmx), through the content editor's
    own preview: the composer's chosen template and subject, or a broadcast's."""

    def get(self, request: HttpRequest) -> HttpResponse:
        template_id = parse_id(request.GET.get("template", ""))
        if template_id is None:
            return render(
                request, "campaigns/broadcasts/partials/preview.html", {"problem": _("Choose a template first.")}
            )
        try:
            template = content_selectors.template_get(workspace=self.workspace, template_id=template_id)
        except EmailTemplate.DoesNotExist:
            raise Http404 from None
        return render_preview(
            request, self.workspace, template, request.GET.get("subject", ""), request.GET.get("preheader", "")
        )


def render_preview(
    request: HttpRequest, workspace: Workspace, template: EmailTemplate, subject: str, preheader: str = ""
) -> HttpResponse:
    """The preview partial for the contact whose address is in `?contact=` (the built-in sample
    person when empty)."""
    address = request.GET.get("contact", "").strip()
    contact = None
    if address:
        contact = audience_selectors.contact_find(workspace=workspace, email=address[:254])
        if contact is None:
            problem = _("No contact with the address %(email)s.") % {"email": address[:254]}
            return render(request, "campaigns/broadcasts/partials/preview.html", {"problem": problem})
    context = preview_context(workspace=workspace, contact_id=contact.pk if contact else None, event_key="")
    data = {field: getattr(template, field) for field in content_services.CONTENT_FIELDS}
    if subject.strip():
        data["subject"] = subject.strip()[:MAX_SUBJECT_CHARS]
    if preheader.strip():
        data["preheader"] = preheader.strip()[:MAX_PREHEADER_CHARS]
    result = preview(workspace=workspace, data=data, context=context)
    return render(
        request,
        "campaigns/broadcasts/partials/preview.html",
        {"preview": result, "contact": contact, "template": template},
    )


def live_context(workspace: Workspace, broadcast: Broadcast) -> dict[str, Any]:
    """The part of the broadcast page that refreshes: status, progress, report."""
    figures = selectors.progress(workspace=workspace, broadcast_ids=[broadcast.pk])[broadcast.pk]
    return {
        "broadcast": broadcast,
        "figures": figures,
        "shares": {
            "sent": figures.percent(figures.sent + figures.in_doubt),
            "skipped": figures.percent(figures.skipped),
            "failed": figures.percent(figures.failed),
            "queued": figures.percent(figures.queued + figures.sending),
        },
        "open_rate": figures.rate(figures.opened),
        "click_rate": figures.rate(figures.clicked),
        "clicks": page_data.click_map(workspace, broadcast) if figures.clicked else [],
        "skips": page_data.skip_reasons(figures.skipped_by_reason),
        "polling": broadcast.status in ACTIVE,
        "refresh_seconds": REFRESH_SECONDS,
        "starts_at": services.starts_at(broadcast) if broadcast.status == BroadcastStatus.SCHEDULED else None,
    }


class BroadcastView(WorkspaceView):
    def get(self, request: HttpRequest, broadcast_id: int) -> HttpResponse:
        broadcast = broadcast_or_404(self.workspace, broadcast_id)
        names = page_data.names_for(self.workspace, [broadcast])
        with timezone.override(self.workspace.zone):
            context = {
                **live_context(self.workspace, broadcast),
                "audience": page_data.audience_text(broadcast, names),
                "schedule": page_data.schedule_text(broadcast, self.workspace),
                "priority": page_data.priority_text(broadcast.priority),
                "tracking": page_data.tracking_text(self.workspace, broadcast),
                "editable": broadcast.status in EDITABLE,
                "me": request_user(request).email,
                # The A/B test's own page is linked from the spot left for it (block "ab").
                "has_ab_test": ab.has_test(broadcast),
            }
            return render(request, "campaigns/broadcasts/broadcast.html", context)


class BroadcastLiveView(WorkspaceView):
    """The refreshing part of the broadcast page (htmx polls it while the broadcast is active)."""

    def get(self, request: HttpRequest, broadcast_id: int) -> HttpResponse:
        broadcast = broadcast_or_404(self.workspace, broadcast_id)
        with timezone.override(self.workspace.zone):
            return render(request, "campaigns/broadcasts/partials/live.html", live_context(self.workspace, broadcast))


class BroadcastPreviewView(WorkspaceView):
    """The broadcast's email as a chosen recipient gets it (htmx)."""

    def get(self, request: HttpRequest, broadcast_id: int) -> HttpResponse:
        broadcast = broadcast_or_404(self.workspace, broadcast_id)
        if broadcast.template is None:
            return render(
                request, "campaigns/broadcasts/partials/preview.html", {"problem": _("Choose a template first.")}
            )
        return render_preview(request, self.workspace, broadcast.template, broadcast.subject, broadcast.preheader)
