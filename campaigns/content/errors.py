"""The one error of email content: what is wrong, and on which line of which part."""

from __future__ import annotations

from django.utils.translation import gettext as _


class TemplateProblem(Exception):
    """A template that cannot be compiled or rendered: bad MJML, a bad or refused template tag,
    or a render that ran over its time or size budget.

    `line` counts from 1 in the source the marketer wrote (None when no line can be named);
    `part` says which source: "mjml", "subject", "preheader", "text_body", "header", "footer"
    (empty when not known yet — the caller that knows fills it in)."""

    def __init__(self, message: str, line: int | None = None, part: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.part = part

    def __str__(self) -> str:
        if not self.line:
            return self.message
        return _("line %(line)d: %(message)s") % {"line": self.line, "message": self.message}

    def as_dict(self) -> dict[str, object]:
        return {"message": self.message, "line": self.line, "part": self.part}


class TemplateProblems(Exception):
    """Several problems found while validating one template (each part is checked)."""

    def __init__(self, problems: list[TemplateProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems
