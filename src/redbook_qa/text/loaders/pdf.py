"""PDF: the text layer page by page (pypdfium2), headers and footers dropped, pages kept."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

from redbook_qa.errors import CorpusError
from redbook_qa.text.loaders.base import Extraction, require
from redbook_qa.text.loaders.layout import (
    Line,
    body_size,
    clean_line,
    join_pages,
    paragraphs,
    recurring_lines,
    strip_recurring,
)
from redbook_qa.text.loaders.limits import ReadLimits, too_long
from redbook_qa.text.loaders.plain import first_line

logger = logging.getLogger(__name__)

_LINE = re.compile(r"[^\S\r\n]*([^\r\n]+)")
PROGRESS_EVERY = 50
"""Log a progress line every this many pages of a long PDF."""


class PdfLoader:
    """Reads a PDF's text layer with PDFium, one page at a time.

    Pages are opened and closed one by one, so a 300-page file holds one page in memory (plus
    the text so far); progress is logged every :data:`PROGRESS_EVERY` pages. PDFium is fast
    and ships as portable wheels: on the seeds printed with reportlab it reads hundreds of
    pages a second (README, "Formats"). There is no OCR: a scan without a text layer is
    refused with what to do.
    """

    kind = "pdf"
    suffixes = (".pdf",)

    def load(self, path: Path, *, shown: str, limits: ReadLimits) -> Extraction:
        """Extract the text of every page and where each page starts in it.

        The page count is checked before any page is read, and characters are counted as
        pages are read, stopping at the first page past ``limits.max_chars``.

        Raises:
            CorpusError: The PDF is encrypted, damaged, has no text layer, or has more pages
                or text than ``limits`` allow.
            ImportError: pypdfium2 is not installed.
        """
        pdfium = require("pypdfium2", "PDF")
        started = time.perf_counter()
        document = _open(pdfium, path, shown)
        try:
            _check_pages(len(document), shown, limits)
            title = str(document.get_metadata_dict().get("Title", "")).strip()
            pages = _page_lines(pdfium, document, shown, limits)
        finally:
            document.close()
        recurring, body = recurring_lines(pages), body_size(pages)
        text, starts = join_pages(
            [paragraphs(strip_recurring(lines, recurring), body=body) for lines in pages]
        )
        if not text.strip():
            raise CorpusError(
                f"{shown}: no text layer: run OCR first (its {len(pages)} pages are images), "
                f"e.g. `ocrmypdf {shown} {Path(shown).stem}-ocr.pdf`, and add that file"
            )
        logger.info(
            "read %d pages of %s in %.2f s", len(pages), shown, time.perf_counter() - started
        )
        return Extraction(text=text, title=title or first_line(text), page_starts=starts)


def _open(pdfium: Any, path: Path, shown: str) -> Any:
    try:
        return pdfium.PdfDocument(path)
    except pdfium.PdfiumError as err:
        if "password" in str(err).lower():
            raise CorpusError(
                f"{shown} is encrypted (password-protected); save an unprotected copy "
                "(e.g. `qpdf --decrypt in.pdf out.pdf`) and add that instead"
            ) from err
        raise CorpusError(
            f"{shown} is not a readable PDF ({err}); re-export it from the program that "
            "made it, or remove it from the corpus folder"
        ) from err


def _check_pages(n_pages: int, shown: str, limits: ReadLimits) -> None:
    # PDFium counts pages from the page tree's /Count (or a walk it caches), before any page
    # is parsed: a tree whose nodes share their kids claims millions from a few kilobytes.
    if n_pages > limits.max_pages:
        raise CorpusError(
            f"{shown} has {n_pages:,} pages, more than the {limits.max_pages:,} a PDF may have; "
            "split it into smaller files, or raise REDBOOK_QA_MAX_PDF_PAGES"
        )


def _page_lines(pdfium: Any, document: Any, shown: str, limits: ReadLimits) -> list[list[Line]]:
    n_pages = len(document)
    pages: list[list[Line]] = []
    n_chars = 0  # PDFium's count of the text layer's characters so far, line breaks included
    for number in range(n_pages):
        try:
            page = document[number]
            try:
                textpage = page.get_textpage()
                n_chars += int(textpage.count_chars())
                if n_chars > limits.max_chars:  # before the page's text becomes a string
                    raise CorpusError(too_long(shown, limits, f"page {number + 1} of {n_pages:,}"))
                pages.append(_lines(pdfium, textpage))
                textpage.close()
            finally:
                page.close()
        except pdfium.PdfiumError as err:
            raise CorpusError(
                f"{shown}: page {number + 1} of {n_pages} cannot be read ({err}); "
                "re-export the PDF or remove it from the corpus folder"
            ) from err
        if (number + 1) % PROGRESS_EVERY == 0:
            logger.info("%s: read page %d of %d", shown, number + 1, n_pages)
    return pages


def _lines(pdfium: Any, textpage: Any) -> list[Line]:
    # PDFium's text holds one character per index, its generated line breaks included, so
    # a line's font size is that of the character at the index where the line starts.
    raw = str(textpage.get_text_range())
    lines: list[Line] = []
    for match in _LINE.finditer(raw):
        text = clean_line(match.group())
        if text:
            size = float(pdfium.raw.FPDFText_GetFontSize(textpage.raw, match.start(1)))
            lines.append((text, size))
    return lines
