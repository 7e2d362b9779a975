"""Series fixtures: a shop with templates."""

from __future__ import annotations

import pytest

from campaigns.models import EmailTemplate
from esp.models import Workspace
from tests.factories import EmailTemplateFactory


@pytest.fixture
def templates(acme: Workspace) -> dict[str, EmailTemplate]:
    return {
        name: EmailTemplateFactory(workspace=acme, name=name.title(), subject=f"{name} {{{{ contact.first_name }}}}")
        for name in ("welcome", "reminder", "coupon", "thanks")
    }
