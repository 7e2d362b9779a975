"""Translations: every catalogue is complete, and the pages really come out in Russian for a
user who chose it (and for a visitor whose browser asks for it).

The expected texts are read from the catalogue (gettext under override("ru")), never typed in
here, so rewording a translation does not break these tests; a missing or untranslated entry
does. The .mo files are built by `make` (`python -m esp.i18n compile`), not by the tests."""

from __future__ import annotations

import re
from pathlib import Path

import polib
import pytest
from django.test import Client, RequestFactory
from django.utils.html import escape
from django.utils.translation import gettext, ngettext, override
from django.views.defaults import server_error

from esp import i18n
from esp.models import Role, User, Workspace
from tests.conftest import logged_in
from tests.factories import member

PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]")

# Page -> English texts that must appear on it, translated.
PAGES = {
    "/": ["Overview", "Set up the workspace", "Audience", "Last sends", "Owner"],
    "/settings/workspace/": ["Workspace settings", "Save"],
    "/settings/members/": ["Members & roles", "What each role may do", "Invite a member", "Send invitation"],
    "/settings/api-keys/": ["API keys", "Create an API key", "No API keys yet.", "Connect your shop"],
    "/settings/outbox/": ["Outbox", "The outbox is empty."],
    "/accounts/": ["Your preferences", "Save"],
}


def _on_page(text: str, html: str) -> bool:
    """{% translate "..." %} prints its literal unescaped ("Members & roles"), while a value
    rendered with {{ }} (a form label, a role name) is escaped: accept either form."""
    return text in html or escape(text) in html


def _language(path: Path) -> str:
    return path.parent.parent.name  # locale/<language>/LC_MESSAGES/django.po


def test_there_is_a_russian_catalogue() -> None:
    assert "ru" in [_language(path) for path in i18n.catalogues()]


@pytest.mark.parametrize("po_path", i18n.catalogues(), ids=_language)
def test_catalogue_is_complete(po_path: Path) -> None:
    assert i18n.incomplete_entries(po_path) == []


@pytest.mark.parametrize("po_path", i18n.catalogues(), ids=_language)
def test_catalogue_is_compiled(po_path: Path) -> None:
    mo_path = po_path.with_suffix(".mo")
    assert mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime, (
        f"{mo_path} is missing or older than its .po: run `make messages` (python -m esp.i18n compile)"
    )


@pytest.mark.parametrize("po_path", i18n.catalogues(), ids=_language)
def test_translations_keep_their_placeholders(po_path: Path) -> None:
    """A translation that drops or renames %(name)s raises KeyError at render time."""
    broken = []
    for entry in polib.pofile(str(po_path)).translated_entries():
        translations = entry.msgstr_plural.values() if entry.msgid_plural else [entry.msgstr]
        expected = set(PLACEHOLDER.findall(entry.msgid))
        broken += [entry.msgid for text in translations if set(PLACEHOLDER.findall(text)) != expected]
    assert broken == []


@pytest.mark.skipif(
    bool(i18n.gettext_tools_missing()),
    reason=f"GNU gettext's {', '.join(i18n.gettext_tools_missing())} not on PATH: makemessages cannot run",
)
def test_catalogues_have_every_msgid_of_the_code() -> None:
    """A string marked for translation but never extracted would stay English: run
    makemessages (see esp/i18n.py), translate the new entries, compile."""
    stale = i18n.stale_entries()
    assert stale == {}, {path: ids[: i18n.STALE_LIMIT] for path, ids in stale.items()}


def test_russian_catalogue_has_russian_plural_forms() -> None:
    (po_path,) = [path for path in i18n.catalogues() if _language(path) == "ru"]
    metadata = polib.pofile(str(po_path)).metadata
    assert metadata["Language"] == "ru"
    assert metadata["Plural-Forms"].startswith("nplurals=3;")


@pytest.fixture
def russian_owner(acme: Workspace) -> User:
    return member(acme, Role.OWNER, email="vladelec@acme.test", language="ru")


@pytest.mark.django_db
@pytest.mark.parametrize("url", list(PAGES))
def test_pages_are_in_the_users_language(russian_owner: User, url: str) -> None:
    response = logged_in(russian_owner).get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="ru">' in html
    with override("ru"):
        for english in PAGES[url]:
            russian = gettext(english)
            assert russian != english, f"{english!r} has no Russian translation"
            assert _on_page(russian, html), f"{russian!r} (for {english!r}) is not on {url}"


@pytest.mark.django_db
def test_overview_counters_agree_with_their_number(russian_owner: User) -> None:
    html = logged_in(russian_owner).get("/audience/overview/").content.decode()
    with override("ru"):
        one, many = ngettext("contact", "contacts", 1), ngettext("contact", "contacts", 5)
        none = ngettext("contact", "contacts", 0)
    assert one != many
    assert f"<strong>0</strong>{none}</article>" in html


def test_server_error_page_is_translated_and_standalone() -> None:
    with override("ru"):
        html = server_error(RequestFactory().get("/")).content.decode()
        title = gettext("Server error")
    assert title != "Server error"
    assert f"<title>{title}</title>" in html
    assert '<html lang="ru">' in html


@pytest.mark.django_db
def test_english_stays_english(acme: Workspace) -> None:
    owner = member(acme, Role.OWNER, email="owner@acme.test", language="en")
    html = logged_in(owner).get("/settings/members/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert '<html lang="en">' in html
    assert _on_page("Members & roles", html)


@pytest.mark.django_db
def test_anonymous_visitor_gets_the_browsers_language() -> None:
    response = Client().get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="ru">' in html
    with override("ru"):
        russian = gettext("Forgot your password?")
    assert russian != "Forgot your password?"
    assert _on_page(russian, html)
