"""Save and load a built index directory: atomic generations, checksums, a writer lock, no pickle.

Layout of an index root::

    embeddings/
      CURRENT              name of the live generation, replaced atomically
      .lock                held by the one process writing
      gen-<digest>/        one complete build
        manifest.json  chunks.jsonl  sentences.jsonl  chunk_sentences.npy
        chunk_vectors.npy  sentence_vectors.npy  index.faiss  bm25/  checksums.json

A build writes a new generation into a temporary folder, renames it into place, then points
``CURRENT`` at it with ``os.replace``: a crash at any moment leaves the previous generation
live and complete. Older generations are removed only after the switch.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import ValidationError

from redbook_qa.errors import (
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
)
from redbook_qa.models import Chunk, Sentence
from redbook_qa.stores.base import FORMAT_VERSION, Manifest
from redbook_qa.stores.bm25 import LexicalIndex
from redbook_qa.stores.faiss_index import VectorIndex
from redbook_qa.stores.memory import Store

logger = logging.getLogger(__name__)
_Row = TypeVar("_Row", Chunk, Sentence)
_POINTER = "CURRENT"
_REBUILD = "delete it and rebuild with `redbook-qa index` (or `make index`)"


@contextlib.contextmanager
def write_lock(root: Path, *, wait: bool = True) -> Iterator[None]:
    """Hold the index root's writer lock; with ``wait=False`` fail at once if it is taken."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            if not wait:
                raise IndexLockedError(
                    f"another process is building the index in {root}; wait for it to finish"
                ) from err
            logger.info("another process is building the index in %s; waiting for it", root)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def live_generation(root: Path) -> Path:
    """Return the folder of the live generation.

    Raises:
        IndexNotFoundError: If ``root`` holds no built index.
    """
    pointer = root / _POINTER
    if not pointer.is_file():
        raise IndexNotFoundError(f"no index in {root}; build one with `redbook-qa index`")
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, ValueError) as err:
        raise IndexCorruptError(f"{pointer} is unreadable ({err}); {_REBUILD}") from err
    generation = root / name
    if not generation.is_dir() or generation.parent != root:
        raise IndexNotFoundError(f"{pointer} names a missing generation; {_REBUILD}")
    return generation


