"""campaigns is tested on its own: the send gates that higher layers register at start-up (a
series' gate skips step messages whose enrollment is gone) are set aside during each test;
tests/automations checks the series' gate with the engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from campaigns.delivery import gates


@pytest.fixture(autouse=True)
def _no_higher_layer_gates() -> Iterator[None]:
    with gates.set_aside():
        yield
