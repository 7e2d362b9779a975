"""The "engagement" segment condition (campaigns/engagement.py): opened / clicked, any email or
one template, in the last N days or ever, at least N times — against hand-computed sets, with
machine opens left out, "did not" as the exact complement, another workspace's template
refused, and through the builder schema, the segments API and a saved segment's refresh."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from audiences.models import Contact, SegmentMembership
from audiences.segments.compiler import (
    builder_schema,
    describe_rules,
    rules_time_relative,
    segment_queryset,
    validate_rules,
)
from audiences.segments.membership import segment_refresh
from audiences.segments.registry import RuleContext
from audiences.segments.services import segment_save
from campaigns.models import EmailTemplate, Message
from esp.models import Workspace
from tests.factories import EmailTemplateFactory, MessageEventFactory, MessageFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2024, 6, 15, 12, 0, tzinfo=dt.UTC)


def days_ago(n: float) -> dt.datetime:
    return T0 - dt.timedelta(days=n)


def engagement(**fields: Any) -> dict[str, Any]:
    return {"match": "all", "negate": False, "conditions": [{"kind": "engagement", **fields}]}


def names(workspace: Workspace, rules: dict[str, Any]) -> set[str]:
    queryset = segment_queryset(workspace=workspace, rules=rules, now=T0)
    return {email.split("@")[0] for email in queryset.values_list("email", flat=True)}


def mail(contact: Contact, template: EmailTemplate | None) -> Message:
    return MessageFactory(contact=contact, template=template)


def event(message: Message, type: str, at: dt.datetime, *, machine: bool = False) -> None:
    MessageEventFactory(message=message, type=type, occurred_at=at, is_machine=machine)


@pytest.fixture
def world(acme: Workspace, globex: Workspace) -> dict[str, Any]:
    """acme:
    anna  opened "Welcome" 5 days ago
    ben   only a machine open of "Welcome" 2 days ago (Apple Mail Privacy Protection)
    cara  opened and clicked "Promo" 40 days ago
    dora  was mailed "Promo", never opened it
    eve   opened "Welcome" three times in the last 10 days, and a machine click yesterday
    finn  never mailed
    globex: gina opened globex's own template yesterday."""
    welcome = EmailTemplateFactory(workspace=acme, name="Welcome")
    promo = EmailTemplateFactory(workspace=acme, name="Promo")
    theirs = EmailTemplateFactory(workspace=globex, name="Globex news")
    people = {
        name: Contact.objects.create(workspace=acme, email=f"{name}@example.com")
        for name in ("anna", "ben", "cara", "dora", "eve", "finn")
    }
    event(mail(people["anna"], welcome), "opened", days_ago(5))
    event(mail(people["ben"], welcome), "opened", days_ago(2), machine=True)
    cara_promo = mail(people["cara"], promo)
    event(cara_promo, "opened", days_ago(40))
    event(cara_promo, "clicked", days_ago(40))
    mail(people["dora"], promo)
    eve_welcome = mail(people["eve"], welcome)
    for n in (1, 4, 9):
        event(eve_welcome, "opened", days_ago(n))
    event(eve_welcome, "clicked", days_ago(1), machine=True)
    gina = Contact.objects.create(workspace=globex, email="gina@example.com")
    event(mail(gina, theirs), "opened", days_ago(1))
    return {"welcome": welcome, "promo": promo, "theirs": theirs, "people": people}


EVERYONE = {"anna", "ben", "cara", "dora", "eve", "finn"}


def test_opened_any_email(acme: Workspace, world: dict[str, Any]) -> None:
    assert names(acme, engagement(action="opened")) == {"anna", "cara", "eve"}  # ben's open was a machine's
    assert names(acme, engagement(action="opened", period="in_last_days", days=30)) == {"anna", "eve"}
    assert names(acme, engagement(action="opened", period="in_last_days", days=4)) == {"eve"}


