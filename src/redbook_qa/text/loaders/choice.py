"""Which loader reads a file: chosen by its suffix, checked against what its bytes say."""

from __future__ import annotations

from pathlib import Path

from redbook_qa.errors import CorpusError
from redbook_qa.text.loaders.base import Extraction, Loader
from redbook_qa.text.loaders.limits import ReadLimits
from redbook_qa.text.loaders.pdf import PdfLoader
from redbook_qa.text.loaders.plain import PlainTextLoader
from redbook_qa.text.loaders.sniffing import DESCRIPTIONS, SUFFIX_OF_KIND, Kind, sniff
from redbook_qa.text.loaders.web import HtmlLoader
from redbook_qa.text.loaders.word import DocxLoader

LOADERS: tuple[Loader, ...] = (PlainTextLoader(), HtmlLoader(), PdfLoader(), DocxLoader())
SUFFIXES: tuple[str, ...] = tuple(s for loader in LOADERS for s in loader.suffixes)
"""Every suffix the corpus reads: ``.txt``, ``.md``, ``.html``, ``.htm``, ``.pdf``, ``.docx``."""
# What each loader's content may look like besides its own kind: a page saved as a fragment
# reads as text, and text that mentions "<html>" or holds NUL bytes is the text loader's call.
_ALSO_ACCEPTED: dict[str, frozenset[Kind]] = {
    "text": frozenset({"html", "binary"}),
    "html": frozenset({"text"}),
    "docx": frozenset({"zip"}),  # a damaged .docx: python-docx says what is wrong with it
}


def loader_for(path: Path | str) -> Loader:
    """Return the loader for a file's suffix (case-insensitive).

    Raises:
        CorpusError: No loader reads that suffix; the message lists those that do.
    """
    suffix = Path(path).suffix.lower()
    for loader in LOADERS:
        if suffix in loader.suffixes:
            return loader
    raise CorpusError(
        f"{Path(path).name}: {suffix or 'no extension'} files cannot be read; "
        f"use one of {', '.join(SUFFIXES)}"
    )


def extract_here(
    path: Path | str, *, name: str | None = None, limits: ReadLimits | None = None
) -> Extraction:
    """Read any supported file into its text in this process, after checking its content.

    This is what a reader process runs; :func:`redbook_qa.text.loaders.extract` runs it
    in one (for every format but plain text), with a memory and a time limit.

    Args:
        path: The file.
        name: The file's name as its owner knows it (an upload's, or the path in the
            corpus): its suffix picks the loader and messages show it (default: ``path``).
        limits: How far the reading may go (default: :class:`ReadLimits`'s defaults).

    Raises:
        CorpusError: Unsupported suffix, content of another format than the suffix says (the
            message names the right suffix), a file its loader cannot read, or one that
            goes past ``limits``.
        ImportError: The format's optional dependency is missing (names the install).
    """
    file = Path(path)
    name = name or str(file)
    return check_content(file, name=name).load(file, shown=name, limits=limits or ReadLimits())


def check_content(path: Path | str, *, name: str | None = None) -> Loader:
    """Return the loader for a file after checking its bytes are of the format it is named for.

    Raises:
        CorpusError: Unsupported suffix, or content of another format (a PDF named .txt, a
            page named .docx); the message names the suffix that fits.
    """
    file = Path(path)
    name = name or str(file)
    loader = loader_for(name)
    try:
        kind = sniff(file)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise CorpusError(f"cannot read {name} ({err.strerror}); check its permissions") from err
    if kind != loader.kind and kind not in _ALSO_ACCEPTED.get(loader.kind, frozenset()):
        raise CorpusError(_mismatch(name, Path(name).suffix.lower(), kind))
    return loader


def _mismatch(name: str, suffix: str, kind: Kind) -> str:
    found = DESCRIPTIONS[kind]
    if kind in SUFFIX_OF_KIND:
        fix = f"rename it to {Path(name).stem}{SUFFIX_OF_KIND[kind]}"
    else:
        fix = "re-save it in the right format or remove it from the corpus folder"
    return f"{name} is named {suffix} but its content is {found}; {fix}"
