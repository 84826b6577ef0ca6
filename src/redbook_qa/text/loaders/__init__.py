"""Loaders: one per file format behind one protocol, chosen by the file's type.

``.txt``/``.md`` are read as they are; ``.html`` pages (trafilatura), ``.pdf`` files
(pypdfium2) and Word ``.docx`` files (python-docx) need the ``docs`` extra
(``pip install "redbook_qa[docs]"``), imported only when such a file is read. Each yields an
:class:`Extraction`: the text citations quote, its title, and for a PDF where each page
starts. Every file is read within :class:`ReadLimits`; all but plain text in a child
process with a memory and a time limit (:mod:`.isolation`).
"""

from __future__ import annotations

from redbook_qa.text.loaders.base import DOCS_EXTRA, Extraction, Loader
from redbook_qa.text.loaders.choice import LOADERS, SUFFIXES, check_content, loader_for
from redbook_qa.text.loaders.isolation import extract
from redbook_qa.text.loaders.limits import ReadLimits

__all__ = [
    "DOCS_EXTRA",
    "LOADERS",
    "SUFFIXES",
    "Extraction",
    "Loader",
    "ReadLimits",
    "check_content",
    "extract",
    "loader_for",
]
