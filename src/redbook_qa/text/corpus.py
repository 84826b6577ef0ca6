"""Read source files into documents: plain text and Markdown folders, and BEIR-style JSON Lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

from redbook_qa.errors import CorpusError
from redbook_qa.models import Document

logger = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md")
MAX_ARTICLE_BYTES = 10_000_000
"""Larger files are refused: 10 MB is three times a long novel, and embedding it with the
bundled model takes tens of minutes on a laptop CPU. Such a file is a dump or a log, not an
article."""


def load_corpus(directory: Path | str, *, max_bytes: int = MAX_ARTICLE_BYTES) -> list[Document]:
    """Load every ``.txt`` and ``.md`` file under ``directory`` (recursively), sorted by path.

    ``Document.text`` is the file as Python's text mode reads it (UTF-8, universal newlines),
    so ``open(directory / doc.source, encoding="utf-8").read()[start:end]`` reproduces any
    span. The title is the first non-blank line. Hidden files, empty files and symlinks that
    leave the folder are skipped with a warning.

    Raises:
        CorpusError: If the folder is missing, a file is not UTF-8, looks binary or is over
            ``max_bytes``, two files give the same article id (``a.txt`` and ``a.md``), or
            no document remains. The message names the file and says what to do.
    """
    root = Path(directory)
    if not root.is_dir():
        raise CorpusError(
            f"corpus folder {root} does not exist; put .txt or .md articles there "
            "or point REDBOOK_QA_CORPUS_DIR at your folder"
        )
    documents = [
        doc for path in _article_paths(root) if (doc := _read_article(root, path, max_bytes))
    ]
    _check_unique_ids(documents)
    if not documents:
        raise CorpusError(f"no readable articles in {root}: add non-empty UTF-8 .txt or .md files")
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


def _read_article(root: Path, path: Path, max_bytes: int) -> Document | None:
    relative = path.relative_to(root).as_posix()
    try:
        text = _read_text(path, max_bytes)
    except FileNotFoundError:
        logger.warning("skipping %s: it was removed while the folder was read", path)
        return None
    if not text.strip():
        logger.warning("skipping %s: it is empty", path)
        return None
    if "\x00" in text:
        raise CorpusError(
            f"{path} looks binary (it contains NUL bytes, as UTF-16 text does); "
            "convert it to UTF-8 text or remove it from the corpus folder"
        )
    title = next(line for line in text.splitlines() if line.strip()).strip().lstrip("#").strip()
    doc_id = relative.rsplit(".", 1)[0]
    return Document(id=doc_id, title=title, text=text, source=relative)


def _read_text(path: Path, max_bytes: int) -> str:
    try:
        size = path.stat().st_size  # before reading: a huge file is never loaded into memory
        if size > max_bytes:
            raise CorpusError(
                f"{path} is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB limit for one "
                "article; split it into smaller articles or remove it from the corpus folder"
            )
        with path.open(encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); "
            "convert it to UTF-8 or remove it from the corpus folder"
        ) from err
    except FileNotFoundError:
        raise
    except OSError as err:
        raise CorpusError(
            f"cannot read {path} ({err.strerror}); check its permissions or remove it"
        ) from err


def _check_unique_ids(documents: list[Document]) -> None:
    # The id is the path without its suffix, so "a.txt" and "a.md" would collide.
    seen: dict[str, str] = {}
    for doc in documents:
        if doc.id in seen:
            raise CorpusError(
                f"{seen[doc.id]} and {doc.source} both give the article id {doc.id!r}; "
                "rename or remove one of them"
            )
        seen[doc.id] = doc.source
