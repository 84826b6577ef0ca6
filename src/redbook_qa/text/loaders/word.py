"""Word .docx (python-docx): paragraphs in order, heading styles as Markdown headings."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

from redbook_qa.errors import CorpusError
from redbook_qa.text.loaders.base import Extraction, require
from redbook_qa.text.loaders.limits import ReadLimits, too_long
from redbook_qa.text.loaders.plain import first_line

_HEADING_STYLE = re.compile(r"^heading (\d)$", re.IGNORECASE)
_CHUNK = 1 << 20  # bytes inflated per read while parts are checked
_PARSED = (".xml", ".rels")  # the parts python-docx parses (the others are images, fonts)


class DocxLoader:
    """Reads a .docx body: each paragraph one line, each table row one line.

    A paragraph styled ``Title`` becomes ``# …`` and ``Heading N`` becomes ``#`` × (N + 1),
    so :mod:`redbook_qa.text.sections` sees Word's own outline instead of guessing
    headings from short lines. Body paragraphs are quoted verbatim.
    """

    kind = "docx"
    suffixes = (".docx",)

    def load(self, path: Path, *, shown: str, limits: ReadLimits) -> Extraction:
        """Extract the body text, headings marked.

        Every part of the zip is inflated once, a megabyte at a time, before python-docx
        opens it (which holds each part whole): an XML part declared larger than
        ``limits.max_part_bytes``, any part that inflates past what it declares, parts
        that add up past ``limits.memory_mb``, and text past ``limits.max_chars`` are
        refused.

        Raises:
            CorpusError: The file is not a readable Word document, or goes past ``limits``.
            ImportError: python-docx is not installed.
        """
        docx = require("docx", "Word (.docx)")
        from lxml import etree  # python-docx parses with lxml

        try:
            _check_parts(path, shown, limits)
            document = docx.Document(str(path))
            lines = _lines(document, shown, limits)
            title = str(document.core_properties.title or "").strip()
        except CorpusError:
            raise
        except (
            zipfile.BadZipFile,
            KeyError,
            ValueError,
            etree.XMLSyntaxError,
            docx.opc.exceptions.OpcError,
        ) as err:
            raise CorpusError(
                f"{shown} is not a readable Word document ({type(err).__name__}: {err}); "
                "open and re-save it in Word as .docx, or remove it from the corpus folder"
            ) from err
        text = "\n".join(lines) + "\n" if lines else ""
        return Extraction(text=text, title=title or first_line(text))


def _check_parts(path: Path, shown: str, limits: ReadLimits) -> None:
    # zipfile trusts the declared size only to cut what it returns, after inflating a whole
    # read: reading a megabyte at a time bounds the work, and the CRC check at the declared
    # end refuses a part that holds more than it declares. XML parts are parsed, so each is
    # bounded; media parts (images) are only held, so they count toward the total alone.
    with zipfile.ZipFile(path) as archive:
        parts = archive.infolist()
        for part in parts:
            if part.filename.endswith(_PARSED) and part.file_size > limits.max_part_bytes:
                raise CorpusError(_too_big(shown, part.filename, part.file_size, limits))
        declared = sum(part.file_size for part in parts)
        if declared > limits.memory_mb * 2**20:
            raise CorpusError(
                f"{shown}: its parts expand to {declared / 2**20:,.0f} MB in all, past the "
                f"{limits.memory_mb:,} MB its reader may use; remove it, or raise "
                "REDBOOK_QA_PARSE_MEMORY_MB"
            )
        for part in parts:
            _inflate(archive, part, shown)


def _inflate(archive: zipfile.ZipFile, part: zipfile.ZipInfo, shown: str) -> None:
    try:
        with archive.open(part) as member:
            while member.read(_CHUNK):
                pass
    except zipfile.BadZipFile as err:
        raise CorpusError(
            f"{shown}: its part {part.filename} does not inflate to what it declares "
            f"({err}): a damaged or crafted file; re-save it in Word as .docx"
        ) from err


def _too_big(shown: str, part: str, size: int, limits: ReadLimits) -> str:
    return (
        f"{shown}: its part {part} expands to {size / 1e6:,.1f} MB, over the "
        f"{limits.max_part_bytes / 1e6:g} MB one XML part of a .docx may have; re-save it without "
        "what makes it that large, or raise REDBOOK_QA_MAX_DOCX_PART_BYTES"
    )


def _lines(document: Any, shown: str, limits: ReadLimits) -> list[str]:
    # Paragraphs without text go first, in one XPath: python-docx reads a paragraph's text
    # with an XPath of its own, 15 µs each, so a megabyte of "<w:p/>" took 4 s.
    body = document.element.body
    for empty in body.xpath("./w:p[not(.//w:t)]"):
        body.remove(empty)
    lines: list[str] = []
    n_chars = 0
    for block in document.iter_inner_content():
        if line := _line(block):
            lines.append(line)
            n_chars += len(line) + 1
            if n_chars > limits.max_chars:
                raise CorpusError(too_long(shown, limits, f"paragraph {len(lines):,}"))
    return lines


def _line(block: Any) -> str:
    if hasattr(block, "rows"):  # a table: one line per row, cells joined by " | "
        return "\n".join(_row(row) for row in block.rows if _row(row))
    text = " ".join(str(block.text).split())
    if not text:
        return ""
    style = str(block.style.name) if block.style is not None else ""
    if style.lower() == "title":
        return f"# {text}"
    heading = _HEADING_STYLE.match(style)
    return f"{'#' * min(6, int(heading.group(1)) + 1)} {text}" if heading else text


def _row(row: Any) -> str:
    cells = [" ".join(str(cell.text).split()) for cell in row.cells]
    return " | ".join(cell for cell in cells if cell)
