"""Read source files into documents: folders of articles in any format, and BEIR JSON Lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

from redbook_qa.errors import CorpusError
from redbook_qa.models import Document
from redbook_qa.text.loaders import SUFFIXES, Extraction, ReadLimits, extract
from redbook_qa.text.pages import page_metadata

logger = logging.getLogger(__name__)

PLAIN_SUFFIXES = (".txt", ".md")
MAX_ARTICLE_BYTES = 10_000_000
"""Larger files are refused: 10 MB is three times a long novel, and embedding it with the
bundled model takes tens of minutes on a laptop CPU. Such a file is a dump or a log, not an
article."""
MAX_DOCUMENT_BYTES = 200_000_000
"""The same for PDF, Word and HTML files, whose bytes are mostly layout, fonts and images."""
MAX_CORPUS_CHARS = 200_000_000
"""Text a corpus folder may hold in all: about 40,000 articles of 5,000 characters. The folder
is held in memory while it is indexed, its chunks and sentences beside it (a few GB here)."""


def load_corpus(
    directory: Path | str,
    *,
    max_bytes: int = MAX_ARTICLE_BYTES,
    limits: ReadLimits | None = None,
    max_chars: int = MAX_CORPUS_CHARS,
    skip_unreadable: bool = False,
) -> list[Document]:
    """Load every supported file under ``directory`` (recursively), sorted by path.

    The formats are those of :mod:`redbook_qa.text.loaders` (``.txt``, ``.md``, ``.html``,
    ``.htm``, ``.pdf``, ``.docx``). For ``.txt`` and ``.md``, ``Document.text`` is the file as
    Python's text mode reads it (UTF-8, universal newlines), so
    ``open(directory / doc.source, encoding="utf-8").read()[start:end]`` reproduces any span;
    for the others it is the extracted text (:func:`read_document` gives it again), and a
    PDF's page starts are in ``metadata``. Every file but plain text is read in a child
    process within ``limits`` (see :func:`redbook_qa.text.loaders.extract`). Hidden files
    and folders (uploads waiting in ``.staging``), empty files and symlinks that leave the
    folder are skipped with a warning. Of two files giving one article id (``a.txt`` and
    ``a.md``), the one there first (older) is read and the other skipped, with a warning
    that names both. A file that cannot be read (not UTF-8, binary, over ``max_bytes`` or
    :data:`MAX_DOCUMENT_BYTES`, encrypted, damaged, without a text layer, named for another
    format than its content, past ``limits``) raises, naming it and saying what to do; with
    ``skip_unreadable`` (a server starting) it is refused with that warning instead, and the
    others are served.

    Raises:
        CorpusError: If the folder is missing, a file cannot be read (unless
            ``skip_unreadable``), the folder holds more than ``max_chars`` characters, or no
            readable document remains (the message then quotes why each was refused).
        ImportError: A PDF, Word or HTML file is present without the ``docs`` extra.
    """
    root = Path(directory)
    if not root.is_dir():
        raise CorpusError(
            f"corpus folder {root} does not exist; put {', '.join(SUFFIXES)} articles there "
            "or point REDBOOK_QA_CORPUS_DIR at your folder"
        )
    limits = limits or ReadLimits()
    documents: list[Document] = []
    refused: list[str] = []
    total = 0
    for path in _first_of_each_id(root, _article_paths(root)):
        try:
            doc = _read_article(root, path, max_bytes, limits)
        except CorpusError as err:
            # A file that cannot be read (binary, over a limit, a PDF that expands past its
            # reader's memory) costs that file, never the rest of the corpus or the server.
            if not skip_unreadable:
                raise
            logger.warning("refused one article, serving the others: %s", err)
            refused.append(str(err))
            continue
        if doc is not None:
            documents.append(doc)
            total += len(doc.text)
            if total > max_chars:  # stop reading: the rest would be refused with it
                raise CorpusError(_too_large(f"{root} (reached at {doc.source})", max_chars))
    if not documents:
        why = f"; refused: {' | '.join(refused)}" if refused else ""
        raise CorpusError(
            f"no readable articles in {root}: add non-empty {', '.join(SUFFIXES)} files{why}"
        )
    logger.info("loaded %d documents from %s", len(documents), root)
    return documents


def load_jsonl(path: Path | str) -> list[Document]:
    """Load BEIR-style records ``{"_id", "title", "text", "metadata"?}``, one per line.

    Raises:
        CorpusError: If the file is missing or a line is not such a record.
    """
    file = Path(path)
    if not file.is_file():
        raise CorpusError(f"corpus file {file} does not exist")
    documents: list[Document] = []
    with file.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                documents.append(_record_to_document(line, file, number))
    if not documents:
        raise CorpusError(f"{file} holds no records")
    return documents


def _record_to_document(line: str, file: Path, number: int) -> Document:
    try:
        record = json.loads(line)
        metadata = {str(k): str(v) for k, v in (record.get("metadata") or {}).items()}
        return Document(
            id=str(record["_id"]),
            title=str(record.get("title") or ""),
            text=str(record["text"]),
            metadata=metadata,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise CorpusError(
            f"{file}:{number} is not a BEIR record with '_id' and 'text' ({err})"
        ) from err


def _article_paths(root: Path) -> Iterator[Path]:
    resolved_root = root.resolve()
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() not in SUFFIXES or not path.is_file():
            continue
        if not path.resolve().is_relative_to(resolved_root):
            logger.warning("skipping %s: it links outside the corpus folder", path)
            continue
        yield path


def _read_article(root: Path, path: Path, max_bytes: int, limits: ReadLimits) -> Document | None:
    relative = path.relative_to(root).as_posix()
    try:
        _check_size(path, max_bytes)
        extraction = extract(path, limits=limits)
    except FileNotFoundError:
        logger.warning("skipping %s: it was removed while the folder was read", path)
        return None
    if not extraction.text.strip():
        logger.warning("skipping %s: it is empty", path)
        return None
    return document_of(relative, extraction)


def document_of(source: str, extraction: Extraction) -> Document:
    """The document a corpus file at ``source`` (relative, with ``/``) makes of its text.

    Its id is the path without its suffix; a PDF's page starts go into its metadata.
    """
    return Document(
        id=article_id(source),
        title=extraction.title,
        text=extraction.text,
        source=source,
        metadata=page_metadata(extraction.page_starts),
    )


def article_id(source: str) -> str:
    """The article id of a corpus file: its relative path without the suffix."""
    return source.rsplit(".", 1)[0]


def check_corpus_size(documents: list[Document], max_chars: int, *, where: str) -> None:
    """Refuse a corpus whose documents hold more than ``max_chars`` characters in all.

    Raises:
        CorpusError: Saying where the limit was reached and what to do.
    """
    if sum(len(doc.text) for doc in documents) > max_chars:
        raise CorpusError(_too_large(where, max_chars))


def _too_large(where: str, max_chars: int) -> str:
    return (
        f"the articles in {where} hold more than {max_chars:,} characters in all; "
        "split them across folders (one index each), or raise REDBOOK_QA_MAX_CORPUS_CHARS"
    )


def read_document(root: Path | str, source: str, *, limits: ReadLimits | None = None) -> str:
    """Return the text of one corpus file as :func:`load_corpus` read it (for quoting it).

    Raises:
        CorpusError: The file cannot be read (see :func:`load_corpus`).
        FileNotFoundError: The file is gone.
    """
    return extract(Path(root) / source, name=source, limits=limits).text


def _check_size(path: Path, max_bytes: int) -> None:
    # Before reading: a huge file is never loaded into memory. Text is held whole; a
    # document format is read page by page, so it may be larger on disk.
    limit = max_bytes if path.suffix.lower() in PLAIN_SUFFIXES else MAX_DOCUMENT_BYTES
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise
    except OSError as err:
        raise CorpusError(
            f"cannot read {path} ({err.strerror}); check its permissions or remove it"
        ) from err
    if size > limit:
        raise CorpusError(
            f"{path} is {size / 1e6:.1f} MB, over the {limit / 1e6:g} MB limit for one "
            "article; split it into smaller articles or remove it from the corpus folder"
        )


def _first_of_each_id(root: Path, paths: Iterator[Path]) -> list[Path]:
    # The id is the path without its suffix, so "a.txt" and "a.md" collide: the one there
    # first (older, then first by name) is served, so the corpus still opens.
    by_id: dict[str, list[Path]] = {}
    for path in paths:
        by_id.setdefault(article_id(path.relative_to(root).as_posix()), []).append(path)
    kept: list[Path] = []
    for article, group in by_id.items():
        first = min(group, key=lambda p: (_modified(p), p.as_posix()))
        for other in (p for p in group if p != first):
            logger.warning(
                "%s and %s both give the article id %r: serving %s, which was there first, "
                "and skipping %s; rename or remove one of them",
                first.relative_to(root), other.relative_to(root), article,
                first.relative_to(root), other.relative_to(root),
            )  # fmt: skip
        kept.append(first)
    return sorted(kept)


def _modified(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0
