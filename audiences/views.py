"""Browser pages of the audience: contacts, a contact's profile, lists, custom fields,
suppressions, and the public subscribe / confirm pages of a list."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View

from audiences import selectors, services
from audiences.bulk import (
    ACTION_DONE,
    bulk_job_create,
    bulk_job_get,
    bulk_jobs,
    contacts_bulk_apply,
    deletion_summary,
)
from audiences.events.views import timeline_context
from audiences.filters import (
    FILTER_KEYS,
    ContactFilter,
    contacts_matching,
    contacts_page,
    filter_field_choices,
    filter_operator_choices,
)
from audiences.forms import (
    ContactFilterForm,
    ContactForm,
    CustomFieldDeleteForm,
    CustomFieldForm,
    MailingListForm,
    PublicSubscribeForm,
    SuppressionForm,
)
from audiences.insights.selectors import contact_purchases
from audiences.models import BulkAction, ConsentSource, Contact, JobStatus, MailingList, Segment
from esp import attempts
from esp.forms import add_service_errors
from esp.input import parse_id
from esp.models import Role, Workspace
from esp.net import client_limit_key
from esp.web import WorkspaceView, confirm_page, request_user

PAGE_SIZE = 50
ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


def _errors(request: HttpRequest, error: ValidationError) -> None:
    for message in error.messages:
        messages.error(request, message)


def _consent_context(request: HttpRequest, source: str, text: str = "") -> services.ConsentContext:
    return services.ConsentContext.from_request(request.META, source, text)


def _filter_errors(error: ValidationError) -> dict[str, str]:
    if hasattr(error, "error_dict"):
        return {name: " ".join(texts) for name, texts in error.message_dict.items()}
    return {"": " ".join(error.messages)}


class ContactsView(WorkspaceView):
    """Search and filter contacts; keyset pagination (no COUNT(*) over a million rows);
    bulk actions on the ticked contacts, or on everything the filter matches as a job."""

    def get(self, request: HttpRequest) -> HttpResponse:
        contact_filter = ContactFilter.from_data(request.GET.dict())
        before = request.GET.get("before", "")
        errors: dict[str, str] = {}
        try:
            page, next_before = contacts_page(
                workspace=self.workspace,
                contact_filter=contact_filter,
                before=parse_id(before),
                size=PAGE_SIZE,
            )
        except ValidationError as error:
            page, next_before, errors = [], None, _filter_errors(error)
        query = request.GET.copy()
        query.pop("before", None)
        return render(
            request,
            "audiences/contacts.html",
            {
                "contacts": page,
                "next_before": next_before,
                "filter_form": ContactFilterForm(request.GET or None),
                "contact_filter": contact_filter,
                "filter_errors": errors,
                "query": query.urlencode(),
                "lists": selectors.lists(workspace=self.workspace),
                "segments": Segment.objects.in_workspace(self.workspace).order_by("name").only("pk", "name"),
                "field_choices": filter_field_choices(workspace=self.workspace),
                "operator_choices": filter_operator_choices(),
                # So that a marketer who left a job's page finds it again.
                "running_jobs": bulk_jobs(workspace=self.workspace).filter(status__in=ACTIVE_STATUSES)[:3],
            },
            status=400 if errors else 200,
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        target_all = request.POST.get("target") == "all"
        ids = [] if target_all else [i for i in map(parse_id, request.POST.getlist("ids")) if i is not None][:PAGE_SIZE]
        back = f"{request.path}?{request.POST.get('query', '')}"
        if not target_all and not ids:
            messages.error(request, _("Tick some contacts first, or choose “all matching”."))
            return redirect(back)
        action = request.POST.get("action", "")
        value = request.POST.get("list_value" if action in ("subscribe", "unsubscribe") else "value", "")
        contact_filter = ContactFilter.from_data(request.POST.dict())
        if action == BulkAction.DELETE and request.POST.get("confirmed") != "yes":
            return self._confirm_delete(request, contact_filter, None if target_all else ids)
        try:
            if target_all:
                job = bulk_job_create(
                    workspace=self.workspace,
                    user=request_user(request),
                    contact_filter=contact_filter,
                    action=action,
                    value=value,
                )
                return redirect("contacts-bulk-job", bulk_job_id=job.pk)
            count = contacts_bulk_apply(workspace=self.workspace, contact_ids=ids, action=action, value=value)
        except ValidationError as error:
            _errors(request, error)
            return redirect(back)
        if action == BulkAction.DELETE:
            text = ngettext("%(count)d contact deleted.", "%(count)d contacts deleted.", count)
        else:
            text = ngettext("Done: %(count)d contact changed.", "Done: %(count)d contacts changed.", count)
        messages.success(request, text % {"count": count})
        return redirect(back)

    def _confirm_delete(
        self, request: HttpRequest, contact_filter: ContactFilter, ids: list[int] | None
    ) -> HttpResponse:
        """Say how many contacts go, and what goes with them, before anything is deleted."""
        try:
            if ids is None:
                contacts = contacts_matching(workspace=self.workspace, contact_filter=contact_filter)
            else:
                contacts = Contact.objects.in_workspace(self.workspace).filter(pk__in=ids)
            summary = deletion_summary(workspace=self.workspace, contacts=contacts)
        except ValidationError as error:
            _errors(request, error)
            return redirect(f"{request.path}?{request.POST.get('query', '')}")
        return render(
            request,
            "audiences/contacts_delete.html",
            {
                "summary": summary,
                "ids": ids,
                "target_all": ids is None,
                "contact_filter": contact_filter,
                "filter_data": [(k, v) for k, v in request.POST.items() if k in FILTER_KEYS and v],
                "query": request.POST.get("query", ""),
            },
        )


class ContactsBulkJobView(WorkspaceView):
    """A bulk action's progress (polled with htmx while it runs) and its outcome."""

    def get(self, request: HttpRequest, bulk_job_id: int) -> HttpResponse:
        job = bulk_job_get(workspace=self.workspace, job_id=bulk_job_id)
        mailing_list = None
        if job.action in (BulkAction.SUBSCRIBE, BulkAction.UNSUBSCRIBE) and parse_id(job.value) is not None:
            mailing_list = MailingList.objects.in_workspace(self.workspace).filter(pk=int(job.value)).first()
        context = {"job": job, "done_word": ACTION_DONE.get(job.action, ""), "mailing_list": mailing_list}
        if request.headers.get("HX-Request") == "true":
            return render(request, "audiences/partials/bulk_progress.html", context)
        return render(request, "audiences/contacts_bulk_job.html", context)