def test_a_click_without_an_open_counts_as_an_open(acme: Workspace) -> None:
    """A reader who blocks images never loads the pixel; their click shows they opened the
    email (the message's opened_at says so too)."""
    promo = EmailTemplateFactory(workspace=acme, name="Promo")
    ida = Contact.objects.create(workspace=acme, email="ida@example.com")
    event(mail(ida, promo), "clicked", days_ago(3))
    assert names(acme, engagement(action="opened", period="in_last_days", days=7)) == {"ida"}
    assert names(acme, engagement(did=False, action="opened")) == set()
    assert names(acme, engagement(action="clicked")) == {"ida"}


def test_clicked_leaves_machine_clicks_out(acme: Workspace, world: dict[str, Any]) -> None:
    assert names(acme, engagement(action="clicked")) == {"cara"}
    assert names(acme, engagement(action="clicked", period="in_last_days", days=30)) == set()


def test_a_given_template(acme: Workspace, world: dict[str, Any]) -> None:
    welcome, promo = world["welcome"].pk, world["promo"].pk
    assert names(acme, engagement(action="opened", template_id=welcome)) == {"anna", "eve"}
    assert names(acme, engagement(action="opened", template_id=promo)) == {"cara"}
    assert names(acme, engagement(action="clicked", template_id=welcome)) == set()
    # A template id as the browser's <select> sends it.
    assert names(acme, engagement(action="opened", template_id=str(promo))) == {"cara"}


def test_at_least_n_times(acme: Workspace, world: dict[str, Any]) -> None:
    assert names(acme, engagement(action="opened", count=3)) == {"eve"}
    assert names(acme, engagement(action="opened", count=2, period="in_last_days", days=5)) == {"eve"}  # 1 and 4 days
    assert names(acme, engagement(action="opened", count=3, period="in_last_days", days=5)) == set()
    assert names(acme, engagement(action="opened", count=4)) == set()


@pytest.mark.parametrize(
    "fields",
    [
        {"action": "opened"},
        {"action": "opened", "period": "in_last_days", "days": 30},
        {"action": "clicked"},
        {"action": "opened", "count": 3},
        {"action": "opened", "template_id": "welcome"},
    ],
)
def test_not_is_the_exact_complement(acme: Workspace, world: dict[str, Any], fields: dict[str, Any]) -> None:
    if fields.get("template_id") == "welcome":
        fields = {**fields, "template_id": world["welcome"].pk}
    did = names(acme, engagement(did=True, **fields))
    did_not = names(acme, engagement(did=False, **fields))
    assert did | did_not == EVERYONE and not did & did_not
    # A negated group says the same as "did not".
    negated = {**engagement(did=True, **fields), "negate": True}
    assert names(acme, negated) == did_not


def test_not_opened_includes_the_never_mailed(acme: Workspace, world: dict[str, Any]) -> None:
    assert names(acme, engagement(did=False, action="opened", period="in_last_days", days=30)) == {
        "ben",
        "cara",
        "dora",
        "finn",
    }


def test_combined_with_other_conditions(acme: Workspace, world: dict[str, Any]) -> None:
    Contact.objects.filter(email__in=["anna@example.com", "cara@example.com"]).update(country="DE")
    rules = {
        "match": "all",
        "negate": False,
        "conditions": [
            {"kind": "attribute", "field": "country", "operator": "eq", "value": "DE"},
            {"kind": "engagement", "did": False, "action": "opened", "period": "in_last_days", "days": 30},
        ],
    }
    assert names(acme, rules) == {"cara"}


def test_never_counts_another_workspace(acme: Workspace, globex: Workspace, world: dict[str, Any]) -> None:
    assert names(globex, engagement(action="opened")) == {"gina"}
    assert names(globex, engagement(action="opened", template_id=world["theirs"].pk)) == {"gina"}
    assert "gina" not in names(acme, engagement(action="opened", period="in_last_days", days=2))


