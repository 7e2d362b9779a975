"""The series REST API, called as a shop backend calls it: an APIClient with a workspace API key.

CRUD with the step tree as JSON, publish / pause / resume / archive, validation errors naming
the step and field, enrollment through the API (its key and data reaching the email as
`event`), isolation between two workspaces, scopes, and a dry run that writes nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from audiences.models import Contact
from automations.models import Enrollment, Series, SeriesVersion, Trace
from campaigns.models import EmailTemplate, Message
from esp.models import ApiScope, OutboxMessage, Workspace
from tests.automations.series_helpers import contact, send_all
from tests.conftest import key_client
from tests.factories import EmailTemplateFactory, EventFactory, api_key

pytestmark = pytest.mark.usefixtures("clock")


def fields_of(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    return error["fields"]  # type: ignore[no-any-return]


def welcome_steps(templates: dict[str, EmailTemplate]) -> dict[str, Any]:
    return {
        "start": "hello",
        "steps": [
            {"key": "hello", "type": "send", "template": templates["welcome"].pk, "next": "two-days"},
            {"key": "two-days", "type": "wait", "amount": 2, "unit": "days", "next": "coupon"},
            {"key": "coupon", "type": "send", "template": templates["coupon"].pk, "subject": "10% off"},
        ],
    }


def create(api: APIClient, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "Welcome")
    response = api.post("/api/v1/series", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()  # type: ignore[no-any-return]


def publish(api: APIClient, series_id: int, **body: Any) -> dict[str, Any]:
    response = api.post(f"/api/v1/series/{series_id}/publish", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()  # type: ignore[no-any-return]


# --- CRUD -------------------------------------------------------------------------------------


def test_create_read_change_and_delete_a_draft(
    acme: Workspace, acme_api: APIClient, templates: dict[str, EmailTemplate]
) -> None:
    made = create(
        acme_api,
        name="Welcome",
        kind="welcome",
        trigger={"type": "event", "event": "Signed Up"},
        goal={"event": "Order Completed"},
        re_entry="period",
        re_entry_days=30,
        holdout_percent=10,
        steps=welcome_steps(templates),
    )
    assert made["status"] == "draft" and made["kind"] == "welcome" and made["priority"] == 20
    assert made["live_version"] is None and made["draft_version"] == 1 and made["steps_version"] == 1
    assert [step["key"] for step in made["steps"]["steps"]] == ["hello", "two-days", "coupon"]
    assert made["figures"] == {"entered_7d": 0, "active": 0, "converted_7d": 0}

    listed = acme_api.get("/api/v1/series").json()["results"]
    assert [(row["id"], row["status"], row["draft_version"]) for row in listed] == [(made["id"], "draft", 1)]

    steps = welcome_steps(templates)
    steps["steps"][1]["amount"] = 3
    changed = acme_api.patch(
        f"/api/v1/series/{made['id']}", {"name": "Welcome v2", "steps": steps, "priority": 30}, format="json"
    )
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert body["name"] == "Welcome v2" and body["priority"] == 30 and body["re_entry_days"] == 30
    # A draft that was never published is edited in place.
    assert body["draft_version"] == 1 and body["steps"]["steps"][1]["amount"] == 3
    assert acme_api.get(f"/api/v1/series/{made['id']}").json()["name"] == "Welcome v2"

    assert acme_api.delete(f"/api/v1/series/{made['id']}").status_code == 204
    assert acme_api.get(f"/api/v1/series/{made['id']}").status_code == 404
    assert not SeriesVersion.objects.exists()


def test_a_published_version_never_changes(
    acme: Workspace, acme_api: APIClient, templates: dict[str, EmailTemplate]
) -> None:
    made = create(acme_api, trigger={"type": "event", "event": "Signed Up"}, steps=welcome_steps(templates))
    live = publish(acme_api, made["id"])
    assert live["status"] == "live" and live["live_version"] == 1 and live["draft_version"] is None

    steps = welcome_steps(templates)
    steps["steps"][1]["amount"] = 1
    edited = acme_api.patch(f"/api/v1/series/{made['id']}", {"steps": steps}, format="json").json()
    assert edited["live_version"] == 1 and edited["draft_version"] == 2 and edited["steps_version"] == 2
    first = acme_api.get(f"/api/v1/series/{made['id']}/versions/1").json()
    assert first["steps"]["steps"][1]["amount"] == 2 and first["live"] is True and first["published_at"]
    versions = acme_api.get(f"/api/v1/series/{made['id']}/versions").json()["results"]
    assert [(v["number"], v["live"], v["published_at"] is None) for v in versions] == [
        (2, False, True),
        (1, True, False),
    ]

    again = publish(acme_api, made["id"], move_waiting=True)
    assert again["live_version"] == 2 and again["draft_version"] is None
    assert acme_api.get(f"/api/v1/series/{made['id']}/versions/1").json()["steps"] == first["steps"]
    assert acme_api.get(f"/api/v1/series/{made['id']}/versions/3").status_code == 404
    # Nothing new to publish.
    assert "steps" in fields_of(acme_api.post(f"/api/v1/series/{made['id']}/publish", {}, format="json"))


def test_pause_resume_archive(acme: Workspace, acme_api: APIClient, templates: dict[str, EmailTemplate]) -> None:
    made = create(acme_api, steps=welcome_steps(templates))
    series_url = f"/api/v1/series/{made['id']}"
    assert "status" in fields_of(acme_api.post(f"{series_url}/pause"))  # a draft is not live
    publish(acme_api, made["id"])

    paused = acme_api.post(f"{series_url}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert "status" in fields_of(acme_api.post(f"{series_url}/pause"))
    resumed = acme_api.post(f"{series_url}/resume", {"skip_older_than_hours": 24}, format="json")
    assert resumed.status_code == 200 and resumed.json()["status"] == "live"
    assert Series.objects.get(pk=made["id"]).stale_before is not None

    refused = acme_api.delete(series_url)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "archive_instead"

    archived = acme_api.post(f"{series_url}/archive")
    assert archived.status_code == 200 and archived.json()["status"] == "archived"
    assert acme_api.post(f"{series_url}/archive").status_code == 200  # archiving twice changes nothing
    assert acme_api.get("/api/v1/series").json()["results"] == []
    assert [row["id"] for row in acme_api.get("/api/v1/series?status=archived").json()["results"]] == [made["id"]]
    assert "status" in fields_of(acme_api.patch(series_url, {"name": "Again"}, format="json"))
    assert acme_api.delete(series_url).status_code == 409


# --- validation ---------------------------------------------------------------------------------


def test_validation_errors_name_the_step_and_field(
    acme: Workspace, acme_api: APIClient, templates: dict[str, EmailTemplate]
) -> None:
    steps = welcome_steps(templates)
    steps["steps"][0]["template"] = 999_999
    steps["steps"][1]["unit"] = "fortnights"
    steps["steps"][2]["colour"] = "red"
    response = acme_api.post(
        "/api/v1/series",
        {"name": "Broken", "trigger": {"type": "event"}, "goal": {"event": ""}, "steps": steps},
        format="json",
    )
    fields = fields_of(response)
    assert {
        "steps[hello].template",
        "steps[two-days].unit",
        "steps[coupon].colour",
        "trigger.event",
        "goal.event",
    } <= set(fields)
    assert fields["steps[hello].template"] == ["No such email template."]
    assert not Series.objects.exists()

    made = create(acme_api, steps=welcome_steps(templates))
    loop = {
        "steps": [
            {"key": "a", "type": "send", "template": templates["welcome"].pk, "next": "b"},
            {"key": "b", "type": "send", "template": templates["coupon"].pk, "next": "a"},
            {"key": "orphan", "type": "exit"},
        ]
    }
    fields = fields_of(acme_api.patch(f"/api/v1/series/{made['id']}", {"steps": loop}, format="json"))
    assert "steps[orphan]" in fields and any(
        "loop" in m for m in fields.get("steps[a]", []) + fields.get("steps[b]", [])
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "X", "move_on": True}, "move_on"),  # an unknown field is refused by name
        ({"name": "X", "steps": []}, "steps"),  # JSON parts are objects
        ({"name": "X", "trigger": "api"}, "trigger"),
        ({"name": "X", "priority": 15}, "priority"),
        ({"name": "X", "priority": "20"}, "priority"),  # JSON types are kept
        ({"name": "X", "holdout_percent": 80}, "holdout_percent"),
        ({"name": "X", "re_entry": "period"}, "re_entry_days"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_settings_are_400s_by_field(acme: Workspace, acme_api: APIClient, body: dict[str, Any], field: str) -> None:
    assert field in fields_of(acme_api.post("/api/v1/series", body, format="json"))


def test_bad_query_parameters_are_400s(acme: Workspace, acme_api: APIClient) -> None:
    assert "status" in fields_of(acme_api.get("/api/v1/series?status=running"))
    assert "sort" in fields_of(acme_api.get("/api/v1/series?sort=name"))


# --- enrollments ---------------------------------------------------------------------------------


@pytest.fixture
def cart_series(acme: Workspace, acme_api: APIClient) -> dict[str, Any]:
    template = EmailTemplateFactory(workspace=acme, name="Cart", subject="Your cart {{ event.cart_id }}")
    made = create(
        acme_api,
        name="Cart",
        trigger={"type": "api"},
        steps={
            "steps": [
                {"key": "remind", "type": "send", "template": template.pk, "next": "pause"},
                {"key": "pause", "type": "wait", "amount": 1, "unit": "days"},
            ]
        },
    )
    return publish(acme_api, made["id"])


def test_enroll_through_the_api_with_a_key_and_data(
    acme: Workspace,
    acme_api: APIClient,
    cart_series: dict[str, Any],
    run_tasks_now: None,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    kim = contact(acme, "kim@example.com", external_id="shop-7")
    url = f"/api/v1/series/{cart_series['id']}/enrollments"
    with django_capture_on_commit_callbacks(execute=True):
        response = acme_api.post(
            url, {"contact": {"email": "KIM@example.com"}, "key": "A", "data": {"cart_id": "A-17"}}, format="json"
        )
    assert response.status_code == 201, response.content
    enrolled = response.json()
    assert enrolled["contact"] == {"id": kim.pk, "email": "kim@example.com", "external_id": "shop-7"}
    assert enrolled["key"] == "A" and enrolled["data"] == {"cart_id": "A-17"} and enrolled["version"] == 1
    assert [row["outcome"] for row in enrolled["trace"]] == ["entered"]

    # The first step ran after commit; its email reads the data as `event`.
    send_all()
    assert OutboxMessage.objects.get(workspace=acme).subject == "Your cart A-17"
    detail = acme_api.get(f"/api/v1/enrollments/{enrolled['id']}").json()
    assert [(row["step"], row["outcome"]) for row in detail["trace"]] == [
        ("", "entered"),
        ("remind", "sent"),
        ("pause", "waiting"),
    ]
    assert detail["state"] == "waiting" and detail["step"] == "pause" and detail["trace"][1]["message"]
    steps = acme_api.get(f"/api/v1/series/{cart_series['id']}/steps").json()
    by_key = {row["key"]: row for row in steps["steps"]}
    assert by_key["remind"]["sent"] == 1 and by_key["pause"]["waiting_now"] == 1 and by_key["pause"]["in_version"]

    # The same key again (a retried request): 409 naming the enrollment it already has.
    again = acme_api.post(url, {"contact": {"id": kim.pk}, "key": "A"}, format="json")
    assert again.status_code == 409
    refusal = again.json()["error"]
    assert (refusal["code"], refusal["reason"], refusal["enrollment"]) == (
        "not_enrolled",
        "already_enrolled",
        enrolled["id"],
    )
    assert refusal["message"] == "The contact is in this series already with this key."
    # Another key is another enrollment.
    other = acme_api.post(url, {"contact": {"external_id": "shop-7"}, "key": "B"}, format="json")
    assert other.status_code == 201, other.content

    ended = acme_api.post(
        f"/api/v1/enrollments/{enrolled['id']}/end", {"reason": "order placed by phone"}, format="json"
    )
    assert ended.status_code == 200
    assert ended.json()["state"] == "exited" and ended.json()["end_reason"] == "order placed by phone"
    assert acme_api.post(f"/api/v1/enrollments/{enrolled['id']}/end").json()["ended_at"] == ended.json()["ended_at"]
    # Once ever: the ended key does not enter again.
    refused = acme_api.post(url, {"contact": {"id": kim.pk}, "key": "A"}, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["reason"] == "re_entry"

    listed = acme_api.get(f"{url}?state=exited").json()["results"]
    assert [row["id"] for row in listed] == [enrolled["id"]]
    mine = acme_api.get(f"/api/v1/contacts/{kim.pk}/enrollments").json()["results"]
    assert [row["key"] for row in mine] == ["B", "A"]
    assert mine[1]["series_name"] == "Cart" and mine[1]["trace"][-1]["outcome"] == "exited"


def test_enrollment_refusals_and_bad_contacts(
    acme: Workspace, globex: Workspace, acme_api: APIClient, cart_series: dict[str, Any]
) -> None:
    url = f"/api/v1/series/{cart_series['id']}/enrollments"
    stranger = contact(globex, "kim@example.com")
    assert "contact" in fields_of(acme_api.post(url, {"contact": {"id": stranger.pk}}, format="json"))
    assert "contact" in fields_of(acme_api.post(url, {"contact": {"email": "nobody@example.com"}}, format="json"))
    assert "contact.non_field_errors" in fields_of(
        acme_api.post(url, {"contact": {"id": 1, "email": "a@example.com"}}, format="json")
    )
    assert "data" in fields_of(acme_api.post(url, {"contact": {"id": 1}, "data": [1]}, format="json"))
    assert "contact.name" in fields_of(acme_api.post(url, {"contact": {"name": "Kim"}}, format="json"))

    kim = contact(acme, "kim@example.com")
    acme_api.post(f"/api/v1/series/{cart_series['id']}/pause")
    paused = acme_api.post(url, {"contact": {"id": kim.pk}}, format="json")
    assert paused.status_code == 409 and paused.json()["error"]["reason"] == "not_live"
    assert not Enrollment.objects.exists()


def test_flow_filter_refusal_is_named(
    acme: Workspace, acme_api: APIClient, templates: dict[str, EmailTemplate]
) -> None:
    made = create(
        acme_api,
        steps=welcome_steps(templates),
        flow_filter={
            "match": "all",
            "negate": False,
            "conditions": [{"kind": "tag", "operator": "in", "value": ["vip"]}],
        },
    )
    publish(acme_api, made["id"])
    kim = contact(acme, "kim@example.com")
    refused = acme_api.post(f"/api/v1/series/{made['id']}/enrollments", {"contact": {"id": kim.pk}}, format="json")
    assert refused.status_code == 409, refused.content
    assert refused.json()["error"]["reason"] == "flow_filter" and refused.json()["error"]["enrollment"] is None


# --- isolation and scopes -----------------------------------------------------------------------


def test_another_workspaces_series_enrollments_and_contacts_are_404s(
    acme: Workspace, globex: Workspace, acme_api: APIClient
) -> None:
    globex_api = key_client(api_key(globex))
    template = EmailTemplateFactory(workspace=globex)
    made = create(globex_api, steps={"steps": [{"key": "hello", "type": "send", "template": template.pk}]})
    publish(globex_api, made["id"])
    person = contact(globex, "ann@example.com")
    enrolled = globex_api.post(
        f"/api/v1/series/{made['id']}/enrollments", {"contact": {"id": person.pk}}, format="json"
    ).json()

    series_url = f"/api/v1/series/{made['id']}"
    for method, url in [
        ("get", series_url),
        ("patch", series_url),
        ("delete", series_url),
        ("post", f"{series_url}/publish"),
        ("post", f"{series_url}/pause"),
        ("post", f"{series_url}/resume"),
        ("post", f"{series_url}/archive"),
        ("get", f"{series_url}/versions"),
        ("get", f"{series_url}/versions/1"),
        ("get", f"{series_url}/steps"),
        ("get", f"{series_url}/enrollments"),
        ("post", f"{series_url}/enrollments"),
        ("post", f"{series_url}/dry-run"),
        ("get", f"/api/v1/enrollments/{enrolled['id']}"),
        ("post", f"/api/v1/enrollments/{enrolled['id']}/end"),
        ("get", f"/api/v1/contacts/{person.pk}/enrollments"),
    ]:
        body = {"contact": {"id": person.pk}} if method != "get" else None
        response = getattr(acme_api, method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.status_code)
        assert response.json()["error"]["code"] == "not_found"
    assert acme_api.get("/api/v1/series").json()["results"] == []
    assert Enrollment.objects.get(pk=enrolled["id"]).ended_at is None
    assert Series.objects.get(pk=made["id"]).status == "live"


def test_scopes(acme: Workspace, templates: dict[str, EmailTemplate]) -> None:
    writer = key_client(api_key(acme, scopes=[ApiScope.SERIES_WRITE, ApiScope.SERIES_READ]))
    made = create(writer, steps=welcome_steps(templates))
    reader = key_client(api_key(acme, scopes=[ApiScope.SERIES_READ]))
    assert reader.get(f"/api/v1/series/{made['id']}").status_code == 200
    assert reader.post(f"/api/v1/series/{made['id']}/publish").status_code == 403
    person = contact(acme, "kim@example.com")
    # The dry run writes nothing, but as every POST it asks for the write scope.
    dry_run = f"/api/v1/series/{made['id']}/dry-run"
    assert reader.post(dry_run, {"contact": {"id": person.pk}}, format="json").status_code == 403
    assert writer.post(dry_run, {"contact": {"id": person.pk}}, format="json").status_code == 200
    contacts_only = key_client(api_key(acme, scopes=[ApiScope.CONTACTS_READ]))
    assert contacts_only.get("/api/v1/series").status_code == 403
    assert contacts_only.get(f"/api/v1/contacts/{person.pk}/enrollments").status_code == 403


# --- dry run ------------------------------------------------------------------------------------


def test_the_dry_run_replays_the_draft_and_writes_nothing(
    acme: Workspace, acme_api: APIClient, templates: dict[str, EmailTemplate], clock: Any
) -> None:
    made = create(acme_api, trigger={"type": "event", "event": "Signed Up"}, steps=welcome_steps(templates))
    publish(acme_api, made["id"])
    shorter = welcome_steps(templates)
    shorter["steps"][1]["amount"] = 1
    acme_api.patch(f"/api/v1/series/{made['id']}", {"steps": shorter}, format="json")
    ann: Contact = contact(acme, "ann@example.com")
    signed_up = clock.now() - dt.timedelta(days=5)
    EventFactory(contact=ann, workspace=acme, name="Signed Up", occurred_at=signed_up)
    counts_before = (Enrollment.objects.count(), Trace.objects.count(), Message.objects.count())

    url = f"/api/v1/series/{made['id']}/dry-run"
    since = (signed_up - dt.timedelta(hours=1)).isoformat()
    draft = acme_api.post(url, {"contact": {"email": "ann@example.com"}, "since": since}, format="json")
    assert draft.status_code == 200, draft.content
    body = draft.json()
    assert body["version"] == 2
    assert [line["what"] for line in body["lines"]] == [
        "entered",
        f"would send email #{templates['welcome'].pk}",
        f"waits until {signed_up + dt.timedelta(days=1):%Y-%m-%d %H:%M}",
        f"would send email #{templates['coupon'].pk}",
        "completed",
    ]
    assert body["notes"] and not any(line["future"] for line in body["lines"])
    live = acme_api.post(url, {"contact": {"id": ann.pk}, "since": since, "version": 1}, format="json").json()
    assert live["version"] == 1 and live["lines"][2]["what"].startswith("waits until")
    assert live["lines"][2]["what"] != body["lines"][2]["what"]

    assert "version" in fields_of(acme_api.post(url, {"contact": {"id": ann.pk}, "version": 9}, format="json"))
    assert (Enrollment.objects.count(), Trace.objects.count(), Message.objects.count()) == counts_before == (0, 0, 0)


@pytest.mark.django_db
def test_a_new_webhook_secret_is_returned_once_made(acme: Workspace, acme_api: APIClient, globex: Workspace) -> None:
    from automations.services import SeriesInput, series_create

    series = series_create(workspace=acme, data=SeriesInput(name="Hooked", trigger={"type": "api"}))
    old = series.webhook_secret
    answer = acme_api.post(f"/api/v1/series/{series.pk}/webhook-secret")
    assert answer.status_code == 200
    series.refresh_from_db()
    assert answer.json() == {"webhook_secret": series.webhook_secret} and series.webhook_secret != old
    other = series_create(workspace=globex, data=SeriesInput(name="Theirs", trigger={"type": "api"}))
    assert acme_api.post(f"/api/v1/series/{other.pk}/webhook-secret").status_code == 404
    reader = key_client(api_key(acme, scopes=[ApiScope.SERIES_READ]))
    assert reader.post(f"/api/v1/series/{series.pk}/webhook-secret").status_code == 403
