"""Articles uploaded through the page: checked, read by their loader, and saved to the corpus.

An upload is trusted for nothing: its name is reduced to a safe base name (no folders, no
hidden files), its type, size and content are checked with a message that names the file
and says what to do. The file is read by the same loader the corpus uses, within the same
limits and in a child process (so a PDF without a text layer, a corrupt .docx, a renamed
file or one that expands past a limit is refused before anything is saved), then saved as
it came (text with Unix line ends), so the corpus keeps the original to link to. Saving a
request's uploads all at once, or none, is :mod:`redbook_qa.text.staging`'s part.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from redbook_qa.errors import CorpusError
from redbook_qa.models import Document
from redbook_qa.text.corpus import document_of
from redbook_qa.text.loaders import SUFFIXES, Extraction, ReadLimits, check_content, extract
from redbook_qa.text.loaders.limits import too_long
from redbook_qa.text.loaders.plain import first_line

MAX_UPLOAD_BYTES = 1_000_000
"""Largest ``.txt``/``.md`` upload; a text this long is a book, not an article."""
MAX_DOCUMENT_UPLOAD_BYTES = 50_000_000
"""Largest PDF, Word or HTML upload: their bytes are mostly markup, fonts and images."""
TEXT_SUFFIXES = (".txt", ".md")
ALLOWED_SUFFIXES = SUFFIXES
_MAX_STEM_CHARS = 80
_UNSAFE = re.compile(r"[^\w.\- ]+")
SaveOutcome = Literal["added", "updated", "unchanged"]


class Article(BaseModel):
    """An upload ready for the corpus: a safe file name, its text, and the original's bytes.

    ``text`` is what the corpus will read (what citations quote); ``data`` is the file to
    save for PDF, Word and HTML uploads, ``None`` for text, which is saved as UTF-8.
    ``title`` and ``page_starts`` are what its loader read besides the text (a text's title
    is its first line).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    text: str
    data: bytes | None = None
    title: str = ""
    page_starts: tuple[int, ...] = ()

    @property
    def content(self) -> bytes:
        """The bytes to write into the corpus folder."""
        return self.text.encode("utf-8") if self.data is None else self.data

    @property
    def document(self) -> Document:
        """The document the corpus will read from this article once it is saved."""
        title = self.title or first_line(self.text)
        extraction = Extraction(text=self.text, title=title, page_starts=self.page_starts)
        return document_of(self.name, extraction)


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


def read_upload(
    path: Path | str, *, name: str | None = None, limits: ReadLimits | None = None
) -> Article:
    """Check an uploaded file and return it as an article for the corpus.

    ``.txt`` and ``.md`` files are kept as they are (without a byte-order mark, with Unix
    line ends); ``.html``, ``.pdf`` and ``.docx`` files are kept byte for byte once their
    loader has read text from them, in a child process within ``limits``.

    Args:
        path: Where the upload was stored.
        name: The name the person gave the file (default: the base name of ``path``).
        limits: How far reading it may go (default: :class:`ReadLimits`'s defaults).

    Raises:
        CorpusError: If the type, size, encoding or content is wrong, there is no text, or
            it goes past ``limits``; the message names the file and says what to do.
        ImportError: A PDF, Word or HTML upload without the ``docs`` extra installed.
    """
    file = Path(path)
    shown = safe_name(name or file.name)
    suffix = Path(shown).suffix
    if suffix not in ALLOWED_SUFFIXES:
        raise CorpusError(
            f"{shown}: only {', '.join(ALLOWED_SUFFIXES)} files can be added "
            f"(got {suffix or 'no extension'}); save it as one of those first"
        )
    limit = MAX_UPLOAD_BYTES if suffix in TEXT_SUFFIXES else MAX_DOCUMENT_UPLOAD_BYTES
    with file.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise CorpusError(
            f"{shown} is larger than {limit // 1_000_000} MB; split it into smaller articles"
        )
    limits = limits or ReadLimits()
    if suffix in TEXT_SUFFIXES:
        if data.startswith(b"PK\x03\x04"):  # a zip named .txt: its reader says what it is
            extract(file, name=shown, limits=limits)
        check_content(file, name=shown)  # refuses a PDF or .docx renamed to .txt
        article = Article(name=shown, text=_decode(data, shown, limits))
    else:
        read = extract(file, name=shown, limits=limits)
        article = Article(
            name=shown, text=read.text, data=data, title=read.title, page_starts=read.page_starts
        )
    if not article.text.strip():
        raise CorpusError(f"{shown} has no text; add the article's words and upload it again")
    return article


def save_article(article: Article, folder: Path | str) -> SaveOutcome:
    """Write ``article`` into the corpus ``folder`` atomically and say what that did.

    An article with the same name is replaced ("updated"); the same bytes again change
    nothing ("unchanged").
    """
    root = Path(folder)
    target = root / article.name
    if target.is_file():
        if target.read_bytes() == article.content:
            return "unchanged"
        outcome: SaveOutcome = "updated"
    else:
        outcome = "added"
    root.mkdir(parents=True, exist_ok=True)
    # A hidden temporary name: the corpus reader skips it if it reads the folder meanwhile.
    fd, temporary = tempfile.mkstemp(prefix=".upload-", suffix=".tmp", dir=root)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(article.content)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return outcome


def _decode(data: bytes, shown: str, limits: ReadLimits) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{shown} is not UTF-8 text (byte 0x{data[err.start]:02x} at position {err.start}); "
            "save it with UTF-8 encoding and upload it again"
        ) from err
    if "\x00" in text:
        raise CorpusError(f"{shown} looks binary (it contains NUL bytes); upload a text file")
    if len(text) > limits.max_chars:
        raise CorpusError(too_long(shown, limits))
    return text.replace("\r\n", "\n").replace("\r", "\n")
