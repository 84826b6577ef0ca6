"""Uploads staged beside the corpus: all of a request's files go in, or none, even on a crash.

A request's articles are first written to ``<corpus>/.staging/<id>/files/`` (hidden: the
corpus reader skips it). The caller indexes the corpus as it will be, and only then
commits: a journal (``COMMIT``, the names to move, written and synced in one rename) marks
the point of no return, the files are renamed into the folder one by one, and the staging
folder goes. :func:`recover` (run before the folder is read, at every start and refresh)
finishes what a crash interrupted: without a journal the staging folder is dropped, so the
corpus is as it was; with one, the remaining renames are done, so it holds the whole
upload. A staging folder in use is locked (``flock``), so another process never touches it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal

from redbook_qa.errors import CorpusError
from redbook_qa.models import Document

logger = logging.getLogger(__name__)

STAGING_DIR = ".staging"
_JOURNAL = "COMMIT"
_LOCK = "lock"
SaveOutcome = Literal["added", "updated", "unchanged"]


class Staging:
    """One request's uploads, staged in the corpus folder until :meth:`commit`.

    Use it as a context manager: leaving it without a commit drops what was staged.

    Example:
        >>> with Staging(corpus) as staging:  # doctest: +SKIP
        ...     staging.add("a.md", b"# A, and its text.")
        ...     staging.commit()
    """

    def __init__(self, corpus: Path | str) -> None:
        self.corpus = Path(corpus)
        self.root = self.corpus / STAGING_DIR / uuid.uuid4().hex
        self.outcomes: dict[str, SaveOutcome] = {}
        self._lock: int | None = None
        self._committed = False

    def __enter__(self) -> Staging:
        recover(self.corpus)
        self.root.mkdir(parents=True)
        self._lock = _hold(self.root / _LOCK)  # before anything is staged: see recover()
        (self.root / "files").mkdir()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if not self._committed:
            shutil.rmtree(self.root, ignore_errors=True)
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
        with contextlib.suppress(OSError):  # the last one out leaves no trace
            self.root.parent.rmdir()

    def add(self, name: str, content: bytes) -> SaveOutcome:
        """Stage ``content`` as the corpus file ``name``; say what committing it will do.

        Bytes equal to the corpus file's are not staged ("unchanged").
        """
        target = self.corpus / name
        if target.is_file() and target.read_bytes() == content:
            outcome: SaveOutcome = "unchanged"
        else:
            outcome = "updated" if target.is_file() else "added"
            _write_synced(self.root / "files" / name, content)
        self.outcomes[name] = outcome
        return outcome

    def commit(self) -> None:
        """Move every staged file into the corpus folder: all of them, even after a crash.

        Raises:
            CorpusError: A rename failed; the journal stays, and the next start finishes it.
        """
        names = [name for name, outcome in self.outcomes.items() if outcome != "unchanged"]
        journal = self.root / _JOURNAL
        _write_synced(journal.with_suffix(".tmp"), json.dumps(names).encode())
        os.replace(journal.with_suffix(".tmp"), journal)
        _sync_dir(self.root)
        self._committed = True
        try:
            _apply(self.root, self.corpus)
        except OSError as err:
            raise CorpusError(
                f"the upload was indexed but could not be moved into {self.corpus} ({err}); "
                "it will be moved at the next start or refresh"
            ) from err


def overlay(documents: Sequence[Document], staged: Sequence[Document]) -> list[Document]:
    """The corpus as it will be once ``staged`` documents are committed, sorted by source.

    A staged document replaces the corpus document of the same source.

    Raises:
        CorpusError: A staged document would give an article id that another file in the
            corpus, or another staged file, already gives (``a.md`` beside ``a.txt``).
    """
    by_source = {doc.source: doc for doc in documents}
    owners = {doc.id: doc.source for doc in documents}
    if len({doc.source for doc in staged}) < len(staged):
        names = sorted(doc.source for doc in staged)
        raise CorpusError(f"two of the files are named alike ({', '.join(names)}); rename one")
    for doc in staged:
        owner = owners.get(doc.id)
        if owner is not None and owner != doc.source:
            raise CorpusError(
                f"{doc.source} would give the article id {doc.id!r}, which {owner} already "
                "gives; rename it (or remove the other file) and upload it again"
            )
        owners[doc.id] = doc.source
        by_source[doc.source] = doc
    return [by_source[source] for source in sorted(by_source)]


def recover(corpus: Path | str) -> list[str]:
    """Finish or undo every upload a crash left in ``corpus``; return the files moved in.

    Staging folders another process holds are left alone, and so are those without a lock
    file yet (being created; a crash then leaves only an empty folder).
    """
    moved: list[str] = []
    staging = Path(corpus) / STAGING_DIR
    if not staging.is_dir():
        return moved
    for root in sorted(path for path in staging.iterdir() if (path / _LOCK).is_file()):
        with _unless_held(root / _LOCK) as free:
            if not free:
                continue
            if (root / _JOURNAL).is_file():
                moved += _apply(root, Path(corpus))
                logger.warning("finished an upload a crash interrupted: moved in %s", moved)
            else:
                logger.warning("dropped an upload a crash interrupted before it was indexed")
            shutil.rmtree(root, ignore_errors=True)
    with contextlib.suppress(OSError):
        staging.rmdir()
    return moved


def _apply(root: Path, corpus: Path) -> list[str]:
    names: list[str] = json.loads((root / _JOURNAL).read_text(encoding="utf-8"))
    moved = []
    for name in names:
        staged = root / "files" / name
        if staged.is_file():  # else moved before a crash
            os.replace(staged, corpus / name)
            moved.append(name)
    _sync_dir(corpus)
    shutil.rmtree(root, ignore_errors=True)
    return moved


def _write_synced(path: Path, content: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_dir(folder: Path) -> None:
    # A rename is durable once its folder is synced (POSIX; elsewhere this is a no-op).
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _hold(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    with contextlib.suppress(ImportError):
        import fcntl  # POSIX; elsewhere staging folders are recovered by whoever finds them

        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


@contextlib.contextmanager
def _unless_held(path: Path) -> Iterator[bool]:
    # True (and the lock, until the end of the block) unless a live process holds it.
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:  # gone meanwhile: its owner finished
        yield False
        return
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:
            pass
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
