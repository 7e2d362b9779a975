"""What a marketer does to a broadcast from its page: schedule or send now and cancel (each
asks first, on a page of its own that says what will happen), back to draft, pause, resume,
duplicate, and send a test to oneself. A refused action says why on the broadcast page."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from audiences import selectors as audience_selectors
from campaigns.broadcast_models import Broadcast, BroadcastStatus, SendMode
from campaigns.broadcasts import page_data, services
from campaigns.broadcasts.audience import audience_count
from campaigns.broadcasts.views import broadcast_or_404
from campaigns.content.starters import SAMPLE_CONTACT
from campaigns.delivery.services import message_send_test
from esp.api.errors import error_fields
from esp.models import Role
from esp.web import WorkspaceView, request_user


def _refused(request: HttpRequest, error: ValidationError) -> None:
    for problems in error_fields(error).values():
        for problem in problems:
            messages.error(request, problem)


class ScheduleView(WorkspaceView):
    """The confirmation says who gets it, how many, when, and what to look at first; the
    POST schedules (a "now" broadcast is snapshotted at once)."""

    read_role = Role.MARKETER

    def get(self, request: HttpRequest, broadcast_id: int) -> HttpResponse:
        broadcast = broadcast_or_404(self.workspace, broadcast_id)
        return self._page(request, broadcast, [])

    def _page(self, request: HttpRequest, broadcast: Broadcast, problems: list[str], status: int = 200) -> HttpResponse:
        count = audience_count(self.workspace, broadcast)
        names = page_data.names_for(self.workspace, [broadcast])
        now = broadcast.send_mode == SendMode.NOW
        with timezone.override(self.workspace.zone):
            question = ngettext(
                "Send “%(name)s” to %(count)s recipient?",
                "Send “%(name)s” to %(count)s recipients?",
                count.recipients,
            ) % {"name": broadcast.name, "count": formats.number_format(count.recipients, force_grouping=True)}
            context = {
                "broadcast": broadcast,
                "title": _("Send now") if now else _("Schedule"),
                "question": question,
                "consequences": [
                    _("Who: %(audience)s.") % {"audience": page_data.audience_text(broadcast, names)},
                    _("When: %(when)s.") % {"when": page_data.schedule_text(broadcast, self.workspace)},
                    _(
                        "The audience is taken when sending starts: the number can change until then. Caps, "
                        "quiet hours and the suppression list are checked again for each email."
                    ),
                ],
                "warnings": page_data.warnings_for(self.workspace, broadcast, count.recipients),
                "problems": problems,
                "can_go": broadcast.status == BroadcastStatus.DRAFT and not problems,
                "button": _("Send now") if now else _("Schedule"),
            }
            return render(request, "campaigns/broadcasts/confirm.html", context, status=status)

    def post(self, request: HttpRequest, broadcast_id: int) -> HttpResponse:
        broadcast = broadcast_or_404(self.workspace, broadcast_id)
        try:
            scheduled = services.broadcast_schedule(workspace=self.workspace, broadcast_id=broadcast.pk)
        except ValidationError as error:
            problems = [p for found in error_fields(error).values() for p in found]
            return self._page(request, broadcast, problems, status=400)
        if scheduled.status == BroadcastStatus.SENDING:
            messages.success(request, _("Sending started: %(count)d emails queued.") % {"count": scheduled.recipients})
        else:
            messages.success(request, _("Broadcast scheduled."))
        return redirect("broadcast", broadcast_id=broadcast.pk)


class CancelView(WorkspaceView):
    read_role = Role.MARKETER

    def get(self, request: HttpRequest, broadcast_id: int) -> HttpResponse:
        broadcast = broadcast_or_404(self.workspace, broadcast_id)
        can_go = broadcast.status in (BroadcastStatus.SCHEDULED, BroadcastStatus.SENDING, BroadcastStatus.PAUSED)
        context = {
            "broadcast": broadcast,
            "title": _("Cancel broadcast"),
            "question": _("Cancel “%(name)s” for good?") % {"name": broadcast.name},
            "consequences": [
                _("Emails not handed to a worker yet are not sent; each is logged as skipped (cancelled)."),
                _("Emails already sent stay sent. A cancelled broadcast cannot resume: duplicate it to send again."),
            ],
            "problems": [] if can_go else [_("Only a scheduled, sending or paused broadcast can be cancelled.")],
            "can_go": can_go,
            "button": _("Cancel broadcast"),
        }
        return render(request, "campaigns/broadcasts/confirm.html", context)

    def post(self, request: HttpRequest, broadcast_id: int) -> HttpResponse:
        broadcast = broadcast_or_404(self.workspace, broadcast_id)
        try:
            held = services.broadcast_cancel(workspace=self.workspace, broadcast_id=broadcast.pk)
        except ValidationError as error:
            _refused(request, error)
        else:
            messages.success(
                request,
                ngettext(
                    "Broadcast cancelled: %(count)d email will not be sent.",
                    "Broadcast cancelled: %(count)d emails will not be sent.",
                    held,
                )
                % {"count": held},
            )
        return redirect("broadcast", broadcast_id=broadcast.pk)


class UnscheduleView(WorkspaceView):
    def post(self, request: HttpRequest, broadcast_id: int) -> HttpResponse:
        broadcast = broadcast_or_404(self.workspace, broadcast_id)
        try:
            services.broadcast_unschedule(workspace=self.workspace, broadcast_id=broadcast.pk)
        except ValidationError as error:
            _refused(request, error)
        else:
            messages.success(request, _("Back to draft: it will not be sent until you schedule it again."))
        return redirect("broadcast", broadcast_id=broadcast.pk)


class PauseView(WorkspaceView):
    def post(self, request: HttpRequest, broadcast_id: int) -> HttpResponse:
        broadcast = broadcast_or_404(self.workspace, broadcast_id)
        try:
            held = services.broadcast_pause(workspace=self.workspace, broadcast_id=broadcast.pk)
        except ValidationError as error:
            _refused(request, error)
        else:
            messages.success(request, _("Paused: %(count)d emails are held until you resume.") % {"count": held})
        return redirect("broadcast", broadcast_id=broadcast.pk)


class ResumeView(WorkspaceView):
    def post(self, request: HttpRequest, broadcast_id: int) -> HttpResponse:
        broadcast = broadcast_or_404(self.workspace, broadcast_id)
        try:
            services.broadcast_resume(workspace=self.workspace, broadcast_id=broadcast.pk)
        except ValidationError as error:
            _refused(request, error)
        else:
            messages.success(request, _("Resumed: held emails go at their own times; those past due go now."))
        return redirect("broadcast", broadcast_id=broadcast.pk)


class DuplicateView(WorkspaceView):
    def post(self, request: HttpRequest, broadcast_id: int) -> HttpResponse:
        broadcast = broadcast_or_404(self.workspace, broadcast_id)
        copy = services.broadcast_duplicate(
            workspace=self.workspace, broadcast_id=broadcast.pk, user=request_user(request)
        )
        messages.success(request, _("A draft copy was made: check it and schedule it."))
        return redirect("broadcast-edit", broadcast_id=copy.pk)


class SendTestView(WorkspaceView):
    """The broadcast's email, with its subject, to the logged-in user, personalised as the
    contact whose address is given (the built-in sample person without one)."""

    def post(self, request: HttpRequest, broadcast_id: int) -> HttpResponse:
        broadcast = broadcast_or_404(self.workspace, broadcast_id)
        if broadcast.template is None:
            messages.error(request, _("Choose a template first."))
            return redirect("broadcast", broadcast_id=broadcast.pk)
        address = request.POST.get("contact", "").strip()[:254]
        contact = audience_selectors.contact_find(workspace=self.workspace, email=address) if address else None
        if address and contact is None:
            messages.error(request, _("No contact with the address %(email)s.") % {"email": address})
            return redirect("broadcast", broadcast_id=broadcast.pk)
        user = request_user(request)
        try:
            message = message_send_test(
                workspace=self.workspace,
                template=broadcast.template,
                to_email=user.email,
                sample_contact=contact,
                sample_data=None if contact is not None else SAMPLE_CONTACT,
                subject_override=broadcast.subject,
                preheader_override=broadcast.preheader,
                broadcast_id=broadcast.pk,
            )
        except ValidationError as error:
            _refused(request, error)
        else:
            messages.success(
                request,
                format_html(
                    _('A test is on its way to {email}: <a href="{url}">follow it in the send log</a>.'),
                    email=user.email,
                    url=reverse("message", args=[message.pk]),
                ),
            )
        return redirect("broadcast", broadcast_id=broadcast.pk)
