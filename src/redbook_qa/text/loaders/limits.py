"""How far reading one untrusted file may go: pages, characters, expanded bytes, memory, time.

A file of a few kilobytes can describe gigabytes: a compressed PDF stream of drawing
operators, a page tree whose nodes share their children, a zip entry that inflates a
thousandfold. Every loader checks what it can before the work (page count, declared part
sizes, file size) and counts characters while it extracts, stopping at the first one too
many; what cannot be checked ahead (how much memory PDFium needs for a page) is bounded by
reading the file in a child process with a memory and a time limit
(:mod:`redbook_qa.text.loaders.isolation`). Each default below is one field of
:class:`ReadLimits` and one ``REDBOOK_QA_*`` setting.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_PDF_PAGES = 2_000
"""Longer PDFs are refused before a page is read: a long book has about a thousand pages,
and a page tree of a few kilobytes can claim a million."""
MAX_DOCUMENT_CHARS = 10_000_000
"""Text one document may yield; extraction stops at the first character past it. The same
10 million as the largest plain-text article (10 MB), whatever the format expands from."""
MAX_DOCX_PART_BYTES = 10_000_000
"""Largest XML part of a .docx once inflated (its body is one), by its declared size and by
the bytes that really come out: python-docx holds each part whole and parses it, about
4 s and 40 MB of memory a megabyte of empty paragraphs on this machine (a 1,500-page
report's body is a few megabytes)."""
MAX_HTML_BYTES = 10_000_000
"""Largest web page read: its parse holds about 40 times its size (45 MB took 1.9 GB)."""
PARSE_MEMORY_MB = 1_024
"""Memory one file's reader may take beyond its own process's start, in MiB."""
PARSE_SECONDS = 120.0
"""Wall-clock time one file's reader may take before it is stopped."""


class ReadLimits(BaseModel):
    """The bounds one file is read within (see the module docstring for each default).

    Attributes:
        max_pages: Pages a PDF may have.
        max_chars: Characters of text a document may yield.
        max_part_bytes: Inflated bytes of one part of a .docx.
        max_html_bytes: Bytes of a web page.
        memory_mb: Memory a reader in a child process may take, beyond its start, in MiB.
        seconds: Wall-clock seconds a reader in a child process may take.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_pages: int = Field(default=MAX_PDF_PAGES, ge=1)
    max_chars: int = Field(default=MAX_DOCUMENT_CHARS, ge=1)
    max_part_bytes: int = Field(default=MAX_DOCX_PART_BYTES, ge=1)
    max_html_bytes: int = Field(default=MAX_HTML_BYTES, ge=1)
    memory_mb: int = Field(default=PARSE_MEMORY_MB, ge=16)
    seconds: float = Field(default=PARSE_SECONDS, gt=0)


def too_long(shown: str, limits: ReadLimits, where: str = "") -> str:
    """The message for a document whose text runs past ``limits.max_chars``."""
    at = f" (it was read up to {where})" if where else ""
    return (
        f"{shown} holds more than {limits.max_chars:,} characters of text{at}; split it into "
        "smaller articles, or raise REDBOOK_QA_MAX_DOCUMENT_CHARS"
    )
