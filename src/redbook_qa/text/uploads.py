"""Articles uploaded through the page: checked, turned into plain text, and saved to the corpus.

An upload is trusted for nothing: its name is reduced to a safe base name (no folders, no
hidden files), its type, size and encoding are checked with a message that names the file
and says what to do, and HTML is reduced to its text with the standard library's parser.
"""

from __future__ import annotations

import html.parser
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from redbook_qa.errors import CorpusError

MAX_UPLOAD_BYTES = 1_000_000
TEXT_SUFFIXES = (".txt", ".md")
HTML_SUFFIXES = (".html", ".htm")
ALLOWED_SUFFIXES = TEXT_SUFFIXES + HTML_SUFFIXES
_MAX_STEM_CHARS = 80
_UNSAFE = re.compile(r"[^\w.\- ]+")
_SKIPPED_TAGS = {"script", "style", "noscript", "template", "svg", "iframe", "object"}
_BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "br", "dd", "details", "div", "dl", "dt",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "td", "th",
    "tr", "ul",
}  # fmt: skip
SaveOutcome = Literal["added", "updated", "unchanged"]


class Article(BaseModel):
    """An upload ready for the corpus: a safe file name and its UTF-8 text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    text: str


def safe_name(name: str) -> str:
    """Reduce an uploaded file's name to a safe base name, keeping its suffix.

    Folder parts (up to the last slash or backslash) are dropped, characters other than
    letters, digits, ``.``, ``-``, ``_`` and spaces become ``_``, and leading dots go, so an
    upload can neither leave the corpus folder nor hide from it.

    Raises:
        CorpusError: If nothing usable is left of the name.
    """
    base = unicodedata.normalize("NFKC", re.split(r"[\\/]", name)[-1]).strip()
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = _UNSAFE.sub("_", stem).strip(" ._-")[:_MAX_STEM_CHARS].strip(" ._-")
    if not stem:
        raise CorpusError(f"{name!r} has no usable file name; rename it (e.g. my-article.txt)")
    return f"{stem}.{suffix.lower()}" if suffix else stem


def read_upload(path: Path | str, *, name: str | None = None) -> Article:
    """Check an uploaded file and return it as an article for the corpus.

    ``.txt`` and ``.md`` files are kept as they are (without a byte-order mark, with Unix
    line ends); ``.html``/``.htm`` files become ``.txt`` articles of their text.

    Args:
        path: Where the upload was stored.
        name: The name the person gave the file (default: the base name of ``path``).

    Raises:
        CorpusError: If the type, size or encoding is wrong, or there is no text; the message
            names the file and says what to do.
    """
    file = Path(path)
    shown = safe_name(name or file.name)
    suffix = Path(shown).suffix
    if suffix not in ALLOWED_SUFFIXES:
        raise CorpusError(
            f"{shown}: only {', '.join(ALLOWED_SUFFIXES)} files can be added "
            f"(got {suffix or 'no extension'}); save it as plain text or Markdown first"
        )
    with file.open("rb") as handle:
        data = handle.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise CorpusError(
            f"{shown} is larger than {MAX_UPLOAD_BYTES // 1_000_000} MB; split it into "
            "smaller articles"
        )
    text = _decode(data, shown)
    if suffix in HTML_SUFFIXES:
        text, shown = html_to_text(text), f"{Path(shown).stem}.txt"
    if not text.strip():
        raise CorpusError(f"{shown} has no text; add the article's words and upload it again")
    return Article(name=shown, text=text)


def html_to_text(markup: str) -> str:
    """Return the readable text of an HTML page: its title first, then one line per block.

    Scripts, styles and other non-text elements are dropped; headings and paragraphs keep
    their own lines, so the corpus reader still sees the title and the section headings.
    """
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    blocks = [b for b in parser.blocks if b]
    if parser.title and (not blocks or blocks[0] != parser.title):
        blocks.insert(0, parser.title)
    return "\n\n".join(blocks) + "\n" if blocks else ""


def save_article(article: Article, folder: Path | str) -> SaveOutcome:
    """Write ``article`` into the corpus ``folder`` atomically and say what that did.

    An article with the same name is replaced ("updated"); the same text again changes
    nothing ("unchanged").
    """
    root = Path(folder)
    target = root / article.name
    if target.is_file():
        with target.open(encoding="utf-8", errors="replace") as handle:
            if handle.read() == article.text:
                return "unchanged"
        outcome: SaveOutcome = "updated"
    else:
        outcome = "added"
    root.mkdir(parents=True, exist_ok=True)
    # A hidden temporary name: the corpus reader skips it if it reads the folder meanwhile.
    fd, temporary = tempfile.mkstemp(prefix=".upload-", suffix=".tmp", dir=root)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(article.text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return outcome


def _decode(data: bytes, shown: str) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{shown} is not UTF-8 text (byte 0x{data[err.start]:02x} at position {err.start}); "
            "save it with UTF-8 encoding and upload it again"
        ) from err
    if "\x00" in text:
        raise CorpusError(f"{shown} looks binary (it contains NUL bytes); upload a text file")
    return text.replace("\r\n", "\n").replace("\r", "\n")


class _TextExtractor(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.title = ""
        self._words: list[str] = []
        self._skipping: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and not self._skipping:
            self._in_title = True
        elif tag in _SKIPPED_TAGS:
            self._skipping.append(tag)
        elif tag in _BLOCK_TAGS:
            self._end_block()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif self._skipping and tag == self._skipping[-1]:
            self._skipping.pop()
        elif tag in _BLOCK_TAGS:
            self._end_block()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title = " ".join(f"{self.title} {data}".split())
        elif not self._skipping:
            self._words.append(data)

    def close(self) -> None:
        super().close()
        self._end_block()

    def _end_block(self) -> None:
        block = " ".join("".join(self._words).split())
        self._words = []
        if block:
            self.blocks.append(block)
