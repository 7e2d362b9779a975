"""Reading contact rows from the outside (API items, CSV lines, event traits) and writing them
in bulk: one COPY into a temporary table, then one set-based INSERT … ON CONFLICT. The API's
bulk upsert and the CSV import both come through here, so a row is judged the same way."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from audiences.fields import clean_attributes
from audiences.models import CustomField, Gender, MailingList, normalise_email
from esp.models import Workspace
from esp.queue import enqueue_after_commit

# Pragmatic address check: one @, a dot in the domain, no spaces; length limits of RFC 5321.
EMAIL_RE = re.compile(
    r"^[^@\s\"(),:;<>\[\\\]]{1,64}@(?=.{1,253}$)([A-Za-z0-9\u00a1-\uffff-]{1,63}\.)+[A-Za-z\u00a1-\uffff]{2,63}$"
)
TEXT_FIELDS = ("first_name", "last_name", "phone", "city", "locale")
MAX_TEXT = {"first_name": 150, "last_name": 150, "phone": 40, "city": 120, "locale": 16}
STANDARD_FIELDS = ("email", "external_id", *TEXT_FIELDS, "gender", "birth_date", "country", "time_zone", "tags")
TIME_ZONES = frozenset(zoneinfo.available_timezones())
COUNTRY_RE = re.compile(r"[A-Z]{2}")
# COPY reads the staged text in chunks of this many characters. Each chunk is a call back into
# Python that must retake the GIL; psycopg2's default of 8 KB means hundreds per batch, each a
# wait of up to the switch interval when another thread (the import's reader) is busy.
COPY_CHUNK = 4 * 1024 * 1024


@dataclass
class ContactInput:
    email: str
    external_id: str = ""
    values: dict[str, Any] = field(default_factory=dict)  # standard fields that were given
    attributes: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


def custom_fields_of(workspace: Workspace) -> dict[str, CustomField]:
    return {f.key: f for f in CustomField.objects.in_workspace(workspace)}


def parse_contact(
    data: Mapping[str, Any], fields: dict[str, CustomField], *, keep_unknown: bool = False
) -> ContactInput:
    """Validate one contact given as a flat mapping: standard fields by name, custom fields
    under `attributes` or by their key. Raises ValidationError naming each bad field."""
    errors: dict[str, str] = {}
    email = normalise_email(str(data.get("email") or ""))
    if not email:
        errors["email"] = _("An email address is required.")
    elif len(email) > 254 or not EMAIL_RE.match(email):
        errors["email"] = _("%(value)r is not a valid email address.") % {"value": email}
    values: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        if name in data and data[name] is not None:
            text = str(data[name]).strip()
            if len(text) > MAX_TEXT[name]:
                errors[name] = _("At most %(n)d characters.") % {"n": MAX_TEXT[name]}
            values[name] = text
    if data.get("gender") not in (None, ""):
        gender = str(data["gender"]).strip().lower()
        if gender not in Gender.values:
            errors["gender"] = _("One of: %(choices)s.") % {"choices": ", ".join(Gender.values)}
        values["gender"] = gender
    if data.get("birth_date") not in (None, ""):
        raw = data["birth_date"]
        birth = raw if isinstance(raw, dt.date) else _parse_date(str(raw))
        if birth is None:
            errors["birth_date"] = _("Expected a date (YYYY-MM-DD), got %(value)r.") % {"value": raw}
        values["birth_date"] = birth
    if data.get("country") not in (None, ""):
        country = str(data["country"]).strip().upper()
        if not COUNTRY_RE.fullmatch(country):
            errors["country"] = _("Expected a two-letter ISO country code.")
        values["country"] = country
    if data.get("time_zone") not in (None, ""):
        if str(data["time_zone"]) not in TIME_ZONES:
            errors["time_zone"] = _("Unknown time zone %(value)r.") % {"value": data["time_zone"]}
        values["time_zone"] = str(data["time_zone"])
    raw_attributes = dict(data.get("attributes") or {})
    for key in fields:
        if key in data and key not in STANDARD_FIELDS:
            raw_attributes.setdefault(key, data[key])
    try:
        attributes = clean_attributes(fields, raw_attributes, keep_unknown=keep_unknown)
    except ValidationError as error:
        errors.update({key: " ".join(messages) for key, messages in error.message_dict.items()})
        attributes = {}
    tags = data.get("tags") or []
    if isinstance(tags, str):
        tags = [tag for tag in (t.strip() for t in tags.split(",")) if tag]
    if tags and (not isinstance(tags, list) or any(len(str(tag)) > 64 for tag in tags)):
        errors["tags"] = _("Tags are a list of words of at most 64 characters.")
        tags = []
    if errors:
        raise ValidationError(errors)
    return ContactInput(
        email=email,
        external_id=str(data.get("external_id") or "").strip()[:255],
        values=values,
        attributes=attributes,
        tags=sorted({str(tag).strip() for tag in tags if str(tag).strip()}) if tags else [],
    )


def _parse_date(text: str) -> dt.date | None:
    text = text.strip()
    try:
        return parse_date(text) or dt.datetime.strptime(text, "%d.%m.%Y").date()
    except ValueError:
        return None


# --- bulk writing ---------------------------------------------------------------------------

CREATED, UPDATED, UNCHANGED, REJECTED = "created", "updated", "unchanged", "rejected"


@dataclass
class RowOutcome:
    status: str  # created | updated | unchanged (existing, skipped) | rejected
    contact_id: int | None = None
    error: str = ""


# Columns copied into the staging table, in order. `given` lists the standard fields the row
# set, so an update changes only those and never blanks a value the row did not mention.
_STAGE_COLUMNS = (
    "row_no", "email", "external_id", "first_name", "last_name", "gender", "birth_date", "phone", "city",
    "country", "time_zone", "locale", "attributes", "tags", "given",
)  # fmt: skip
_UPDATABLE = ("first_name", "last_name", "gender", "birth_date", "phone", "city", "country", "time_zone", "locale")


def _copy_value(value: Any) -> str:
    if value is None:
        return r"\N"
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _pg_array(items: Iterable[str]) -> str:
    return "{" + ",".join('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items) + "}"


_json_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode  # json.dumps builds one per call
_json_string: Any = json.encoder.encode_basestring  # type: ignore[attr-defined]  # the C one when built


def _json_object(attributes: dict[str, Any]) -> str:
    """json.dumps(attributes, ensure_ascii=False, default=str), faster for flat values."""
    parts = []
    for key, value in attributes.items():
        kind = type(value)
        if kind is str:
            text = _json_string(value)
        elif kind is int:
            text = int.__repr__(value)
        elif kind is bool:
            text = "true" if value else "false"
        elif value is None:
            text = "null"
        else:
            return _json_encode(attributes)
        if type(key) is not str:
            return _json_encode(attributes)
        parts.append(f"{_json_string(key)}: {text}")
    return "{" + ", ".join(parts) + "}"


_given_arrays: dict[tuple[str, ...], str] = {}  # the few distinct sets of given fields, as COPY text


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _stage_line(row_no: int, item: ContactInput) -> str:
    """One line of COPY text: the hot path of bulk writes (an import stages a million rows).
    The text cells are joined with NUL, which no PostgreSQL text holds, escaped in one pass
    and split into columns again, instead of being escaped one by one."""
    v = item.values
    given = tuple(v)
    given_array = _given_arrays.get(given)
    if given_array is None:
        given_array = _escape(_pg_array(given))
        if len(_given_arrays) < 1024:
            _given_arrays[given] = given_array
    birth = v.get("birth_date")
    head = (
        item.email, item.external_id, v.get("first_name", ""), v.get("last_name", ""), v.get("gender", ""),
    )  # fmt: skip
    tail = (
        v.get("phone", ""), v.get("city", ""), v.get("country", ""), v.get("time_zone", ""), v.get("locale", ""),
        _json_object(item.attributes) if item.attributes else "{}",
        _pg_array(item.tags) if item.tags else "{}",
    )  # fmt: skip
    try:
        joined_head, joined_tail = "\x00".join(head), "\x00".join(tail)
    except TypeError:  # a value that is not text
        joined_head = joined_tail = "\x00"
    if joined_head.count("\x00") != len(head) - 1 or joined_tail.count("\x00") != len(tail) - 1:
        # A NUL in a value (PostgreSQL refuses the row, as before) or a value that is not text.
        return "\t".join(_copy_value(cell) for cell in (row_no, *head, birth, *tail, _pg_array(given))) + "\n"
    birth_text = r"\N" if birth is None else _escape(str(birth))
    head_text, tail_text = _escape(joined_head).replace("\x00", "\t"), _escape(joined_tail).replace("\x00", "\t")
    return f"{row_no}\t{head_text}\t{birth_text}\t{tail_text}\t{given_array}\n"


@dataclass
class StagedRows:
    """Rows judged among themselves (a repeated address or external_id rejects the earlier
    row) and turned into COPY text: the pure-Python half of contacts_upsert. The CSV import
    prepares the next batch this way in a thread of its own while the database writes this one."""

    outcomes: list[RowOutcome | None]  # None: staged for writing
    copy_text: str


def contacts_stage(rows: list[ContactInput]) -> StagedRows:
    outcomes: list[RowOutcome | None] = [None] * len(rows)
    last_by_email: dict[str, int] = {}
    last_by_external: dict[str, int] = {}
    for index, item in enumerate(rows):
        key = item.email.lower()
        if key in last_by_email:
            outcomes[last_by_email[key]] = RowOutcome(REJECTED, error=_("The same address appears again later."))
        last_by_email[key] = index
        if item.external_id:
            if item.external_id in last_by_external and last_by_external[item.external_id] != index:
                earlier = last_by_external[item.external_id]
                if outcomes[earlier] is None:
                    outcomes[earlier] = RowOutcome(REJECTED, error=_("The same external_id appears again later."))
            last_by_external[item.external_id] = index
    text = "".join(_stage_line(index, item) for index, item in enumerate(rows) if outcomes[index] is None)
    return StagedRows(outcomes, text)


def contacts_upsert(
    *,
    workspace: Workspace,
    rows: list[ContactInput] | StagedRows,
    update_existing: bool = True,
    source: str = "",
    mailing_list: MailingList | None = None,
    consent_source: str = "",
    consent_text: str = "",
    confirm_by_mail: bool = False,
) -> list[RowOutcome]:
    """Insert or update contacts by email in one set-based pass and, with `mailing_list`,
    subscribe the new or updated ones (never re-subscribing anyone who unsubscribed).
    With `confirm_by_mail` new subscriptions start `pending` and each gets a double opt-in
    mail after commit; otherwise the caller vouches for consent (an import) and they start
    `subscribed`.

    Rows are judged together: a suppressed address, an external_id that belongs to another
    contact, or a second row for the same address (the last one wins) is rejected with its
    reason; every other row is written. Returns one outcome per input row, in order. `rows`
    may come prepared by contacts_stage."""
    staged = rows if isinstance(rows, StagedRows) else contacts_stage(rows)
    outcomes = list(staged.outcomes)
    if not staged.copy_text:
        return [outcome or RowOutcome(REJECTED) for outcome in outcomes]

    with transaction.atomic(), connection.cursor() as cursor:
        # Session-local; dropped first in case an outer transaction (a test, a caller's
        # atomic block) still holds the one of a previous call, since ON COMMIT has not come.
        # Half-full pages: the UPDATEs below then rewrite each staged row in place (HOT), not
        # into new pages with new index entries.
        cursor.execute("DROP TABLE IF EXISTS pg_temp.contact_stage")
        cursor.execute(
            """
            CREATE TEMPORARY TABLE contact_stage (
                row_no integer PRIMARY KEY, email text, external_id text, first_name text, last_name text,
                gender text, birth_date date, phone text, city text, country text, time_zone text, locale text,
                attributes jsonb, tags text[], given text[], error text,
                contact_id bigint, inserted boolean NOT NULL DEFAULT false
            ) WITH (fillfactor = 50) ON COMMIT DROP
            """
        )
        buffer = io.StringIO(staged.copy_text)
        copy = f"COPY contact_stage ({', '.join(_STAGE_COLUMNS)}) FROM STDIN"
        cursor.cursor.copy_expert(copy, buffer, size=COPY_CHUNK)
        # Lookups in audiences_contact below compare workspace_id with `(SELECT ws)`, a value the
        # planner cannot see: it then estimates an average workspace and probes the unique
        # (workspace, key) indexes. With the literal it trusts the table's statistics, which know
        # nothing of a workspace an import is filling (estimated 1 row), picks the workspace_id
        # index and reads every contact of the workspace once per staged row (seen: 0.3 s per
        # 100 rows at 100k contacts, growing with the workspace).
        cursor.execute(
            """
            UPDATE contact_stage s SET error = 'suppressed' FROM audiences_suppression sp
            WHERE sp.workspace_id = %(ws)s
              AND sp.email_hash = encode(sha256(convert_to(lower(s.email), 'UTF8')), 'hex');
            UPDATE contact_stage s SET error = 'external_id'
            WHERE s.error IS NULL AND s.external_id <> '' AND EXISTS (
                SELECT 1 FROM audiences_contact c
                WHERE c.workspace_id = (SELECT %(ws)s::bigint) AND c.external_id = s.external_id
                  AND c.external_id <> '' AND lower(c.email) <> lower(s.email)
            );
            """,
            {"ws": workspace.pk},
        )
        now = timezone.now()
        params: dict[str, Any] = {"ws": workspace.pk, "source": source, "now": now}
        # New addresses first; ON CONFLICT DO NOTHING leaves existing (or concurrently
        # inserted) ones to the UPDATE below, which can see which fields each row gave.
        cursor.execute(
            """
            WITH inserted AS (
                INSERT INTO audiences_contact (
                    workspace_id, email, external_id, first_name, last_name, gender, birth_date, phone, city,
                    country, time_zone, locale, attributes, tags, source, created_at, updated_at
                )
                SELECT %(ws)s, email, external_id, first_name, last_name, gender, birth_date, phone, city,
                       country, time_zone, locale, attributes, tags, %(source)s, %(now)s, %(now)s
                FROM contact_stage WHERE error IS NULL ORDER BY row_no
                ON CONFLICT (workspace_id, lower(email)) DO NOTHING
                RETURNING id, lower(email) AS email_key
            )
            UPDATE contact_stage s SET contact_id = i.id, inserted = true
            FROM inserted i WHERE lower(s.email) = i.email_key
            """,
            params,
        )
        # The existing contacts: one probe of the unique (workspace, lower(email)) index per row.
        cursor.execute(
            """
            UPDATE contact_stage s SET contact_id = (
                SELECT c.id FROM audiences_contact c
                WHERE c.workspace_id = (SELECT %(ws)s::bigint) AND lower(c.email) = lower(s.email)
            )
            WHERE s.error IS NULL AND NOT s.inserted
            """,
            params,
        )
        if update_existing:
            updates = ", ".join(
                f"{name} = CASE WHEN '{name}' = ANY(s.given) THEN s.{name} ELSE c.{name} END" for name in _UPDATABLE
            )
            cursor.execute(
                f"""
                UPDATE audiences_contact c SET {updates},
                    external_id = CASE WHEN s.external_id <> '' THEN s.external_id ELSE c.external_id END,
                    attributes = c.attributes || s.attributes,
                    tags = ARRAY(SELECT DISTINCT unnest(c.tags || s.tags) ORDER BY 1),
                    updated_at = %(now)s
                FROM contact_stage s
                WHERE c.id = s.contact_id AND c.workspace_id = (SELECT %(ws)s::bigint)
                  AND s.error IS NULL AND NOT s.inserted
                """,  # noqa: S608 — only constant column names are formatted in; values are parameters
                params,
            )
        cursor.execute("SELECT row_no, contact_id, inserted, error FROM contact_stage")
        written = cursor.fetchall()
        if mailing_list is not None:
            pending = _subscribe_written(
                cursor, workspace, mailing_list, now, consent_source or source, consent_text, confirm_by_mail
            )
            if pending:
                from audiences.tasks import send_confirmation_email

                for subscription_id in pending:
                    enqueue_after_commit(send_confirmation_email, subscription_id)

    for row_no, contact_id, inserted, error in written:
        if error == "suppressed":
            outcomes[row_no] = RowOutcome(REJECTED, error=_("The address is on the suppression list."))
        elif error == "external_id":
            outcomes[row_no] = RowOutcome(REJECTED, error=_("The external_id belongs to another contact."))
        elif inserted:
            outcomes[row_no] = RowOutcome(CREATED, contact_id)
        else:
            outcomes[row_no] = RowOutcome(UPDATED if update_existing else UNCHANGED, contact_id)
    return [outcome or RowOutcome(REJECTED) for outcome in outcomes]


def _subscribe_written(
    cursor: Any,
    workspace: Workspace,
    mailing_list: MailingList,
    now: dt.datetime,
    source: str,
    text: str,
    confirm_by_mail: bool,
) -> list[int]:
    """Subscribe the staged contacts that exist now; keep every existing subscription as it is
    (an unsubscribe is never undone by an import) and record consent for the new ones.
    Returns the ids of new `pending` subscriptions (with `confirm_by_mail`)."""
    cursor.execute(
        """
        WITH new_subscriptions AS (
            INSERT INTO audiences_subscription
                (workspace_id, contact_id, mailing_list_id, status, created_at, confirmed_at, updated_at)
            SELECT %(ws)s, s.contact_id, %(list)s, %(status)s, %(now)s, %(confirmed)s, %(now)s
            FROM contact_stage s WHERE s.error IS NULL AND s.contact_id IS NOT NULL
            ON CONFLICT (mailing_list_id, contact_id) DO NOTHING
            RETURNING id, contact_id
        ), consent AS (
            INSERT INTO audiences_consentrecord
                (workspace_id, contact_id, mailing_list_id, action, source, occurred_at, user_agent, text_shown)
            SELECT %(ws)s, contact_id, %(list)s, 'subscribed', %(source)s, %(now)s, '', %(text)s FROM new_subscriptions
        )
        SELECT id FROM new_subscriptions
        """,
        {
            "ws": workspace.pk,
            "list": mailing_list.pk,
            "now": now,
            "source": source,
            "text": text,
            "status": "pending" if confirm_by_mail else "subscribed",
            "confirmed": None if confirm_by_mail else now,
        },
    )
    return [row[0] for row in cursor.fetchall()] if confirm_by_mail else []
