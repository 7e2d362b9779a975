"""Counts in Russian take their plural form (1 день, 3 дня, 5 дней) wherever the interface
shows a number of things, and the starter templates have Russian names.

Unlike test_i18n, the Russian words are typed in here: what is tested is the grammar of the
three forms, which a test reading the catalogue back could not catch."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import override

from audiences.exports import ExportRow
from audiences.models import LifecycleSettings
from audiences.segments.compiler import describe_rules, validate_rules
from audiences.segments.registry import RuleContext
from campaigns.content import services
from campaigns.content.errors import TemplateProblem
from campaigns.content.starters import STARTERS
from esp.models import Role, Workspace
from tests.conftest import logged_in
from tests.factories import member

pytestmark = pytest.mark.django_db


def _export(pk: int, rows: int) -> SimpleNamespace:
    return SimpleNamespace(
        pk=pk, created_at=timezone.now(), filter={}, status="done", is_active=False, percent=100,
        error_message="", processed_rows=rows, get_status_display=lambda: "done",
    )  # fmt: skip


def test_export_rows_count_contacts_in_three_forms() -> None:
    with override("ru"):
        html = render_to_string(
            "audiences/partials/export_rows.html",
            {"rows": [ExportRow(job=_export(n, rows), filter_summary="") for n, rows in ((1, 1), (2, 3), (3, 5))]},
        )
    assert "Скачать (1 контакт)" in html
    assert "Скачать (3 контакта)" in html
    assert "Скачать (5 контактов)" in html


def test_segment_description_counts_days(acme: Workspace) -> None:
    ctx = RuleContext(acme, now=timezone.now())

    def words(days: int) -> str:
        condition = {"kind": "event", "did": True, "name": "Order Completed", "period": "in_last_days", "days": days}
        return describe_rules(validate_rules(workspace=acme, rules={"match": "all", "conditions": [condition]}), ctx)

    with override("ru"):
        assert words(1).endswith("за последний 1 день")
        assert words(3).endswith("за последние 3 дня")
        assert words(5).endswith("за последние 5 дней")
        assert words(21).endswith("за последний 21 день")
    assert words(1).endswith("in the last 1 day") and words(5).endswith("in the last 5 days")


def test_lifecycle_thresholds_in_three_forms(acme: Workspace) -> None:
    # 21 takes the form of 1, 23 the form of 3, 5 its own.
    LifecycleSettings.objects.create(workspace=acme, loyal_min_orders=5, at_risk_after_days=21, lapsed_after_days=23)
    page = logged_in(member(acme, Role.VIEWER, language="ru")).get("/audience/lifecycle/").content.decode()
    assert "от 5 заказов" in page
    assert "через 21 день без заказа" in page
    assert "«Ушедший» — через 23 дня" in page
    # Nothing defines a median: the derived defaults are 90 and 180 days.
    assert "через 90 дней (две медианы" in page and "через 180 дней (вдвое больше)" in page


def test_line_of_a_problem_is_translated() -> None:
    problem = TemplateProblem("Oops.", line=7)
    assert str(problem) == "line 7: Oops."
    with override("ru"):
        assert str(problem) == "строка 7: Oops."
    assert str(TemplateProblem("Oops.")) == "Oops."


def test_starter_names_are_translated_and_stored_as_text(acme: Workspace) -> None:
    with override("ru"):
        template = services.template_copy_starter(workspace=acme, starter_key="welcome")
        again = services.template_copy_starter(workspace=acme, starter_key="welcome")
    assert type(template.name) is str and template.name == "Приветственное письмо"
    assert again.name == "Приветственное письмо (2)"
    template.refresh_from_db()
    assert template.name == "Приветственное письмо"
    assert str(STARTERS["welcome"].name) == "Welcome"  # the starter itself follows the active language

    page = logged_in(member(acme, Role.MARKETER, language="ru")).get("/content/templates/new/").content.decode()
    assert "Брошенная корзина" in page and "Abandoned cart" not in page


def test_segment_builder_gets_the_forms_of_its_nouns(acme: Workspace) -> None:
    from audiences.segments.compiler import builder_schema
    from audiences.segments.views import builder_text

    with override("ru"):
        text = builder_text()
        engagement = next(k for k in builder_schema(RuleContext(acme))["kinds"] if k["kind"] == "engagement")
    for forms in (text["days_forms"], engagement["text"]["days_forms"]):
        assert [forms[n] for n in (1, 3, 5, 11, 21, 22, 111)] == ["день", "дня", "дней", "дней", "день", "дня", "дней"]
    assert [text["times_forms"][n] for n in (1, 2, 5)] == ["раз", "раза", "раз"]
    assert len(text["days_forms"]) == 200  # the script takes 100 + n % 100 above (esp/plurals.py)
