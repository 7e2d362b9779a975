"""Content and delivery: email templates, the providers that carry mail, and the send log.

Every email any feature sends — a broadcast, a series step, a transactional request, a test —
is one `Message` row created before sending (DESIGN rule 3) and goes through one road:
campaigns.delivery claims it, checks it at send time (suppression, unsubscribe, caps, quiet
hours), renders it (campaigns.content), adds tracking and compliance headers
(campaigns.tracking) and hands it to the workspace's provider (campaigns.providers).
Provider webhooks and our own tracking endpoints append `MessageEvent` rows.

Sizing: a broadcast to a million contacts is a million Message rows; the indexes are the ones
the send loop, the webhooks and the profile need, each partial where it can be.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from esp import clock
from esp.models import Workspace, WorkspaceOwned


class MessageClass(models.TextChoices):
    # Marketing honours list unsubscribes, frequency caps and quiet hours and needs the postal
    # address; transactional mail (order confirmations, password resets) bypasses those but
    # never reaches a hard-bounced, complaining or erased address.
    MARKETING = "marketing", _("Marketing")
    TRANSACTIONAL = "transactional", _("Transactional")


class SendPriority(models.IntegerChoices):
    # Which message of a batch takes a contact's place under a frequency cap: the batch is
    # decided highest first, so a transactional or triggered email wins over a promotion.
    PROMOTIONAL = 10, _("Promotional")
    TRIGGERED = 20, _("Triggered")
    TRANSACTIONAL = 30, _("Transactional")


# Smart sending waits at most a week: the send-time query reads the last week of sends.
MAX_SMART_SENDING_HOURS = 7 * 24


class EmailTemplate(WorkspaceOwned):
    """An email's MJML source with Django-template personalisation (see campaigns.content).

    `version` grows with every change of subject, preheader, MJML or text; `compiled_html` is
    the MJML of that version compiled once (Django tags still in it) — each recipient only
    renders it."""

    name = models.CharField(_("name"), max_length=200)
    description = models.CharField(_("description"), max_length=400, blank=True, default="")
    message_class = models.CharField(
        _("kind of mail"), max_length=16, choices=MessageClass.choices, default=MessageClass.MARKETING
    )
    subject = models.CharField(_("subject"), max_length=998)
    preheader = models.CharField(_("preheader"), max_length=255, blank=True, default="")
    mjml = models.TextField(_("MJML"))
    # Empty: the plain-text part is generated from the HTML of each rendered message.
    text_body = models.TextField(_("plain-text part"), blank=True, default="")
    use_layout = models.BooleanField(_("use the workspace's header and footer"), default=True)
    # Who the mail is from and the provider it goes through, when not the workspace's defaults
    # (receipts from orders@ over a transactional stream, promotions from news@). Not content:
    # changing them makes no new version. A message's own sender/provider wins over these.
    sender = models.ForeignKey(
        "SenderIdentity", verbose_name=_("sender"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    provider = models.ForeignKey(
        "Provider", verbose_name=_("provider"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    version = models.PositiveIntegerField(default=1)
    compiled_html = models.TextField(blank=True, default="")
    # The starter this template was copied from, if any ("abandoned_cart", ...).
    starter = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="template_unique_name")]
        ordering = ["name"]
        verbose_name = _("email template")

    def __str__(self) -> str:
        return self.name


class EmailTemplateVersion(WorkspaceOwned):
    """A template version as the send loop rendered it, written once (the first time any worker
    renders it) and never changed: "View in browser" and the send log show a message from the
    snapshot it was sent with, so a later edit of the template or of the layout does not change
    what the contact is shown.

    The compiled HTML is kept, not only the MJML: it holds the workspace's header and footer of
    that moment. A new layout recompiles the templates without a new version (their own content
    is unchanged), so one version can have more than one snapshot, told apart by `digest`;
    a message names its snapshot by id (Message.template_version). Deleting the template
    deletes its snapshots: what the marketer withdrew is no longer shown to anyone."""

    # One row per version sent (and layout change): an int is plenty, and Message stores it.
    id = models.AutoField(primary_key=True)
    # Indexed by the unique constraint (template first).
    template = models.ForeignKey(EmailTemplate, on_delete=models.CASCADE, related_name="versions", db_index=False)
    version = models.PositiveIntegerField()
    subject = models.CharField(max_length=998)
    preheader = models.CharField(max_length=255, blank=True, default="")
    # The source, for the line numbers of a render problem.
    mjml = models.TextField()
    text_body = models.TextField(blank=True, default="")
    compiled_html = models.TextField()
    # SHA-256 of the rendered parts (subject, preheader, text, compiled HTML).
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["template", "version", "digest"], name="template_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.template_id} v{self.version}"


class Layout(WorkspaceOwned):
    """The workspace's header and footer (MJML sections) wrapped around templates that use the
    layout. The footer carries the unsubscribe link and the postal address."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="+")
    header_mjml = models.TextField(_("header"), blank=True, default="")
    footer_mjml = models.TextField(_("footer"), blank=True, default="")
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(default=timezone.now)


