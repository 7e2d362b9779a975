"""Settings → Sending: providers (owners edit: they hold credentials), sender identities and
delivery settings (marketers edit); viewers look."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.html import format_html
from django.utils.translation import gettext as _

from campaigns import crypto
from campaigns.models import Provider, ProviderKind, SenderIdentity
from campaigns.providers import services
from campaigns.providers.forms import DeliverySettingsForm, KindForm, ProviderForm, SenderForm
from campaigns.providers.registry import (
    KINDS,
    kind_spec,
    provider_credentials,
    provider_webhook_credentials,
    webhook_url,
)
from esp.models import Role
from esp.web import WorkspaceView, request_user


def _provider(view: WorkspaceView, provider_id: int) -> Provider:
    return get_object_or_404(Provider.objects.in_workspace(view.workspace), pk=provider_id)


def _sender(view: WorkspaceView, sender_id: int) -> SenderIdentity:
    return get_object_or_404(SenderIdentity.objects.in_workspace(view.workspace), pk=sender_id)


class ProvidersView(WorkspaceView):
    write_role = Role.OWNER

    def get(self, request: HttpRequest) -> HttpResponse:
        providers = list(Provider.objects.in_workspace(self.workspace))
        rows = [{"provider": p, "webhook_url": webhook_url(p), "spec": kind_spec(p.kind)} for p in providers]
        return render(
            request,
            "campaigns/settings/providers.html",
            {
                "rows": rows,
                "outbox_is_default": not any(p.is_default for p in providers),
                "can_edit": self.can(Role.OWNER),
                "can_test": self.can(Role.MARKETER),
            },
        )


def _show_generated_webhook_secret(request: HttpRequest, provider: Provider) -> None:
    """A webhook secret generated on creation is shown once, inside the URL to paste."""
    url = webhook_url(provider)
    secret = provider_webhook_credentials(provider).get("webhook_secret", "")
    if not url or not secret:
        return
    scheme, _sep, rest = url.partition("://")
    messages.info(
        request,
        format_html(
            "{} <code>{}</code>",
            _("Paste this webhook URL into the ESP's console; its password is shown only now:"),
            f"{scheme}://{secret}@{rest}",
        ),
    )


class ProviderCreateView(WorkspaceView):
    read_role = Role.OWNER
    write_role = Role.OWNER

    def _render(
        self, request: HttpRequest, kind: str, form: ProviderForm | None = None, status: int = 200
    ) -> HttpResponse:
        spec = kind_spec(kind)
        return render(
            request,
            "campaigns/settings/provider_form.html",
            {
                "kind_form": KindForm(initial={"kind": kind}),
                "form": form or ProviderForm(spec=spec),
                "spec": spec,
                "kind": kind,
                "provider": None,
            },
            status=status,
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        kind = request.GET.get("kind", ProviderKind.SMTP)
        return self._render(request, kind if kind in KINDS else ProviderKind.SMTP)

    def post(self, request: HttpRequest) -> HttpResponse:
        kind = request.POST.get("kind", "")
        if kind not in KINDS:
            messages.error(request, _("Choose a kind of provider."))
            return self._render(request, ProviderKind.SMTP, status=400)
        spec = kind_spec(kind)
        form = ProviderForm(request.POST, spec=spec)
        if form.is_valid():
            submitted_secret = form.credentials().get("webhook_secret")
            try:
                provider = services.provider_create(
                    workspace=self.workspace,
                    name=form.cleaned_data["name"],
                    kind=kind,
                    credentials=form.credentials(),
                    rate_limit=form.cleaned_data["rate_limit"],
                )
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                messages.success(request, _("Provider %(name)s added.") % {"name": provider.name})
                if not submitted_secret:
                    _show_generated_webhook_secret(request, provider)
                return redirect("providers")
        return self._render(request, kind, form, status=400)


class ProviderEditView(WorkspaceView):
    write_role = Role.OWNER

    def _render(
        self, request: HttpRequest, provider: Provider, form: ProviderForm | None = None, status: int = 200
    ) -> HttpResponse:
        spec = kind_spec(provider.kind)
        unreadable = False
        try:
            stored = provider_credentials(provider)
        except crypto.DecryptionError:
            stored, unreadable = {}, True
        if form is None:
            form = ProviderForm(
                spec=spec, stored=stored, initial={"name": provider.name, "rate_limit": provider.rate_limit}
            )
        if not self.can(Role.OWNER):
            for field in form.fields.values():
                field.disabled = True
        return render(
            request,
            "campaigns/settings/provider_form.html",
            {
                "form": form,
                "spec": spec,
                "kind": provider.kind,
                "provider": provider,
                "webhook_url": webhook_url(provider),
                "unreadable": unreadable,
                "can_edit": self.can(Role.OWNER),
                "can_test": self.can(Role.MARKETER),
            },
            status=status,
        )

    def get(self, request: HttpRequest, provider_id: int) -> HttpResponse:
        return self._render(request, _provider(self, provider_id))

    def post(self, request: HttpRequest, provider_id: int) -> HttpResponse:
        provider = _provider(self, provider_id)
        try:
            stored = provider_credentials(provider)
        except crypto.DecryptionError:
            stored = {}
        form = ProviderForm(request.POST, spec=kind_spec(provider.kind), stored=stored)
        if form.is_valid():
            try:
                provider = services.provider_update(
                    workspace=self.workspace,
                    provider_id=provider.pk,
                    name=form.cleaned_data["name"],
                    credentials=form.credentials(),
                    rate_limit=form.cleaned_data["rate_limit"],
                )
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                messages.success(request, _("Provider %(name)s saved.") % {"name": provider.name})
                return redirect("providers")
        return self._render(request, provider, form, status=400)


class ProviderDefaultView(WorkspaceView):
    write_role = Role.OWNER

    def post(self, request: HttpRequest, provider_id: int) -> HttpResponse:
        provider = _provider(self, provider_id)
        services.provider_set_default(workspace=self.workspace, provider_id=provider.pk)
        messages.success(request, _("The workspace's mail now goes through %(name)s.") % {"name": provider.name})
        return redirect("providers")


class OutboxDefaultView(WorkspaceView):
    """Back to the outbox: no provider is the default."""

    write_role = Role.OWNER

    def post(self, request: HttpRequest) -> HttpResponse:
        services.provider_set_default(workspace=self.workspace, provider_id=None)
        messages.success(request, _("The workspace's mail now goes to the outbox (not delivered)."))
        return redirect("providers")


class ProviderDeleteView(WorkspaceView):
    write_role = Role.OWNER

    def post(self, request: HttpRequest, provider_id: int) -> HttpResponse:
        provider = _provider(self, provider_id)
        services.provider_delete(workspace=self.workspace, provider_id=provider.pk)
        text = _("Provider %(name)s deleted.") % {"name": provider.name}
        if provider.is_default:
            text += " " + _("Mail goes to the outbox until you choose another default.")
        messages.success(request, text)
        return redirect("providers")


class ProviderTestView(WorkspaceView):
    """Send a short message through the provider to the member's own address."""

    write_role = Role.MARKETER

    def post(self, request: HttpRequest, provider_id: int) -> HttpResponse:
        provider = _provider(self, provider_id)
        result = services.provider_send_test(
            workspace=self.workspace, provider_id=provider.pk, to_email=request_user(request).email
        )
        if getattr(request, "htmx", False):
            return render(request, "campaigns/settings/partials/test_result.html", {"result": result})
        (messages.success if result.ok else messages.error)(request, f"{provider.name}: {result.message}")
        if request.POST.get("back") == "edit":
            return redirect("provider-edit", provider_id=provider.pk)
        return redirect("providers")


