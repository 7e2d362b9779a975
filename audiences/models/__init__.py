"""The audience's models, one module per concern; import them from here."""

from __future__ import annotations

from audiences.models.contacts import (
    ConsentAction,
    ConsentRecord,
    ConsentSource,
    Contact,
    CustomField,
    FieldType,
    Gender,
    MailingList,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
    email_hash,
    normalise_email,
)
from audiences.models.events import ContactAlias, Event, EventType, PendingEvents
from audiences.models.facts import CustomerFacts, LifecycleSettings, LifecycleStage, RfmSegment
from audiences.models.jobs import (
    HEARTBEAT_EVERY,
    QUEUED_STALE_AFTER,
    STALE_AFTER,
    BulkAction,
    BulkJob,
    BulkJobContact,
    ExportJob,
    ImportJob,
    ImportMode,
    JobStatus,
)
from audiences.models.segments import Segment, SegmentMembership

__all__ = [
    "HEARTBEAT_EVERY",
    "QUEUED_STALE_AFTER",
    "STALE_AFTER",
    "BulkAction",
    "BulkJob",
    "BulkJobContact",
    "ConsentAction",
    "ConsentRecord",
    "ConsentSource",
    "Contact",
    "ContactAlias",
    "CustomField",
    "CustomerFacts",
    "Event",
    "EventType",
    "ExportJob",
    "FieldType",
    "Gender",
    "ImportJob",
    "ImportMode",
    "JobStatus",
    "LifecycleSettings",
    "LifecycleStage",
    "MailingList",
    "PendingEvents",
    "RfmSegment",
    "Segment",
    "SegmentMembership",
    "Subscription",
    "SubscriptionStatus",
    "Suppression",
    "SuppressionReason",
    "email_hash",
    "normalise_email",
]