class DeliverySettings(WorkspaceOwned):
    """The workspace's rules applied at send time. A workspace without a row has the defaults."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="+")
    # Marketing emails per contact; empty = no cap.
    daily_cap = models.PositiveSmallIntegerField(_("marketing emails per contact per day"), null=True, blank=True)
    weekly_cap = models.PositiveSmallIntegerField(_("marketing emails per contact per week"), null=True, blank=True)
    # In the contact's time zone (the workspace's when the contact has none); marketing mail due
    # inside the window waits until it ends. Start later than end wraps midnight (21:00–08:00).
    quiet_hours_start = models.TimeField(_("quiet hours from"), null=True, blank=True)
    quiet_hours_end = models.TimeField(_("quiet hours until"), null=True, blank=True)
    soft_bounce_limit = models.PositiveSmallIntegerField(
        _("suppress after soft bounces in a row"), default=3, help_text=_("0 never suppresses on soft bounces.")
    )
    # Marketing messages that ask for smart sending (series steps) skip a contact who was sent
    # marketing mail within this many hours.
    smart_sending_hours = models.PositiveSmallIntegerField(
        _("smart sending window (hours)"),
        default=16,
        validators=[MaxValueValidator(MAX_SMART_SENDING_HOURS)],
        help_text=_(
            "Series emails that use smart sending skip a contact who got marketing mail within "
            "this many hours. 0 turns it off."
        ),
    )
    track_opens = models.BooleanField(_("track opens"), default=True)
    track_clicks = models.BooleanField(_("track clicks"), default=True)
    # Added to tracked links that have none of their own, e.g. {"utm_source": "esp", "utm_medium": "email"}.
    utm_parameters = models.JSONField(_("UTM parameters"), default=dict, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)


class ProviderKind(models.TextChoices):
    OUTBOX = "outbox", _("Outbox (stored, not delivered)")
    SMTP = "smtp", "SMTP"
    SES = "amazon_ses", "Amazon SES"
    MAILGUN = "mailgun", "Mailgun"
    POSTMARK = "postmark", "Postmark"
    SENDGRID = "sendgrid", "SendGrid"
    SPARKPOST = "sparkpost", "SparkPost"
    BREVO = "brevo", "Brevo"
    MAILJET = "mailjet", "Mailjet"
    RESEND = "resend", "Resend"


class Provider(WorkspaceOwned):
    """A way out for the workspace's mail: an adapter kind plus its settings. Credentials
    (API keys, SMTP passwords, webhook secrets) are stored encrypted (campaigns.crypto); the
    form never shows them again."""

    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=16, choices=ProviderKind.choices)
    # Fernet token of a JSON object; see campaigns.providers for the keys each kind expects.
    credentials = models.TextField(blank=True, default="")
    # Shared by all workers through Redis; 0 = no limit.
    rate_limit = models.PositiveIntegerField(_("messages per second"), default=0)
    is_default = models.BooleanField(_("default"), default=False)
    # Names the provider in its webhook URL (/webhooks/<token>/…): random, not a secret by
    # itself — webhooks are authenticated by the basic-auth secret and the ESP's signature.
    webhook_token = models.CharField(max_length=32, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="provider_unique_name"),
            models.UniqueConstraint(
                fields=["workspace"], condition=models.Q(is_default=True), name="provider_one_default"
            ),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SenderIdentity(WorkspaceOwned):
    from_name = models.CharField(_("from name"), max_length=120)
    from_email = models.EmailField(_("from address"))
    reply_to = models.EmailField(_("reply-to"), blank=True, default="")
    is_default = models.BooleanField(_("default"), default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "from_email", "from_name"], name="sender_unique"),
            models.UniqueConstraint(
                fields=["workspace"], condition=models.Q(is_default=True), name="sender_one_default"
            ),
        ]
        ordering = ["from_email"]
        verbose_name = _("sender identity")

    def __str__(self) -> str:
        return f"{self.from_name} <{self.from_email}>"


class MessageState(models.TextChoices):
    QUEUED = "queued", _("Queued")
    # Taken by a worker's batch, not yet handed to the provider: a crash leaves it safe to
    # send again, so the recovery puts it back to queued.
    CLAIMED = "claimed", _("Claimed")
    # Being handed to the provider. A crash here leaves it `in_doubt`: never sent again.
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SUPPRESSED = "suppressed", _("Suppressed")
    SKIPPED = "skipped", _("Skipped")
    IN_DOUBT = "in_doubt", _("In doubt")


class SkipReason(models.TextChoices):
    SUPPRESSED = "suppressed", _("Address is on the suppression list")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed from the list")
    NO_ADDRESS = "no_postal_address", _("The workspace has no postal address")
    DAILY_CAP = "daily_cap", _("Daily frequency cap reached")
    WEEKLY_CAP = "weekly_cap", _("Weekly frequency cap reached")
    QUIET_HOURS = "quiet_hours", _("Delayed by quiet hours")
    NO_EMAIL = "no_email", _("Contact has no address (erased)")
    RENDER_ERROR = "render_error", _("The template could not be rendered")
    REJECTED = "rejected", _("Rejected by the provider")
    RETRIES_EXHAUSTED = "retries_exhausted", _("Provider kept failing")
    CRASHED = "crashed", _("Worker stopped while sending")
    SMART_SENDING = "smart_sending", _("Mailed recently (smart sending)")
    # Decided by a send gate of a higher layer (campaigns.delivery.gates).
    SERIES_ENDED = "series_ended", _("The contact left the series")
    FLOW_FILTER = "flow_filter", _("No longer matches the series' filter")
    SERIES_PAUSED = "series_paused", _("The series is paused")
    BROADCAST_CANCELLED = "broadcast_cancelled", _("The broadcast was cancelled")
    BROADCAST_PAUSED = "broadcast_paused", _("Held: the broadcast is paused")
    GATE_ERROR = "gate_error", _("A send rule kept failing")


class DeliveryStatus(models.TextChoices):
    # What the provider said after we handed the message over (webhooks).
    NONE = "", _("Not reported")
    DELIVERED = "delivered", _("Delivered")
    DEFERRED = "deferred", _("Deferred")
    BOUNCED = "bounced", _("Bounced")
    SOFT_BOUNCED = "soft_bounced", _("Soft bounce")
    COMPLAINED = "complained", _("Complaint")


class SourceKind(StrEnum):
    BROADCAST = "broadcast"
    STEP = "step"
    TRANSACTIONAL = "tx"
    TEST = "test"
    DEMO = "demo"


@dataclass(frozen=True)
class MessageSource:
    """What a message was sent for, stored in `Message.source` as "<kind>:<key>". Built and read
    only here, so a kind's spelling lives in one place."""

    kind: str
    key: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"

    @classmethod
    def broadcast(cls, broadcast_id: int) -> MessageSource:
        return cls(SourceKind.BROADCAST, str(broadcast_id))

    @classmethod
    def step(cls, enrollment_id: int, step_key: str) -> MessageSource:
        return cls(SourceKind.STEP, f"{enrollment_id}:{step_key}")

    @classmethod
    def transactional(cls, idempotency_key: str) -> MessageSource:
        return cls(SourceKind.TRANSACTIONAL, idempotency_key)

    @classmethod
    def test(cls) -> MessageSource:
        return cls(SourceKind.TEST, str(uuid.uuid4()))

    @classmethod
    def demo(cls, key: str) -> MessageSource:
        return cls(SourceKind.DEMO, key)

    @classmethod
    def parse(cls, source: str) -> MessageSource:
        kind, _sep, key = source.partition(":")
        return cls(kind, key)

    @staticmethod
    def prefix(kind: str) -> str:
        """The start of every source of a kind (for a LIKE or startswith)."""
        return f"{kind}:"

    @property
    def is_test(self) -> bool:
        return self.kind == SourceKind.TEST

    @property
    def is_transactional(self) -> bool:
        return self.kind == SourceKind.TRANSACTIONAL

    @property
    def is_campaign(self) -> bool:
        """A broadcast or a series step: many messages share it (a Feedback-ID worth having)."""
        return self.kind in (SourceKind.BROADCAST, SourceKind.STEP)