def save_store(store: Store, root: Path) -> Path:
    """Write ``store`` as a new generation of ``root`` and make it live; return its folder.

    The caller holds :func:`write_lock`: older generations, and what writers killed
    mid-save left behind, are removed once the new generation is live.
    """
    root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(store.manifest.model_dump_json().encode("utf-8")).hexdigest()
    final = root / f"gen-{digest[:16]}"
    if final.is_dir() and not _is_intact(final):
        shutil.rmtree(final)  # same content, damaged files: write it afresh
    if not final.is_dir():
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
        try:
            _write_files(store, staging)
            staging.rename(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    _point_to(root, final.name)
    _remove_leftovers(root, final)
    return final


def tidy(root: Path) -> bool:
    """Remove what writers killed mid-save left in ``root``; return whether any was there.

    A writer killed after making its generation live but before removing the old one leaves a
    complete, unused generation, and the next build finds the index fresh and saves nothing:
    this removes it. Skipped while another process holds the writer lock (it tidies itself).
    """
    live = live_generation(root)
    if not _leftovers(root, live):
        return False
    try:
        with write_lock(root, wait=False):
            if live_generation(root) == live:
                _remove_leftovers(root, live)
    except IndexLockedError:
        return False
    logger.info("removed what an interrupted build left in %s", root)
    return True


def _leftovers(root: Path, live: Path) -> list[Path]:
    stale = [old for old in root.glob("gen-*") if old != live]
    return [*stale, *root.glob(".staging-*"), *root.glob(".current-*")]


def _remove_leftovers(root: Path, live: Path) -> None:
    for leftover in _leftovers(root, live):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def load_store(root: Path) -> Store:
    """Load the live generation of ``root``, verifying checksums and shapes first.

    Raises:
        IndexNotFoundError: No index, or a file of it is missing.
        IndexCorruptError: A file is truncated, altered or unreadable.
        IndexMismatchError: The index was written in another format version.
    """
    folder = live_generation(root)
    manifest = read_manifest(folder)
    _verify_checksums(folder)
    try:
        chunks = _read_jsonl(folder / "chunks.jsonl", Chunk)
        sentences = _read_jsonl(folder / "sentences.jsonl", Sentence)
        hashes = json.loads((folder / "hashes.json").read_text(encoding="utf-8"))
        flat = np.load(folder / "chunk_sentences.npy", allow_pickle=False)
        bounds = np.load(folder / "chunk_sentence_bounds.npy", allow_pickle=False)
        chunk_vectors = np.load(folder / "chunk_vectors.npy", allow_pickle=False)
        sentence_vectors = np.load(folder / "sentence_vectors.npy", allow_pickle=False)
    except (OSError, ValueError, KeyError, TypeError, ValidationError) as err:
        raise IndexCorruptError(
            f"index files in {folder} are unreadable ({err}); {_REBUILD}"
        ) from err
    store = Store(
        manifest=manifest,
        chunks=chunks,
        chunk_hashes=list(hashes["chunks"]),
        sentence_hashes=list(hashes["sentences"]),
        sentences=sentences,
        chunk_vectors=chunk_vectors,
        sentence_vectors=sentence_vectors,
        chunk_sentences=[flat[a:b] for a, b in itertools.pairwise(bounds)],
        index=VectorIndex.load(folder, params=manifest.index),
        lexical=LexicalIndex.load(folder / "bm25"),
    )
    _check_shapes(store, folder)
    return store


def read_manifest(folder: Path) -> Manifest:
    """Read and check a generation's manifest before trusting anything else in it."""
    path = folder / "manifest.json"
    if not path.is_file():
        raise IndexNotFoundError(f"{path} is missing; {_REBUILD}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise IndexCorruptError(f"{path} is not valid JSON ({err}); {_REBUILD}") from err
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"{path} has format version {version}, this redbook_qa reads {FORMAT_VERSION}; "
            f"{_REBUILD}"
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as err:
        raise IndexCorruptError(f"{path} is not a valid manifest ({err}); {_REBUILD}") from err


def _write_files(store: Store, folder: Path) -> None:
    (folder / "manifest.json").write_text(
        store.manifest.model_dump_json(indent=2) + "\n", encoding="utf-8"
    )
    _write_jsonl(folder / "chunks.jsonl", [c.model_dump_json() for c in store.chunks])
    _write_jsonl(folder / "sentences.jsonl", [s.model_dump_json() for s in store.sentences])
    hashes = {"chunks": store.chunk_hashes, "sentences": store.sentence_hashes}
    (folder / "hashes.json").write_text(json.dumps(hashes), encoding="utf-8")
    sizes = [len(rows) for rows in store.chunk_sentences]
    flat = np.concatenate([*store.chunk_sentences, np.zeros(0, dtype=np.int64)])
    np.save(folder / "chunk_sentences.npy", flat.astype(np.int64), allow_pickle=False)
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    np.save(folder / "chunk_sentence_bounds.npy", bounds, allow_pickle=False)
    np.save(folder / "chunk_vectors.npy", store.chunk_vectors, allow_pickle=False)
    np.save(folder / "sentence_vectors.npy", store.sentence_vectors, allow_pickle=False)
    store.index.save(folder)
    store.lexical.save(folder / "bm25")
    checksums = {
        path.relative_to(folder).as_posix(): _sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    (folder / "checksums.json").write_text(json.dumps(checksums, indent=2), encoding="utf-8")
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())


def _is_intact(folder: Path) -> bool:
    try:
        _verify_checksums(folder)
    except (IndexCorruptError, IndexNotFoundError):
        return False
    return True


def _verify_checksums(folder: Path) -> None:
    path = folder / "checksums.json"
    try:
        expected = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise IndexCorruptError(f"{path} is missing or unreadable ({err}); {_REBUILD}") from err
    if not isinstance(expected, dict) or not all(
        isinstance(name, str) and isinstance(digest, str) for name, digest in expected.items()
    ):
        raise IndexCorruptError(f"{path} is not a map of file names to digests; {_REBUILD}")
    for name, digest in expected.items():
        file = folder / name
        if not file.is_file():
            raise IndexNotFoundError(f"{file}, listed in {path.name}, is missing; {_REBUILD}")
        if _sha256(file) != digest:
            # Either file may be the damaged one, so the message names both.
            raise IndexCorruptError(
                f"{file} is corrupt: it does not match its checksum in {path.name}; {_REBUILD}"
            )


def _check_shapes(store: Store, folder: Path) -> None:
    manifest = store.manifest
    expected = {
        "chunks.jsonl": (len(store.chunks), manifest.n_chunks),
        "chunk_vectors.npy": (store.chunk_vectors.shape, (manifest.n_chunks, manifest.dimension)),
        "sentence_vectors.npy": (
            store.sentence_vectors.shape,
            (manifest.n_sentences, manifest.dimension),
        ),
        "index.faiss": (store.index.size, manifest.n_chunks),
    }
    for name, (found, wanted) in expected.items():
        if found != wanted:
            raise IndexCorruptError(
                f"{folder / name} holds {found}, the manifest says {wanted}; {_REBUILD}"
            )


def _point_to(root: Path, name: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".current-", dir=root)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, root / _POINTER)


def _write_jsonl(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _read_jsonl(path: Path, model: type[_Row]) -> list[_Row]:
    with path.open(encoding="utf-8") as lines:
        return [model.model_validate_json(line) for line in lines if line.strip()]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
