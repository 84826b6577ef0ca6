"""Reading untrusted files in a child process, with a memory and a time limit.

PDFium aborts its whole process when an allocation fails (it does not raise), lxml can take
gigabytes for one page, and a parser can spin for minutes on a file of a few kilobytes. So
every PDF, Word and HTML file is read by a child process that may map at most
``memory_mb`` beyond its start (``RLIMIT_AS``) and is killed after ``seconds``: a file that
goes past either costs that child, and the caller gets a :class:`CorpusError` naming the
file and the limit, never a dead server.

One reader process per server (a fresh interpreter, started on first use, that imports the
parsers once: :mod:`.reader_process`) forks a child for each file, so a file costs a fork
rather than an interpreter start (``benchmarks/bench_isolation.py``), and the server's own
main module is never imported again, as ``multiprocessing``'s spawn and fork server would.
Plain ``.txt`` and ``.md`` files are read in the server: their size is checked first, their
reader is Python's decoder, and the round trip would cost more than the read.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from redbook_qa.errors import CorpusError
from redbook_qa.text.loaders.base import Extraction
from redbook_qa.text.loaders.choice import extract_here
from redbook_qa.text.loaders.limits import ReadLimits
from redbook_qa.text.loaders.reader_process import Reply, late, log_line, next_reply

logger = logging.getLogger(__name__)

T = TypeVar("T")

PLAIN_SUFFIXES = (".txt", ".md")
_GRACE_SECONDS = 30.0  # for the reader process itself, beyond a child's own deadline


def extract(
    path: Path | str, *, name: str | None = None, limits: ReadLimits | None = None
) -> Extraction:
    """Read any supported file into its text, within ``limits``.

    A PDF, Word or HTML file (or anything that is not plain text, whatever its name) is
    read in a child process (see the module docstring); plain text is read here.

    Args:
        path: The file.
        name: The file's name as its owner knows it (an upload's, or the path in the
            corpus): its suffix picks the loader and messages show it (default: ``path``).
        limits: How far the reading may go (default: :class:`ReadLimits`'s defaults).

    Raises:
        CorpusError: The file cannot be read, is another format than its name says, or goes
            past one of ``limits`` (memory and time included); the message names the file,
            the limit and what to do.
        ImportError: The format's optional dependency is missing (names the install).
        FileNotFoundError: The file is gone.
    """
    file, limits = Path(path), limits or ReadLimits()
    name = name or str(file)
    if _is_plain(file, name):
        return extract_here(file, name=name, limits=limits)
    return read_isolated(extract_here, file, name=name, limits=limits)


def read_isolated(reader: Callable[..., T], path: Path, *, name: str, limits: ReadLimits) -> T:
    """Run ``reader(path, name=name, limits=limits)`` in a child process; return its result.

    ``reader`` must be a module-level function (it is sent by name to the reader process).

    What the reader raises comes back as it was raised (:class:`RedbookQAError`,
    ``ImportError``, ``FileNotFoundError``); anything else becomes a :class:`CorpusError`
    naming the file. Without ``os.fork`` (Windows) the reader runs here, within the limits
    it checks itself but without a memory or time limit.

    Raises:
        CorpusError: The reader failed, ran out of memory, crashed or ran out of time.
    """
    if not hasattr(os, "fork"):
        return reader(path, name=name, limits=limits)
    request = (reader, path, name, limits)
    tag, value = _reader_process().ask(request, limits.seconds + _GRACE_SECONDS)
    if tag == "ok":
        return value  # type: ignore[no-any-return]  # what reader returned, through pickle
    raise value


class _ReaderProcess:
    """The server's reader process: started on first use, restarted if it dies or hangs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._pipes: tuple[Connection, Connection] | None = None  # requests, replies
        os.register_at_fork(after_in_child=self._forget)
        atexit.register(self.stop)

    def ask(self, request: tuple[Any, ...], seconds: float) -> Reply:
        """Send one file to read and wait for its reply; one file at a time.

        The reader's log lines are logged here as they come.
        """
        name, limits = request[2], request[3]
        with self._lock:
            requests, replies = self._start()
            try:
                requests.send(request)
                reply = next_reply(replies, time.monotonic() + seconds, log_line)
                if reply is not None:
                    return reply
                failure = late(name, limits)
            except (OSError, EOFError) as err:
                failure = f"{name} could not be read: the reader process stopped ({err})"
            self.stop()
            return "error", CorpusError(failure)

    def stop(self) -> None:
        """End the reader process and any child it is running."""
        process, pipes = self._process, self._pipes
        self._process = self._pipes = None
        for connection in pipes or ():
            connection.close()
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its own session: it and its child
            process.wait()

    def _start(self) -> tuple[Connection, Connection]:
        if self._pipes is not None and self._process is not None and self._process.poll() is None:
            return self._pipes
        self.stop()
        down_read, down_write = os.pipe()
        up_read, up_write = os.pipe()
        code = f"import sys; sys.path[:0] = {sys.path!r}; {_SERVE}({down_read}, {up_write})"
        self._process = subprocess.Popen(
            [sys.executable, "-c", code],
            pass_fds=(down_read, up_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # a parser's print() must not reach `redbook-qa ask`
            start_new_session=True,
        )
        os.close(down_read)
        os.close(up_write)
        self._pipes = Connection(down_write, readable=False), Connection(up_read, writable=False)
        logger.debug("started the file reader process %d", self._process.pid)
        return self._pipes

    def _forget(self) -> None:
        # A forked copy of this process must not talk to its parent's reader.
        self._lock = threading.Lock()
        self._process = self._pipes = None


_SERVE = "from redbook_qa.text.loaders.reader_process import serve; serve"


@functools.cache
def _reader_process() -> _ReaderProcess:
    return _ReaderProcess()


def _is_plain(file: Path, name: str) -> bool:
    # By name, and by its first bytes: a zip named .txt is inspected in a child too.
    if Path(name).suffix.lower() not in PLAIN_SUFFIXES:
        return False
    try:
        with file.open("rb") as handle:
            return not handle.read(4).startswith(b"PK\x03\x04")
    except OSError:
        return True  # the plain loader says what is wrong with it