class ContactCreateView(WorkspaceView):
    def get(self, request: HttpRequest) -> HttpResponse:
        form = ContactForm(custom_fields=list(selectors.custom_fields(workspace=self.workspace)))
        return render(request, "audiences/contact_form.html", {"form": form})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ContactForm(request.POST, custom_fields=list(selectors.custom_fields(workspace=self.workspace)))
        try:
            contact, created = services.contact_save(
                workspace=self.workspace, data=form.data_for_service(), source=ConsentSource.ADMIN
            )
        except ValidationError as error:
            form.add_service_errors(error)
            return render(request, "audiences/contact_form.html", {"form": form}, status=400)
        messages.success(request, _("Contact saved.") if not created else _("Contact created."))
        return redirect("contact", contact_id=contact.pk)


class ContactView(WorkspaceView):
    def _render(
        self, request: HttpRequest, contact: Contact, form: ContactForm | None = None, status: int = 200
    ) -> HttpResponse:
        custom_fields = list(selectors.custom_fields(workspace=self.workspace))
        form = form or ContactForm(initial=ContactForm.initial_for(contact), custom_fields=custom_fields)
        if not self.can(Role.MARKETER):
            for field in form.fields.values():
                field.disabled = True
        subscriptions = selectors.contact_subscriptions(workspace=self.workspace, contact=contact)
        subscribed_ids = {s.mailing_list_id for s in subscriptions}
        return render(
            request,
            "audiences/contact.html",
            {
                "contact": contact,
                "form": form,
                "subscriptions": subscriptions,
                "other_lists": selectors.lists(workspace=self.workspace).exclude(pk__in=subscribed_ids),
                "consent_records": contact.consent_records.select_related("mailing_list")[:100],
                "suppressed": services.is_suppressed(workspace=self.workspace, email=contact.email),
                "purchases": contact_purchases(workspace=self.workspace, contact=contact),
                **timeline_context(workspace=self.workspace, contact=contact),
            },
            status=status,
        )

    def get(self, request: HttpRequest, contact_id: int) -> HttpResponse:
        contact = selectors.contact_get(workspace=self.workspace, contact_id=contact_id)
        return self._render(request, contact)

    def post(self, request: HttpRequest, contact_id: int) -> HttpResponse:
        contact = selectors.contact_get(workspace=self.workspace, contact_id=contact_id)
        form = ContactForm(request.POST, custom_fields=list(selectors.custom_fields(workspace=self.workspace)))
        try:
            services.contact_update(workspace=self.workspace, contact_id=contact.pk, data=form.data_for_service())
        except ValidationError as error:
            form.add_service_errors(error)
            return self._render(request, contact, form, status=400)
        messages.success(request, _("Contact saved."))
        return redirect("contact", contact_id=contact.pk)


