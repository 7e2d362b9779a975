"""The segment compiler against a small population whose answers are worked out by hand: every
kind of condition and every operator, nested groups and NOT, contacts without a value (strict
two-valued logic), time zones, birthdays across the year's end and on 29 February, injection
attempts in field names, operators and values, one SQL query, and isolation.

The population (now = 2024-06-15 12:00 UTC, workspace time zone UTC):

    contact country city   gender birth      tags            plan   score spend  vip   signup       created
    anna    DE      Berlin female 1990-06-17 vip, newsletter gold   42    120.50 true  2024-06-10   2024-01-01
    ben     DE      Munich male   1985-12-31 newsletter      silver 7     9.99   false 2023-12-01   2024-06-01
    cara    FR      Paris  female 1992-02-29 —               gold   100   —      —     —            2024-01-01
    dan     —       —      —      —          vip             —      "n/a" —      —     "2024-02-30" 2024-01-01
    eve     US      Boston —      2000-06-14 —               —      —     —      —     —            2024-01-01

    lists: News — anna subscribed, ben pending, cara unsubscribed; Deals — dan subscribed
    consent: anna confirmed News, ben subscribed News, cara unsubscribed News, dan subscribed Deals,
             eve confirmed (no list)
    "Order Completed": anna 5, 10, 40 days ago (30, 60, 90 EUR); ben 1, 20 days ago ("75", 20);
                       cara 2 days ago (200, gift); eve 100 days ago (10); three without a contact
    "Email Opened":    anna 3 days ago; cara 20 days ago
    facts: anna 3 orders / 180 / champions / loyal; ben 2 / 95 / potential_loyalist / repeat;
           cara 1 / 200 / new_customer / first_time; eve 1 / 10 / lost / lapsed; dan no row
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from audiences.models import (
    ConsentRecord,
    Contact,
    CustomerFacts,
    CustomField,
    Event,
    MailingList,
    Subscription,
)
from audiences.segments.compiler import describe_rules, rules_time_relative, segment_queryset, validate_rules
from audiences.segments.conditions import CONTACT_FIELDS, CUSTOM_TYPES, FACT_FIELDS
from audiences.segments.registry import CONDITION_KINDS, ConditionKind, RuleContext, register_condition_kind
from audiences.segments.values import OPERATORS, TRUE, ValueType, anniversaries
from esp.models import Workspace
from tests.factories import EventFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2024, 6, 15, 12, 0, tzinfo=dt.UTC)
ALL = {"anna", "ben", "cara", "dan", "eve"}


def ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def in_days(days: float) -> dt.datetime:
    return NOW + dt.timedelta(days=days)


class Population:
    def __init__(self, acme: Workspace, globex: Workspace) -> None:
        self.acme, self.globex = acme, globex
        for key, field_type, choices in (
            ("plan", "choice", ["gold", "silver", "bronze"]),
            ("interests", "choice", ["shoes", "bags", "hats"]),
            ("score", "number", []),
            ("spend", "decimal", []),
            ("vip", "boolean", []),
            ("signup", "date", []),
            ("last_seen", "datetime", []),
            ("nickname", "text", []),
        ):
            CustomField.objects.create(workspace=acme, key=key, label=key.title(), type=field_type, choices=choices)
        jan = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        self.c = {
            "anna": self._contact(
                "anna", country="DE", city="Berlin", first_name="Anna", gender="female",
                birth_date=dt.date(1990, 6, 17), tags=["vip", "newsletter"], created_at=jan,
                attributes={
                    "plan": "gold", "score": 42, "spend": "120.50", "vip": True, "signup": "2024-06-10",
                    "last_seen": "2024-06-14T10:00:00+00:00", "interests": ["shoes", "bags"],
                },
            ),
            "ben": self._contact(
                "ben", country="DE", city="Munich", first_name="Ben", gender="male",
                birth_date=dt.date(1985, 12, 31), tags=["newsletter"],
                created_at=dt.datetime(2024, 6, 1, 9, tzinfo=dt.UTC),
                attributes={"plan": "silver", "score": 7, "spend": "9.99", "vip": False, "signup": "2023-12-01"},
            ),
            "cara": self._contact(
                "cara", country="FR", city="Paris", gender="female", birth_date=dt.date(1992, 2, 29), created_at=jan,
                attributes={"plan": "gold", "score": 100, "interests": ["bags"]},
            ),
            # Values written before the fields were declared: not readable as their types.
            "dan": self._contact(
                "dan", tags=["vip"], created_at=jan, attributes={"score": "n/a", "signup": "2024-02-30"}
            ),
            "eve": self._contact(
                "eve", email="Eve@acme.test", country="US", city="Boston", birth_date=dt.date(2000, 6, 14),
                created_at=jan, attributes={"nickname": "Evie"},
            ),
        }  # fmt: skip
        c = self.c
        self.news = MailingList.objects.create(workspace=acme, name="News")
        self.deals = MailingList.objects.create(workspace=acme, name="Deals")
        for contact, mailing_list, status in (
            (c["anna"], self.news, "subscribed"),
            (c["ben"], self.news, "pending"),
            (c["cara"], self.news, "unsubscribed"),
            (c["dan"], self.deals, "subscribed"),
        ):
            Subscription.objects.create(workspace=acme, contact=contact, mailing_list=mailing_list, status=status)
        for contact, mailing_list, action in (
            (c["anna"], self.news, "confirmed"),
            (c["ben"], self.news, "subscribed"),
            (c["cara"], self.news, "unsubscribed"),
            (c["dan"], self.deals, "subscribed"),
            (c["eve"], None, "confirmed"),
        ):
            ConsentRecord.objects.create(
                workspace=acme, contact=contact, mailing_list=mailing_list, action=action, source="admin"
            )
        order = "Order Completed"
        for contact, days, props in (
            (c["anna"], 5, {"total": 30, "currency": "EUR"}),
            (c["anna"], 10, {"total": 60, "currency": "EUR"}),
            (c["anna"], 40, {"total": 90, "currency": "EUR"}),
            (c["ben"], 1, {"total": "75"}),
            (c["ben"], 20, {"total": 20}),
            (c["cara"], 2, {"total": 200, "gift": True}),
            (c["eve"], 100, {"total": 10}),
        ):
            EventFactory(contact=contact, workspace=acme, name=order, properties=props, occurred_at=ago(days))
        EventFactory(contact=c["anna"], workspace=acme, name="Email Opened", occurred_at=ago(3))
        EventFactory(contact=c["cara"], workspace=acme, name="Email Opened", occurred_at=ago(20))
        for days in (1, 2, 3):  # anonymous visitors' orders: contact_id is NULL
            EventFactory(contact=None, workspace=acme, anonymous_id="anon", name=order, occurred_at=ago(days))
        for contact, facts in (
            (c["anna"], dict(
                orders_count=3, revenue=Decimal(180), average_order_value=Decimal(60), first_order_at=ago(40),
                last_order_at=ago(5), predicted_next_order_at=in_days(10), products=["p1", "p2"],
                categories=["shoes"], recency_score=5, frequency_score=4, monetary_score=4,
                rfm_segment="champions", lifecycle_stage="loyal", median_days_between_orders=17.5,
            )),
            (c["ben"], dict(
                orders_count=2, revenue=Decimal(95), average_order_value=Decimal("47.50"), first_order_at=ago(20),
                last_order_at=ago(1), predicted_next_order_at=in_days(3), products=["p3"], categories=["hats"],
                recency_score=5, frequency_score=3, monetary_score=2, rfm_segment="potential_loyalist",
                lifecycle_stage="repeat", median_days_between_orders=19,
            )),
            (c["cara"], dict(
                orders_count=1, revenue=Decimal(200), average_order_value=Decimal(200), first_order_at=ago(2),
                last_order_at=ago(2), rfm_segment="new_customer", lifecycle_stage="first_time", recency_score=5,
                frequency_score=1, monetary_score=5,
            )),
            (c["eve"], dict(
                orders_count=1, revenue=Decimal(10), average_order_value=Decimal(10), first_order_at=ago(100),
                last_order_at=ago(100), rfm_segment="lost", lifecycle_stage="lapsed", recency_score=1,
                frequency_score=1, monetary_score=1,
            )),
        ):  # fmt: skip
            CustomerFacts.objects.create(contact=contact, workspace=acme, **facts)
        # globex: a German customer with many orders and a list of its own; never in acme's answers.
        gina = Contact.objects.create(workspace=globex, email="gina@globex.test", country="DE", tags=["vip"])
        self.globex_list = MailingList.objects.create(workspace=globex, name="News")
        Subscription.objects.create(workspace=globex, contact=gina, mailing_list=self.globex_list, status="subscribed")
        for days in range(5):
            EventFactory(contact=gina, workspace=globex, name=order, occurred_at=ago(days))
        CustomerFacts.objects.create(contact=gina, workspace=globex, orders_count=5, lifecycle_stage="loyal")

    def _contact(self, name: str, *, email: str | None = None, **fields: Any) -> Contact:
        return Contact.objects.create(workspace=self.acme, email=email or f"{name}@acme.test", **fields)

    def match(self, rules: dict[str, Any], *, now: dt.datetime = NOW, workspace: Workspace | None = None) -> set[str]:
        if "kind" in rules:
            rules = {"match": "all", "negate": False, "conditions": [rules]}
        queryset = segment_queryset(workspace=workspace or self.acme, rules=rules, now=now)
        return {email.split("@")[0].lower() for email in queryset.values_list("email", flat=True)}


@pytest.fixture
def people(acme: Workspace, globex: Workspace) -> Population:
    return Population(acme, globex)


def attr(field: str, operator: str, value: Any = None) -> dict[str, Any]:
    condition = {"kind": "attribute", "field": field, "operator": operator}
    if value is not None:
        condition["value"] = value
    return condition


def fact(field: str, operator: str, value: Any = None) -> dict[str, Any]:
    return {**attr(field, operator, value), "kind": "facts"}


def event(name: str = "Order Completed", **options: Any) -> dict[str, Any]:
    return {"kind": "event", "name": name, **options}


# --- attributes: standard fields ------------------------------------------------------------

STANDARD = [
    (attr("country", "eq", "de"), {"anna", "ben"}),  # ISO codes compare in capitals
    (attr("country", "neq", "DE"), {"cara", "dan", "eve"}),  # includes the contact without a country
    (attr("country", "in", ["FR", "us"]), {"cara", "eve"}),
    (attr("country", "not_in", ["DE", "FR"]), {"dan", "eve"}),
    (attr("country", "is_set"), {"anna", "ben", "cara", "eve"}),
    (attr("country", "not_set"), {"dan"}),
    (attr("city", "contains", "UNI"), {"ben"}),  # case-insensitive
    (attr("city", "starts_with", "par"), {"cara"}),
    (attr("city", "contains", "%"), set()),  # a LIKE wildcard is a plain character
    (attr("first_name", "eq", "Anna"), {"anna"}),
    (attr("first_name", "not_set"), {"cara", "dan", "eve"}),
    (attr("email", "eq", "ANNA@acme.test"), {"anna"}),  # addresses compare case-insensitively
    (attr("email", "in", ["eve@ACME.test", "ben@acme.test"]), {"ben", "eve"}),
    (attr("email", "starts_with", "EVE@"), {"eve"}),
    (attr("gender", "eq", "female"), {"anna", "cara"}),
    (attr("gender", "neq", "female"), {"ben", "dan", "eve"}),
    (attr("gender", "in", ["male", "other"]), {"ben"}),
    (attr("gender", "not_in", ["male"]), {"anna", "cara", "dan", "eve"}),
    (attr("gender", "is_set"), {"anna", "ben", "cara"}),
    (attr("birth_date", "before", "1990-01-01"), {"ben"}),
    (attr("birth_date", "after", "1990-06-17"), {"cara", "eve"}),
    (attr("birth_date", "eq", "1990-06-17"), {"anna"}),
    (attr("birth_date", "neq", "1990-06-17"), {"ben", "cara", "dan", "eve"}),
    (attr("birth_date", "between", ["1985-12-31", "1990-06-17"]), {"anna", "ben"}),  # both ends included
    (attr("birth_date", "in_last_days", 9000), {"eve"}),  # 2000-01-08 .. today
    (attr("birth_date", "in_next_days", 30), set()),
    (attr("birth_date", "is_set"), {"anna", "ben", "cara", "eve"}),
    (attr("birth_date", "not_set"), {"dan"}),
    (attr("birth_date", "anniversary_in_next_days", 2), {"anna"}),  # 06-15..06-17; eve's was yesterday
    (attr("birth_date", "anniversary_in_next_days", 0), set()),
    (attr("created_at", "in_last_days", 30), {"ben"}),
    (attr("created_at", "eq", "2024-06-01"), {"ben"}),  # a date: that whole day
    (attr("created_at", "before", "2024-06-01"), {"anna", "cara", "dan", "eve"}),
    (attr("created_at", "after", "2024-05-31"), {"ben"}),
    (attr("created_at", "between", ["2024-05-01", "2024-06-01"]), {"ben"}),  # the end day is included
    (attr("created_at", "between", ["2024-06-01T09:00:00+00:00", "2024-06-01T09:00:00+00:00"]), {"ben"}),
    (attr("created_at", "after", "2024-06-01T09:00:00+00:00"), set()),  # a moment: strictly after
    (attr("created_at", "neq", "2024-01-01"), {"ben"}),
    (attr("created_at", "in_next_days", 1), set()),
    (attr("created_at", "anniversary_in_next_days", 200), {"anna", "cara", "dan", "eve"}),  # 01-01 is 200 days on
    (attr("created_at", "is_set"), ALL),
    (attr("created_at", "not_set"), set()),
]


@pytest.mark.parametrize(("condition", "expected"), STANDARD, ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_standard_fields(people: Population, condition: dict[str, Any], expected: set[str]) -> None:
    assert people.match(condition) == expected


# --- attributes: the workspace's custom fields ----------------------------------------------

CUSTOM = [
    (attr("attributes.plan", "eq", "gold"), {"anna", "cara"}),
    (attr("attributes.plan", "neq", "gold"), {"ben", "dan", "eve"}),
    (attr("attributes.plan", "in", ["silver", "bronze"]), {"ben"}),
    (attr("attributes.plan", "not_in", ["silver"]), {"anna", "cara", "dan", "eve"}),
    (attr("attributes.plan", "is_set"), {"anna", "ben", "cara"}),
    (attr("attributes.plan", "not_set"), {"dan", "eve"}),
    (attr("attributes.interests", "eq", "bags"), {"anna", "cara"}),  # a multiple choice holds it
    (attr("attributes.interests", "in", ["shoes", "hats"]), {"anna"}),
    (attr("attributes.interests", "not_in", ["bags"]), {"ben", "dan", "eve"}),
    (attr("attributes.score", "gt", 40), {"anna", "cara"}),
    (attr("attributes.score", "gte", 42), {"anna", "cara"}),
    (attr("attributes.score", "lt", 42), {"ben"}),  # dan's "n/a" is no number: not less than anything
    (attr("attributes.score", "lte", 42), {"anna", "ben"}),
    (attr("attributes.score", "eq", 7), {"ben"}),
    (attr("attributes.score", "eq", "7.0"), {"ben"}),  # numbers compare as numbers
    (attr("attributes.score", "neq", 7), {"anna", "cara", "dan", "eve"}),
    (attr("attributes.score", "between", [7, 42]), {"anna", "ben"}),
    (attr("attributes.score", "in", [7, 100]), {"ben", "cara"}),
    (attr("attributes.score", "not_in", [7]), {"anna", "cara", "dan", "eve"}),
    (attr("attributes.score", "is_set"), {"anna", "ben", "cara"}),
    (attr("attributes.score", "not_set"), {"dan", "eve"}),
    (attr("attributes.spend", "gt", 10), {"anna"}),  # decimals are stored as text: "120.50"
    (attr("attributes.spend", "lt", 10), {"ben"}),
    (attr("attributes.spend", "eq", 9.99), {"ben"}),
    (attr("attributes.vip", "eq", True), {"anna"}),
    (attr("attributes.vip", "eq", False), {"ben"}),
    (attr("attributes.vip", "is_set"), {"anna", "ben"}),
    (attr("attributes.vip", "not_set"), {"cara", "dan", "eve"}),
    (attr("attributes.signup", "before", "2024-01-01"), {"ben"}),
    (attr("attributes.signup", "after", "2024-06-01"), {"anna"}),  # dan's "2024-02-30" is no date
    (attr("attributes.signup", "eq", "2024-06-10"), {"anna"}),
    (attr("attributes.signup", "between", ["2023-12-01", "2024-06-10"]), {"anna", "ben"}),
    (attr("attributes.signup", "in_last_days", 7), {"anna"}),
    (attr("attributes.signup", "in_next_days", 7), set()),
    (attr("attributes.signup", "anniversary_in_next_days", 180), {"ben"}),  # 12-01 is 169 days on
    (attr("attributes.signup", "is_set"), {"anna", "ben"}),
    (attr("attributes.signup", "not_set"), {"cara", "dan", "eve"}),
    (attr("attributes.last_seen", "in_last_days", 2), {"anna"}),
    (attr("attributes.last_seen", "before", "2024-06-14"), set()),
    (attr("attributes.last_seen", "after", "2024-06-13"), {"anna"}),
    (attr("attributes.last_seen", "eq", "2024-06-14"), {"anna"}),
    (attr("attributes.last_seen", "between", ["2024-06-14T09:00:00+00:00", "2024-06-14T12:00:00+02:00"]), {"anna"}),
    (attr("attributes.last_seen", "in_next_days", 1), set()),
    (attr("attributes.last_seen", "neq", "2024-06-14"), {"ben", "cara", "dan", "eve"}),
    (attr("attributes.last_seen", "anniversary_in_next_days", 364), {"anna"}),
    (attr("attributes.last_seen", "is_set"), {"anna"}),
    (attr("attributes.last_seen", "not_set"), {"ben", "cara", "dan", "eve"}),
    (attr("attributes.signup", "neq", "2024-06-10"), {"ben", "cara", "dan", "eve"}),
    (attr("attributes.nickname", "eq", "Evie"), {"eve"}),
    (attr("attributes.nickname", "contains", "VI"), {"eve"}),
    (attr("attributes.nickname", "starts_with", "ev"), {"eve"}),
    (attr("attributes.nickname", "in", ["Evie", "Bob"]), {"eve"}),
    (attr("attributes.nickname", "not_in", ["Evie"]), {"anna", "ben", "cara", "dan"}),
    (attr("attributes.nickname", "is_set"), {"eve"}),
]


@pytest.mark.parametrize(("condition", "expected"), CUSTOM, ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_custom_fields(people: Population, condition: dict[str, Any], expected: set[str]) -> None:
    assert people.match(condition) == expected


def test_every_operator_of_every_type_is_tested(people: Population) -> None:
    ctx = RuleContext(people.acme)
    seen = set()
    for condition, _expected in STANDARD + CUSTOM + FACTS:
        if condition["kind"] == "attribute":
            spec = CONTACT_FIELDS.get(condition["field"])
            if spec is None:
                custom = ctx.custom_fields[condition["field"].removeprefix("attributes.")]
                value_type = CUSTOM_TYPES[custom.type]
            else:
                value_type = spec.type
        elif condition["kind"] == "facts":
            value_type = FACT_FIELDS[condition["field"]].type
        else:
            value_type = ValueType.CHOICE
        seen.add((value_type, condition["operator"]))
    seen |= {(ValueType.ARRAY, c["operator"]) for c, _e in TAGS}
    expected = {(value_type, op) for value_type, ops in OPERATORS.items() for op in ops}
    assert expected - seen == set()


# --- lists, tags, consent -------------------------------------------------------------------


def test_list_membership_and_status(people: Population) -> None:
    news, deals = people.news.pk, people.deals.pk

    def on(list_id: int, status: str = "", operator: str = "in") -> dict[str, Any]:
        return {"kind": "list", "operator": operator, "list_id": list_id, "status": status}

    assert people.match(on(news)) == {"anna", "ben", "cara"}
    assert people.match(on(news, "subscribed")) == {"anna"}
    assert people.match(on(news, "pending")) == {"ben"}
    assert people.match(on(news, "unsubscribed")) == {"cara"}
    assert people.match(on(news, "subscribed", "not_in")) == {"ben", "cara", "dan", "eve"}
    assert people.match(on(news, "", "not_in")) == {"dan", "eve"}
    assert people.match(on(deals)) == {"dan"}
    with pytest.raises(ValidationError) as error:  # another workspace's list is no list here
        people.match(on(people.globex_list.pk))
    assert "conditions[0].list_id" in error.value.message_dict


TAGS = [
    ({"kind": "tag", "operator": "in", "value": ["vip"]}, {"anna", "dan"}),
    ({"kind": "tag", "operator": "in", "value": "vip"}, {"anna", "dan"}),
    ({"kind": "tag", "operator": "in", "value": ["vip", "newsletter"]}, {"anna", "ben", "dan"}),
    ({"kind": "tag", "operator": "contains", "value": ["vip", "newsletter"]}, {"anna"}),
    ({"kind": "tag", "operator": "not_in", "value": ["vip"]}, {"ben", "cara", "eve"}),
    ({"kind": "tag", "operator": "is_set"}, {"anna", "ben", "dan"}),
    ({"kind": "tag", "operator": "not_set"}, {"cara", "eve"}),
]


@pytest.mark.parametrize(("condition", "expected"), TAGS, ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_tags(people: Population, condition: dict[str, Any], expected: set[str]) -> None:
    assert people.match(condition) == expected


def test_consent(people: Population) -> None:
    def consent(action: str, list_id: int | None = None, did: bool = True) -> dict[str, Any]:
        return {"kind": "consent", "did": did, "action": action, "list_id": list_id}

    assert people.match(consent("confirmed")) == {"anna", "eve"}
    assert people.match(consent("confirmed", people.news.pk)) == {"anna"}
    assert people.match(consent("confirmed", did=False)) == {"ben", "cara", "dan"}
    assert people.match(consent("unsubscribed")) == {"cara"}
    assert people.match(consent("subscribed", people.deals.pk)) == {"dan"}
    assert people.match(consent("subscribed", people.news.pk, did=False)) == {"anna", "cara", "dan", "eve"}


# --- events ---------------------------------------------------------------------------------

EVENTS = [
    (event(), {"anna", "ben", "cara", "eve"}),  # did, at least once, ever
    (event(count_operator="gte", count=2), {"anna", "ben"}),
    (event(count_operator="gte", count=2, period="in_last_days", days=30), {"anna", "ben"}),
    (event(count_operator="gte", count=2, period="in_last_days", days=15), {"anna"}),
    (event(count_operator="gte", count=0), ALL),
    (event(count_operator="eq", count=1), {"cara", "eve"}),
    (event(count_operator="eq", count=3), {"anna"}),
    (event(count_operator="eq", count=0), {"dan"}),  # no events at all is exactly zero
    (event(count_operator="lte", count=0), {"dan"}),
    (event(count_operator="lte", count=1), {"cara", "dan", "eve"}),  # at most: includes zero
    (event(count_operator="lte", count=2), {"ben", "cara", "dan", "eve"}),
    (event(count_operator="lte", count=1, period="in_last_days", days=30), {"cara", "dan", "eve"}),
    (event(did=False), {"dan"}),
    (event(did=False, count_operator="gte", count=2), {"cara", "dan", "eve"}),
    (event(did=False, count_operator="lte", count=1), {"anna", "ben"}),
    (event(did=False, count_operator="eq", count=0), {"anna", "ben", "cara", "eve"}),
    (event(did=False, count_operator="eq", count=2), {"anna", "cara", "dan", "eve"}),
    (event(did=False, count_operator="gte", count=0), set()),
    (event("Email Opened", period="in_last_days", days=14), {"anna"}),
    (event("Email Opened", did=False, period="in_last_days", days=14), {"ben", "cara", "dan", "eve"}),
    (event("Email Opened", did=False), {"ben", "dan", "eve"}),
    (event("Never Happened"), set()),
    (event("Never Happened", did=False), ALL),
    (event(period="between", **{"from": "2024-06-01", "to": "2024-06-12"}), {"anna"}),  # 06-05, 06-10
    (event(period="between", **{"from": "2024-06-13", "to": "2024-06-14"}), {"ben", "cara"}),
    (event(period="between", **{"from": "2024-06-14T11:00:00+00:00", "to": "2024-06-14T13:00:00+00:00"}), {"ben"}),
    # where: property filters, typed by the value
    (event(where=[{"property": "total", "operator": "gt", "value": 50}]), {"anna", "ben", "cara"}),  # "75" too
    (event(where=[{"property": "total", "operator": "gt", "value": 50}], count_operator="gte", count=2), {"anna"}),
    (event(where=[{"property": "total", "operator": "eq", "value": 75}]), {"ben"}),
    (event(where=[{"property": "total", "operator": "eq", "value": "75"}]), {"ben"}),
    (event(where=[{"property": "total", "operator": "between", "value": [25, 35]}]), {"anna"}),
    (event(where=[{"property": "total", "operator": "in", "value": [20, 200]}]), {"ben", "cara"}),
    (event(where=[{"property": "total", "operator": "lte", "value": 10}]), {"eve"}),
    (event(where=[{"property": "currency", "operator": "eq", "value": "EUR"}]), {"anna"}),
    (event(where=[{"property": "currency", "operator": "neq", "value": "EUR"}]), {"ben", "cara", "eve"}),
    (event(where=[{"property": "currency", "operator": "not_set"}]), {"ben", "cara", "eve"}),
    (event(where=[{"property": "currency", "operator": "is_set"}]), {"anna"}),
    (event(where=[{"property": "currency", "operator": "contains", "value": "ur"}]), {"anna"}),
    (event(where=[{"property": "currency", "operator": "starts_with", "value": "e"}]), {"anna"}),
    (event(where=[{"property": "currency", "operator": "not_in", "value": ["EUR"]}]), {"ben", "cara", "eve"}),
    (event(where=[{"property": "gift", "operator": "eq", "value": True}]), {"cara"}),
    (
        event(
            where=[
                {"property": "total", "operator": "gte", "value": 30},
                {"property": "currency", "operator": "eq", "value": "EUR"},
            ],
            count_operator="eq",
            count=3,
        ),
        {"anna"},
    ),
]


@pytest.mark.parametrize(("condition", "expected"), EVENTS, ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_events(people: Population, condition: dict[str, Any], expected: set[str]) -> None:
    assert people.match(condition) == expected


def test_event_windows_move_with_the_clock(people: Population) -> None:
    two_in_a_month = event(count_operator="gte", count=2, period="in_last_days", days=30)
    # Eleven days on, ben's order of 20 days ago is 31 days old; anna's two are 16 and 21 days old.
    assert people.match(two_in_a_month, now=NOW + dt.timedelta(days=11)) == {"anna"}
    assert people.match(two_in_a_month, now=NOW + dt.timedelta(days=21)) == set()


# --- purchase facts, RFM segment, lifecycle stage -------------------------------------------

FACTS = [
    (fact("orders_count", "gte", 2), {"anna", "ben"}),
    (fact("orders_count", "eq", 0), {"dan"}),  # no facts row: zero orders
    (fact("orders_count", "lt", 1), {"dan"}),
    (fact("orders_count", "lte", 1), {"cara", "dan", "eve"}),
    (fact("orders_count", "neq", 1), {"anna", "ben", "dan"}),
    (fact("orders_count", "between", [1, 2]), {"ben", "cara", "eve"}),
    (fact("orders_count", "in", [0, 3]), {"anna", "dan"}),
    (fact("orders_count", "gt", 2.5), {"anna"}),  # 2.5 stays 2.5 against an integer column
    (fact("revenue", "gt", 100), {"anna", "cara"}),
    (fact("revenue", "lt", 50), {"dan", "eve"}),
    (fact("average_order_value", "gte", 60), {"anna", "cara"}),
    (fact("average_order_value", "lt", 50), {"ben", "eve"}),  # dan has none: not less than 50
    (fact("average_order_value", "not_set"), {"dan"}),
    (fact("average_order_value", "is_set"), {"anna", "ben", "cara", "eve"}),
    (fact("last_order_at", "in_last_days", 3), {"ben", "cara"}),
    (fact("last_order_at", "before", "2024-06-01"), {"eve"}),
    (fact("last_order_at", "after", "2024-06-12"), {"ben", "cara"}),
    (fact("last_order_at", "not_set"), {"dan"}),
    (fact("first_order_at", "eq", "2024-06-13"), {"cara"}),
    (fact("predicted_next_order_at", "in_next_days", 7), {"ben"}),
    (fact("predicted_next_order_at", "in_next_days", 30), {"anna", "ben"}),
    (fact("median_days_between_orders", "lt", 18), {"anna"}),
    (fact("refunds_count", "eq", 0), ALL),
    (fact("products", "contains", ["p1", "p2"]), {"anna"}),
    (fact("products", "in", ["p2", "p3"]), {"anna", "ben"}),
    (fact("categories", "in", ["shoes"]), {"anna"}),
    (fact("categories", "not_in", ["shoes"]), {"ben", "cara", "dan", "eve"}),
    (fact("categories", "not_set"), {"cara", "dan", "eve"}),
    (fact("recency_score", "eq", 5), {"anna", "ben", "cara"}),
    (fact("frequency_score", "gte", 3), {"anna", "ben"}),
    (fact("monetary_score", "in", [1, 2]), {"ben", "eve"}),
    ({"kind": "rfm_segment", "operator": "in", "value": ["champions"]}, {"anna"}),
    ({"kind": "rfm_segment", "operator": "in", "value": ["lost", "new_customer"]}, {"cara", "eve"}),
    ({"kind": "rfm_segment", "operator": "not_in", "value": ["champions", "lost"]}, {"ben", "cara", "dan"}),
    ({"kind": "lifecycle_stage", "operator": "in", "value": ["prospect"]}, {"dan"}),  # no row: a prospect
    ({"kind": "lifecycle_stage", "operator": "in", "value": ["loyal", "repeat"]}, {"anna", "ben"}),
    ({"kind": "lifecycle_stage", "operator": "not_in", "value": ["prospect", "lapsed"]}, {"anna", "ben", "cara"}),
]


@pytest.mark.parametrize(("condition", "expected"), FACTS, ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_facts_rfm_and_lifecycle(people: Population, condition: dict[str, Any], expected: set[str]) -> None:
    assert people.match(condition) == expected


# --- groups: all / any, NOT, nesting --------------------------------------------------------


def group(match: str, *conditions: dict[str, Any], negate: bool = False) -> dict[str, Any]:
    return {"match": match, "negate": negate, "conditions": list(conditions)}


GROUPS = [
    (group("all"), ALL),  # nothing asked: everyone
    (group("any"), ALL),
    (group("all", group("any", negate=True)), set()),  # NOT of "no condition" is nobody
    (group("all", attr("country", "eq", "DE"), {"kind": "tag", "operator": "in", "value": ["vip"]}), {"anna"}),
    (
        group("any", attr("country", "eq", "DE"), {"kind": "tag", "operator": "in", "value": ["vip"]}),
        {"anna", "ben", "dan"},
    ),
    (group("all", attr("country", "eq", "DE"), negate=True), {"cara", "dan", "eve"}),
    (
        group(
            "all",
            group("any", attr("country", "eq", "FR"), attr("country", "eq", "US")),
            group("any", {"kind": "tag", "operator": "in", "value": ["vip"]}, negate=True),
        ),
        {"cara", "eve"},
    ),
    # NOT over missing values: contacts without a score (or with "n/a") are not "> 40", so they
    # are in its complement — SQL's NULL would have dropped them from both.
    (group("all", attr("attributes.score", "gt", 40), negate=True), {"ben", "dan", "eve"}),
    (group("all", attr("birth_date", "before", "1990-01-01"), negate=True), {"anna", "cara", "dan", "eve"}),
    (group("all", fact("average_order_value", "lt", 50), negate=True), {"anna", "cara", "dan"}),
    (group("any", event("Email Opened"), fact("orders_count", "eq", 0), negate=True), {"ben", "eve"}),
    (
        group(
            "any",
            group("all", attr("country", "eq", "DE"), event(count_operator="gte", count=3)),
            group("all", attr("country", "neq", "DE"), group("all", fact("revenue", "gt", 100), negate=True)),
        ),
        {"anna", "dan", "eve"},
    ),
    # The benchmark's segment: DE, two orders in 30 days, no opened email in 14 days.
    (
        group(
            "all",
            attr("country", "eq", "DE"),
            event(count_operator="gte", count=2, period="in_last_days", days=30),
            event("Email Opened", did=False, period="in_last_days", days=14),
        ),
        {"ben"},
    ),
]


@pytest.mark.parametrize(("rules", "expected"), GROUPS)
def test_groups_and_negation(people: Population, rules: dict[str, Any], expected: set[str]) -> None:
    assert people.match(rules) == expected


def test_a_group_and_its_negation_split_the_contacts(people: Population) -> None:
    """Strict two-valued logic: for any tree, it and its NOT partition the workspace."""
    trees = [tree for tree, _expected in GROUPS] + [
        group("all", c) for c, _e in STANDARD[:12] + CUSTOM + FACTS[:12] + EVENTS[:10]
    ]
    for tree in trees:
        inside = people.match(tree)
        outside = people.match({**tree, "negate": not tree["negate"]})
        assert inside | outside == ALL and not inside & outside, tree


# --- time zones and birthdays ---------------------------------------------------------------


def test_birthdays_across_the_year_end(people: Population) -> None:
    condition = attr("birth_date", "anniversary_in_next_days", 3)
    assert people.match(condition, now=dt.datetime(2024, 12, 30, 12, tzinfo=dt.UTC)) == {"ben"}  # 12-31
    assert people.match(condition, now=dt.datetime(2024, 12, 31, 12, tzinfo=dt.UTC)) == {"ben"}
    assert people.match(condition, now=dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)) == set()


def test_29_february_birthdays(people: Population) -> None:
    condition = attr("birth_date", "anniversary_in_next_days", 0)
    # A non-leap year: the 29th is celebrated on the 28th.
    assert people.match(condition, now=dt.datetime(2023, 2, 28, 12, tzinfo=dt.UTC)) == {"cara"}
    assert people.match(condition, now=dt.datetime(2023, 3, 1, 12, tzinfo=dt.UTC)) == set()
    # A leap year: on the day itself, and not the day before.
    assert people.match(condition, now=dt.datetime(2024, 2, 28, 12, tzinfo=dt.UTC)) == set()
    assert people.match(condition, now=dt.datetime(2024, 2, 29, 12, tzinfo=dt.UTC)) == {"cara"}
    assert people.match({**condition, "value": 3}, now=dt.datetime(2023, 2, 26, tzinfo=dt.UTC)) == {"cara"}


def test_anniversary_days_helper() -> None:
    assert anniversaries(dt.date(2024, 12, 30), 3) == ["01-01", "01-02", "12-30", "12-31"]
    assert "02-29" in anniversaries(dt.date(2023, 2, 27), 1)
    assert "02-29" not in anniversaries(dt.date(2024, 2, 27), 1)
    assert len(anniversaries(dt.date(2024, 1, 1), 366)) == 366  # every day of the year, once


def test_days_are_the_workspaces_days(people: Population) -> None:
    """At 2024-06-15 12:00 UTC it is already the 16th in Auckland: anna's birthday (17th) is
    "tomorrow" there, and the 14th no longer counts as "in the last day"."""
    birthday_tomorrow = attr("birth_date", "anniversary_in_next_days", 1)
    assert people.match(birthday_tomorrow) == set()
    people.acme.time_zone = "Pacific/Auckland"
    people.acme.save()
    assert people.match(birthday_tomorrow) == {"anna"}
    assert people.match(attr("created_at", "eq", "2024-06-01")) == {"ben"}  # 21:00 on the 1st in Auckland


# --- validation: whitelists, clear errors, injection ----------------------------------------


def errors_of(people: Population, rules: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as error:
        validate_rules(workspace=people.acme, rules=rules)
    return error.value.message_dict


def test_invalid_rules_name_the_path(people: Population) -> None:
    errors = errors_of(
        people,
        group(
            "all",
            attr("country", "eq", "DE"),
            fact("orders_count", "gte", "many"),
            fact("orders_count", "drop table", 1),
            group("any", attr("attributes.nope", "eq", 1), {"kind": "event", "name": "", "count": -1}),
            {"kind": "list", "list_id": 999999},
            attr("birth_date", "between", ["2024-02-01", "2024-01-01"]),
            {"kind": "tag", "operator": "in", "value": []},
        ),
    )
    assert errors["conditions[1].value"] == ["'many' is not a number."]
    assert errors["conditions[2].operator"][0].startswith("'drop table' is not an operator for number fields")
    assert "conditions[3].conditions[0].field" in errors
    assert "conditions[3].conditions[1].name" in errors and "conditions[3].conditions[1].count" in errors
    assert "conditions[4].list_id" in errors
    assert errors["conditions[5].value"] == ["The first value must not be after the second."]
    assert "conditions[6].value" in errors
    assert "conditions[0].value" not in errors


@pytest.mark.parametrize(
    ("rules", "path"),
    [
        ([], "rules"),
        ({"match": "either", "conditions": []}, "match"),
        ({"conditions": "all of them"}, "conditions"),
        ({"conditions": [{"kind": "attribute; drop table x"}]}, "conditions[0].kind"),
        (
            {"conditions": [{"kind": "attribute", "field": "country", "operator": "eq", "value": "DE", "sql": "1"}]},
            "conditions[0].sql",
        ),
        (
            {"conditions": [{"kind": "attribute", "field": "country", "operator": "gt", "value": "DE"}]},
            "conditions[0].operator",
        ),
        (
            {
                "conditions": [
                    {"kind": "attribute", "field": "birth_date", "operator": "in_last_days", "value": "7; --"}
                ]
            },
            "conditions[0].value",
        ),
        (
            {"conditions": [{"kind": "attribute", "field": "attributes.vip", "operator": "eq", "value": "yes"}]},
            "conditions[0].value",
        ),
        (
            {"conditions": [{"kind": "attribute", "field": "attributes.plan", "operator": "eq", "value": "platinum"}]},
            "conditions[0].value",
        ),
        ({"conditions": [{"kind": "event", "name": "x", "period": "fortnight"}]}, "conditions[0].period"),
        (
            {"conditions": [{"kind": "event", "name": "x", "where": [{"property": "a", "operator": "~*"}]}]},
            "conditions[0].where[0].operator",
        ),
        (
            {
                "conditions": [
                    {"kind": "event", "name": "x", "where": [{"property": "a", "operator": "gt", "value": "x"}]}
                ]
            },
            "conditions[0].where[0].value",
        ),
        ({"conditions": [{"kind": "consent", "action": "forged"}]}, "conditions[0].action"),
        ({"conditions": [{"kind": "rfm_segment", "operator": "in", "value": ["royals"]}]}, "conditions[0].value[0]"),
        ({"conditions": [{"kind": "lifecycle_stage", "operator": "eq", "value": "loyal"}]}, "conditions[0].operator"),
        (
            {"conditions": [{"kind": "facts", "field": "facts__orders_count", "operator": "eq", "value": 1}]},
            "conditions[0].field",
        ),
        (
            {"conditions": [{"kind": "attribute", "field": "workspace_id", "operator": "eq", "value": "1"}]},
            "conditions[0].field",
        ),
    ],
)
def test_bad_rules_are_refused(people: Population, rules: Any, path: str) -> None:
    assert path in errors_of(people, rules)


def test_limits(people: Population) -> None:
    deep: dict[str, Any] = attr("country", "eq", "DE")
    for _level in range(6):
        deep = group("all", deep)
    assert "conditions[0].conditions[0].conditions[0].conditions[0].conditions[0]" in errors_of(people, deep)
    many = group("all", *[attr("country", "eq", "DE")] * 101)
    assert "conditions" in errors_of(people, many)


INJECTIONS = [
    "' OR 1=1 --",
    "DE'; DROP TABLE audiences_contact; --",
    '"; DELETE FROM audiences_event; --',
    "%' OR '%'='",
    "\\'; SELECT pg_sleep(5); --",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_values_are_plain_data(people: Population, payload: str) -> None:
    events_before, contacts_before = Event.objects.count(), Contact.objects.count()
    assert people.match(attr("country", "eq", payload)) == set()
    assert people.match(attr("city", "contains", payload)) == set()
    assert people.match(attr("email", "in", [payload, "anna@acme.test"])) == {"anna"}
    assert people.match(attr("attributes.nickname", "starts_with", payload)) == set()
    assert people.match(event(payload)) == set()
    assert people.match(event(payload, did=False)) == ALL
    assert people.match(event(where=[{"property": payload, "operator": "eq", "value": payload}])) == set()
    assert people.match(event(where=[{"property": payload, "operator": "not_set"}])) == {"anna", "ben", "cara", "eve"}
    assert people.match({"kind": "tag", "operator": "in", "value": [payload]}) == set()
    assert (Event.objects.count(), Contact.objects.count()) == (events_before, contacts_before)


@pytest.mark.parametrize(
    "field",
    [
        "email; drop table audiences_contact",
        "country) OR 1=1 --",
        "attributes.plan') OR ('1'='1",
        "attributes",
        "id",
        "workspace",
        "facts__revenue",
        "tags__overlap",
    ],
)
def test_field_names_only_from_the_whitelist(people: Population, field: str) -> None:
    errors = errors_of(people, group("all", attr(field, "eq", "x")))
    assert errors == {"conditions[0].field": [f"{field!r} is not a contact field."]}


def test_an_operator_outside_the_whitelist(people: Population) -> None:
    errors = errors_of(people, group("all", attr("attributes.score", "drop table", 1)))
    assert errors["conditions[0].operator"] == [
        "'drop table' is not an operator for number fields; use one of: "
        "eq, neq, gt, gte, lt, lte, between, in, not_in, is_set, not_set."
    ]


# --- one query, isolation, normal form, extension point --------------------------------------

EVERY_KIND = group(
    "all",
    attr("country", "in", ["DE", "FR"]),
    attr("attributes.score", "gte", 7),
    {"kind": "tag", "operator": "not_in", "value": ["blocked"]},
    {"kind": "consent", "did": False, "action": "unsubscribed"},
    event(count_operator="gte", count=2, period="in_last_days", days=30),
    event("Email Opened", did=False, period="in_last_days", days=14),
    event(count_operator="lte", count=5, where=[{"property": "total", "operator": "gt", "value": 1}]),
    fact("revenue", "gt", 50),
    {"kind": "rfm_segment", "operator": "not_in", "value": ["lost"]},
    {"kind": "lifecycle_stage", "operator": "in", "value": ["repeat", "loyal"]},
    group("any", attr("birth_date", "anniversary_in_next_days", 365), attr("city", "starts_with", "M"), negate=False),
)


def test_every_kind_in_one_sql_query(people: Population, django_assert_num_queries: Any) -> None:
    rules = {
        **EVERY_KIND,
        "conditions": [
            *EVERY_KIND["conditions"],
            {"kind": "list", "operator": "in", "list_id": people.news.pk, "status": ""},
        ],
    }
    queryset = segment_queryset(workspace=people.acme, rules=rules, now=NOW)
    with django_assert_num_queries(1) as captured:
        emails = list(queryset.values_list("email", flat=True))
    assert emails == ["ben@acme.test"]
    sql = captured.captured_queries[0]["sql"]
    assert sql.count("audiences_event") == 3  # one subquery per event condition, no per-contact work
    with django_assert_num_queries(1):
        assert queryset.count() == 1


def test_another_workspaces_data_never_matches(people: Population) -> None:
    acme, globex = people.acme, people.globex
    dan = people.c["dan"]
    # Corrupt on purpose: a globex event pointing at an acme contact must still not count.
    EventFactory(contact=dan, workspace=globex, name="Order Completed", occurred_at=ago(1))
    CustomerFacts.objects.filter(contact__workspace=globex).update(orders_count=99)
    assert people.match(event()) == {"anna", "ben", "cara", "eve"}
    assert people.match(attr("country", "eq", "DE")) == {"anna", "ben"}
    assert people.match(group("all"), workspace=globex) == {"gina"}
    assert people.match(event(count_operator="gte", count=5), workspace=globex) == {"gina"}
    assert people.match(fact("orders_count", "gte", 2), workspace=globex) == {"gina"}
    assert "gina" not in people.match(fact("orders_count", "gte", 2))
    assert segment_queryset(workspace=acme, rules=group("all"), now=NOW).filter(workspace=globex).count() == 0


def test_normal_form_is_stable(people: Population) -> None:
    """What validate_rules returns is stored, compared (RFM cells reuse segments by rules) and
    validated again: it must come back unchanged."""
    rules = {**EVERY_KIND, "conditions": [*EVERY_KIND["conditions"], attr("country", "eq", "de")]}
    once = validate_rules(workspace=people.acme, rules=rules)
    assert validate_rules(workspace=people.acme, rules=once) == once
    assert once["conditions"][-1]["value"] == "DE"
    assert once["conditions"][4] == {
        "kind": "event", "did": True, "name": "Order Completed", "where": [], "count_operator": "gte", "count": 2,
        "period": "in_last_days", "days": 30,
    }  # fmt: skip


def test_time_relative_rules_and_words(people: Population) -> None:
    ctx = RuleContext(people.acme, now=NOW)
    assert rules_time_relative(validate_rules(workspace=people.acme, rules=EVERY_KIND))
    assert not rules_time_relative(validate_rules(workspace=people.acme, rules=group("all", attr("city", "eq", "X"))))
    words = describe_rules(validate_rules(workspace=people.acme, rules=GROUPS[-1][0]), ctx)
    assert words == (
        "Country (ISO code) is DE and did “Order Completed” at least 2 times in the last 30 days and "
        "did not do “Email Opened” in the last 14 days"
    )
    assert describe_rules(validate_rules(workspace=people.acme, rules=group("all")), ctx) == "every contact"


def test_a_new_kind_plugs_in(people: Population) -> None:
    """The extension point campaigns uses for engagement: a registered kind is validated,
    compiled into the same single query, described, and offered to the builder."""
    from django.db.models import Q

    def clean(condition: dict[str, Any], ctx: RuleContext, path: str, errors: Any) -> dict[str, Any]:
        if not isinstance(condition.get("domain"), str):
            errors.add(f"{path}.domain", "Name a domain.")
        return {"kind": "email_domain", "domain": condition.get("domain")}

    kind = ConditionKind(
        name="email_domain",
        label="Email domain",
        keys=frozenset({"domain"}),
        clean=clean,
        compile=lambda condition, ctx: Q(email__iendswith="@" + condition["domain"]) & TRUE,
        describe=lambda condition, ctx: f"email at {condition['domain']}",
        schema=lambda ctx: {"fields": [{"value": "domain", "label": "Domain", "type": "text", "choices": []}]},
    )
    register_condition_kind(kind)
    try:
        rules = group("any", {"kind": "email_domain", "domain": "ACME.test"}, attr("country", "eq", "FR"))
        assert people.match(rules) == ALL
        assert "conditions[0].domain" in errors_of(people, group("all", {"kind": "email_domain"}))
        with pytest.raises(ValueError, match="registered already"):
            register_condition_kind(ConditionKind("email_domain", "x", frozenset(), clean, kind.compile, kind.describe))
    finally:
        del CONDITION_KINDS["email_domain"]


def test_the_sql_has_no_values_in_it(people: Population) -> None:
    """Values and names from rules reach PostgreSQL only as parameters."""
    marker = "zz' marker --"
    rules = group(
        "all",
        attr("city", "eq", marker),
        attr("attributes.nickname", "contains", marker),
        event(marker, where=[{"property": marker, "operator": "eq", "value": marker}]),
    )
    sql, params = segment_queryset(workspace=people.acme, rules=rules, now=NOW).query.sql_with_params()
    assert "marker" not in sql
    assert sum(1 for p in params if isinstance(p, str) and "marker" in p) >= 4
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        assert cursor.fetchall() == []
