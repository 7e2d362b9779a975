"""Browser pages of the audience: contacts, a contact's profile, lists, custom fields,
suppressions, and the public subscribe / confirm pages of a list."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
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
from audiences.event_views import timeline_context
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
    CustomFieldForm,
    MailingListForm,
    PublicSubscribeForm,
    SuppressionForm,
)
from audiences.insights import contact_purchases
from audiences.jobs import BulkAction, JobStatus
from audiences.models import ConsentSource, Contact, CustomField, MailingList, Segment, Subscription, Suppression
from audiences.tasks import CONFIRM_SALT
from esp.models import Role, Workspace
from esp.web import WorkspaceView, request_user

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
                before=int(before) if before.isdigit() else None,
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
                "lists": MailingList.objects.in_workspace(self.workspace),
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
        ids = [] if target_all else [int(i) for i in request.POST.getlist("ids") if i.isdigit()][:PAGE_SIZE]
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
        if job.action in (BulkAction.SUBSCRIBE, BulkAction.UNSUBSCRIBE) and job.value.isdigit():
            mailing_list = MailingList.objects.in_workspace(self.workspace).filter(pk=int(job.value)).first()
        context = {"job": job, "done_word": ACTION_DONE.get(job.action, ""), "mailing_list": mailing_list}
        if request.headers.get("HX-Request") == "true":
            return render(request, "audiences/partials/bulk_progress.html", context)
        return render(request, "audiences/contacts_bulk_job.html", context)


class ContactCreateView(WorkspaceView):
    def get(self, request: HttpRequest) -> HttpResponse:
        form = ContactForm(custom_fields=list(CustomField.objects.in_workspace(self.workspace)))
        return render(request, "audiences/contact_form.html", {"form": form})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ContactForm(request.POST, custom_fields=list(CustomField.objects.in_workspace(self.workspace)))
        try:
            contact, created = services.contact_save(
                workspace=self.workspace, data=form.data_for_service(), source=ConsentSource.ADMIN
            )
        except ValidationError as error:
            form.add_service_errors(error.message_dict if hasattr(error, "error_dict") else {"email": error.messages})
            return render(request, "audiences/contact_form.html", {"form": form}, status=400)
        messages.success(request, _("Contact saved.") if not created else _("Contact created."))
        return redirect("contact", contact_id=contact.pk)


class ContactView(WorkspaceView):
    def _render(
        self, request: HttpRequest, contact: Contact, form: ContactForm | None = None, status: int = 200
    ) -> HttpResponse:
        custom_fields = list(CustomField.objects.in_workspace(self.workspace))
        form = form or ContactForm(initial=ContactForm.initial_for(contact), custom_fields=custom_fields)
        if not self.can(Role.MARKETER):
            for field in form.fields.values():
                field.disabled = True
        subscriptions = (
            Subscription.objects.in_workspace(self.workspace).filter(contact=contact).select_related("mailing_list")
        )
        subscribed_ids = {s.mailing_list_id for s in subscriptions}
        return render(
            request,
            "audiences/contact.html",
            {
                "contact": contact,
                "form": form,
                "subscriptions": subscriptions,
                "other_lists": MailingList.objects.in_workspace(self.workspace).exclude(pk__in=subscribed_ids),
                "consent_records": contact.consent_records.select_related("mailing_list")[:100],
                "suppressed": services.is_suppressed(workspace=self.workspace, email=contact.email),
                "purchases": contact_purchases(workspace=self.workspace, contact=contact),
                **timeline_context(workspace=self.workspace, contact=contact),
            },
            status=status,
        )

    def get(self, request: HttpRequest, contact_id: int) -> HttpResponse:
        contact = get_object_or_404(Contact.objects.in_workspace(self.workspace), pk=contact_id)
        return self._render(request, contact)

    def post(self, request: HttpRequest, contact_id: int) -> HttpResponse:
        contact = get_object_or_404(Contact.objects.in_workspace(self.workspace), pk=contact_id)
        form = ContactForm(request.POST, custom_fields=list(CustomField.objects.in_workspace(self.workspace)))
        try:
            services.contact_update(workspace=self.workspace, contact_id=contact.pk, data=form.data_for_service())
        except ValidationError as error:
            form.add_service_errors(error.message_dict if hasattr(error, "error_dict") else {"email": error.messages})
            return self._render(request, contact, form, status=400)
        messages.success(request, _("Contact saved."))
        return redirect("contact", contact_id=contact.pk)


class ContactSubscriptionView(WorkspaceView):
    """Subscribe the contact to a list, or unsubscribe it, from the profile page."""

    def post(self, request: HttpRequest, contact_id: int) -> HttpResponse:
        contact = get_object_or_404(Contact.objects.in_workspace(self.workspace), pk=contact_id)
        mailing_list = get_object_or_404(
            MailingList.objects.in_workspace(self.workspace), pk=int(request.POST.get("list") or 0)
        )
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


class ContactDeleteView(WorkspaceView):
    def post(self, request: HttpRequest, contact_id: int) -> HttpResponse:
        services.contact_delete(workspace=self.workspace, contact_id=contact_id)
        messages.success(request, _("Contact deleted."))
        return redirect("contacts")


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
        mailing_list = get_object_or_404(MailingList.objects.in_workspace(self.workspace), pk=list_id)
        return render(
            request,
            "audiences/list_form.html",
            {"form": MailingListForm(instance=mailing_list), "mailing_list": mailing_list},
        )

    def post(self, request: HttpRequest, list_id: int) -> HttpResponse:
        mailing_list = get_object_or_404(MailingList.objects.in_workspace(self.workspace), pk=list_id)
        if request.POST.get("action") == "delete":
            services.list_delete(workspace=self.workspace, list_id=mailing_list.pk)
            messages.success(request, _("List deleted."))
            return redirect("lists")
        form = MailingListForm(request.POST, instance=MailingList.objects.get(pk=mailing_list.pk))
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
        fields = CustomField.objects.in_workspace(self.workspace)
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
                for name, field_errors in error.message_dict.items():
                    form.add_error(name if name in form.fields else None, field_errors)
            else:
                messages.success(request, _("Field %(key)s added.") % {"key": field.key})
                return redirect("custom-fields")
        return self._render(request, form, status=400)


class CustomFieldDeleteView(WorkspaceView):
    def post(self, request: HttpRequest, field_id: int) -> HttpResponse:
        services.custom_field_delete(workspace=self.workspace, field_id=field_id)
        messages.success(request, _("Field removed. Values stored on contacts are kept."))
        return redirect("custom-fields")


class SuppressionsView(WorkspaceView):
    def _render(self, request: HttpRequest, form: SuppressionForm | None = None, status: int = 200) -> HttpResponse:
        suppressions = Suppression.objects.in_workspace(self.workspace)
        before = request.GET.get("before", "")
        if before.isdigit():
            suppressions = suppressions.filter(id__lt=int(before))
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
    mailing_list = get_object_or_404(
        MailingList.objects.select_related("workspace"), pk=list_id, workspace__slug=workspace_slug, is_public=True
    )
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
        consent_text = str(form.fields["consent"].label)
        try:
            contact, _created = services.contact_save(
                workspace=workspace,
                data={"email": form.cleaned_data["email"], "first_name": form.cleaned_data["first_name"]},
                source=ConsentSource.FORM,
            )
            subscription = services.subscription_subscribe(
                workspace=workspace,
                contact=contact,
                mailing_list=mailing_list,
                context=_consent_context(request, ConsentSource.FORM, consent_text),
            )
        except ValidationError:
            # Say nothing that tells a stranger whether the address is suppressed or known.
            subscription = None
        context["pending"] = subscription is None or subscription.status == "pending"
        return render(request, "audiences/public_subscribed.html", context)


class ConfirmSubscriptionView(View):
    """GET shows a button (mail scanners prefetch links); the POST confirms."""

    max_age = 7 * 24 * 3600

    def _subscription(self, token: str) -> Subscription | None:
        try:
            data = signing.loads(token, salt=CONFIRM_SALT, max_age=self.max_age)
        except signing.BadSignature:
            return None
        return (
            Subscription.objects.select_related("mailing_list", "workspace", "contact")
            .filter(pk=data.get("s"), workspace_id=data.get("w"))
            .first()
        )

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        subscription = self._subscription(token)
        context = {"subscription": subscription, "workspace": subscription.workspace if subscription else None}
        return render(request, "audiences/confirm.html", context, status=200 if subscription else 404)

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        subscription = self._subscription(token)
        if subscription is None:
            return render(request, "audiences/confirm.html", {"subscription": None}, status=404)
        subscription = services.subscription_confirm(
            subscription=subscription, context=_consent_context(request, ConsentSource.FORM)
        )
        context = {"subscription": subscription, "workspace": subscription.workspace, "done": True}
        return render(request, "audiences/confirm.html", context)
