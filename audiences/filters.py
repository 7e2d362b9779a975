"""Which contacts a page, an export or a bulk action means: the contacts page's filter, as one
queryset, and the page of it the contacts page shows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import BooleanField, ExpressionWrapper, F, Func, IntegerField, Q, QuerySet, TextField, Value
from django.db.models.functions import Lower
from django.utils.translation import gettext as _

from audiences.models import Contact
from esp.models import Workspace

# The probe of contacts_page: how many of the newest contacts are looked at before the filter
# is left to its own indexes.
PROBE_WINDOW = 2_000
# The names of the filter in a query string or a form.
FILTER_KEYS = ("q", "list", "status", "tag", "attr", "attr_op", "attr_value", "segment")


class SearchKeys(Func):
    """esp_search_keys(): the trigrams of a contact's search text (migrations 0007, 0013)."""

    function = "esp_search_keys"
    output_field = TextField()  # text[]; only compared with @>


class SearchQueryKeys(SearchKeys):
    function = "esp_search_query_keys"


# Which index migrations 0007 and 0013 made here, by database: pg_trgm's (it serves the LIKE
# itself) or our own trigram keys (the query must ask for them). A property of the server, read
# once.
_own_keys: dict[tuple[str, str], bool] = {}


def _search_uses_own_keys() -> bool:
    key = (str(connection.settings_dict.get("HOST")), str(connection.settings_dict.get("NAME")))
    if key not in _own_keys:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_indexdef(to_regclass('contact_search')::oid)")
            row = cursor.fetchone()
        if row is None or row[0] is None:
            return False  # not migrated yet: the LIKE alone (and do not remember it)
        _own_keys[key] = "esp_search_keys" in row[0]
    return _own_keys[key]


def _keys_match(q: str) -> Q:
    """Contacts whose search text holds every trigram of `q`: what lets our own index answer."""
    contact_keys = SearchKeys(F("search_text"))
    query_keys = SearchQueryKeys(Value(q))
    return Q(Func(contact_keys, query_keys, template="%(expressions)s", arg_joiner=" @> ", output_field=BooleanField()))


@dataclass(frozen=True)
class ContactFilter:
    """Search, list and status, tag, one contact-field condition (a segment compiler
    "attribute" condition: country, city, a custom field …) and a segment."""

    q: str = ""
    list_id: int | None = None
    status: str = ""
    tag: str = ""
    attr: str = ""
    attr_op: str = ""
    attr_value: str = ""
    segment_id: int | None = None
    # Fields given a value that is no id ("?segment=abc"): refused by contact_filter_check, never
    # read as "no filter" (that would widen an "all matching" action to every contact).
    invalid: tuple[str, ...] = ()

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ContactFilter:
        """From a query string, a form post or a stored job filter (to_data)."""
        invalid: list[str] = []

        def number(name: str, alias: str) -> int | None:
            value = str(data.get(name) or data.get(alias) or "").strip()
            if not value:
                return None
            if value.isascii() and value.isdigit() and len(value) <= 18:
                return int(value)
            invalid.append("list" if name == "list" else name)
            return None

        return cls(
            q=str(data.get("q") or "").strip()[:200],
            list_id=number("list", "list_id"),
            status=str(data.get("status") or ""),
            tag=str(data.get("tag") or "").strip()[:64],
            attr=str(data.get("attr") or "").strip(),
            attr_op=str(data.get("attr_op") or "").strip() if data.get("attr") else "",
            attr_value=str(data.get("attr_value") or "").strip()[:500] if data.get("attr") else "",
            segment_id=number("segment", "segment_id"),
            invalid=tuple(invalid),
        )

    def to_data(self) -> dict[str, Any]:
        """What a job keeps (JSON) and from_data reads back."""
        data = {
            "q": self.q,
            "list_id": self.list_id,
            "status": self.status,
            "tag": self.tag,
            "attr": self.attr,
            "attr_op": self.attr_op,
            "attr_value": self.attr_value,
            "segment_id": self.segment_id,
        }
        return {key: value for key, value in data.items() if value not in ("", None)}

    @property
    def is_empty(self) -> bool:
        return not (self.q or self.list_id or self.status or self.tag or self.attr or self.segment_id or self.invalid)

    def attribute_condition(self) -> dict[str, Any] | None:
        """The contact-field part as a segment condition, its value read from one text box:
        "a, b" for "is one of", "1, 9" for "between" (yes / no for a yes/no field: _rules_q)."""
        if not self.attr:
            return None
        text = self.attr_value
        value: Any = text
        if self.attr_op in ("in", "not_in", "between"):
            value = [item.strip() for item in text.split(",") if item.strip()]
        return {"kind": "attribute", "field": self.attr, "operator": self.attr_op or "eq", "value": value}


def _rules_q(*, workspace: Workspace, contact_filter: ContactFilter) -> Q:
    """The attribute and segment parts through the segment compiler. Raises ValidationError
    keyed by the filter's own field names (attr_op, attr_value, segment)."""
    from audiences.models import Segment
    from audiences.segments.compiler import compile_group, validate_rules
    from audiences.segments.registry import RuleContext

    ctx = RuleContext(workspace)
    conditions: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    condition = contact_filter.attribute_condition()
    if condition is not None:
        custom = ctx.custom_fields.get(contact_filter.attr.removeprefix("attributes."))
        if custom is not None and custom.type == "boolean" and isinstance(condition["value"], str):
            lowered = condition["value"].lower()
            if lowered in ("true", "yes", "false", "no"):
                condition["value"] = lowered in ("true", "yes")
        try:
            conditions.append(validate_rules(workspace=workspace, rules={"conditions": [condition]}, context=ctx))
        except ValidationError as error:
            names = {"field": "attr", "operator": "attr_op", "value": "attr_value"}
            for path, messages in error.message_dict.items():
                part = path.removeprefix("conditions[0]").lstrip(".").split("[", 1)[0]
                errors.setdefault(names.get(part, "attr"), []).extend(messages)
    if contact_filter.segment_id:
        segment = Segment.objects.in_workspace(workspace).filter(pk=contact_filter.segment_id).first()
        if segment is None:
            errors["segment"] = [_("No such segment in this workspace.")]
        else:
            try:
                conditions.append(validate_rules(workspace=workspace, rules=segment.rules, context=ctx))
            except ValidationError:
                errors["segment"] = [_("This segment's rules no longer hold (a list or field is gone): edit it.")]
    if errors:
        raise ValidationError(errors)
    return compile_group({"match": "all", "negate": False, "conditions": conditions}, ctx)