class ContactSubscriptionView(WorkspaceView):
    """Subscribe the contact to a list, or unsubscribe it, from the profile page."""

    def post(self, request: HttpRequest, contact_id: int) -> HttpResponse:
        contact = selectors.contact_get(workspace=self.workspace, contact_id=contact_id)
        list_id = request.POST.get("list", "")
        mailing_list = selectors.list_get(workspace=self.workspace, list_id=parse_id(list_id) or 0)
        context = _consent_context(request, ConsentSource.ADMIN, _("Changed by %(user)s") % {"user": request.user})
        try:
            if request.POST.get("action") == "unsubscribe":
                services.subscription_unsubscribe(
                    workspace=self.workspace, contact=contact, mailing_list=mailing_list, context=context
                )
            else:
                services.subscription_subscribe(
                    workspace=self.workspace, contact=contact, mailing_list=mailing_list, context=context
                )
        except ValidationError as error:
            _errors(request, error)
        return redirect("contact", contact_id=contact.pk)


def contact_delete_consequences(footprint: selectors.ContactFootprint) -> list[str]:
    """What the delete confirmation lists: the events always, the rest when there are any."""
    lines = [
        ngettext(
            "%(count)d event (orders, product views, visits) is deleted.",
            "%(count)d events (orders, product views, visits) are deleted.",
            footprint.events,
        )
        % {"count": footprint.events}
    ]
    if footprint.subscriptions:
        lines.append(
            ngettext(
                "%(count)d list subscription is deleted.",
                "%(count)d list subscriptions are deleted.",
                footprint.subscriptions,
            )
            % {"count": footprint.subscriptions}
        )
    if footprint.consent_records:
        lines.append(
            ngettext(
                "%(count)d consent record is deleted.",
                "%(count)d consent records are deleted.",
                footprint.consent_records,
            )
            % {"count": footprint.consent_records}
        )
    if footprint.messages:
        lines.append(
            ngettext(
                "%(count)d message stays in the send log without the person, so campaign figures do not change.",
                "%(count)d messages stay in the send log without the person, so campaign figures do not change.",
                footprint.messages,
            )
            % {"count": footprint.messages}
        )
    lines.append(_("This cannot be undone. To stop sending but keep the history, unsubscribe the contact instead."))
    return lines


class ContactDeleteView(WorkspaceView):
    read_role = Role.MARKETER

    def get(self, request: HttpRequest, contact_id: int) -> HttpResponse:
        contact = selectors.contact_get(workspace=self.workspace, contact_id=contact_id)
        footprint = selectors.contact_footprint(workspace=self.workspace, contact=contact)
        return confirm_page(
            request,
            title=_("Delete contact"),
            question=_("Delete %(email)s and everything recorded about them?") % {"email": contact.email},
            consequences=contact_delete_consequences(footprint),
            button=_("Delete contact"),
            cancel=reverse("contact", args=[contact.pk]),
        )

    def post(self, request: HttpRequest, contact_id: int) -> HttpResponse:
        contact = selectors.contact_get(workspace=self.workspace, contact_id=contact_id)
        footprint = selectors.contact_footprint(workspace=self.workspace, contact=contact)
        services.contact_delete(workspace=self.workspace, contact_id=contact.pk)
        messages.success(
            request,
            ngettext(
                "Contact %(email)s deleted, with %(count)d event.",
                "Contact %(email)s deleted, with %(count)d events.",
                footprint.events,
            )
            % {"email": contact.email, "count": footprint.events},
        )
        return redirect("contacts")


class AudienceOverviewView(WorkspaceView):
    """The Overview page's audience section (loaded into esp's home page by URL, as the layers
    run the other way): size, growth, segments and the next step."""

    def get(self, request: HttpRequest) -> HttpResponse:
        overview = selectors.audience_overview(workspace=self.workspace)
        return render(request, "audiences/partials/overview.html", {"overview": overview})


