"""The audience portrait: contacts with typed attributes, lists and subscriptions, the consent
trail that proves them, and the suppression list that no send may cross."""

from __future__ import annotations

import hashlib

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from esp.models import Workspace, WorkspaceOwned

models.CharField.register_lookup(Lower)  # email__lower="…" uses the functional unique index


def normalise_email(value: str) -> str:
    """Trimmed, with a lower-cased domain. The local part keeps its case for display, but
    uniqueness and lookups compare the whole address case-insensitively (see Contact)."""
    value = value.strip()
    local, at, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}" if at else value


def email_hash(value: str) -> str:
    """What a suppression keeps of an address, also after the person was erased."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()


class Gender(models.TextChoices):
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    OTHER = "other", _("Other")


# A contact's address and names as one text (kept in Contact.search_text).
SEARCH_BODY = models.Func(
    models.F("email"),
    models.F("first_name"),
    models.F("last_name"),
    template="(%(expressions)s)",
    arg_joiner=" || ' ' || ",
    output_field=models.TextField(),
)


class Contact(WorkspaceOwned):
    # No index of its own: every index of this table already starts with the workspace, and
    # each extra index costs every row of an import.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    email = models.CharField(_("email address"), max_length=254)
    external_id = models.CharField(
        _("external id"), max_length=255, blank=True, default="", help_text=_("The shop's own id of this customer.")
    )
    first_name = models.CharField(_("first name"), max_length=150, blank=True, default="")
    last_name = models.CharField(_("last name"), max_length=150, blank=True, default="")
    gender = models.CharField(_("gender"), max_length=16, choices=Gender.choices, blank=True, default="")
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True, default="")
    city = models.CharField(_("city"), max_length=120, blank=True, default="")
    country = models.CharField(_("country"), max_length=2, blank=True, default="", help_text=_("ISO 3166 code"))
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True, default="")
    locale = models.CharField(_("locale"), max_length=16, blank=True, default="")
    # Values of the workspace's declared custom fields, validated against their types.
    attributes = models.JSONField(_("custom fields"), default=dict, blank=True)
    tags = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    source = models.CharField(_("source"), max_length=32, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # What a substring search looks in (the trigram index contact_search), lower-cased once when
    # the row is written: lower-casing each candidate at search time was most of the cost of a
    # search that matches thousands of contacts.
    search_text = models.GeneratedField(
        expression=Lower(SEARCH_BODY), output_field=models.TextField(), db_persist=True, editable=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint("workspace", Lower("email"), name="contact_unique_email"),
            models.UniqueConstraint(
                fields=["workspace", "external_id"],
                condition=~models.Q(external_id=""),
                name="contact_unique_external_id",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "-id"], name="contact_workspace_recent"),
            GinIndex(fields=["tags"], name="contact_tags"),
            # Country is the field segments and the contacts page filter on most; with the id
            # in the key, "country = X" is an index-only range of ids that a count joins with
            # the other conditions, instead of a read of every contact of the workspace.
            models.Index(fields=["workspace", "country", "id"], name="contact_country"),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class FieldType(models.TextChoices):
    TEXT = "text", _("Text")
    NUMBER = "number", _("Whole number")
    DECIMAL = "decimal", _("Decimal")
    DATE = "date", _("Date")
    DATETIME = "datetime", _("Date and time")
    BOOLEAN = "boolean", _("Yes / no")
    CHOICE = "choice", _("Choice")


class CustomField(WorkspaceOwned):
    key = models.SlugField(_("key"), max_length=64, help_text=_("Used in the API and in templates: contact.key"))
    label = models.CharField(_("label"), max_length=120)
    type = models.CharField(_("type"), max_length=16, choices=FieldType.choices, default=FieldType.TEXT)
    choices = ArrayField(models.CharField(max_length=120), default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "key"], name="custom_field_unique_key")]
        ordering = ["key"]

    def __str__(self) -> str:
        return self.label


class MailingList(WorkspaceOwned):
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True, default="")
    is_public = models.BooleanField(_("public"), default=False, help_text=_("Shown on the public subscribe page."))
    double_opt_in = models.BooleanField(
        _("double opt-in"), default=True, help_text=_("New subscribers confirm by clicking a link in an email.")
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="list_unique_name")]
        ordering = ["name"]
        verbose_name = _("list")

    def __str__(self) -> str:
        return self.name


class SubscriptionStatus(models.TextChoices):
    PENDING = "pending", _("Awaiting confirmation")
    SUBSCRIBED = "subscribed", _("Subscribed")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")


class Subscription(WorkspaceOwned):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="subscriptions")
    mailing_list = models.ForeignKey(MailingList, on_delete=models.CASCADE, related_name="subscriptions")
    status = models.CharField(max_length=16, choices=SubscriptionStatus.choices)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mailing_list", "contact"], name="subscription_unique")]
        indexes = [models.Index(fields=["mailing_list", "status", "contact"], name="subscription_list_status")]


class ConsentAction(models.TextChoices):
    SUBSCRIBED = "subscribed", _("Subscribed")
    CONFIRMED = "confirmed", _("Confirmed")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")


class ConsentSource(models.TextChoices):
    FORM = "form", _("Form")
    IMPORT = "import", _("Import")
    API = "api", _("API")
    ADMIN = "admin", _("Admin")
    # A series' update-contact step, set up by a member.
    SERIES = "series", _("Series step")


class ConsentRecord(WorkspaceOwned):
    """Append-only proof of consent (GDPR Art. 7): who agreed to what, when, how, and the words
    they saw. Services only ever insert; erasing the contact deletes their records."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consent_records")
    mailing_list = models.ForeignKey(MailingList, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=16, choices=ConsentAction.choices)
    source = models.CharField(max_length=16, choices=ConsentSource.choices)
    occurred_at = models.DateTimeField(default=timezone.now)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True, default="")
    text_shown = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["contact", "-occurred_at"], name="consent_contact_recent")]
        ordering = ["-occurred_at", "-id"]


class SuppressionReason(models.TextChoices):
    HARD_BOUNCE = "hard_bounce", _("Hard bounce")
    SOFT_BOUNCES = "soft_bounces", _("Repeated soft bounces")
    COMPLAINT = "complaint", _("Spam complaint")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed from all")
    MANUAL = "manual", _("Added by hand")
    ERASED = "erased", _("Erased (GDPR)")


class Suppression(WorkspaceOwned):
    """An address no marketing mail may reach. Keyed by a hash so that the entry outlives the
    erasure of the person (the address itself is then blanked)."""

    email = models.CharField(max_length=254, blank=True, default="")
    email_hash = models.CharField(max_length=64)
    reason = models.CharField(max_length=16, choices=SuppressionReason.choices)
    note = models.CharField(max_length=400, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "email_hash"], name="suppression_unique_hash")]
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.email or self.email_hash[:12]
