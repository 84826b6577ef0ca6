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


def load_corpus(directory: Path | str) -> list[Document]:
    """Load every ``.txt`` and ``.md`` file under ``directory`` (recursively), sorted by path.

    ``Document.text`` is the file as Python's text mode reads it (UTF-8, universal newlines),
    so ``open(directory / doc.source, encoding="utf-8").read()[start:end]`` reproduces any
    span. The title is the first non-blank line. Hidden files, empty files and symlinks that
    leave the folder are skipped with a warning.

    Raises:
        CorpusError: If the folder is missing, a file is not UTF-8, or no document remains.
    """
    root = Path(directory)
    if not root.is_dir():
        raise CorpusError(
            f"corpus folder {root} does not exist; put .txt or .md articles there "
            "or point REDBOOK_QA_CORPUS_DIR at your folder"
        )
    documents = [doc for path in _article_paths(root) if (doc := _read_article(root, path))]
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


def _read_article(root: Path, path: Path) -> Document | None:
    relative = path.relative_to(root).as_posix()
    try:
        with path.open(encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); "
            "convert it to UTF-8 or remove it from the corpus folder"
        ) from err
    if not text.strip():
        logger.warning("skipping %s: it is empty", path)
        return None
    if "\x00" in text:
        raise CorpusError(f"{path} looks binary (it contains NUL bytes); remove it")
    title = next(line for line in text.splitlines() if line.strip()).strip().lstrip("#").strip()
    doc_id = relative.rsplit(".", 1)[0]
    return Document(id=doc_id, title=title, text=text, source=relative)
