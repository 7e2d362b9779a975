"""Judging tracking messages: the request's shape, each message's fields, ids, times and size,
as the Segment HTTP tracking spec defines them, and the errors that name what is wrong."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from audiences.models import EventType
from esp.plurals import at_most_characters

# Segment's limits: 32 KB per call, 500 KB per batch request.
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_ID_LENGTH = 255  # Event.user_id / anonymous_id / message_id, ContactAlias.alias
MAX_NAME_LENGTH = 200  # Event.name
MAX_REPORTED_ERRORS = 100
BATCH_ENDPOINTS = frozenset({"batch", "import"})
MESSAGE_TYPES = tuple(EventType.values)
_TYPES = frozenset(MESSAGE_TYPES)
# Messages whose side effects (contact upsert, aliases) happen at ingestion: a replay of one of
# them is looked up first, so that it changes nothing.
IDENTITY_TYPES = frozenset({EventType.IDENTIFY.value, EventType.ALIAS.value})


@dataclass(frozen=True)
class ItemError:
    index: int | None  # position in the request's items (0 for a single call); None: the request's own field
    field: str  # dotted path inside the item ("" for the item as a whole), or the request's field
    message: str


class IngestError(Exception):
    """The request is refused as a whole; nothing of it was stored. `status` is 400 (invalid)
    or 413 (too large)."""

    def __init__(self, status: int, message: str, errors: Iterable[ItemError] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = list(errors)

    def fields(self, *, batch: bool) -> dict[str, list[str]]:
        """The errors keyed by path: `batch.<index>.<field>` for a batch, `<field>` otherwise."""
        result: dict[str, list[str]] = {}
        for error in self.errors:
            if error.index is None:
                key = error.field
            elif batch:
                key = f"batch.{error.index}" + (f".{error.field}" if error.field else "")
            else:
                key = error.field or "non_field_errors"
            result.setdefault(key, []).append(error.message)
        return result


@dataclass
class IngestResult:
    received: int  # messages in the request
    stored: int  # events inserted now
    duplicates: int  # messageIds stored before (or twice in this request): accepted, not stored again
    pending_id: int | None  # the PendingEvents row handed to audiences.process_events
    event_ids: list[int] = field(default_factory=list)


# --- the request body ----------------------------------------------------------------------


def request_items(endpoint: str, payload: Any) -> list[dict[str, Any]]:
    """The messages of one request. A single call's type is its endpoint; a batch's items name
    their own and inherit the batch's `context`, `integrations` and `sentAt`."""
    if not isinstance(payload, dict):
        raise IngestError(400, _("The body must be a JSON object."))
    if endpoint not in BATCH_ENDPOINTS:
        payload["type"] = endpoint
        return [payload]
    batch = payload.get("batch")
    if not isinstance(batch, list):
        raise IngestError(
            400, _("A batch needs `batch`: a list of messages."), [ItemError(None, "batch", _("Expected a list."))]
        )
    context, integrations, sent_at = payload.get("context"), payload.get("integrations"), payload.get("sentAt")
    errors = [
        ItemError(None, key, _("Expected a JSON object."))
        for key, value in (("context", context), ("integrations", integrations))
        if value is not None and not isinstance(value, dict)
    ]
    if errors:
        raise IngestError(400, _("The batch's own fields are not valid; nothing was stored."), errors)
    for item in batch:
        if type(item) is not dict:
            continue  # judged with the others by events_ingest
        # The batch's context and integrations under each item's own (an item's that is not an
        # object is left for the judge to report).
        if context:
            own = item.get("context")
            if own is None:
                item["context"] = context
            elif type(own) is dict:
                item["context"] = {**context, **own}
        if integrations:
            own = item.get("integrations")
            if own is None:
                item["integrations"] = integrations
            elif type(own) is dict:
                item["integrations"] = {**integrations, **own}
        if sent_at is not None and "sentAt" not in item:
            item["sentAt"] = sent_at
    return batch


# --- judging one message -------------------------------------------------------------------


