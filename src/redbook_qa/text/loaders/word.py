"""Word .docx (python-docx): paragraphs in order, heading styles as Markdown headings."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

from redbook_qa.errors import CorpusError
from redbook_qa.text.loaders.base import Extraction, require
from redbook_qa.text.loaders.plain import first_line

_HEADING_STYLE = re.compile(r"^heading (\d)$", re.IGNORECASE)


class DocxLoader:
    """Reads a .docx body: each paragraph one line, each table row one line.

    A paragraph styled ``Title`` becomes ``# …`` and ``Heading N`` becomes ``#`` × (N + 1),
    so :mod:`redbook_qa.text.sections` sees Word's own outline instead of guessing
    headings from short lines. Body paragraphs are quoted verbatim.
    """

    kind = "docx"
    suffixes = (".docx",)

    def load(self, path: Path, *, shown: str) -> Extraction:
        """Extract the body text, headings marked.

        Raises:
            CorpusError: The file is not a readable Word document.
            ImportError: python-docx is not installed.
        """
        docx = require("docx", "Word (.docx)")
        from lxml import etree  # python-docx parses with lxml

        try:
            document = docx.Document(str(path))
            lines = [line for block in document.iter_inner_content() if (line := _line(block))]
            title = str(document.core_properties.title or "").strip()
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
