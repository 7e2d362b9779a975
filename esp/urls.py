from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.loader import render_to_string
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from esp import views
from esp.api.errors import api_bad_request, api_not_found, api_server_error
from esp.forms import AccountPasswordResetForm, EmailAuthenticationForm

accounts = [
    path("signup/", views.SignUpView.as_view(), name="signup"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="esp/login.html",
            authentication_form=EmailAuthenticationForm,
            redirect_authenticated_user=True,
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/change/",
        auth_views.PasswordChangeView.as_view(
            template_name="esp/password_change.html",
            success_url="/accounts/password/change/done/",
        ),
        name="password_change",
    ),
    path(
        "password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="esp/password_change_done.html",
        ),
        name="password_change_done",
    ),
    path(
        "password/reset/",
        auth_views.PasswordResetView.as_view(
            template_name="esp/password_reset.html",
            email_template_name="mail/password_reset.txt",
            html_email_template_name="mail/password_reset.html",
            subject_template_name="mail/password_reset_subject.txt",
            form_class=AccountPasswordResetForm,
        ),
        name="password_reset",
    ),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(
            template_name="esp/password_reset_done.html",
        ),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="esp/password_reset_confirm.html",
        ),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="esp/password_reset_complete.html",
        ),
        name="password_reset_complete",
    ),
    path("", views.AccountView.as_view(), name="account"),
]

settings_pages = [
    path("workspace/", views.WorkspaceSettingsView.as_view(), name="workspace-settings"),
    path("members/", views.MembersView.as_view(), name="members"),
    path("members/<int:member_id>/role/", views.MemberRoleView.as_view(), name="member-role"),
    path("members/<int:member_id>/remove/", views.MemberRemoveView.as_view(), name="member-remove"),
    path("invitations/<int:invitation_id>/revoke/", views.InvitationRevokeView.as_view(), name="invitation-revoke"),
    path("api-keys/", views.ApiKeysView.as_view(), name="api-keys"),
    path("api-keys/<int:api_key_id>/revoke/", views.ApiKeyRevokeView.as_view(), name="api-key-revoke"),
    path("outbox/", views.OutboxView.as_view(), name="outbox"),
    path("outbox/<int:message_id>/", views.OutboxMessageView.as_view(), name="outbox-message"),
]

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("accounts/", include(accounts)),
    path("settings/", include(settings_pages)),
    # Apps are included by dotted name, so the project package imports none of them.
    path("audience/", include("audiences.urls")),
    path("subscribe/", include("audiences.public_urls")),
    path("", include("campaigns.urls")),
    path("", include("automations.urls")),
    path("reports/", include("analytics.urls")),
    path("e/", include("campaigns.public_urls")),
    path("webhooks/", include("campaigns.webhook_urls")),
    path("workspaces/new/", views.WorkspaceCreateView.as_view(), name="workspace-create"),
    path("workspaces/switch/", views.WorkspaceSwitchView.as_view(), name="workspace-switch"),
    path("invite/<str:token>/", views.InvitationAcceptView.as_view(), name="invitation-accept"),
    path("i18n/setlang/", views.set_language, name="set_language"),
    path("healthz", views.healthz, name="healthz"),
    # Browsers ask for /favicon.ico whatever the page links (feed readers, bookmarks).
    path("favicon.ico", views.favicon, name="favicon"),
    path("v1/", include("audiences.tracking_urls")),
    path("api/v1/", include("esp.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]


# Machine clients: the REST API, the Segment-compatible tracking endpoints and the provider
# webhooks answer in JSON.
MACHINE_PREFIXES = ("/api/", "/v1/", "/webhooks/")


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith(MACHINE_PREFIXES):
        return api_bad_request(request, exception)
    # Django's own bad_request renders without the request, which the base layout needs.
    return HttpResponseBadRequest(render_to_string("400.html", {}, request=request))


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith(MACHINE_PREFIXES):
        return api_not_found(request, exception)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)  # type: ignore[arg-type]


def handler500(request: HttpRequest) -> HttpResponse:
    if request.path.startswith(MACHINE_PREFIXES):
        return api_server_error(request)
    from django.views.defaults import server_error

    return server_error(request)
