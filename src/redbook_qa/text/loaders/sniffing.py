"""What a file's first bytes say it is, whatever its name claims (magic numbers)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Literal

Kind = Literal["pdf", "docx", "zip", "html", "text", "binary"]
DESCRIPTIONS: dict[str, str] = {
    "pdf": "a PDF",
    "docx": "a Word document (.docx)",
    "zip": "a zip archive",
    "html": "a web page (HTML)",
    "text": "plain text",
    "binary": "binary data",
}
SUFFIX_OF_KIND = {"pdf": ".pdf", "docx": ".docx", "html": ".html", "text": ".txt"}
_HEAD_BYTES = 2048
_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body")


def sniff(path: Path) -> Kind:
    """Name the format of ``path`` from its content.

    PDF readers accept ``%PDF-`` anywhere in the first kilobyte; a .docx is a zip holding
    ``word/document.xml``; a page is HTML when its first 2 KB open an html, head or body
    element (a fragment such as ``<p>Hi</p>`` reads as text, which the HTML loader accepts).
    """
    with path.open("rb") as handle:
        head = handle.read(_HEAD_BYTES)
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "docx" if _is_docx(path) else "zip"
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if any(marker in lowered for marker in _HTML_MARKERS):
        return "html"
    if b"\x00" in head:
        return "binary"
    return "text"


def _is_docx(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return "word/document.xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
