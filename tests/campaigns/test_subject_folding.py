"""A long non-ASCII Subject is folded the usual way: the first encoded word beside "Subject:",
every line within 78 characters, and the text decodes back exactly — in the composer's own
MIME writer and in Django's path it must stay equal to."""

from __future__ import annotations

import email
import email.policy
import re

import pytest

from campaigns.delivery.composer import _Prepared, mime_bytes

SUBJECTS = [
    "Скидки до 50 % на всё для бега и туризма — только в эти выходные, не пропустите!",
    "Анна, " + "очень длинная тема письма со скидками " * 4,
    "Ünïcödé and some ascii words that make it longer than one line, a lot longer indeed",
    "Короткая тема",
    "Zoë 🏃 " * 20,
]


def _subject_lines(data: bytes) -> list[bytes]:
    head = data.split(b"\r\n\r\n", 1)[0]
    match = re.search(rb"^Subject:.*?(?=\r\n(?! ))", head, re.MULTILINE | re.DOTALL)
    assert match is not None
    return match.group(0).split(b"\r\n")


@pytest.mark.parametrize("subject", SUBJECTS)
def test_a_non_ascii_subject_starts_on_its_own_line(subject: str) -> None:
    prepared = _Prepared(
        from_email='"Shop" <shop@example.com>',
        to="anna@example.ru",
        reply_to="",
        subject=subject,
        text="Hello\n",
        html="<p>Hello</p>",
        headers={},
        metadata={},
    )
    date = "Mon, 23 Nov 2026 19:23:52 -0000"
    ours = mime_bytes(prepared, date=date)
    assert ours is not None
    django_email = prepared.email()
    django_email.extra_headers = {"Date": date, **django_email.extra_headers}
    django_mime = django_email.message()
    django_mime.set_boundary(re.search(rb'boundary="([^"]+)"', ours).group(1).decode())  # type: ignore[union-attr]
    theirs = django_mime.as_bytes(linesep="\r\n")
    for data in (ours, theirs):
        lines = _subject_lines(data)
        assert lines[0].startswith(b"Subject: =?utf-8?")  # not "Subject: " and an empty line
        assert all(len(line) <= 78 for line in lines), lines
        assert email.message_from_bytes(data, policy=email.policy.default)["Subject"] == subject
    assert ours == theirs
