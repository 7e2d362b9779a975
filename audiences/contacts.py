"""Reading contact rows from the outside (API items, CSV lines, event traits) and writing them
in bulk: one COPY into a temporary table, then one set-based INSERT … ON CONFLICT. The API's
bulk upsert and the CSV import both come through here, so a row is judged the same way."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zoneinfo
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from audiences import hooks
from audiences.fields import clean_attributes
from audiences.models import CustomField, Gender, MailingList, email_hash, normalise_email
from esp.models import Workspace
from esp.plurals import at_most_characters
from esp.queue import enqueue_after_commit

# Pragmatic address check: one @, a dot in the domain, no spaces; length limits of RFC 5321.
EMAIL_RE = re.compile(
    r"^[^@\s\"(),:;<>\[\\\]]{1,64}@(?=.{1,253}$)([A-Za-z0-9\u00a1-\uffff-]{1,63}\.)+[A-Za-z\u00a1-\uffff]{2,63}$"
)
TEXT_FIELDS = ("first_name", "last_name", "phone", "city", "locale")
MAX_TEXT = {"first_name": 150, "last_name": 150, "phone": 40, "city": 120, "locale": 16}
STANDARD_FIELDS = ("email", "external_id", *TEXT_FIELDS, "gender", "birth_date", "country", "time_zone", "tags")
TIME_ZONES = frozenset(zoneinfo.available_timezones())
_GENDERS = frozenset(Gender.values)
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
    # The hot path of an import (a million calls): each field is looked up once, and a row
    # without custom fields skips clean_attributes.
    errors: dict[str, str] = {}
    get = data.get
    email = normalise_email(str(get("email") or ""))
    if not email:
        errors["email"] = _("An email address is required.")
    elif len(email) > 254 or not EMAIL_RE.match(email):
        errors["email"] = _("%(value)r is not a valid email address.") % {"value": email}
    values: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = get(name)
        if value is not None:
            text = value.strip() if type(value) is str else str(value).strip()
            if len(text) > MAX_TEXT[name]:
                errors[name] = at_most_characters(MAX_TEXT[name])
            values[name] = text
    value = get("gender")
    if value is not None and value != "":
        gender = str(value).strip().lower()
        if gender not in _GENDERS:
            errors["gender"] = _("One of: %(choices)s.") % {"choices": ", ".join(Gender.values)}
        values["gender"] = gender
    value = get("birth_date")
    if value is not None and value != "":
        birth = value if isinstance(value, dt.date) else _parse_date(str(value))
        if birth is None:
            errors["birth_date"] = _("Expected a date (YYYY-MM-DD), got %(value)r.") % {"value": value}
        values["birth_date"] = birth
    value = get("country")
    if value is not None and value != "":
        country = str(value).strip().upper()
        if not COUNTRY_RE.fullmatch(country):
            errors["country"] = _("Expected a two-letter ISO country code.")
        values["country"] = country
    value = get("time_zone")
    if value is not None and value != "":
        if str(value) not in TIME_ZONES:
            errors["time_zone"] = _("Unknown time zone %(value)r.") % {"value": value}
        values["time_zone"] = str(value)
    raw_attributes = dict(get("attributes") or {})
    for key in fields:
        if key in data and key not in STANDARD_FIELDS:
            raw_attributes.setdefault(key, data[key])
    attributes: dict[str, Any] = {}
    if raw_attributes:
        try:
            attributes = clean_attributes(fields, raw_attributes, keep_unknown=keep_unknown)
        except ValidationError as error:
            errors.update({key: " ".join(messages) for key, messages in error.message_dict.items()})
    tags = get("tags") or []
    if isinstance(tags, str):
        tags = [tag for tag in (t.strip() for t in tags.split(",")) if tag]
    if tags and (not isinstance(tags, list) or any(len(str(tag)) > 64 for tag in tags)):
        errors["tags"] = _("Tags are a list of words of at most 64 characters.")
        tags = []
    if errors:
        raise ValidationError(errors)
    external_id = get("external_id")
    return ContactInput(
        email,
        str(external_id).strip()[:255] if external_id else "",
        values,
        attributes,
        sorted({str(tag).strip() for tag in tags if str(tag).strip()}) if tags else [],
    )


def contact_payload(data: Any, fields: Mapping[str, CustomField], *, ignored: Collection[str] = ()) -> dict[str, Any]:
    """A contact mapping of a request, checked for shape before parse_contact judges the
    values: an object, with known keys only, and `attributes` an object. `ignored` keys are
    dropped (the read-only fields of a representation sent back: id, created_at, ...)."""
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": _("Expected a JSON object.")})
    payload = {key: value for key, value in data.items() if key not in ignored}
    unknown = sorted(set(payload) - set(STANDARD_FIELDS) - {"attributes"} - set(fields))
    errors = {key: _("Unknown field; custom fields must be declared first.") for key in unknown}
    if payload.get("attributes") is not None and not isinstance(payload["attributes"], dict):
        errors["attributes"] = _("Expected an object of custom field values.")
    if errors:
        raise ValidationError(errors)
    return payload


def _parse_date(text: str) -> dt.date | None:
    text = text.strip()
    try:
        return parse_date(text) or dt.datetime.strptime(text, "%d.%m.%Y").date()
    except ValueError:
        return None


# --- bulk writing ---------------------------------------------------------------------------

CREATED, UPDATED, UNCHANGED, REJECTED = "created", "updated", "unchanged", "rejected"


@dataclass(slots=True)
class RowOutcome:
    status: str  # created | updated | unchanged (existing, skipped) | rejected
    contact_id: int | None = None
    error: str = ""
    field: str = "email"  # what a rejection is about


# Columns copied into the staging table, in order. `given` has a bit set for each standard field
# the row set (see _GIVEN_BITS), so an update changes only those and never blanks a value the row
# did not mention. (A bit mask, not an array of names: the database reads it for every row.)
_STAGE_COLUMNS = (
    "row_no", "email", "email_hash", "external_id", "first_name", "last_name", "gender", "phone", "city", "country",
    "time_zone", "locale", "attributes", "tags", "birth_date", "given",
)  # fmt: skip
_UPDATABLE = ("first_name", "last_name", "gender", "birth_date", "phone", "city", "country", "time_zone", "locale")
_GIVEN_BITS = {name: 1 << bit for bit, name in enumerate(_UPDATABLE)}


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


_given_masks: dict[tuple[str, ...], str] = {}  # the few distinct sets of given fields, as COPY text


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


NUL, TAB = "\x00", "\t"


def _stage_line(row_no: int, item: ContactInput) -> str:
    """One line of COPY text: the hot path of bulk writes (an import stages a million rows).
    The text cells are joined with NUL, which no PostgreSQL text holds, escaped in one pass
    and split into columns again, instead of being escaped one by one."""
    v = item.values
    given = tuple(v)
    given_mask = _given_masks.get(given)
    if given_mask is None:
        given_mask = str(sum(_GIVEN_BITS.get(name, 0) for name in set(given)))
        if len(_given_masks) < 1024:
            _given_masks[given] = given_mask
    get = v.get
    birth = get("birth_date")
    # The suppression list keeps email_hash() of each address: the same function hashes the row
    # here, so the database compares stored hashes instead of hashing every staged row itself.
    cells = (
        item.email, email_hash(item.email), item.external_id, get("first_name", ""), get("last_name", ""),
        get("gender", ""), get("phone", ""), get("city", ""), get("country", ""), get("time_zone", ""),
        get("locale", ""), _json_object(item.attributes) if item.attributes else "{}",
        _pg_array(item.tags) if item.tags else "{}",
    )  # fmt: skip
    try:
        joined = "\x00".join(cells)
    except TypeError:  # a value that is not text
        joined = ""
    if joined.count("\x00") != len(cells) - 1:
        # A NUL in a value (PostgreSQL refuses the row, as before) or a value that is not text.
        return "\t".join(_copy_value(cell) for cell in (row_no, *cells, birth, given_mask)) + "\n"
    birth_text = r"\N" if birth is None else _escape(str(birth))
    return f"{row_no}\t{_escape(joined).replace(NUL, TAB)}\t{birth_text}\t{given_mask}\n"


@dataclass
class StagedRows:
    """Rows judged among themselves (a repeated address or external_id rejects the earlier
    row) and turned into COPY text: the pure-Python half of contacts_upsert. The CSV import
    prepares the next batch this way in a process of its own while the database writes this one."""

    outcomes: list[RowOutcome | None]  # None: staged for writing
    copy_data: bytes  # COPY text, encoded: it travels between processes and goes out as it is
    # The staged rows by their exact address (unique among them): INSERT … RETURNING names the
    # new contacts by address, and this finds their rows.
    row_of_email: dict[str, int] = field(default_factory=dict)


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
                    outcomes[earlier] = RowOutcome(
                        REJECTED, error=_("The same external_id appears again later."), field="external_id"
                    )
            last_by_external[item.external_id] = index
    staged = [index for index, outcome in enumerate(outcomes) if outcome is None]
    data = "".join([_stage_line(index, rows[index]) for index in staged]).encode()
    return StagedRows(outcomes, data, {rows[index].email: index for index in staged})


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
    if not staged.copy_data:
        return [outcome or RowOutcome(REJECTED) for outcome in outcomes]

    # The work of the database is what bounds a large import, so each staged row costs it as
    # little as possible: a new address is one COPY line and one INSERT; only the rows the
    # INSERT leaves out (existing, suppressed, or with another contact's external_id) are
    # looked at again. Every lookup in audiences_contact is a probe of a unique index by a
    # correlated subquery, never a join the planner may choose to run as a scan: the table's
    # statistics know nothing of a workspace an import is filling (a first import into a fresh
    # table is estimated at a few rows), and a join planned on them reads every contact of the
    # workspace once per staged row (seen: an EXISTS on external_id took 27 s of a 34 s import of
    # 50,000 rows, each batch slower than the last). `(SELECT ws)` hides the workspace from the
    # planner for the same reason. (The suppression list is joined: an import does not grow it.)
    with transaction.atomic(), connection.cursor() as cursor:
        # Session-local and kept for the session's next call, emptied at each commit: creating
        # and dropping it every time cost ~3 ms of catalog work, paid by every API request that
        # identifies someone. The DELETE empties what an outer transaction (a test, a caller's
        # atomic block) left of a previous call, since its commit has not come yet.
        # No index: the few rows looked at again are found by `row_no = ANY(<constant array>)`,
        # which PostgreSQL (14+) tests with a hash table while it scans, and an index would cost
        # every row of the COPY.
        cursor.execute(
            """
            CREATE TEMPORARY TABLE IF NOT EXISTS contact_stage (
                row_no integer NOT NULL, email text, email_hash text, external_id text, first_name text,
                last_name text, gender text, phone text, city text, country text, time_zone text, locale text,
                attributes jsonb, tags text[], birth_date date, given integer, error text, contact_id bigint
            ) ON COMMIT DELETE ROWS;
            DELETE FROM pg_temp.contact_stage;
            """
        )
        buffer = io.BytesIO(staged.copy_data)
        copy = f"COPY contact_stage ({', '.join(_STAGE_COLUMNS)}) FROM STDIN"
        cursor.cursor.copy_expert(copy, buffer, size=COPY_CHUNK)
        now = timezone.now()
        params: dict[str, Any] = {"ws": workspace.pk, "source": source, "now": now}
        # New addresses in one INSERT. ON CONFLICT without a target skips a row that collides
        # with any unique index: an existing (or concurrently inserted) address, or an
        # external_id another contact holds; the rows it skips are sorted out below.
        cursor.execute(
            """
            UPDATE contact_stage s SET error = 'suppressed' FROM audiences_suppression sp
            WHERE sp.workspace_id = %(ws)s AND sp.email_hash = s.email_hash;
            INSERT INTO audiences_contact (
                workspace_id, email, external_id, first_name, last_name, gender, birth_date, phone, city,
                country, time_zone, locale, attributes, tags, source, created_at, updated_at
            )
            SELECT %(ws)s, email, external_id, first_name, last_name, gender, birth_date, phone, city,
                   country, time_zone, locale, attributes, tags, %(source)s, %(now)s, %(now)s
            FROM contact_stage WHERE error IS NULL ORDER BY row_no
            ON CONFLICT DO NOTHING
            RETURNING id, email
            """,
            params,
        )
        row_of_email = staged.row_of_email
        inserted: list[int] = []
        for contact_id, email in cursor.fetchall():
            index = row_of_email[email]
            outcomes[index] = RowOutcome(CREATED, contact_id)
            inserted.append(contact_id)
        others = [index for index in row_of_email.values() if outcomes[index] is None]
        existing: dict[int, int] = {}  # row -> contact
        if others:
            # Each row left out is an existing contact (its id by the address), unless the
            # external_id it brings belongs to a contact with another address.
            # (The suppressed ones have their error already, and are not returned.)
            cursor.execute(
                """
                UPDATE contact_stage s SET
                    contact_id = (
                        SELECT c.id FROM audiences_contact c
                        WHERE c.workspace_id = (SELECT %(ws)s::bigint) AND lower(c.email) = lower(s.email)
                    ),
                    error = CASE WHEN s.external_id <> '' AND (
                        SELECT lower(c.email) FROM audiences_contact c
                        WHERE c.workspace_id = (SELECT %(ws)s::bigint) AND c.external_id = s.external_id
                          AND c.external_id <> ''
                    ) <> lower(s.email) THEN 'external_id' END
                WHERE s.row_no = ANY(%(others)s) AND s.error IS NULL
                RETURNING s.row_no, s.contact_id, s.error
                """,
                {**params, "others": others},
            )
            for row_no, contact_id, error in cursor.fetchall():
                if error == "external_id":
                    outcomes[row_no] = RowOutcome(
                        REJECTED, error=_("The external_id belongs to another contact."), field="external_id"
                    )
                else:
                    outcomes[row_no] = RowOutcome(UPDATED if update_existing else UNCHANGED, contact_id)
                    if contact_id is not None:
                        existing[row_no] = contact_id
            for row_no in others:
                if outcomes[row_no] is None:
                    outcomes[row_no] = RowOutcome(REJECTED, error=_("The address is on the suppression list."))
        if update_existing and existing:
            # The contacts are reached by their ids only: `+ 0` keeps the workspace check off
            # the workspace indexes, which the planner would otherwise choose (estimating a
            # few rows where an import's workspace holds its whole file) and read in full.
            updates = ", ".join(
                f"{name} = CASE WHEN s.given & {bit} <> 0 THEN s.{name} ELSE c.{name} END"
                for name, bit in _GIVEN_BITS.items()
            )
            cursor.execute(
                f"""
                UPDATE audiences_contact c SET {updates},
                    external_id = CASE WHEN s.external_id <> '' THEN s.external_id ELSE c.external_id END,
                    attributes = c.attributes || s.attributes,
                    tags = ARRAY(SELECT DISTINCT unnest(c.tags || s.tags) ORDER BY 1),
                    updated_at = %(now)s
                FROM contact_stage s
                WHERE c.id = ANY(%(ids)s) AND c.id = s.contact_id AND s.row_no = ANY(%(rows)s)
                  AND c.workspace_id + 0 = %(ws)s
                """,  # noqa: S608 — only constant column names are formatted in; values are parameters
                {**params, "ids": list(existing.values()), "rows": list(existing)},
            )
        if mailing_list is not None:
            pending, subscribed = _subscribe_written(
                cursor,
                workspace,
                mailing_list,
                now,
                consent_source or source,
                consent_text,
                confirm_by_mail,
                inserted,
            )
            if pending:
                from audiences.tasks import send_confirmation_email

                for subscription_id in pending:
                    enqueue_after_commit(send_confirmation_email, subscription_id)
            if subscribed:
                # A list join by import or bulk upsert starts list-triggered series like a form's.
                hooks.contacts_subscribed.fire(
                    hooks.ContactsSubscribed(workspace.pk, hooks.ids(subscribed), mailing_list.pk)
                )

    return [outcome or RowOutcome(REJECTED) for outcome in outcomes]


def _subscribe_written(
    cursor: Any,
    workspace: Workspace,
    mailing_list: MailingList,
    now: dt.datetime,
    source: str,
    text: str,
    confirm_by_mail: bool,
    inserted: list[int],
) -> tuple[list[int], list[int]]:
    """Subscribe the contacts written: the existing ones of the stage and the `inserted` ones.
    Keep every existing subscription as it is (an unsubscribe is never undone by an import)
    and record consent for the new ones. Returns the ids of new `pending` subscriptions (with
    `confirm_by_mail`) and the contacts whose new subscription is `subscribed` (without)."""
    cursor.execute(
        """
        WITH new_subscriptions AS (
            INSERT INTO audiences_subscription
                (workspace_id, contact_id, mailing_list_id, status, created_at, confirmed_at, updated_at)
            SELECT %(ws)s, w.contact_id, %(list)s, %(status)s, %(now)s, %(confirmed)s, %(now)s
            FROM (
                SELECT s.contact_id FROM contact_stage s WHERE s.error IS NULL AND s.contact_id IS NOT NULL
                UNION ALL
                SELECT unnest(%(inserted)s::bigint[])
            ) AS w (contact_id)
            ON CONFLICT (mailing_list_id, contact_id) DO NOTHING
            RETURNING id, contact_id
        ), consent AS (
            INSERT INTO audiences_consentrecord
                (workspace_id, contact_id, mailing_list_id, action, source, occurred_at, user_agent, text_shown)
            SELECT %(ws)s, contact_id, %(list)s, 'subscribed', %(source)s, %(now)s, '', %(text)s FROM new_subscriptions
        )
        SELECT id, contact_id FROM new_subscriptions
        """,
        {
            "ws": workspace.pk,
            "list": mailing_list.pk,
            "now": now,
            "source": source,
            "text": text,
            "status": "pending" if confirm_by_mail else "subscribed",
            "confirmed": None if confirm_by_mail else now,
            "inserted": inserted,
        },
    )
    rows = cursor.fetchall()
    if confirm_by_mail:
        return [row[0] for row in rows], []
    return [], [row[1] for row in rows]
