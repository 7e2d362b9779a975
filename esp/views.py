"""Browser pages of the esp app: sign-up, account, workspace settings, members, API keys,
outbox. Views stay thin: forms validate, services write, selectors read."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect, render
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.cache import never_cache

from esp import attempts, selectors, services
from esp.checks import public_url_is_https
from esp.forms import (
    AccountForm,
    ApiKeyForm,
    InvitationForm,
    SignUpForm,
    WorkspaceCreateForm,
    WorkspaceForm,
    too_many_attempts,
)
from esp.input import parse_id
from esp.mail import preview_without_tracking
from esp.middleware import SESSION_WORKSPACE_KEY
from esp.models import ROLE_HELP, Invitation, Role, User
from esp.net import client_limit_key
from esp.web import WorkspaceView, confirm_page, request_user


def chosen_language(request: HttpRequest) -> str:
    from django.conf import settings

    language = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
    return language if language in dict(settings.LANGUAGES) else ""


def _form_errors(request: HttpRequest, error: ValidationError) -> None:
    for message in error.messages:
        messages.error(request, message)


# --- public and personal pages --------------------------------------------------------------


class SignUpView(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            return redirect("home")
        return render(request, "esp/signup.html", {"form": SignUpForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = SignUpForm(request.POST)
        if not form.is_valid():
            return render(request, "esp/signup.html", {"form": form}, status=400)
        ip = client_limit_key(request.META)
        wait = attempts.hit([(attempts.SIGNUP_IP, ip)])
        if wait is not None:
            attempts.logger.warning("sign-up refused (too many from one address): ip=%s", ip)
            form.add_error(None, too_many_attempts(wait))
            return render(request, "esp/signup.html", {"form": form}, status=429)
        user, workspace = services.user_sign_up(
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password"],
            workspace_name=form.cleaned_data["workspace_name"],
            # Keep a language picked with the switcher before signing up; else follow the browser.
            language=chosen_language(request),
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        request.session[SESSION_WORKSPACE_KEY] = workspace.pk
        messages.success(request, _("Welcome! Your workspace %(name)s is ready.") % {"name": workspace.name})
        return redirect("home")


class InvitationAcceptView(View):
    """The link from an invitation mail. A logged-in invitee joins with one click; a new person
    sets a password first; someone logged in with another address is told so."""

    invitation: Invitation

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # Unknown tokens are counted per IP: guessing them is slowed down like passwords.
        # Counted before the look-up (then taken back for a real token), so parallel guesses
        # cannot all pass one check.
        checks = [(attempts.INVITE_ACCEPT_IP, client_limit_key(request.META))]
        if attempts.hit(checks) is not None:
            attempts.logger.warning("invitation link refused (too many unknown tokens): ip=%s", checks[0][1])
            return render(request, "esp/invitation_invalid.html", status=429)
        invitation = services.invitation_from_token(kwargs["token"])
        if invitation is None:
            return render(request, "esp/invitation_invalid.html", status=404)
        attempts.forgive(checks)
        self.invitation = invitation
        return super().dispatch(request, *args, **kwargs)

    def _render(self, request: HttpRequest, form: SignUpForm | None = None, status: int = 200) -> HttpResponse:
        has_account = User.objects.filter(email=self.invitation.email).exists()
        if form is None and not has_account:
            form = SignUpForm(fixed_email=self.invitation.email, ask_workspace=False)
        context = {"invitation": self.invitation, "form": form, "has_account": has_account}
        return render(request, "esp/invitation_accept.html", context, status=status)

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        return self._render(request)

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            if request.user.is_authenticated:
                membership = services.invitation_accept(invitation=self.invitation, user=request_user(request))
            else:
                data = request.POST.copy()
                data["email"] = self.invitation.email
                form = SignUpForm(data, fixed_email=self.invitation.email, ask_workspace=False)
                if not form.is_valid():
                    return self._render(request, form, status=400)
                membership = services.invitation_accept_as_new_user(
                    invitation=self.invitation,
                    password=form.cleaned_data["password"],
                )
                login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
        except ValidationError as error:
            _form_errors(request, error)
            return self._render(request, status=400)
        request.session[SESSION_WORKSPACE_KEY] = membership.workspace_id
        messages.success(request, _("You joined %(name)s.") % {"name": membership.workspace.name})
        return redirect("home")


class AccountView(LoginRequiredMixin, View):
    """The person's own preferences (name, language): not a workspace write."""

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "esp/account.html", {"form": AccountForm(instance=request.user)})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = AccountForm(request.POST, instance=request.user)
        if not form.is_valid():
            return render(request, "esp/account.html", {"form": form}, status=400)
        user = form.save()
        response = redirect("account")
        if user.language:
            from django.conf import settings
            from django.utils import translation

            translation.activate(user.language)
            response.set_cookie(settings.LANGUAGE_COOKIE_NAME, user.language, samesite="Lax")
        messages.success(request, _("Your preferences were saved."))
        return response