class Message(WorkspaceOwned):
    """One email to one contact (the send log). Unique on (source, contact) so that whoever
    creates it twice gets the row that exists: `source` is a MessageSource."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    # Null once the contact is erased (GDPR): the row stays for the counts, without the person.
    contact = models.ForeignKey(
        "audiences.Contact", null=True, on_delete=models.SET_NULL, related_name="messages", db_index=False
    )
    source = models.CharField(max_length=200)
    message_class = models.CharField(max_length=16, choices=MessageClass.choices, default=MessageClass.MARKETING)
    priority = models.PositiveSmallIntegerField(choices=SendPriority.choices, default=SendPriority.PROMOTIONAL)
    # Skip this (marketing) message when the contact was mailed within the workspace's smart
    # sending window: series steps ask for it, broadcasts do not.
    smart_sending = models.BooleanField(default=False)
    template = models.ForeignKey(EmailTemplate, null=True, on_delete=models.SET_NULL, related_name="messages")
    # Replaces the template's subject for this message (a series step's own subject); the same
    # template language as the subject it replaces. Empty: the template's.
    subject_override = models.CharField(max_length=998, blank=True, default="")
    # The same for the preheader (a broadcast's or a variant's own).
    preheader_override = models.CharField(max_length=255, blank=True, default="", db_default="")
    # The list whose unsubscribe stops this message (a broadcast to a list); empty for others.
    # (These three are indexed only where set, see Meta: each row version of a send writes
    # every index it belongs to.)
    mailing_list = models.ForeignKey(
        "audiences.MailingList", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    provider = models.ForeignKey(
        Provider, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    sender = models.ForeignKey(
        SenderIdentity, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # The EmailTemplateVersion (by id) the message was rendered with, written with `sending`;
    # null for a message not sent yet or sent before snapshots were kept (shown from the
    # template's current version). No foreign key: its check would cost the send loop a lookup
    # per message, and a template's snapshots go only with the template.
    template_version = models.PositiveIntegerField(null=True, blank=True)
    to_email = models.CharField(max_length=254)
    # Rendered at send time, kept for the log.
    subject = models.CharField(max_length=998, blank=True, default="")
    # The template's `event` (the triggering event's properties) or the transactional data.
    data = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=MessageState.choices, default=MessageState.QUEUED)
    reason = models.CharField(max_length=32, choices=SkipReason.choices, blank=True, default="")
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    # The engine's clock: a test that froze it finds a message made "now" due.
    due_at = models.DateTimeField(default=clock.now)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True, default="")
    # The URLs of the message's tracked links, by position; click tokens point into this list,
    # so a click can only ever redirect to a URL the message really contained.
    links = ArrayField(models.TextField(), default=list, blank=True)
    delivery_status = models.CharField(max_length=16, choices=DeliveryStatus.choices, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)  # first human open
    clicked_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    complained_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "source", "contact"], name="message_unique_source_contact")
        ]
        indexes = [
            # The send loop: due queued rows, oldest first and, among rows due at the same
            # instant (a broadcast's), the most important first (partial: sent rows drop out).
            models.Index(fields=["due_at", "-priority", "id"], condition=models.Q(state="queued"), name="message_due"),
            # Recovery after a crash: rows a worker holds.
            models.Index(
                fields=["claimed_at"], condition=models.Q(state__in=["claimed", "sending"]), name="message_held"
            ),
            models.Index(
                fields=["workspace", "provider_message_id"],
                condition=~models.Q(provider_message_id=""),
                name="message_provider_id",
            ),
            # Profile, frequency caps and engagement conditions.
            models.Index(fields=["contact", "-created_at"], name="message_contact_recent"),
            models.Index(fields=["workspace", "-id"], name="message_workspace_recent"),
            # Only for deleting a list, provider or sender identity (ON DELETE SET NULL) — no
            # read of the send loop needs them. Partial: most rows name none (the workspace's
            # default provider and sender), and a message passes through three row versions
            # (claimed, sending, sent), each written to every index whose condition it meets.
            models.Index(
                fields=["mailing_list"], condition=models.Q(mailing_list__isnull=False), name="message_mailing_list"
            ),
            models.Index(fields=["provider"], condition=models.Q(provider__isnull=False), name="message_provider"),
            models.Index(fields=["sender"], condition=models.Q(sender__isnull=False), name="message_sender"),
        ]

    def __str__(self) -> str:
        return f"{self.to_email} · {self.source}"


class MessageEventType(models.TextChoices):
    DELIVERED = "delivered", _("Delivered")
    DEFERRED = "deferred", _("Deferred")
    BOUNCED = "bounced", _("Bounced")
    SOFT_BOUNCED = "soft_bounced", _("Soft bounce")
    COMPLAINED = "complained", _("Complaint")
    OPENED = "opened", _("Opened")
    CLICKED = "clicked", _("Clicked")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
    REJECTED = "rejected", _("Rejected")


class MessageEvent(WorkspaceOwned):
    """What happened to a sent message: from provider webhooks and our own open pixel, click
    redirect and unsubscribe endpoints. `event_key` makes a replayed webhook count once."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="events", db_index=False)
    # Copied from the message so that engagement conditions read one table.
    contact = models.ForeignKey(
        "audiences.Contact", null=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    type = models.CharField(max_length=16, choices=MessageEventType.choices)
    occurred_at = models.DateTimeField(default=timezone.now)
    # The provider's event id, or one we make ("open:<message>:<ip>:<minute>"): unique per workspace.
    event_key = models.CharField(max_length=255)
    url = models.TextField(blank=True, default="")
    user_agent = models.CharField(max_length=400, blank=True, default="")
    # An open or click that looks automated (Apple Mail Privacy Protection, link scanners):
    # kept, but reports and engagement conditions leave it out.
    is_machine = models.BooleanField(default=False)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "event_key"], name="message_event_unique_key")]
        indexes = [
            models.Index(fields=["message", "occurred_at"], name="message_event_message"),
            models.Index(
                fields=["contact", "type", "occurred_at"],
                condition=models.Q(is_machine=False),
                name="message_event_engagement",
            ),
        ]


# Broadcasts live in their own module; imported here so that the app registers them.
from campaigns.broadcast_models import (  # noqa: E402, F401
    Broadcast,
    BroadcastStatus,
    BroadcastTest,
    BroadcastVariant,
    SendMode,
)