# --- sender identities -------------------------------------------------------------------------


class SendersView(WorkspaceView):
    def _render(self, request: HttpRequest, form: SenderForm | None = None, status: int = 200) -> HttpResponse:
        return render(
            request,
            "campaigns/settings/senders.html",
            {"senders": SenderIdentity.objects.in_workspace(self.workspace), "form": form or SenderForm()},
            status=status,
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = SenderForm(request.POST)
        if form.is_valid():
            try:
                sender = services.sender_create(workspace=self.workspace, **form.cleaned_data)
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                messages.success(request, _("Sender %(sender)s added.") % {"sender": sender})
                return redirect("senders")
        return self._render(request, form, status=400)


class SenderEditView(WorkspaceView):
    def _render(
        self, request: HttpRequest, sender: SenderIdentity, form: SenderForm, status: int = 200
    ) -> HttpResponse:
        if not self.can(Role.MARKETER):
            for field in form.fields.values():
                field.disabled = True
        return render(request, "campaigns/settings/sender_form.html", {"sender": sender, "form": form}, status=status)

    def get(self, request: HttpRequest, sender_id: int) -> HttpResponse:
        sender = _sender(self, sender_id)
        initial: dict[str, Any] = {
            "from_name": sender.from_name,
            "from_email": sender.from_email,
            "reply_to": sender.reply_to,
        }
        return self._render(request, sender, SenderForm(initial=initial))

    def post(self, request: HttpRequest, sender_id: int) -> HttpResponse:
        sender = _sender(self, sender_id)
        form = SenderForm(request.POST)
        if form.is_valid():
            try:
                sender = services.sender_update(workspace=self.workspace, sender_id=sender.pk, **form.cleaned_data)
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                messages.success(request, _("Sender %(sender)s saved.") % {"sender": sender})
                return redirect("senders")
        return self._render(request, sender, form, status=400)


class SenderDefaultView(WorkspaceView):
    def post(self, request: HttpRequest, sender_id: int) -> HttpResponse:
        sender = services.sender_set_default(workspace=self.workspace, sender_id=_sender(self, sender_id).pk)
        messages.success(request, _("%(sender)s is now the default sender.") % {"sender": sender})
        return redirect("senders")


class SenderDeleteView(WorkspaceView):
    def post(self, request: HttpRequest, sender_id: int) -> HttpResponse:
        sender = _sender(self, sender_id)
        services.sender_delete(workspace=self.workspace, sender_id=sender.pk)
        messages.success(request, _("Sender %(sender)s deleted.") % {"sender": sender})
        return redirect("senders")


# --- delivery settings -------------------------------------------------------------------------


class DeliverySettingsView(WorkspaceView):
    def _render(self, request: HttpRequest, form: DeliverySettingsForm, status: int = 200) -> HttpResponse:
        if not self.can(Role.MARKETER):
            for field in form.fields.values():
                field.disabled = True
        return render(request, "campaigns/settings/delivery.html", {"form": form}, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, DeliverySettingsForm(instance=services.delivery_settings_get(self.workspace)))

    def post(self, request: HttpRequest) -> HttpResponse:
        form = DeliverySettingsForm(request.POST, instance=services.delivery_settings_get(self.workspace))
        if form.is_valid():
            try:
                services.delivery_settings_update(workspace=self.workspace, data=form.data_for_service())
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                messages.success(request, _("Delivery settings saved."))
                return redirect("delivery-settings")
        return self._render(request, form, status=400)