class WorkspaceCreateView(LoginRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "esp/workspace_create.html", {"form": WorkspaceCreateForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = WorkspaceCreateForm(request.POST)
        if not form.is_valid():
            return render(request, "esp/workspace_create.html", {"form": form}, status=400)
        workspace = services.workspace_create(name=form.cleaned_data["name"], owner=request_user(request))
        request.session[SESSION_WORKSPACE_KEY] = workspace.pk
        messages.success(request, _("Workspace %(name)s created.") % {"name": workspace.name})
        return redirect("home")


class WorkspaceSwitchView(LoginRequiredMixin, View):
    def post(self, request: HttpRequest) -> HttpResponse:
        membership = (
            selectors.memberships_of_user(request_user(request))
            .filter(  # type: ignore[arg-type]
                workspace_id=request.POST.get("workspace_id") or 0,
            )
            .first()
        )
        if membership is None:
            messages.error(request, _("You are not a member of that workspace."))
        else:
            request.session[SESSION_WORKSPACE_KEY] = membership.workspace_id
        return redirect("home")


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Database and broker reachable? 200 with both "ok", else 503 naming what failed."""
    from esp.celery import app

    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 — any failure is reported, not raised
        checks["database"] = f"error: {error.__class__.__name__}"
    try:
        with app.connection_for_write() as broker:
            broker.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as error:  # noqa: BLE001
        checks["broker"] = f"error: {error.__class__.__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503)


# --- workspace pages ------------------------------------------------------------------------


class HomeView(WorkspaceView):
    """The Overview, for a marketer first: the audience and the last sends come from their
    apps by URL (htmx partials; esp imports no app above it), then the owner's set-up steps.
    The developer's hints (API, curl) live on the API keys page."""

    def get(self, request: HttpRequest) -> HttpResponse:
        workspace = self.workspace
        # Only the steps this person may take; all of them are an owner's today.
        checklist = [
            (label, done, url_name)
            for label, done, url_name, role in [
                (
                    _("Add the postal address printed in every marketing email"),
                    bool(workspace.postal_address),
                    "workspace-settings",
                    Role.OWNER,
                ),
                (
                    _("Set the default sender address"),
                    bool(workspace.default_from_email),
                    "workspace-settings",
                    Role.OWNER,
                ),
                (
                    _("Create an API key for your shop backend"),
                    selectors.api_keys(workspace=workspace).filter(revoked_at__isnull=True).exists(),
                    "api-keys",
                    Role.OWNER,
                ),
                (
                    _("Invite a teammate"),
                    selectors.workspace_members(workspace=workspace)[:2].count() > 1,
                    "members",
                    Role.OWNER,
                ),
            ]
            if self.can(role)
        ]
        return render(request, "esp/home.html", {"checklist": [step for step in checklist if not step[1]]})


class WorkspaceSettingsView(WorkspaceView):
    write_role = Role.OWNER

    def get(self, request: HttpRequest) -> HttpResponse:
        form = WorkspaceForm(instance=self.workspace)
        if not self.can(Role.OWNER):
            for field in form.fields.values():
                field.disabled = True
        return render(request, "esp/workspace_settings.html", self._context(form))

    @staticmethod
    def _context(form: WorkspaceForm) -> dict[str, Any]:
        # Plain-http links in mail (a local run, or allowed by the operator) are worth a warning.
        return {"form": form, "plain_http_url": "" if public_url_is_https() else settings.PUBLIC_BASE_URL}

    def post(self, request: HttpRequest) -> HttpResponse:
        form = WorkspaceForm(request.POST, instance=self.workspace)
        if not form.is_valid():
            return render(request, "esp/workspace_settings.html", self._context(form), status=400)
        services.workspace_update(
            workspace=self.workspace, **{name: form.cleaned_data[name] for name in WorkspaceForm.Meta.fields}
        )
        messages.success(request, _("Workspace settings saved."))
        return redirect("workspace-settings")


class MembersView(WorkspaceView):
    write_role = Role.OWNER

    def _render(self, request: HttpRequest, form: InvitationForm | None = None, status: int = 200) -> HttpResponse:
        return render(
            request,
            "esp/members.html",
            {
                "members": selectors.workspace_members(workspace=self.workspace),
                "invitations": selectors.open_invitations(workspace=self.workspace),
                "form": form or InvitationForm(),
                "roles": [(role, label, ROLE_HELP[Role(role)]) for role, label in Role.choices],
            },
            status=status,
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        """Invite a member."""
        form = InvitationForm(request.POST)
        if form.is_valid():
            try:
                invitation = services.invitation_create(
                    workspace=self.workspace,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    invited_by=request_user(request),
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, _("Invitation sent to %(email)s.") % {"email": invitation.email})
                return redirect("members")
        return self._render(request, form, status=400)


class MemberRoleView(WorkspaceView):
    write_role = Role.OWNER

    def post(self, request: HttpRequest, member_id: int) -> HttpResponse:
        try:
            membership = services.membership_set_role(
                workspace=self.workspace,
                membership_id=member_id,
                role=request.POST.get("role", ""),
            )
        except ValidationError as error:
            _form_errors(request, error)
        else:
            messages.success(
                request,
                _("%(email)s is now %(role)s.")
                % {
                    "email": membership.user.email,
                    "role": membership.get_role_display(),
                },
            )
        return redirect("members")


class MemberRemoveView(WorkspaceView):
    read_role = Role.OWNER
    write_role = Role.OWNER

    def get(self, request: HttpRequest, member_id: int) -> HttpResponse:
        membership = selectors.membership_get(workspace=self.workspace, membership_id=member_id)
        email = membership.user.email
        return confirm_page(
            request,
            title=_("Remove member"),
            question=_("Remove %(email)s from %(workspace)s?") % {"email": email, "workspace": self.workspace.name},
            consequences=[
                _("They lose access to this workspace at once; their account and other workspaces stay."),
                _("API keys they created keep working until you revoke them."),
            ],
            button=_("Remove member"),
            cancel="members",
        )

    def post(self, request: HttpRequest, member_id: int) -> HttpResponse:
        membership = selectors.membership_get(workspace=self.workspace, membership_id=member_id)
        email = membership.user.email
        try:
            services.membership_remove(workspace=self.workspace, membership_id=member_id)
        except ValidationError as error:
            _form_errors(request, error)
        else:
            messages.success(request, _("%(email)s was removed from the workspace.") % {"email": email})
        return redirect("members")


class InvitationRevokeView(WorkspaceView):
    write_role = Role.OWNER

    def post(self, request: HttpRequest, invitation_id: int) -> HttpResponse:
        services.invitation_revoke(workspace=self.workspace, invitation_id=invitation_id)
        messages.success(request, _("Invitation revoked."))
        return redirect("members")


class ApiKeysView(WorkspaceView):
    read_role = Role.OWNER
    write_role = Role.OWNER

    def _render(
        self,
        request: HttpRequest,
        form: ApiKeyForm | None = None,
        created: services.CreatedApiKey | None = None,
        status: int = 200,
    ) -> HttpResponse:
        return render(
            request,
            "esp/api_keys.html",
            {
                "api_keys": selectors.api_keys(workspace=self.workspace),
                "form": form or ApiKeyForm(),
                "created": created,
            },
            status=status,
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        """Create a key and show its secret on this one response, never again."""
        form = ApiKeyForm(request.POST)
        if not form.is_valid():
            return self._render(request, form, status=400)
        try:
            created = services.api_key_create(
                workspace=self.workspace,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                created_by=request_user(request),
                form_token=form.cleaned_data["form_token"],  # type: ignore[arg-type]
            )
        except ValidationError as error:
            _form_errors(request, error)
            return redirect("api-keys")
        response = self._render(request, created=created)
        response["Cache-Control"] = "no-store"
        return response


class ApiKeyRevokeView(WorkspaceView):
    read_role = Role.OWNER
    write_role = Role.OWNER

    def get(self, request: HttpRequest, api_key_id: int) -> HttpResponse:
        api_key = selectors.api_key_get(workspace=self.workspace, api_key_id=api_key_id)
        if not api_key.is_active:
            return redirect("api-keys")
        last_used = (
            _("It was last used %(when)s ago.") % {"when": timesince(api_key.last_used_at)}
            if api_key.last_used_at
            else _("It has never been used.")
        )
        return confirm_page(
            request,
            title=_("Revoke API key"),
            question=_("Revoke the API key “%(name)s” (esk_%(prefix)s_…)?")
            % {"name": api_key.name, "prefix": api_key.prefix},
            consequences=[
                _("Every request made with it is refused from now on (401); this cannot be undone."),
                last_used,
            ],
            button=_("Revoke key"),
            cancel="api-keys",
        )

    def post(self, request: HttpRequest, api_key_id: int) -> HttpResponse:
        api_key = services.api_key_revoke(workspace=self.workspace, api_key_id=api_key_id)
        messages.success(request, _("API key %(name)s revoked.") % {"name": api_key.name})
        return redirect("api-keys")


class OutboxView(WorkspaceView):
    page_size = 50

    def get(self, request: HttpRequest) -> HttpResponse:
        # Keyset pagination: "older than id X", so a page costs the same on message one million.
        queryset = selectors.outbox_messages(workspace=self.workspace, user=request_user(request))
        before = request.GET.get("before", "")
        if parse_id(before) is not None:
            queryset = queryset.filter(id__lt=parse_id(before))
        page = list(queryset[: self.page_size + 1])
        return render(
            request,
            "esp/outbox.html",
            {
                "outbox": page[: self.page_size],
                "next_before": page[self.page_size - 1].pk if len(page) > self.page_size else None,
            },
        )


class OutboxMessageView(WorkspaceView):
    def get(self, request: HttpRequest, message_id: int) -> HttpResponse:
        message = selectors.outbox_message_get(
            workspace=self.workspace,
            message_id=message_id,
            user=request_user(request),
        )
        return render(
            request,
            "esp/outbox_message.html",
            {"message": message, "preview_html": preview_without_tracking(message.html_body)},
        )


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever a page links; send them to the static icon."""
    from django.http import HttpResponsePermanentRedirect
    from django.templatetags.static import static

    return HttpResponsePermanentRedirect(static("favicon.svg"))


def set_language(request: HttpRequest) -> HttpResponse:
    """Django's language switch, remembered on the account of a logged-in user."""
    from django.conf import settings
    from django.views.i18n import set_language as django_set_language

    response = django_set_language(request)
    language = request.POST.get("language", "")
    if request.method == "POST" and request.user.is_authenticated and language in dict(settings.LANGUAGES):
        user = request_user(request)
        user.language = language
        user.save(update_fields=["language"])
    return response