def contact_filter_check(*, workspace: Workspace, contact_filter: ContactFilter) -> None:
    """Raise ValidationError by field when the filter cannot be applied (an unknown field, an
    operator that does not fit it, a value of the wrong type, another workspace's segment)."""
    if contact_filter.invalid:
        raise ValidationError({name: _("Choose one from the list.") for name in contact_filter.invalid})
    if contact_filter.attr or contact_filter.segment_id:
        _rules_q(workspace=workspace, contact_filter=contact_filter)


def contacts_matching(*, workspace: Workspace, contact_filter: ContactFilter) -> QuerySet[Contact]:
    """Raises ValidationError (see contact_filter_check) for a filter that cannot be applied."""
    if contact_filter.invalid:
        contact_filter_check(workspace=workspace, contact_filter=contact_filter)
    contacts = Contact.objects.in_workspace(workspace)
    f = contact_filter
    if f.q:
        search = Q()
        if len(f.q) >= 3 and _search_uses_own_keys():
            # Only a search of three characters or more has trigrams to look up.
            search &= _keys_match(f.q)
        if "@" in f.q:
            # A prefix of the address; with pg_trgm the search text's LIKE is what its index serves.
            contacts = contacts.filter(
                search, search_text__startswith=Lower(Value(f.q)), email__lower__startswith=f.q.lower()
            )
        else:
            contacts = contacts.filter(search, search_text__contains=Lower(Value(f.q)))
    if f.list_id:
        membership = Q(subscriptions__mailing_list_id=f.list_id)
        if f.status:
            membership &= Q(subscriptions__status=f.status)
        contacts = contacts.filter(membership)
    elif f.status:
        contacts = contacts.filter(subscriptions__status=f.status).distinct()
    if f.tag:
        contacts = contacts.filter(tags__contains=[f.tag])
    if f.attr or f.segment_id:
        contacts = contacts.filter(_rules_q(workspace=workspace, contact_filter=f))
    return contacts


def contacts_page(
    *, workspace: Workspace, contact_filter: ContactFilter, before: int | None, size: int
) -> tuple[list[Contact], int | None]:
    """One page of the matching contacts, newest first, and the `before` of the next page.

    Keyset pagination asks for the newest `size` matches. Left to itself the planner walks the
    primary key backwards and tests each row, which is instant when matches are common among
    recent contacts and reads the whole table when they are rare or old (a tag given to last
    year's customers). So the newest PROBE_WINDOW contacts are tested first (a bounded index
    range); only when they do not fill the page is the rest asked for in an order no index
    gives, which makes the planner find the matches through the filter's own indexes (tags,
    search keys, lists) and sort just those."""
    matching = contacts_matching(workspace=workspace, contact_filter=contact_filter)
    recent = Contact.objects.in_workspace(workspace)
    if before is not None:
        matching = matching.filter(pk__lt=before)
        recent = recent.filter(pk__lt=before)
    # The probe's far end: the PROBE_WINDOW-th newest contact (one index entry, not 2,000 rows).
    edge = next(iter(recent.order_by("-pk").values_list("pk", flat=True)[PROBE_WINDOW - 1 : PROBE_WINDOW]), None)
    if edge is None:  # fewer contacts than the window: the probe is the whole query
        found = list(matching.order_by("-pk")[: size + 1])
    else:
        found = list(matching.filter(pk__gte=edge).order_by("-pk")[: size + 1])
        if len(found) <= size:
            unordered = ExpressionWrapper(F("pk") + 0, output_field=IntegerField())
            rest = matching.filter(pk__lt=edge).order_by(unordered.desc())
            found += list(rest[: size + 1 - len(found)])
    page = found[:size]
    return page, (page[-1].pk if len(found) > size else None)


# --- what the filter form offers ------------------------------------------------------------


def filter_field_choices(*, workspace: Workspace) -> list[tuple[str, str]]:
    """The contact fields a filter may test (the segment builder's), custom fields last."""
    from audiences.models import CustomField
    from audiences.segments.conditions import CONTACT_FIELDS, CUSTOM_PREFIX

    standard = [(name, str(spec.label)) for name, spec in CONTACT_FIELDS.items()]
    custom = [(f"{CUSTOM_PREFIX}{f.key}", f.label) for f in CustomField.objects.in_workspace(workspace)]
    return standard + custom


def filter_operator_choices() -> list[tuple[str, str]]:
    """Every operator once, in the order of the text ones first; the segment compiler refuses
    one that does not fit the chosen field, by field."""
    from audiences.segments.values import OPERATOR_LABELS, OPERATORS, ValueType

    ordered: dict[str, str] = {}
    for value_type in (ValueType.TEXT, ValueType.NUMBER, ValueType.DATE):
        for op in OPERATORS[value_type]:
            if op != "anniversary_in_next_days":
                ordered.setdefault(op.value, str(OPERATOR_LABELS[op]))
    return list(ordered.items())