@dataclass(slots=True)
class Message:
    index: int
    type: str
    name: str
    properties: dict[str, Any]
    context: dict[str, Any]
    user_id: str
    anonymous_id: str
    message_id: str
    occurred_at: dt.datetime
    email: str  # lower-cased traits.email (identify) or context.traits.email, if any
    previous_id: str = ""
    contact_id: int | None = None


def _text_id(value: Any) -> str | None:
    """An id as the SDKs send it: a string, or a number they did not stringify."""
    if type(value) is str:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _parse_time(value: Any) -> dt.datetime | None:
    if type(value) is not str:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _has_nul(value: Any) -> bool:
    """PostgreSQL text and jsonb cannot hold U+0000; found here, it is a 400, not a 500."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


class Judge:
    """Turns raw messages into Message rows, collecting every error of the request."""

    def __init__(self, received_at: dt.datetime, *, measure: bool, suspect_nul: bool) -> None:
        self.received_at = received_at
        self.measure = measure  # per-item sizes are needed only when the body exceeds 32 KB
        self.suspect_nul = suspect_nul
        self.errors: list[ItemError] = []
        self.too_large = False
        self._skews: dict[str, dt.timedelta | None] = {}  # sentAt text -> correction

    def error(self, index: int, field_name: str, message: str) -> None:
        self.errors.append(ItemError(index, field_name, message))

    def skew(self, sent_at: Any) -> dt.timedelta | None:
        """received_at - sentAt, parsed once per distinct value (a batch shares one)."""
        if type(sent_at) is not str:
            return None
        if sent_at not in self._skews:
            moment = _parse_time(sent_at)
            self._skews[sent_at] = None if moment is None else self.received_at - moment
        return self._skews[sent_at]

    def message(self, index: int, item: Any) -> Message | None:
        if type(item) is not dict:
            self.error(index, "", _("Expected a JSON object."))
            return None
        if self.measure:
            size = len(orjson.dumps(item, default=str))  # default: a Python caller's Decimal, date…
            if size > MAX_EVENT_BYTES:
                self.too_large = True
                self.error(
                    index,
                    "",
                    # Two counts, two plural forms: each clause is translated whole.
                    "; ".join(
                        (
                            ngettext("The message is %(size)s byte", "The message is %(size)s bytes", size)
                            % {"size": f"{size:,}"},
                            ngettext(
                                "at most %(limit)s byte (32 KB) is accepted.",
                                "at most %(limit)s bytes (32 KB) are accepted.",
                                MAX_EVENT_BYTES,
                            )
                            % {"limit": f"{MAX_EVENT_BYTES:,}"},
                        )
                    ),
                )
                return None
        if self.suspect_nul and _has_nul(item):
            self.error(index, "", _("Text may not contain the NUL character (\\u0000)."))
            return None
        kind = item.get("type")
        if kind not in _TYPES:
            self.error(
                index,
                "type",
                _("Unknown type %(type)s; one of: %(types)s.")
                % {"type": repr(kind), "types": ", ".join(MESSAGE_TYPES)},
            )
            return None
        errors_before = len(self.errors)
        get = item.get
        # Fast paths for what SDKs send (ids as short strings, objects as objects); anything
        # else goes through the checks that name the fault.
        user_id = get("userId")
        if type(user_id) is not str or len(user_id) > MAX_ID_LENGTH:
            user_id = self._id(index, item, "userId")
        anonymous_id = get("anonymousId")
        if type(anonymous_id) is not str or len(anonymous_id) > MAX_ID_LENGTH:
            anonymous_id = self._id(index, item, "anonymousId")
        message_id = get("messageId")
        if type(message_id) is not str or not message_id or len(message_id) > MAX_ID_LENGTH:
            message_id = self._id(index, item, "messageId") or str(uuid.uuid4())
        if not user_id and not anonymous_id and kind != "alias" and len(self.errors) == errors_before:
            self.error(index, "userId", _("A userId or an anonymousId is required."))

        properties: dict[str, Any]
        name = ""
        previous_id = ""
        if kind == "track":
            event = get("event")
            if type(event) is not str or not event.strip():
                self.error(index, "event", _("The event name is required."))
            elif len(event) > MAX_NAME_LENGTH:
                self.error(index, "event", at_most_characters(MAX_NAME_LENGTH))
            else:
                name = event
            given = get("properties")
            properties = given if type(given) is dict else self._object(index, item, "properties")
        elif kind == "page" or kind == "screen":
            properties = self._object(index, item, "properties")
            name = self._name(index, item, "name")
            category = self._name(index, item, "category")
            if category and "category" not in properties:
                properties = {**properties, "category": category}
        elif kind == "identify":
            properties = self._object(index, item, "traits")
        elif kind == "alias":
            previous_id = self._id(index, item, "previousId")
            if not previous_id:
                self.error(index, "previousId", _("The previousId is required."))
            if not user_id:
                self.error(index, "userId", _("The userId is required."))
            properties = {"previousId": previous_id}
        else:  # group
            group_id = self._id(index, item, "groupId")
            if not group_id:
                self.error(index, "groupId", _("The groupId is required."))
            properties = {"groupId": group_id, "traits": self._object(index, item, "traits")}

        context = get("context")
        if type(context) is not dict:
            context = self._object(index, item, "context")
        occurred_at = self._occurred_at(index, item)
        if len(self.errors) > errors_before:
            return None

        raw_email = properties.get("email") if kind == "identify" else None
        if not raw_email:
            context_traits = context.get("traits")
            if type(context_traits) is dict:
                raw_email = context_traits.get("email")
        return Message(
            index,
            kind,
            name,
            properties,
            context,
            user_id,
            anonymous_id,
            message_id,
            occurred_at,
            raw_email.strip().lower() if type(raw_email) is str else "",
            previous_id,
        )

    def _id(self, index: int, item: dict[str, Any], key: str) -> str:
        value = item.get(key)
        if value is None or value == "":
            return ""
        text = _text_id(value)
        if text is None:
            self.error(index, key, _("Expected a string."))
            return ""
        if len(text) > MAX_ID_LENGTH:
            self.error(index, key, at_most_characters(MAX_ID_LENGTH))
            return ""
        return text

    def _name(self, index: int, item: dict[str, Any], key: str) -> str:
        value = item.get(key)
        if value is None:
            return ""
        if type(value) is not str:
            self.error(index, key, _("Expected a string."))
            return ""
        if len(value) > MAX_NAME_LENGTH:
            self.error(index, key, at_most_characters(MAX_NAME_LENGTH))
            return ""
        return value

    def _object(self, index: int, item: dict[str, Any], key: str) -> dict[str, Any]:
        value = item.get(key)
        if value is None:
            return {}
        if type(value) is not dict:
            self.error(index, key, _("Expected a JSON object."))
            return {}
        return value

    def _occurred_at(self, index: int, item: dict[str, Any]) -> dt.datetime:
        raw = item.get("timestamp")
        key = "timestamp"
        if raw is None:
            raw, key = item.get("originalTimestamp"), "originalTimestamp"
        sent_at = item.get("sentAt")
        skew = None
        if sent_at is not None:
            skew = self.skew(sent_at)
            if skew is None:
                self.error(
                    index, "sentAt", _("Expected an ISO 8601 date and time, got %(value)r.") % {"value": sent_at}
                )
        if raw is None:
            return self.received_at
        moment = _parse_time(raw)
        if moment is None:
            self.error(index, key, _("Expected an ISO 8601 date and time, got %(value)r.") % {"value": raw})
            return self.received_at
        try:
            return moment + skew if skew is not None else moment
        except OverflowError:  # year 9999 moved past the calendar's end
            self.error(index, key, _("Expected an ISO 8601 date and time, got %(value)r.") % {"value": raw})
            return self.received_at


def rejected_message(errors: list[ItemError], total: int) -> str:
    bad = len({error.index for error in errors})
    return ngettext(
        "Nothing was stored: %(bad)d of %(total)d messages is not valid.",
        "Nothing was stored: %(bad)d of %(total)d messages are not valid.",
        bad,
    ) % {"bad": bad, "total": total}
