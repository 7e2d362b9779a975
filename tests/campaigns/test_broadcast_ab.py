"""A/B split tests of broadcasts: the test group's size, split and determinism; each variant's
content on its messages; the winner computed from real Message rows; the significance said in
words; the winner sent to the rest only, never to the test group; the marketer's pick; a cancel
during the wait; and two workspaces kept apart."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from audiences.models import Contact, MailingList, Subscription, SubscriptionStatus
from campaigns.broadcast_models import AbState
from campaigns.broadcasts import ab, services
from campaigns.broadcasts.ab import AbInput, VariantInput
from campaigns.broadcasts.ab_stats import Figures, VariantFigures, chance_to_beat_all, verdict, z_test_confidence
from campaigns.broadcasts.services import BroadcastInput
from campaigns.delivery.services import Timing, messages_enqueue_timed
from campaigns.models import (
    Broadcast,
    BroadcastStatus,
    BroadcastTest,
    EmailTemplate,
    Message,
    MessageSource,
    SenderIdentity,
)
from esp.models import Workspace
from tests.factories import EmailTemplateFactory

pytestmark = pytest.mark.usefixtures("clock")


def _audience(workspace: Workspace, size: int, name: str = "News") -> MailingList:
    news = MailingList.objects.create(workspace=workspace, name=name)
    contacts = Contact.objects.bulk_create(
        Contact(workspace=workspace, email=f"p{n}@{workspace.slug}.example") for n in range(size)
    )
    Subscription.objects.bulk_create(
        Subscription(workspace=workspace, contact=c, mailing_list=news, status=SubscriptionStatus.SUBSCRIBED)
        for c in contacts
    )
    return news


def _broadcast(workspace: Workspace, news: MailingList, **fields: Any) -> Broadcast:
    template = EmailTemplateFactory(workspace=workspace, subject="Sale −20 %")
    data = BroadcastInput(name="Autumn sale", template=template.pk, include_lists=[news.pk], **fields)
    return services.broadcast_create(workspace=workspace, data=data)


def _messages(broadcast: Broadcast) -> list[Message]:
    return list(Message.objects.filter(source=str(MessageSource.broadcast(broadcast.pk))).order_by("contact_id"))


def _subjects(*subjects: str, **settings: Any) -> AbInput:
    return AbInput(variants=[VariantInput(subject=s) for s in subjects], **settings)


def _send_all(broadcast: Broadcast, at: dt.datetime) -> None:
    Message.objects.filter(source=str(MessageSource.broadcast(broadcast.pk)), state="queued").update(
        state="sent", sent_at=at
    )


def test_the_test_group_is_an_even_deterministic_share(acme: Workspace, clock: Any) -> None:
    news = _audience(acme, 103)
    broadcast = _broadcast(acme, news)
    ab.ab_configure(workspace=acme, broadcast_id=broadcast.pk, data=_subjects("One", "Two", "Three", test_percent=20))
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    made = _messages(broadcast)
    # ceil(103 × 20 %) = 21, dealt A, B, C in turn: 7 each.
    assert len(made) == 21 and Counter(m.data["variant"] for m in made) == {"A": 7, "B": 7, "C": 7}
    broadcast.refresh_from_db()
    assert broadcast.recipients == 21 and broadcast.status == BroadcastStatus.SENDING
    test = BroadcastTest.objects.get(broadcast=broadcast)
    assert test.state == AbState.TESTING and test.decide_after == clock.now() + dt.timedelta(hours=4)

    # The same audience, the same broadcast id: the same people in the same variants.
    groups = {m.contact_id: m.data["variant"] for m in made}
    Message.objects.filter(source=str(MessageSource.broadcast(broadcast.pk))).delete()
    Broadcast.objects.filter(pk=broadcast.pk).update(status=BroadcastStatus.DRAFT)
    BroadcastTest.objects.filter(pk=test.pk).update(state=AbState.SETUP)
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    assert {m.contact_id: m.data["variant"] for m in _messages(broadcast)} == groups

    # Another broadcast to the same people draws another group (the hash includes its id).
    other = _broadcast(acme, news)
    ab.ab_configure(workspace=acme, broadcast_id=other.pk, data=_subjects("One", "Two", "Three", test_percent=20))
    services.broadcast_schedule(workspace=acme, broadcast_id=other.pk)
    assert {m.contact_id for m in _messages(other)} != set(groups)


def test_each_variant_carries_its_own_content(acme: Workspace, clock: Any) -> None:
    news = _audience(acme, 40)
    broadcast = _broadcast(acme, news, subject="Broadcast subject", throttle_hours=2)
    other_email = EmailTemplateFactory(workspace=acme, name="Other", subject="Other email")
    other_sender = SenderIdentity.objects.create(workspace=acme, from_name="Shop team", from_email="team@acme.test")
    variants = [
        VariantInput(),  # A: the broadcast as it is
        VariantInput(subject="Only today: −20 %"),
        VariantInput(template=other_email.pk, sender=other_sender.pk),
        VariantInput(send_delay_hours=5),
    ]
    ab.ab_configure(workspace=acme, broadcast_id=broadcast.pk, data=AbInput(variants=variants, test_percent=50))
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    by_variant: dict[str, list[Message]] = {}
    for message in _messages(broadcast):
        by_variant.setdefault(message.data["variant"], []).append(message)
    assert {letter: len(rows) for letter, rows in by_variant.items()} == {"A": 5, "B": 5, "C": 5, "D": 5}
    assert {m.subject_override for m in by_variant["A"]} == {"Broadcast subject"}
    assert {m.subject_override for m in by_variant["B"]} == {"Only today: −20 %"}
    assert {(m.template_id, m.sender_id) for m in by_variant["C"]} == {(other_email.pk, other_sender.pk)}
    assert {(m.template_id, m.sender_id) for m in by_variant["A"]} == {(broadcast.template_id, None)}
    # Each share is spread over the broadcast's two hours; D's starts five hours later.
    start = clock.now()
    assert sorted(m.due_at - start for m in by_variant["A"]) == [dt.timedelta(minutes=24 * n) for n in range(5)]
    assert sorted(m.due_at - start for m in by_variant["D"]) == [
        dt.timedelta(hours=5, minutes=24 * n) for n in range(5)
    ]
    assert all(m.source == f"broadcast:{broadcast.pk}" for rows in by_variant.values() for m in rows)
    # The decision waits for the last one (D's) plus the wait.
    test = BroadcastTest.objects.get(broadcast=broadcast)
    assert test.decide_after == start + dt.timedelta(hours=5, minutes=96) + dt.timedelta(hours=4)


def test_setting_up_a_test_is_checked(acme: Workspace, globex: Workspace) -> None:
    news = _audience(acme, 1)
    broadcast = _broadcast(acme, news)
    theirs = EmailTemplateFactory(workspace=globex)
    with pytest.raises(ValidationError) as refused:
        ab.ab_configure(workspace=acme, broadcast_id=broadcast.pk, data=_subjects("Only one"))
    assert refused.value.message_dict == {"variants": ["A test has 2 to 4 variants."]}
    bad = AbInput(
        variants=[VariantInput(subject="Same"), VariantInput(subject="Same"), VariantInput(template=theirs.pk)],
        test_percent=95,
        metric="revenue",
        wait_hours=0,
        winner_mode="coin",
    )
    with pytest.raises(ValidationError) as refused:
        ab.ab_configure(workspace=acme, broadcast_id=broadcast.pk, data=bad)
    errors = refused.value.message_dict
    assert set(errors) == {"variants.B", "variants.C", "test_percent", "metric", "wait_hours", "winner_mode"}
    assert "Variants A and B are the same" in errors["variants.B"][0]
    assert errors["variants.C"] == [f"No such email: {theirs.pk}."]
    assert not BroadcastTest.objects.exists()
    # Only a draft's test can change.
    ab.ab_configure(workspace=acme, broadcast_id=broadcast.pk, data=_subjects("One", "Two"))
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    with pytest.raises(ValidationError):
        ab.ab_configure(workspace=acme, broadcast_id=broadcast.pk, data=_subjects("One", "Three"))
    with pytest.raises(ValidationError):
        ab.ab_remove(workspace=acme, broadcast_id=broadcast.pk)


def test_two_proportions_and_the_probability_to_beat_all() -> None:
    # 60/200 against 40/200: pooled 25 %, z = 2.309, two-sided p = 0.0209.
    assert z_test_confidence(60, 200, 40, 200) == pytest.approx(0.9791, abs=1e-4)
    assert z_test_confidence(0, 100, 0, 100) is None  # no variance: nothing to say
    assert z_test_confidence(3, 10, 0, 0) is None
    chances = chance_to_beat_all({"A": (20, 200), "B": (40, 200), "C": (21, 200)})
    assert chances == chance_to_beat_all({"A": (20, 200), "B": (40, 200), "C": (21, 200)})  # deterministic
    assert chances["B"] > 0.99 and sum(chances.values()) == pytest.approx(1, abs=1e-3)


def _figures(**rows: tuple[int, int]) -> Figures:
    return Figures([VariantFigures(letter, messages=n, sent=n, opened=s) for letter, (s, n) in rows.items()])


def test_the_words_say_when_a_difference_is_not_significant() -> None:
    significant = verdict(_figures(A=(40, 200), B=(60, 200)), "opens")
    assert (significant.leader, significant.significant) == ("B", True)
    assert significant.words == (
        "B is better: 30.0 % against 20.0 % for A (open rate), with 97.9 % confidence (two-proportion z-test)."
    )
    close = verdict(_figures(A=(20, 100), B=(23, 100)), "opens")
    assert close.leader == "B" and not close.significant
    assert close.words.startswith(
        "The difference is not significant: B leads with 23.0 % against 20.0 % for A (open rate)"
    )
    assert "below the 95 % needed — it may be chance." in close.words
    assert verdict(_figures(A=(10, 100), B=(10, 100)), "opens").words == (
        "No difference: the variants have the same open rate (10.0 %)."
    )
    assert verdict(_figures(A=(0, 0), B=(0, 0)), "opens").leader == ""
    three = verdict(_figures(A=(20, 100), B=(22, 100), C=(21, 100)), "opens")
    assert three.leader == "B" and not three.significant and "probability to beat all the others" in three.words
    with translation.override("ru"):
        assert verdict(_figures(A=(20, 100), B=(23, 100)), "opens").words.startswith("Разница не значима")


def _opened(broadcast: Broadcast, letter: str, count: int, at: dt.datetime, clicked: int = 0, skip: int = 0) -> None:
    rows = [m for m in _messages(broadcast) if m.data["variant"] == letter][skip : skip + count]
    Message.objects.filter(pk__in=[m.pk for m in rows]).update(opened_at=at)
    Message.objects.filter(pk__in=[m.pk for m in rows[:clicked]]).update(clicked_at=at)


def test_the_winner_goes_to_the_rest_only(acme: Workspace, clock: Any) -> None:
    news = _audience(acme, 400)
    broadcast = _broadcast(acme, news)
    ab.ab_configure(
        workspace=acme, broadcast_id=broadcast.pk, data=_subjects("Plain", "Bold", test_percent=50, wait_hours=4)
    )
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    start = clock.now()
    test_group = {m.contact_id: m.data["variant"] for m in _messages(broadcast)}
    assert Counter(test_group.values()) == {"A": 100, "B": 100}
    _send_all(broadcast, start)
    _opened(broadcast, "A", 20, start + dt.timedelta(hours=1))
    _opened(broadcast, "B", 45, start + dt.timedelta(hours=1))
    _opened(broadcast, "A", 50, start + dt.timedelta(hours=5), skip=20)  # after the wait: not counted
    clock.advance(hours=3)
    assert services.broadcasts_tick() == {"started": 0, "finished": 0}  # still waiting, and not "sent"
    clock.advance(hours=1)
    assert services.broadcasts_tick()["ab_decided"] == 1
    test = BroadcastTest.objects.get(broadcast=broadcast)
    assert (test.state, test.winner, test.rest_recipients) == (AbState.DECIDED, "B", 200)
    assert test.decided_at == clock.now() and test.confidence == pytest.approx(0.99984, abs=1e-5)  # z = 3.774
    assert test.decision_reason == (
        "B is better: 45.0 % against 20.0 % for A (open rate), with 99.9 % confidence (two-proportion z-test). "
        "B was sent to the other 200 recipients."
    )
    messages = _messages(broadcast)
    assert len(messages) == 400 and len({m.contact_id for m in messages}) == 400
    for message in messages:
        if message.contact_id in test_group:  # the test group kept its own variant, once
            assert message.data == {"variant": test_group[message.contact_id]}
        else:
            assert message.data == {"variant": "B", "rest": True} and message.subject_override == "Bold"
    broadcast.refresh_from_db()
    assert broadcast.recipients == 400 and broadcast.status == BroadcastStatus.SENDING
    # Even asked outright, the unique index gives the test group nothing more.
    again = messages_enqueue_timed(
        workspace=acme,
        source=str(MessageSource.broadcast(broadcast.pk)),
        contacts=Contact.objects.filter(pk__in=list(test_group)),
        template=EmailTemplate.objects.get(pk=broadcast.template_id),
        timing=Timing(start=clock.now()),
        data={"variant": "B", "rest": True},
    )
    assert again == 0 and Message.objects.filter(contact_id__in=list(test_group), data__rest=True).count() == 0
    _send_all(broadcast, clock.now())
    assert services.broadcasts_tick()["finished"] == 1


def test_an_even_result_still_sends_and_says_so(acme: Workspace, clock: Any) -> None:
    news = _audience(acme, 40)
    broadcast = _broadcast(acme, news)
    ab.ab_configure(
        workspace=acme, broadcast_id=broadcast.pk, data=_subjects("Plain", "Bold", test_percent=50, metric="clicks")
    )
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    _send_all(broadcast, clock.now())
    _opened(broadcast, "A", 5, clock.now(), clicked=2)
    _opened(broadcast, "B", 5, clock.now(), clicked=3)
    clock.advance(hours=4)
    services.broadcasts_tick()
    test = BroadcastTest.objects.get(broadcast=broadcast)
    assert test.winner == "B" and test.decision_reason.startswith(
        "The difference is not significant: B leads with 30.0 % against 20.0 % for A (click rate)"
    )
    assert test.decision_reason.endswith("the test was set to decide automatically.")


def test_a_message_still_unsent_holds_the_decision(acme: Workspace, clock: Any) -> None:
    news = _audience(acme, 10)
    broadcast = _broadcast(acme, news)
    ab.ab_configure(workspace=acme, broadcast_id=broadcast.pk, data=_subjects("Plain", "Bold", test_percent=50))
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    late = _messages(broadcast)[0]
    _send_all(broadcast, clock.now())
    Message.objects.filter(pk=late.pk).update(state="queued", sent_at=None)  # held back (quiet hours)
    clock.advance(hours=5)
    assert "ab_decided" not in services.broadcasts_tick()
    Message.objects.filter(pk=late.pk).update(state="sent", sent_at=clock.now())
    clock.advance(hours=3)
    assert "ab_decided" not in services.broadcasts_tick()  # the wait runs from the last send
    clock.advance(hours=1)
    assert services.broadcasts_tick()["ab_decided"] == 1


def test_the_marketer_picks_the_winner(acme: Workspace, acme_owner: Any, clock: Any) -> None:
    news = _audience(acme, 60)
    broadcast = _broadcast(acme, news)
    ab.ab_configure(
        workspace=acme,
        broadcast_id=broadcast.pk,
        data=_subjects("Plain", "Bold", "Emoji", test_percent=50, winner_mode="manual"),
    )
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    test_group = {m.contact_id for m in _messages(broadcast)}
    _send_all(broadcast, clock.now())
    _opened(broadcast, "B", 6, clock.now())
    clock.advance(hours=4)
    assert services.broadcasts_tick()["ab_awaiting_pick"] == 1
    assert BroadcastTest.objects.get(broadcast=broadcast).state == AbState.AWAITING_PICK
    assert len(_messages(broadcast)) == 30  # nothing more until the pick
    services.broadcasts_tick()
    assert Broadcast.objects.get(pk=broadcast.pk).status == BroadcastStatus.SENDING  # not closed as sent
    with pytest.raises(ValidationError):
        ab.ab_pick(workspace=acme, broadcast_id=broadcast.pk, letter="E", user=acme_owner)
    ab.ab_pick(workspace=acme, broadcast_id=broadcast.pk, letter="C", user=acme_owner)
    test = BroadcastTest.objects.get(broadcast=broadcast)
    assert (test.state, test.winner, test.decided_by, test.rest_recipients) == (AbState.DECIDED, "C", acme_owner, 30)
    assert test.decision_reason.startswith(f"{acme_owner.email} picked C; it was sent to the other 30 recipients.")
    assert "B is the best" in test.decision_reason or "B leads" in test.decision_reason
    rest = [m for m in _messages(broadcast) if m.contact_id not in test_group]
    assert len(rest) == 30 and {m.subject_override for m in rest} == {"Emoji"}
    with pytest.raises(ValidationError):  # only once
        ab.ab_pick(workspace=acme, broadcast_id=broadcast.pk, letter="B", user=acme_owner)


def test_an_automatic_test_cannot_be_picked(acme: Workspace, acme_owner: Any) -> None:
    news = _audience(acme, 10)
    broadcast = _broadcast(acme, news)
    ab.ab_configure(workspace=acme, broadcast_id=broadcast.pk, data=_subjects("Plain", "Bold"))
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    with pytest.raises(ValidationError) as refused:
        ab.ab_pick(workspace=acme, broadcast_id=broadcast.pk, letter="B", user=acme_owner)
    assert refused.value.message_dict == {"winner": ["This test chooses its winner automatically."]}


def test_cancel_during_the_wait_sends_no_winner(acme: Workspace, clock: Any) -> None:
    news = _audience(acme, 40)
    broadcast = _broadcast(acme, news)
    ab.ab_configure(workspace=acme, broadcast_id=broadcast.pk, data=_subjects("Plain", "Bold", test_percent=50))
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    _send_all(broadcast, clock.now())
    clock.advance(hours=2)
    services.broadcast_cancel(workspace=acme, broadcast_id=broadcast.pk)
    clock.advance(hours=3)
    assert services.broadcasts_tick()["ab_closed"] == 1
    test = BroadcastTest.objects.get(broadcast=broadcast)
    assert (test.state, test.winner) == (AbState.CANCELLED, "")
    assert len(_messages(broadcast)) == 20 and not Message.objects.filter(data__rest=True).exists()


def test_a_paused_broadcast_waits_for_its_resume(acme: Workspace, clock: Any) -> None:
    news = _audience(acme, 40)
    broadcast = _broadcast(acme, news)
    ab.ab_configure(workspace=acme, broadcast_id=broadcast.pk, data=_subjects("Plain", "Bold", test_percent=50))
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    _send_all(broadcast, clock.now())
    services.broadcast_pause(workspace=acme, broadcast_id=broadcast.pk)
    clock.advance(hours=5)
    assert "ab_decided" not in services.broadcasts_tick()
    services.broadcast_resume(workspace=acme, broadcast_id=broadcast.pk)
    assert services.broadcasts_tick()["ab_decided"] == 1


def test_two_workspaces_stay_apart(acme: Workspace, globex: Workspace, acme_owner: Any, clock: Any) -> None:
    ours, theirs = _audience(acme, 20), _audience(globex, 20)
    broadcast = _broadcast(acme, ours)
    other = _broadcast(globex, theirs)
    ab.ab_configure(workspace=acme, broadcast_id=broadcast.pk, data=_subjects("Plain", "Bold", test_percent=50))
    with pytest.raises(Broadcast.DoesNotExist):
        ab.ab_configure(workspace=acme, broadcast_id=other.pk, data=_subjects("Plain", "Bold"))
    with pytest.raises(Broadcast.DoesNotExist):
        ab.ab_pick(workspace=acme, broadcast_id=other.pk, letter="A", user=acme_owner)
    their_sender = SenderIdentity.objects.create(workspace=globex, from_name="G", from_email="g@globex.test")
    with pytest.raises(ValidationError) as refused:
        ab.ab_configure(
            workspace=acme,
            broadcast_id=broadcast.pk,
            data=AbInput(variants=[VariantInput(), VariantInput(sender=their_sender.pk)]),
        )
    assert refused.value.message_dict == {"variants.B": [f"No such sender: {their_sender.pk}."]}
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    assert {m.contact.workspace_id for m in _messages(broadcast)} == {acme.pk}  # type: ignore[union-attr]
    assert not Message.objects.filter(workspace=globex).exists()


# The page.


def _page(broadcast: Broadcast) -> str:
    return f"/broadcasts/{broadcast.pk}/ab/"


def _setup_post(**fields: Any) -> dict[str, Any]:
    data = {"action": "save", "variant_count": 2, "test_percent": 20, "metric": "opens", "wait_hours": 4,
            "winner_mode": "automatic"}  # fmt: skip
    for letter in "ABCD":
        data |= {f"subject_{letter}": "", f"template_{letter}": "", f"sender_{letter}": "", f"delay_{letter}": 0}
    return data | fields


def test_the_page_sets_up_a_test(acme: Workspace, acme_client: Any) -> None:
    news = _audience(acme, 10)
    broadcast = _broadcast(acme, news)
    other_email = EmailTemplateFactory(workspace=acme, name="Other look")
    assert acme_client.get(_page(broadcast)).status_code == 200
    response = acme_client.post(
        _page(broadcast),
        _setup_post(variant_count=3, subject_B="Bold", template_C=other_email.pk, delay_C=3, test_percent=30),
    )
    assert response.status_code == 302
    test = BroadcastTest.objects.get(broadcast=broadcast)
    assert (test.test_percent, test.metric) == (30, "opens")
    variants = {v.letter: (v.subject, v.template_id, v.send_delay_hours) for v in broadcast.variants.all()}
    assert variants == {"A": ("", None, 0), "B": ("Bold", None, 0), "C": ("", other_email.pk, 3)}
    page = acme_client.get(_page(broadcast)).content.decode()
    assert 'value="Bold"' in page and "Remove the test" in page

    refused = acme_client.post(_page(broadcast), _setup_post(subject_A="Same", subject_B="Same"))
    assert refused.status_code == 400
    assert "Variants A and B are the same" in refused.content.decode()
    assert acme_client.post(_page(broadcast), _setup_post(test_percent="lots")).status_code == 400
    assert acme_client.post(_page(broadcast), {"action": "explode"}).status_code == 400
    assert broadcast.variants.count() == 3  # nothing changed by the refused posts

    assert acme_client.post(_page(broadcast), {"action": "remove"}).status_code == 302
    assert not BroadcastTest.objects.filter(broadcast=broadcast).exists() and not broadcast.variants.exists()


def test_the_page_shows_the_figures_and_the_decision(acme: Workspace, acme_client: Any, clock: Any) -> None:
    news = _audience(acme, 400)
    broadcast = _broadcast(acme, news)
    ab.ab_configure(workspace=acme, broadcast_id=broadcast.pk, data=_subjects("Plain", "Bold", test_percent=50))
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    _send_all(broadcast, clock.now())
    _opened(broadcast, "A", 20, clock.now())
    _opened(broadcast, "B", 23, clock.now())
    page = acme_client.get(_page(broadcast)).content.decode()
    assert "The difference is not significant: B leads with 23.0 % against 20.0 % for A (open rate)" in page
    assert "The winner is chosen once every test message is sent" in page
    assert "Send B to the rest" not in page  # automatic
    clock.advance(hours=4)
    services.broadcasts_tick()
    page = acme_client.get(_page(broadcast)).content.decode()
    assert "Decision: B" in page and "Chosen automatically" in page
    assert "B, the leader, was sent to the other 200 recipients all the same" in page
    assert "The rest (B)" in page


def test_the_marketer_picks_on_the_page_and_a_viewer_only_reads(acme: Workspace, acme_client: Any, clock: Any) -> None:
    from esp.models import Role
    from tests.conftest import logged_in
    from tests.factories import member

    news = _audience(acme, 40)
    broadcast = _broadcast(acme, news)
    ab.ab_configure(
        workspace=acme,
        broadcast_id=broadcast.pk,
        data=_subjects("Plain", "Bold", test_percent=50, winner_mode="manual"),
    )
    viewer = logged_in(member(acme, Role.VIEWER, email="viewer@acme.test"))
    draft_page = viewer.get(_page(broadcast)).content.decode()
    assert "Save the test" not in draft_page and "disabled" in draft_page
    assert viewer.post(_page(broadcast), _setup_post(subject_B="Mine")).status_code == 403
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    _send_all(broadcast, clock.now())
    assert "Send B to the rest" in acme_client.get(_page(broadcast)).content.decode()
    viewed = viewer.get(_page(broadcast))
    assert viewed.status_code == 200 and "Send B to the rest" not in viewed.content.decode()
    assert viewer.post(_page(broadcast), {"action": "pick", "letter": "B"}).status_code == 403
    assert acme_client.post(_page(broadcast), {"action": "pick", "letter": "Z"}).status_code == 400
    assert acme_client.post(_page(broadcast), {"action": "pick", "letter": "B"}).status_code == 302
    test = BroadcastTest.objects.get(broadcast=broadcast)
    assert test.winner == "B" and test.rest_recipients == 20
    assert "Picked by" in acme_client.get(_page(broadcast)).content.decode()


def test_another_workspaces_test_page_is_not_found(acme_client: Any, globex: Workspace) -> None:
    theirs = _broadcast(globex, _audience(globex, 2))
    assert acme_client.get(_page(theirs)).status_code == 404
    assert acme_client.post(_page(theirs), _setup_post(subject_B="Mine")).status_code == 404
    assert not BroadcastTest.objects.exists()


def test_a_duplicate_keeps_the_test_set_up_but_not_started(acme: Workspace) -> None:
    from campaigns.broadcasts.ab import AbInput, VariantInput, ab_configure
    from campaigns.broadcasts.services import BroadcastInput, broadcast_create, broadcast_duplicate
    from campaigns.models import BroadcastTest, BroadcastVariant

    original = broadcast_create(workspace=acme, data=BroadcastInput(name="Sale"))
    ab_configure(
        workspace=acme,
        broadcast_id=original.pk,
        data=AbInput(variants=[VariantInput(subject="One"), VariantInput(subject="Two")], wait_hours=6),
    )
    copy = broadcast_duplicate(workspace=acme, broadcast_id=original.pk)
    test = BroadcastTest.objects.get(broadcast=copy)
    assert (test.state, test.wait_hours) == ("setup", 6)
    subjects = BroadcastVariant.objects.filter(broadcast=copy).order_by("letter").values_list("subject", flat=True)
    assert list(subjects) == ["One", "Two"]
