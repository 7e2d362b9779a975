"""Tenancy and people: users, workspaces, memberships with roles, invitations, API keys, and
the outbox that stores mail when no real provider is configured."""

from __future__ import annotations

import hashlib
import zoneinfo
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from esp.money import CURRENCIES


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("Users need an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractUser):
    """A person who logs in. Signs in with the email address; belongs to workspaces through
    memberships. `is_staff` is the platform operator (Django admin), not a workspace role."""

    username = None  # type: ignore[assignment]
    email = models.EmailField(_("email address"), unique=True)
    language = models.CharField(
        _("language"),
        max_length=8,
        choices=settings.LANGUAGES,
        blank=True,
        help_text=_("Language of the interface. Empty: the browser's preference."),
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]

    def __str__(self) -> str:
        return self.email


class Workspace(models.Model):
    """One shop's account: every owned row in the database points to exactly one workspace."""

    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    time_zone = models.CharField(_("time zone"), max_length=64, default="UTC")
    default_from_name = models.CharField(_("default sender name"), max_length=120, blank=True)
    default_from_email = models.EmailField(_("default sender address"), blank=True)
    postal_address = models.TextField(
        _("postal address"),
        blank=True,
        help_text=_("Printed in every marketing email; required before any marketing send."),
    )
    language = models.CharField(
        _("language of emails"),
        max_length=8,
        choices=settings.LANGUAGES,
        default=settings.LANGUAGE_CODE,
        help_text=_(
            "The built-in texts of emails (footer links, totals) are written in it, unless a contact's "
            "locale names another language the service speaks."
        ),
    )
    currency = models.CharField(
        _("currency"),
        max_length=3,
        choices=CURRENCIES,
        default="EUR",
        help_text=_("Revenue and order values are shown in it."),
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The workspace's time zone; UTC when unset or unknown to this system."""
        try:
            return zoneinfo.ZoneInfo(self.time_zone or "UTC")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return zoneinfo.ZoneInfo("UTC")

    @property
    def can_send_marketing(self) -> bool:
        return bool(self.postal_address.strip() and self.default_from_email)


class WorkspaceOwnedQuerySet(models.QuerySet[Any]):
    def in_workspace(self, workspace: Workspace) -> WorkspaceOwnedQuerySet:
        return self.filter(workspace=workspace)


class WorkspaceOwned(models.Model):
    """Base of every row a workspace owns. Selectors read it only through `in_workspace()`;
    the isolation tests walk every URL to prove no other workspace's row is reachable."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")

    objects = WorkspaceOwnedQuerySet.as_manager()

    class Meta:
        abstract = True


class Role(models.TextChoices):
    # Ordered by power; `Role.at_least` compares through this order.
    VIEWER = "viewer", _("Viewer")
    MARKETER = "marketer", _("Marketer")
    OWNER = "owner", _("Owner")

    @classmethod
    def rank(cls, role: str) -> int:
        return [cls.VIEWER, cls.MARKETER, cls.OWNER].index(cls(role))

    @classmethod
    def at_least(cls, role: str, required: str) -> bool:
        return cls.rank(role) >= cls.rank(required)


ROLE_HELP = {
    Role.OWNER: _("Everything, including members, API keys and workspace settings."),
    Role.MARKETER: _("Audiences, content, campaigns and series; cannot manage members or API keys."),
    Role.VIEWER: _("Read-only access to everything, including all reports."),
}


class Membership(WorkspaceOwned):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="membership_unique_user")]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} as {self.role}"


class Invitation(WorkspaceOwned):
    """An emailed invitation to join a workspace with a role. The link carries a signed,
    expiring reference to this row (see services.invitation_token), so nothing secret is stored
    and revoking the row kills the link."""

    email = models.EmailField(_("email address"))
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.VIEWER)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.email} to {self.workspace} as {self.role}"

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()


class ApiScope(models.TextChoices):
    CONTACTS_READ = "contacts:read", _("Read contacts, lists and segments")
    CONTACTS_WRITE = "contacts:write", _("Create, change and erase contacts and subscriptions")
    EVENTS_WRITE = "events:write", _("Send events (identify, track, page, batch)")
    CONTENT_READ = "content:read", _("Read email templates")
    CONTENT_WRITE = "content:write", _("Create and change email templates")
    MESSAGES_READ = "messages:read", _("Read sent messages and their status")
    MESSAGES_SEND = "messages:send", _("Send transactional messages")
    REPORTS_READ = "reports:read", _("Read reports and KPIs")
    SERIES_READ = "series:read", _("Read series, their enrollments and traces")
    SERIES_WRITE = "series:write", _("Create, change, publish and archive series; enroll contacts; dry runs")
    BROADCASTS_READ = "broadcasts:read", _("Read broadcasts and their progress")
    BROADCASTS_WRITE = "broadcasts:write", _("Compose, schedule, pause, resume and cancel broadcasts")


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy random secret. A slow KDF is not needed (nor affordable on
    every API call) because the secret is 32 random bytes, not a human password."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(WorkspaceOwned):
    """A workspace's key for the REST and tracking APIs. The secret is shown once at creation;
    only its SHA-256 and a short visible prefix (to recognise it in lists) are stored."""

    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = ArrayField(models.CharField(max_length=32, choices=ApiScope.choices), default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The id of the form that created the key: a re-submitted form (reload, double click)
    # must not create a second key whose secret nobody saw.
    form_token = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "form_token"],
                condition=~models.Q(form_token=""),
                name="api_key_unique_form_token",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class OutboxMessage(models.Model):
    """A mail stored instead of sent: the default transport for local runs and demos.
    `workspace` is empty for account mail (password resets) that belongs to no workspace."""

    workspace = models.ForeignKey(Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    from_email = models.CharField(max_length=320)
    to = ArrayField(models.CharField(max_length=320))
    subject = models.CharField(max_length=998)
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["workspace", "-id"], name="outbox_workspace_recent")]

    def __str__(self) -> str:
        return self.subject