def test_another_workspace_template_is_refused(acme: Workspace, world: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_rules(workspace=acme, rules=engagement(action="opened", template_id=world["theirs"].pk))
    assert list(caught.value.message_dict) == ["conditions[0].template_id"]
    assert "No such template in this workspace" in caught.value.message_dict["conditions[0].template_id"][0]


def test_clean_names_every_problem(acme: Workspace, world: dict[str, Any]) -> None:
    bad = engagement(did="yes", action="forwarded", count=0, period="in_last_days", days=-1, colour="red")
    with pytest.raises(ValidationError) as caught:
        validate_rules(workspace=acme, rules=bad)
    assert set(caught.value.message_dict) == {
        "conditions[0].did",
        "conditions[0].action",
        "conditions[0].count",
        "conditions[0].days",
        "conditions[0].colour",
    }
    with pytest.raises(ValidationError) as caught:
        validate_rules(workspace=acme, rules=engagement(action="opened", period="this week"))
    assert list(caught.value.message_dict) == ["conditions[0].period"]


def test_defaults_and_normal_form(acme: Workspace, world: dict[str, Any]) -> None:
    cleaned = validate_rules(workspace=acme, rules=engagement(template_id=str(world["promo"].pk)))
    assert cleaned["conditions"] == [
        {
            "kind": "engagement",
            "did": True,
            "action": "opened",
            "template_id": world["promo"].pk,
            "period": "ever",
            "count": 1,
        }
    ]


def test_describe_and_time_relative(acme: Workspace, world: dict[str, Any]) -> None:
    ctx = RuleContext(acme)

    def words(**fields: Any) -> str:
        return describe_rules(validate_rules(workspace=acme, rules=engagement(**fields), context=ctx), ctx)

    assert words(action="opened", period="in_last_days", days=30) == "opened any email in the last 30 days"
    assert (
        words(did=False, action="clicked", template_id=world["welcome"].pk, count=2)
        == "did not click the email “Welcome” at least 2 times ever"
    )
    assert rules_time_relative(validate_rules(workspace=acme, rules=engagement(period="in_last_days", days=7)))
    assert not rules_time_relative(validate_rules(workspace=acme, rules=engagement(period="ever")))


def test_builder_offers_the_workspace_templates(acme: Workspace, world: dict[str, Any]) -> None:
    kinds = {kind["kind"]: kind for kind in builder_schema(RuleContext(acme))["kinds"]}
    spec = kinds["engagement"]
    assert spec["label"] == "Email engagement"
    assert [t["label"] for t in spec["templates"]] == ["any email", "Promo", "Welcome"]  # not "Globex news"
    assert {a["value"] for a in spec["actions"]} == {"true|opened", "true|clicked", "false|opened", "false|clicked"}


def test_segments_api_counts_and_refuses(acme_api: APIClient, world: dict[str, Any]) -> None:
    counted = acme_api.post(
        "/api/v1/segments/count",
        {"rules": engagement(action="opened", template_id=world["welcome"].pk)},
        format="json",
    )
    assert counted.status_code == 200 and counted.json()["count"] == 2  # anna and eve
    refused = acme_api.post(
        "/api/v1/segments/count", {"rules": engagement(action="opened", template_id=world["theirs"].pk)}, format="json"
    )
    assert refused.status_code == 400
    assert list(refused.json()["error"]["fields"]) == ["rules.conditions[0].template_id"]


def test_saved_segment_refreshes_members(acme: Workspace, world: dict[str, Any]) -> None:
    segment = segment_save(workspace=acme, name="Openers", rules=engagement(action="opened"))
    segment_refresh(segment_id=segment.pk)
    current = SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True)
    assert {email.split("@")[0] for email in current.values_list("contact__email", flat=True)} == {
        "anna",
        "cara",
        "eve",
    }
    segment.refresh_from_db()
    assert segment.member_count == 3


def test_builder_page_loads_with_the_kind(acme: Workspace, acme_client: Any, world: dict[str, Any]) -> None:
    page = acme_client.get("/audience/segments/new/").content.decode()
    assert '"kind": "engagement"' in page and "Welcome" in page and "Globex news" not in page
