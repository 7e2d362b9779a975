"""The plain-text part: made from the HTML (`html_to_text`), and tidied after rendering."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_NO_LINK = re.compile(r" \(#[^)\s]*\)")


def _tidy_text(text: str) -> str:
    """A rendered generated text part: loops and conditions leave blank lines and spaces;
    filters such as linebreaksbr leave <br>; links that go nowhere ("#") are dropped."""
    # (Each substitution only where it can match: this runs for every recipient.)
    if "<" in text:
        text = _BR.sub("\n", text)
    if " (#" in text:
        text = _NO_LINK.sub("", text)
    # re.sub(r"[ \t]*\n[ \t]*", "\n") and then re.sub(r"\n{3,}", "\n\n"), with str methods:
    # the regular expressions cost ~15 µs an email, these ~3 (tests/campaigns/test_render_plan.py
    # checks that both give the same text).
    lines = text.split("\n")
    last = len(lines) - 1
    if last:
        lines[0] = lines[0].rstrip(" \t")
        for index in range(1, last):
            lines[index] = lines[index].strip(" \t")
        lines[last] = lines[last].lstrip(" \t")
        text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


_BLOCKS = frozenset(
    {"p", "div", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "section", "article",
     "blockquote", "header", "footer", "center"}
)  # fmt: skip
_SKIPPED = frozenset({"head", "style", "script", "title", "template"})
_VOID = frozenset({"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr", "source"})


_DJANGO_BLOCK = re.compile(r"\{%.*?%\}")


class _TextMaker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden: list[str] = []  # tags whose content is not shown (by name, to close them)
        self.links: list[tuple[str, int]] = []  # (href, position in out)
        # A product's picture and its name usually link to the same page: say it once.
        self.last_link: tuple[str, int] | None = None  # (what was written, its index in out)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.hidden:
            if tag not in _VOID:
                self.hidden.append(tag)
            return
        attributes = dict(attrs)
        style = (attributes.get("style") or "").replace(" ", "").lower()
        if tag in _SKIPPED or "display:none" in style:
            if tag not in _VOID:
                self.hidden.append(tag)
            return
        if tag == "br":
            self.out.append("\n")
        elif tag == "hr":
            self.out.append("\n----------\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag in _BLOCKS:
            self.out.append("\n\n" if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6") else "\n")
        elif tag == "a":
            self.links.append((attributes.get("href") or "", len(self.out)))
        elif tag == "img" and self.links:
            alt = attributes.get("alt") or ""
            if alt:
                self.out.append(alt)

    def handle_endtag(self, tag: str) -> None:
        if self.hidden:
            if self.hidden[-1] == tag:
                self.hidden.pop()
            elif tag in self.hidden:
                while self.hidden and self.hidden.pop() != tag:
                    pass
            return
        if tag == "a" and self.links:
            href, start = self.links.pop()
            text = " ".join("".join(self.out[start:]).split())
            del self.out[start:]
            href = href.strip()
            if not href or href.startswith("#") or href == text:
                shown = text or href
            elif href.startswith("mailto:") and href[7:] == text:
                shown = text
            elif text:
                shown = f"{text} ({href})"
            else:
                shown = href
            if self.last_link is not None:
                previous, at = self.last_link
                between = _DJANGO_BLOCK.sub("", "".join(self.out[at + 1 :]))
                if previous == shown and not between.strip():
                    # The same link twice in a row (a product's picture, then its name): keep
                    # the second, which is the one outside any {% if picture %}.
                    self.out[at] = ""
            self.out.append(shown)
            self.last_link = (shown, len(self.out) - 1)
        elif tag in _BLOCKS:
            self.out.append("\n\n" if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6") else "\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.out.append(data)


def html_to_text(html: str) -> str:
    """The plain-text part of an HTML email: visible text, links as "text (url)", one blank
    line at most between blocks."""
    maker = _TextMaker()
    maker.feed(html)
    maker.close()
    text = "".join(maker.out).replace("\xa0", " ")
    lines = [" ".join(line.split()) for line in text.split("\n")]
    cleaned: list[str] = []
    for line in lines:
        if line or (cleaned and cleaned[-1]):
            cleaned.append(line)
    return "\n".join(cleaned).strip()
