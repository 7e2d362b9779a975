"""Who the messages of one request are about: contacts found by userId (external_id), email
and alias in one query; identify traits turned into contact fields and upserted through
audiences.contacts; the aliases identify and alias establish."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from audiences.contacts import (
    REJECTED,
    TIME_ZONES,
    ContactInput,
    contacts_upsert,
    custom_fields_of,
    parse_contact,
)
from audiences.ingest.messages import (
    IDENTITY_TYPES,
    MAX_REPORTED_ERRORS,
    IngestError,
    ItemError,
    Message,
    rejected_message,
)
from audiences.models import EventType, Gender
from esp.models import Workspace

_GENDERS = {
    "f": Gender.FEMALE, "female": Gender.FEMALE, "w": Gender.FEMALE, "woman": Gender.FEMALE,
    "m": Gender.MALE, "male": Gender.MALE, "man": Gender.MALE,
    "other": Gender.OTHER, "diverse": Gender.OTHER, "non-binary": Gender.OTHER, "nonbinary": Gender.OTHER,
}  # fmt: skip
# Traits that are the person's ids, already used to find the contact: not attributes.
_ID_TRAITS = frozenset({"email", "id", "userId", "user_id", "anonymousId"})


def _first(traits: Mapping[str, Any], *keys: str) -> tuple[str, Any]:
    for key in keys:
        value = traits.get(key)
        if value is not None and value != "":
            return key, value
    return "", None


def trait_contact_data(traits: Mapping[str, Any], context: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """parse_contact's input for identify traits (Segment's reserved traits mapped onto the
    contact's standard fields, everything else under `attributes`, where declared custom fields
    are typed and unknown ones kept), and for each of its keys the trait path it came from.

    Free-text traits that a standard field cannot hold (a country name rather than an ISO code, an
    unknown time zone, a gender word we do not know) stay attributes instead of failing the call."""
    rest = {key: value for key, value in traits.items() if key not in _ID_TRAITS}
    data: dict[str, Any] = {}
    paths: dict[str, str] = {}

    def take(name: str, key: str, value: Any, path: str = "") -> None:
        data[name] = value
        paths[name] = path or f"traits.{key}"
        rest.pop(key, None)

    for name, keys in (
        ("first_name", ("firstName", "first_name")),
        ("last_name", ("lastName", "last_name")),
        ("phone", ("phone",)),
    ):
        key, value = _first(traits, *keys)
        if key and isinstance(value, str | int | float) and not isinstance(value, bool):
            take(name, key, str(value))
    full_name = traits.get("name")
    if isinstance(full_name, str) and full_name.strip():
        first, _sep, last = full_name.strip().partition(" ")
        data.setdefault("first_name", first)
        paths.setdefault("first_name", "traits.name")
        if last.strip():
            data.setdefault("last_name", last.strip())
            paths.setdefault("last_name", "traits.name")
        rest.pop("name", None)

    key, value = _first(traits, "gender")
    if key and isinstance(value, str) and value.strip().lower() in _GENDERS:
        take("gender", key, _GENDERS[value.strip().lower()].value)
    key, value = _first(traits, "birthday", "birth_date")
    if key and isinstance(value, str):
        try:
            take("birth_date", key, dt.date.fromisoformat(value.strip()[:10]))
        except ValueError:
            pass

    address = traits.get("address")
    address_rest = dict(address) if isinstance(address, dict) else None
    for name in ("city", "country"):
        source = address_rest if address_rest is not None and address_rest.get(name) else traits
        value = source.get(name)
        if not isinstance(value, str) or not value.strip():
            continue
        if name == "country" and not (len(value.strip()) == 2 and value.strip().isalpha()):
            continue  # "Germany": kept as given
        if source is address_rest:
            data[name], paths[name] = value, f"traits.address.{name}"
            del address_rest[name]
        else:
            take(name, name, value)
    if address_rest is not None:
        if address_rest:
            rest["address"] = address_rest
        else:
            rest.pop("address", None)

    key, value = _first(traits, "timezone", "time_zone")
    if key and value in TIME_ZONES:
        take("time_zone", key, value)
    elif context.get("timezone") in TIME_ZONES:
        data["time_zone"], paths["time_zone"] = context["timezone"], "context.timezone"
    key, value = _first(traits, "locale")
    if key and isinstance(value, str) and len(value) <= 16:
        take("locale", key, value)
    elif isinstance(context.get("locale"), str) and 0 < len(context["locale"]) <= 16:
        data["locale"], paths["locale"] = context["locale"], "context.locale"

    if rest:
        data["attributes"] = rest
    return data, paths


# --- identity ------------------------------------------------------------------------------


@dataclass(eq=False)
class Person:
    """A contact as this request knows it. `id` is None until contacts_upsert created it."""

    id: int | None
    email: str
    external_id: str


@dataclass
class Known:
    """What the database knew before this request, extended as the request links people."""

    by_user: dict[str, Person] = field(default_factory=dict)  # external_id -> contact
    by_email: dict[str, Person] = field(default_factory=dict)  # lower(email) -> contact
    by_alias: dict[str, Person] = field(default_factory=dict)  # ContactAlias.alias -> contact
    stored_messages: set[str] = field(default_factory=set)  # identify/alias messageIds stored before

    def person(self, message: Message) -> Person | None:
        """userId (as external_id, then as alias), then email, then anonymousId."""
        user_id = message.user_id
        if user_id:
            found = self.by_user.get(user_id) or self.by_alias.get(user_id)
            if found is not None:
                return found
        if message.email:
            found = self.by_email.get(message.email)
            if found is not None:
                return found
        if message.anonymous_id:
            return self.by_alias.get(message.anonymous_id)
        return None


def read_known(workspace: Workspace, messages: list[Message]) -> Known:
    """One round trip: contacts by external_id and by email, aliases, stored identity messages."""
    users = {m.user_id for m in messages if m.user_id}
    emails = {m.email for m in messages if m.email}
    aliases = users | {m.anonymous_id for m in messages if m.anonymous_id}
    aliases |= {m.previous_id for m in messages if m.previous_id}
    replayable = {m.message_id for m in messages if m.type in IDENTITY_TYPES}
    # Each part compares workspace_id with `(SELECT ws)`, a value the planner cannot see, so it
    # probes the unique (workspace, key) indexes with the whole array. With the literal it trusts
    # the statistics, which may know nothing of a young workspace, and reads all its contacts
    # (seen: 45 ms instead of 5 ms for 300 userIds among 50,000 contacts; see contacts_upsert).
    parts: list[str] = []
    params: list[Any] = []
    if users:
        parts.append(
            "SELECT 'u', external_id, id, email, external_id FROM audiences_contact "
            "WHERE workspace_id = (SELECT %s::bigint) AND external_id = ANY(%s) AND external_id <> ''"
        )
        params += [workspace.pk, list(users)]
    if emails:
        parts.append(
            "SELECT 'e', lower(email), id, email, external_id FROM audiences_contact "
            "WHERE workspace_id = (SELECT %s::bigint) AND lower(email) = ANY(%s)"
        )
        params += [workspace.pk, list(emails)]
    if aliases:
        parts.append(
            "SELECT 'a', a.alias, c.id, c.email, c.external_id FROM audiences_contactalias a "
            "JOIN audiences_contact c ON c.id = a.contact_id "
            "WHERE a.workspace_id = (SELECT %s::bigint) AND a.alias = ANY(%s)"
        )
        params += [workspace.pk, list(aliases)]
    if replayable:
        parts.append(
            "SELECT 'm', message_id, NULL, NULL, NULL FROM audiences_event WHERE workspace_id = (SELECT %s::bigint) "
            "AND message_id = ANY(%s)"
        )
        params += [workspace.pk, list(replayable)]
    known = Known()
    if not parts:
        return known
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        rows = cursor.fetchall()
    people: dict[int, Person] = {}
    for kind, key, contact_id, email, external_id in rows:
        if kind == "m":
            known.stored_messages.add(key)
            continue
        person = people.get(contact_id)
        if person is None:
            person = people[contact_id] = Person(contact_id, email, external_id)
        {"u": known.by_user, "e": known.by_email, "a": known.by_alias}[kind][key] = person
    return known


def given_email(message: Message) -> str:
    """The address as sent (parse_contact keeps the local part's case), where message.email is
    lower-cased for lookups."""
    if not message.email:
        return ""
    raw = message.properties.get("email")
    if not isinstance(raw, str) or not raw.strip():
        context_traits = message.context.get("traits")
        raw = context_traits.get("email") if isinstance(context_traits, dict) else None
    return raw.strip() if isinstance(raw, str) else message.email


@dataclass
class Identify:
    message: Message
    person: Person | None
    contact: ContactInput | None  # None: nobody to write (no email known)
    alias_user_id: bool  # the userId differs from the contact's external_id: keep it as an alias


def judge_identifies(workspace: Workspace, messages: list[Message], known: Known, total: int) -> list[Identify]:
    """Who each new identify is about and the contact fields it sets; raises IngestError for
    traits a contact cannot take (a bad email, a declared custom field of the wrong type).

    The contact is the one of the userId, else of the email, else of the anonymousId. A userId
    that names a contact wins over a differing traits.email: the contact's address is not changed
    by identify (it is its key for lists and suppressions)."""
    identifies = [m for m in messages if m.type == EventType.IDENTIFY and m.message_id not in known.stored_messages]
    if not identifies:
        return []
    fields = custom_fields_of(workspace)
    judged: list[Identify] = []
    errors: list[ItemError] = []
    for message in identifies:
        person = known.person(message)
        data, paths = trait_contact_data(message.properties, message.context)
        email = person.email if person is not None else given_email(message)
        data["email"] = email
        alias_user_id = False
        if message.user_id:
            if person is None or person.external_id in ("", message.user_id):
                data["external_id"] = message.user_id
            else:
                alias_user_id = message.user_id not in known.by_alias
        try:
            contact = parse_contact(data, fields, keep_unknown=True)
        except ValidationError as error:
            problems = error.message_dict
            if not email:
                problems.pop("email", None)  # an anonymous identify: traits stay on the event
            for key, texts in problems.items():
                if key == "email":
                    path = "traits.email"
                elif key.startswith("attributes."):
                    path = "traits." + key.removeprefix("attributes.")
                else:
                    path = paths.get(key, f"traits.{key}")
                errors.extend(ItemError(message.index, path, text) for text in texts)
            contact = None
        if not email:
            contact = None
        elif person is None and contact is not None:
            # Later messages of this request find the person about to be created.
            person = Person(None, contact.email, contact.external_id)
            known.by_email[message.email] = person
        if person is not None and message.user_id:
            known.by_user.setdefault(message.user_id, person)
        judged.append(Identify(message, person, contact, alias_user_id))
    if errors:
        raise IngestError(400, rejected_message(errors, total), errors[:MAX_REPORTED_ERRORS])
    return judged


def write_identities(workspace: Workspace, identifies: list[Identify], messages: list[Message], known: Known) -> None:
    """Upsert identify traits (one contacts_upsert for the request: traits of the same person
    merged in order, the last value of each field winning) and record the aliases that identify
    and alias messages establish. Runs inside the ingest transaction."""
    by_key: dict[str, ContactInput] = {}
    for item in identifies:
        if item.contact is None:
            continue
        key = item.contact.email.lower()
        merged = by_key.get(key)
        if merged is None:
            by_key[key] = ContactInput(
                email=item.contact.email,
                external_id=item.contact.external_id,
                values=dict(item.contact.values),
                attributes=dict(item.contact.attributes),
                tags=[],
            )
        else:
            merged.values.update(item.contact.values)
            merged.attributes.update(item.contact.attributes)
            merged.external_id = item.contact.external_id or merged.external_id
    if by_key:
        inputs = list(by_key.values())
        outcomes = contacts_upsert(workspace=workspace, rows=inputs, update_existing=True, source="events")
        ids = {
            row.email.lower(): out.contact_id
            for row, out in zip(inputs, outcomes, strict=True)
            if out.status != REJECTED
        }
        for item in identifies:
            if item.contact is None or item.person is None:
                continue
            contact_id = ids.get(item.contact.email.lower())
            if contact_id is not None and item.person.id is None:
                item.person.id = contact_id

    aliases: dict[str, int] = {}
    for item in identifies:
        person = item.person
        if person is None or person.id is None:
            continue
        item.message.contact_id = person.id
        anonymous_id = item.message.anonymous_id
        if anonymous_id and anonymous_id not in known.by_alias:
            aliases[anonymous_id] = person.id
            known.by_alias[anonymous_id] = person
        if item.alias_user_id:
            aliases[item.message.user_id] = person.id
            known.by_alias.setdefault(item.message.user_id, person)
    for message in messages:
        if message.type != EventType.ALIAS or message.message_id in known.stored_messages:
            continue
        # alias(previousId → userId): the person of the userId, else the one of the previousId.
        user_id, previous_id = message.user_id, message.previous_id
        person = known.by_user.get(user_id) or known.by_alias.get(user_id)
        if person is None:
            person = known.by_user.get(previous_id) or known.by_alias.get(previous_id)
        if person is None or person.id is None:
            continue  # nobody known yet: the pipeline links it when the userId becomes a contact
        message.contact_id = person.id
        for alias in (previous_id, user_id):
            if alias != person.external_id and alias not in known.by_alias and alias not in known.by_user:
                aliases[alias] = person.id
                known.by_alias[alias] = person
    if aliases:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO audiences_contactalias (workspace_id, contact_id, alias, created_at)
                SELECT %s, contact_id, alias, %s FROM unnest(%s::bigint[], %s::text[]) AS a(contact_id, alias)
                ON CONFLICT (workspace_id, alias) DO NOTHING
                """,
                [workspace.pk, timezone.now(), list(aliases.values()), list(aliases.keys())],
            )
