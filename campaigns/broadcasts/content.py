"""Checks on what a broadcast (or one of its variants) says in its own words: the subject and
preheader it sets over its template's, in the same template language. Checked where they are
saved, so that no message of the send fails to render for them."""

from __future__ import annotations

from django.utils.translation import gettext as _

from campaigns.broadcast_models import MAX_PREHEADER_CHARS
from campaigns.content.rendering import MAX_SUBJECT_CHARS, subject_problem


def line_problems(*, subject: str, preheader: str) -> dict[str, str]:
    """{"subject" / "preheader": what is wrong} for the ones that are wrong."""
    problems: dict[str, str] = {}
    for part, text, limit in (("subject", subject, MAX_SUBJECT_CHARS), ("preheader", preheader, MAX_PREHEADER_CHARS)):
        if len(text) > limit:
            problems[part] = _("At most %(max)d characters.") % {"max": limit}
        elif text.strip() and (problem := subject_problem(text, part)) is not None:
            problems[part] = str(problem)
    return problems