class ListsView(WorkspaceView):
    def _render(self, request: HttpRequest, form: MailingListForm | None = None, status: int = 200) -> HttpResponse:
        lists = selectors.lists_with_counts(workspace=self.workspace)
        return render(
            request, "audiences/lists.html", {"lists": lists, "form": form or MailingListForm()}, status=status
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = MailingListForm(request.POST)
        if form.is_valid():
            try:
                services.list_save(workspace=self.workspace, data=form.cleaned_data)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, _("List created."))
                return redirect("lists")
        return self._render(request, form, status=400)


class ListEditView(WorkspaceView):
    def get(self, request: HttpRequest, list_id: int) -> HttpResponse:
        mailing_list = selectors.list_get(workspace=self.workspace, list_id=list_id)
        return render(
            request,
            "audiences/list_form.html",
            {"form": MailingListForm(instance=mailing_list), "mailing_list": mailing_list},
        )

    def post(self, request: HttpRequest, list_id: int) -> HttpResponse:
        mailing_list = selectors.list_get(workspace=self.workspace, list_id=list_id)
        if request.POST.get("action") == "delete":
            services.list_delete(workspace=self.workspace, list_id=mailing_list.pk)
            messages.success(request, _("List deleted."))
            return redirect("lists")
        # A copy of its own: validating the form changes the instance, the page shows the saved name.
        copy = selectors.list_get(workspace=self.workspace, list_id=mailing_list.pk)
        form = MailingListForm(request.POST, instance=copy)
        if form.is_valid():
            try:
                services.list_save(workspace=self.workspace, data=form.cleaned_data, list_id=mailing_list.pk)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, _("List saved."))
                return redirect("lists")
        return render(request, "audiences/list_form.html", {"form": form, "mailing_list": mailing_list}, status=400)


class CustomFieldsView(WorkspaceView):
    def _render(self, request: HttpRequest, form: CustomFieldForm | None = None, status: int = 200) -> HttpResponse:
        fields = selectors.custom_fields(workspace=self.workspace)
        return render(
            request, "audiences/fields.html", {"fields": fields, "form": form or CustomFieldForm()}, status=status
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = CustomFieldForm(request.POST)
        if form.is_valid():
            try:
                field = services.custom_field_save(workspace=self.workspace, data=form.cleaned_data)
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, _("Field %(key)s added.") % {"key": field.key})
                return redirect("custom-fields")
        return self._render(request, form, status=400)


class CustomFieldDeleteView(WorkspaceView):
    read_role = Role.MARKETER

    def get(self, request: HttpRequest, field_id: int) -> HttpResponse:
        field = selectors.custom_field_get(workspace=self.workspace, field_id=field_id)
        holders = selectors.custom_field_holders(workspace=self.workspace, field=field)
        return confirm_page(
            request,
            title=_("Remove custom field"),
            question=_("Remove the field %(label)s (%(key)s)?") % {"label": field.label, "key": field.key},
            consequences=[
                ngettext(
                    "%(count)d contact has a value in it.",
                    "%(count)d contacts have a value in it.",
                    holders,
                )
                % {"count": holders},
                _("Without the box below the values stay on the contacts: adding the field again brings them back."),
                _("Segments and emails that use the field no longer see a declared field."),
            ],
            button=_("Remove field"),
            cancel="custom-fields",
            form=CustomFieldDeleteForm(),
        )

    def post(self, request: HttpRequest, field_id: int) -> HttpResponse:
        field = selectors.custom_field_get(workspace=self.workspace, field_id=field_id)
        form = CustomFieldDeleteForm(request.POST)
        purge = form.is_valid() and form.cleaned_data["purge_values"]
        holders = selectors.custom_field_holders(workspace=self.workspace, field=field) if purge else 0
        services.custom_field_delete(workspace=self.workspace, field_id=field.pk, purge_values=purge)
        if purge:
            message = ngettext(
                "Field %(key)s removed, and its value deleted from %(count)d contact.",
                "Field %(key)s removed, and its values deleted from %(count)d contacts.",
                holders,
            ) % {"key": field.key, "count": holders}
        else:
            message = _("Field %(key)s removed. Values stored on contacts are kept.") % {"key": field.key}
        messages.success(request, message)
        return redirect("custom-fields")


