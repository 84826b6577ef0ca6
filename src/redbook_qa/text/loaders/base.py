"""The loader protocol: one file format in, its extracted text (with page starts) out."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from redbook_qa.text.loaders.limits import ReadLimits

DOCS_EXTRA = 'pip install "redbook_qa[docs]"'


class Extraction(BaseModel):
    """What a loader read from one file: the text every offset refers to, and its pages.

    ``text`` is what the corpus indexes and what citations quote verbatim; for a PDF it is
    the extracted text, not the file's bytes. ``page_starts[i]`` is the offset in ``text``
    where page ``i + 1`` begins (empty for formats without pages).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    title: str = ""
    page_starts: tuple[int, ...] = Field(default=())


class Loader(Protocol):
    """Reads one file format; chosen by the file's suffix (see :mod:`.choice`)."""

    @property
    def kind(self) -> str:
        """What the content must look like (``"pdf"``, ``"docx"``, ``"html"``, ``"text"``)."""
        ...

    @property
    def suffixes(self) -> tuple[str, ...]:
        """Lower-case file suffixes this loader reads, with the dot."""
        ...

    def load(self, path: Path, *, shown: str, limits: ReadLimits) -> Extraction:
        """Extract ``path`` within ``limits``; ``shown`` names the file in messages.

        Raises:
            CorpusError: The file cannot be read as this format, or goes past one of
                ``limits``; the message says what to do.
            ImportError: The format's optional dependency is missing (names the install).
        """
        ...


def require(module: str, fmt: str) -> ModuleType:
    """Import an optional dependency, or fail with the install command that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"reading {fmt} files needs the {module!r} package: {DOCS_EXTRA}"
        ) from err
