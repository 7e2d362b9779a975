"""MessageSource: the one place a message's source is spelled ("<kind>:<key>") and read."""

from __future__ import annotations

import pytest

from campaigns.models import MessageSource, SourceKind


def test_built_sources_read_back_as_built() -> None:
    assert str(MessageSource.broadcast(12)) == "broadcast:12"
    assert str(MessageSource.step(7, "welcome-2")) == "step:7:welcome-2"
    # An idempotency key may hold colons of its own: the kind is cut at the first one only.
    source = MessageSource.parse(str(MessageSource.transactional("order:1001")))
    assert (source.kind, source.key, source.is_transactional) == (SourceKind.TRANSACTIONAL, "order:1001", True)
    assert MessageSource.parse("step:7:welcome-2") == MessageSource.step(7, "welcome-2")


@pytest.mark.parametrize(
    ("source", "test", "transactional", "campaign"),
    [
        (MessageSource.test(), True, False, False),
        (MessageSource.transactional("k"), False, True, False),
        (MessageSource.broadcast(1), False, False, True),
        (MessageSource.step(1, "a"), False, False, True),
        (MessageSource.demo("welcome"), False, False, False),
        (MessageSource.parse("something-else"), False, False, False),
    ],
)
def test_kinds(source: MessageSource, test: bool, transactional: bool, campaign: bool) -> None:
    parsed = MessageSource.parse(str(source))
    assert (parsed.is_test, parsed.is_transactional, parsed.is_campaign) == (test, transactional, campaign)


def test_tests_are_unique_and_share_a_prefix() -> None:
    first, second = str(MessageSource.test()), str(MessageSource.test())
    assert first != second
    assert first.startswith(MessageSource.prefix(SourceKind.TEST)) and second.startswith("test:")