class SuppressionsView(WorkspaceView):
    def _render(self, request: HttpRequest, form: SuppressionForm | None = None, status: int = 200) -> HttpResponse:
        suppressions = selectors.suppressions(workspace=self.workspace)
        before = request.GET.get("before", "")
        if parse_id(before) is not None:
            suppressions = suppressions.filter(id__lt=parse_id(before))
        page = list(suppressions[: PAGE_SIZE + 1])
        return render(
            request,
            "audiences/suppressions.html",
            {
                "suppressions": page[:PAGE_SIZE],
                "next_before": page[PAGE_SIZE - 1].pk if len(page) > PAGE_SIZE else None,
                "form": form or SuppressionForm(),
            },
            status=status,
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = SuppressionForm(request.POST)
        if not form.is_valid():
            return self._render(request, form, status=400)
        services.suppression_add(workspace=self.workspace, **form.cleaned_data)
        messages.success(request, _("%(email)s will not be mailed.") % {"email": form.cleaned_data["email"]})
        return redirect("suppressions")


class SuppressionLiftView(WorkspaceView):
    write_role = Role.OWNER  # lifting lets mail reach someone who bounced or complained

    def post(self, request: HttpRequest, suppression_id: int) -> HttpResponse:
        services.suppression_lift(workspace=self.workspace, suppression_id=suppression_id)
        messages.success(request, _("Suppression lifted."))
        return redirect("suppressions")


# --- public pages (no login): subscribe to a public list, confirm a subscription ------------


def _public_list(workspace_slug: str, list_id: int) -> tuple[Workspace, MailingList]:
    mailing_list = selectors.public_list_get(workspace_slug=workspace_slug, list_id=list_id)
    return mailing_list.workspace, mailing_list


class PublicSubscribeView(View):
    def get(self, request: HttpRequest, workspace_slug: str, list_id: int) -> HttpResponse:
        workspace, mailing_list = _public_list(workspace_slug, list_id)
        context = {"workspace": workspace, "mailing_list": mailing_list, "form": PublicSubscribeForm()}
        return render(request, "audiences/public_subscribe.html", context)

    def post(self, request: HttpRequest, workspace_slug: str, list_id: int) -> HttpResponse:
        workspace, mailing_list = _public_list(workspace_slug, list_id)
        form = PublicSubscribeForm(request.POST)
        context: dict[str, Any] = {"workspace": workspace, "mailing_list": mailing_list, "form": form}
        if not form.is_valid():
            return render(request, "audiences/public_subscribe.html", context, status=400)
        # The same page whatever happened (sent, already pending, suppressed, limited): the answer
        # must not tell a stranger anything about the address.
        context["pending"] = mailing_list.double_opt_in
        ip = client_limit_key(request.META)
        if attempts.hit([(attempts.SUBSCRIBE_IP, ip)]) is not None:
            attempts.logger.warning("subscription ignored (too many from one address): ip=%s list=%s", ip, list_id)
            return render(request, "audiences/public_subscribed.html", context)
        consent_text = str(form.fields["consent"].label)
        try:
            contact, _created = services.contact_save(
                workspace=workspace,
                data={"email": form.cleaned_data["email"], "first_name": form.cleaned_data["first_name"]},
                source=ConsentSource.FORM,
                # Anyone may post any address here: a known contact's fields (the name its mail
                # greets it with) are not a stranger's to change.
                update_existing=False,
            )
            services.subscription_subscribe(
                workspace=workspace,
                contact=contact,
                mailing_list=mailing_list,
                context=_consent_context(request, ConsentSource.FORM, consent_text),
            )
        except ValidationError:
            pass  # suppressed: said nowhere
        return render(request, "audiences/public_subscribed.html", context)


class ConfirmSubscriptionView(View):
    """GET shows a button (mail scanners prefetch links); the POST confirms."""

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        subscription = services.subscription_by_token(token)
        context = {"subscription": subscription, "workspace": subscription.workspace if subscription else None}
        return render(request, "audiences/confirm.html", context, status=200 if subscription else 404)

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        subscription = services.subscription_by_token(token)
        if subscription is None:
            return render(request, "audiences/confirm.html", {"subscription": None}, status=404)
        subscription = services.subscription_confirm(
            subscription=subscription, context=_consent_context(request, ConsentSource.FORM)
        )
        context = {"subscription": subscription, "workspace": subscription.workspace, "done": True}
        return render(request, "audiences/confirm.html", context)
