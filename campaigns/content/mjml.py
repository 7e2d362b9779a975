"""MJML → HTML with mjml-python (the Rust MRML engine), with errors that name a line.

MRML is lenient (an unknown `<mj-colum>` is silently dropped) and most of its errors say only
"unable to parse next template in root template". So the source is first walked by a small
checker that knows MJML's shape: unknown mj-* tags, tags closed in the wrong order or never,
broken attribute quotes, a bare `<` inside text (write `&lt;`), content placed where MJML
ignores it. MRML's own error, when it has a position, is mapped to a line too.

Django template tags survive compilation as text (they are kept where they stand), so a
template is compiled once per version and each recipient only renders the result. Where tags
may go:
- anywhere inside mj-text, mj-button, mj-raw, mj-table, mj-title, mj-preview (HTML content);
- in attribute values that MJML copies as they are: href, src, alt, title, and colours;
  never in ones it computes with (width, height, padding, font-size: keep those literal);
- `{% for %}` / `{% if %}` around whole mj-section or mj-wrapper elements (repeat a row),
  around elements inside an mj-column (repeat a row of the column), or around mj-column
  elements (give them an explicit width, e.g. width="33%": MJML divides the row by the
  columns it sees in the source, not the ones a loop makes);
- no `<` inside a tag's condition (`{% if a < b %}`): MJML reads it as a tag; write
  `{% if b > a %}`.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

import mjml as mrml
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from campaigns.content.errors import TemplateProblem

MAX_MJML_CHARS = 300_000

# Elements whose content is HTML (or text), passed through by MJML: the checker does not look
# inside them for mj-* structure.
ENDING_TAGS = frozenset(
    {
        "mj-text", "mj-button", "mj-raw", "mj-table", "mj-navbar-link", "mj-accordion-title",
        "mj-accordion-text", "mj-social-element", "mj-style", "mj-title", "mj-preview",
    }
)  # fmt: skip
KNOWN_TAGS = ENDING_TAGS | frozenset(
    {
        "mjml", "mj-head", "mj-body", "mj-attributes", "mj-all", "mj-class", "mj-breakpoint",
        "mj-font", "mj-html-attributes", "mj-html-attribute", "mj-selector", "mj-include",
        "mj-section", "mj-column", "mj-group", "mj-wrapper", "mj-hero", "mj-image", "mj-divider",
        "mj-spacer", "mj-social", "mj-navbar", "mj-carousel", "mj-carousel-image", "mj-accordion",
        "mj-accordion-element",
    }
)  # fmt: skip
# Where each element may stand (its allowed parents). Elements not listed are not checked.
PARENTS: dict[str, frozenset[str]] = {
    "mj-head": frozenset({"mjml"}),
    "mj-body": frozenset({"mjml"}),
    "mj-wrapper": frozenset({"mj-body"}),
    "mj-section": frozenset({"mj-body", "mj-wrapper"}),
    "mj-hero": frozenset({"mj-body", "mj-wrapper"}),
    "mj-group": frozenset({"mj-section"}),
    "mj-column": frozenset({"mj-section", "mj-group"}),
}
_CONTENT = frozenset({"mj-column", "mj-hero"})
for _tag in ("mj-text", "mj-button", "mj-image", "mj-divider", "mj-spacer", "mj-table", "mj-social",
             "mj-navbar", "mj-carousel", "mj-accordion"):  # fmt: skip
    PARENTS[_tag] = _CONTENT
for _tag in ("mj-title", "mj-preview", "mj-style", "mj-font", "mj-breakpoint", "mj-attributes",
             "mj-html-attributes"):  # fmt: skip
    PARENTS[_tag] = frozenset({"mj-head"})
VOID_TAGS = frozenset(
    {"mj-image", "mj-divider", "mj-spacer", "mj-breakpoint", "mj-font", "mj-include", "mj-carousel-image"}
)

_TAG_START = re.compile(r"<(/?)([a-zA-Z][\w:-]*)")
# A quoted value may not hold "<": an unclosed quote is then reported on its own tag, not
# wherever the next quote happens to be.
_ATTRIBUTE = re.compile(r"""\s*(?:([^\s=/>"']+)(?:\s*=\s*(?:"[^"<]*"|'[^'<]*'|[^\s"'=<>`]+))?|(/))""")
_DJANGO_TAG = re.compile(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}", re.DOTALL)


def _line(source: str, offset: int) -> int:
    return source.count("\n", 0, offset) + 1


class _Lines:
    """Line numbers of offsets met in increasing order, each counted from the one before (a
    count from the start for every tag made a long source take quadratic time)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.offset = 0
        self.line = 1

    def at(self, offset: int) -> int:
        if offset < self.offset:
            return _line(self.source, offset)
        self.line += self.source.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


@dataclass
class _Open:
    name: str
    line: int


def _django_spans(source: str) -> list[tuple[int, int]]:
    return [m.span() for m in _DJANGO_TAG.finditer(source)]


def _inside(spans: list[tuple[int, int]], offset: int) -> bool:
    # The spans are in order and do not overlap: only the last one starting at or before
    # `offset` can hold it (a scan of all of them for each "<" took minutes on a large source).
    index = bisect.bisect_right(spans, offset, key=lambda span: span[0]) - 1
    return index >= 0 and offset < spans[index][1]


def _read_tag(source: str, tag_start: int, start: int) -> tuple[int, bool]:
    """Parse the attributes of the tag whose name ends at `start`; return the offset after its
    `>` and whether it closed itself (`/>`)."""
    pos = start
    while True:
        if pos >= len(source):
            raise TemplateProblem(_("This tag is never closed with “>”."), _line(source, tag_start))
        if source[pos] == ">":
            return pos + 1, source[pos - 1] == "/"
        match = _ATTRIBUTE.match(source, pos)
        if not match or match.end() == pos:
            if "{{" in source[tag_start:pos] or "{%" in source[tag_start:pos]:
                raise TemplateProblem(
                    _(
                        "Quotes inside a template tag end the attribute early: in an attribute "
                        "written with double quotes, use single quotes in the tag, e.g. "
                        "{{ contact.first_name|default:'there' }}."
                    ),
                    _line(source, pos),
                )
            if source[pos] in "\"'" or source[pos : pos + 2] in ('="', "='"):
                raise TemplateProblem(_("A quote in this tag is not closed."), _line(source, pos))
            raise TemplateProblem(
                _("Unexpected “%(char)s” in this tag: check its attributes and quotes.") % {"char": source[pos]},
                _line(source, pos),
            )
        pos = match.end()


def check_mjml(source: str) -> None:
    """Raise TemplateProblem for the first structural mistake, naming its line."""
    if len(source) > MAX_MJML_CHARS:
        raise TemplateProblem(
            ngettext(
                "The MJML is longer than %(limit)s character.",
                "The MJML is longer than %(limit)s characters.",
                MAX_MJML_CHARS,
            )
            % {"limit": number_format(MAX_MJML_CHARS, force_grouping=True)}
        )
    spans = _django_spans(source)
    lines = _Lines(source)
    stack: list[_Open] = []
    pos = 0
    seen_root = seen_body = False
    while True:
        lt = source.find("<", pos)
        if lt == -1:
            break
        if _inside(spans, lt):
            raise TemplateProblem(
                _(
                    "MJML reads the “<” in this template tag as the start of an element: turn the "
                    "comparison around (b > a instead of a < b)."
                ),
                _line(source, lt),
            )
        if source.startswith("<!--", lt):
            end = source.find("-->", lt + 4)
            if end == -1:
                raise TemplateProblem(_("This comment is never closed with “-->”."), _line(source, lt))
            pos = end + 3
            continue
        if source.startswith("<![CDATA[", lt):
            end = source.find("]]>", lt)
            pos = len(source) if end == -1 else end + 3
            continue
        if source.startswith("<?", lt) or source.startswith("<!", lt):
            end = source.find(">", lt)
            pos = len(source) if end == -1 else end + 1
            continue
        match = _TAG_START.match(source, lt)
        if not match:
            raise TemplateProblem(
                _("A “<” that starts no element: write &lt; for a less-than sign in text."), _line(source, lt)
            )
        closing, name = match.group(1) == "/", match.group(2).lower()
        line = lines.at(lt)
        if closing:
            end = source.find(">", lt)
            if end == -1:
                raise TemplateProblem(_("This tag is never closed with “>”."), line)
            pos = end + 1
        else:
            pos, self_closing = _read_tag(source, lt, match.end())
        is_mj = name == "mjml" or name.startswith("mj-")
        if not is_mj:
            # HTML outside an mj-text or similar: MJML drops or mangles it.
            if not stack or stack[-1].name not in ENDING_TAGS:
                raise TemplateProblem(
                    _("<%(tag)s> must be inside mj-text, mj-raw, mj-button or mj-table.") % {"tag": name}, line
                )
            continue
        if name == "mj-include":
            raise TemplateProblem(_("<mj-include> is not allowed: paste the MJML in instead."), line)
        if name not in KNOWN_TAGS:
            shown = f"/{name}" if closing else name
            raise TemplateProblem(_("Unknown MJML element <%(tag)s>.") % {"tag": shown}, line)
        if stack and stack[-1].name in ENDING_TAGS and not closing:
            raise TemplateProblem(
                _("<%(tag)s> cannot stand inside <%(parent)s> (opened on line %(line)d): close it first.")
                % {"tag": name, "parent": stack[-1].name, "line": stack[-1].line},
                line,
            )
        if closing:
            if not stack:
                raise TemplateProblem(_("</%(tag)s> closes nothing.") % {"tag": name}, line)
            if stack[-1].name != name:
                raise TemplateProblem(
                    _("</%(tag)s> found where <%(open)s> (opened on line %(line)d) should be closed.")
                    % {"tag": name, "open": stack[-1].name, "line": stack[-1].line},
                    line,
                )
            stack.pop()
            continue
        if name == "mjml":
            if stack or seen_root:
                raise TemplateProblem(_("<mjml> may only appear once, at the top."), line)
            seen_root = True
        elif not stack:
            raise TemplateProblem(_("<%(tag)s> must be inside <mjml>.") % {"tag": name}, line)
        else:
            parents = PARENTS.get(name)
            in_attributes = any(o.name == "mj-attributes" for o in stack)
            if parents is not None and not in_attributes and stack[-1].name not in parents:
                raise TemplateProblem(
                    _("<%(tag)s> cannot stand inside <%(parent)s>; it belongs in %(parents)s.")
                    % {
                        "tag": name,
                        "parent": stack[-1].name,
                        "parents": ", ".join(f"<{p}>" for p in sorted(parents)),
                    },
                    line,
                )
        seen_body = seen_body or name == "mj-body"
        if self_closing:
            continue
        if name in VOID_TAGS:
            # <mj-image …> without "/>" is accepted when its closing tag follows right away.
            after = source[pos:].lstrip()
            if not after.lower().startswith(f"</{name}>"):
                raise TemplateProblem(_("<%(tag)s> has no content: end it with “/>”.") % {"tag": name}, line)
            pos = len(source) - len(after) + len(name) + 3
            continue
        stack.append(_Open(name, line))
    if stack:
        raise TemplateProblem(_("<%(tag)s> is never closed.") % {"tag": stack[-1].name}, stack[-1].line)
    if not seen_root:
        raise TemplateProblem(_("The template must start with <mjml> and contain <mj-body>."), 1)
    if not seen_body:
        raise TemplateProblem(_("The template has no <mj-body>."), 1)


_POSITION = re.compile(r"at position (\d+)(?::(\d+))?")


def mjml_to_html(source: str) -> str:
    """MRML's compilation alone (no structure check). A TemplateProblem it raises carries
    `byte_offset` when MRML named a position, so a caller that composed the source from several
    parts can tell which part and line it is in."""
    try:
        return mrml.mjml2html(source)
    except ValueError as error:
        message = str(error)
        match = _POSITION.search(message)
        problem = TemplateProblem(_("MJML could not compile this: %(error)s") % {"error": message})
        if match:
            offset = int(match.group(1))  # MRML counts bytes
            problem.byte_offset = offset  # type: ignore[attr-defined]
            problem.line = source.encode()[:offset].count(b"\n") + 1
        raise problem from None


def compile_mjml(source: str) -> str:
    """The HTML of an MJML document; raises TemplateProblem with a line number."""
    check_mjml(source)
    return mjml_to_html(source)
