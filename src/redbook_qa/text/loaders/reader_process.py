"""The reader process: it forks one child per file, bounds it, and relays what it says.

Started by :mod:`redbook_qa.text.loaders.isolation` as a fresh interpreter, it imports the
parsers once; each file is then read by a fork of it (this process runs no other thread),
which limits its own address space (``RLIMIT_AS``, beyond what it has mapped at its start)
and CPU time before it opens the file, and sends back its log lines as they come, then the
extraction or the error. A child that dies (PDFium aborts when an allocation fails) or runs
past its deadline is reported as a :class:`CorpusError` naming the file and the limit.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from redbook_qa.errors import CorpusError, RedbookQAError
from redbook_qa.text.loaders.limits import ReadLimits

Reader = Callable[..., Any]
"""A module-level function ``reader(path, *, name, limits)``; it runs in the child."""
Reply = tuple[str, Any]
"""What comes back for a file: ``("ok", result)`` or ``("error", exception to raise)``, after
any number of ``("log", (logger, level, message))``: the reader's log lines, as they come."""

_PRELOAD = ("redbook_qa.text.loaders.choice", "pypdfium2", "docx", "lxml.etree", "trafilatura")
_KINDS = {".pdf": "this PDF", ".docx": "this Word document", ".html": "this web page"}


def serve(requests_fd: int, replies_fd: int) -> None:
    """Run as the reader process: read each requested file in a forked child, reply."""
    for module in _PRELOAD:
        with contextlib.suppress(ImportError):  # its loader names the extra when needed
            __import__(module)
    requests = Connection(requests_fd, writable=False)
    replies = Connection(replies_fd, readable=False)
    fork = multiprocessing.get_context("fork")  # this process runs no other thread
    while True:
        try:
            request = requests.recv()
        except EOFError:
            return  # the server has gone
        except Exception as err:  # a reader this process cannot import: say so, go on
            replies.send(("error", err))
            continue
        replies.send(_read_in_child(fork, request, replies.send))


def _read_in_child(fork: Any, request: tuple[Any, ...], relay: Callable[[Reply], None]) -> Reply:
    name, limits = request[2], request[3]
    receiver, sender = fork.Pipe(duplex=False)
    child = fork.Process(target=_run_child, args=(sender, *request))
    child.start()
    sender.close()  # the child's end: EOF here once the child is gone
    reply: Reply | None = None
    gone = False  # it died without a reply; else, without one, it ran out of time
    try:
        reply = next_reply(receiver, time.monotonic() + limits.seconds, relay)
    except EOFError:
        gone = True
    finally:
        if reply is not None:
            child.join(limits.seconds)  # it answered and is exiting
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
    if reply is not None:
        return reply
    code = child.exitcode
    if not gone or code == -signal.SIGXCPU:  # killed at the deadline, or over its CPU time
        return "error", CorpusError(late(name, limits))
    how = signal.Signals(-code).name if code is not None and code < 0 else f"exit status {code}"
    return "error", CorpusError(_expands(name, limits, f"its reader stopped with {how}"))


def next_reply(
    receiver: Connection, deadline: float, relay: Callable[[Reply], None]
) -> Reply | None:
    """Return the final reply, relaying log lines meanwhile; ``None`` at the deadline.

    Raises:
        EOFError: The other end is gone without a final reply.
    """
    while receiver.poll(max(0.0, deadline - time.monotonic())):
        message: Reply = receiver.recv()
        if message[0] != "log":
            return message
        relay(message)
    return None


def log_line(message: Reply) -> None:
    """Log a line the reader sent, as the logger it came from."""
    name, level, text = message[1]
    logging.getLogger(name).log(level, "%s", text)


def _run_child(
    sender: Connection,
    reader: Reader,
    path: Path,
    name: str,
    limits: ReadLimits,
) -> None:
    _limit_resources(limits)
    package = logging.getLogger("redbook_qa")
    package.setLevel(logging.DEBUG)  # the server's loggers decide what is shown
    package.propagate = False
    package.addHandler(_Forward(sender))
    reply: Reply
    try:
        reply = "ok", reader(path, name=name, limits=limits)
    except (RedbookQAError, ImportError, FileNotFoundError) as err:
        reply = "error", err
    except MemoryError:
        reply = "error", CorpusError(_expands(name, limits, "out of memory"))
    except Exception as err:  # a parser's own error (XPathEvalError, RecursionError, …)
        reply = "error", CorpusError(_failed(name, err))
    sender.send(reply)
    sender.close()


class _Forward(logging.Handler):
    """Sends the reader's log lines to the server, which logs them as its own."""

    def __init__(self, sender: Connection) -> None:
        super().__init__()
        self.sender = sender

    def emit(self, record: logging.LogRecord) -> None:
        """Send one record's logger, level and message."""
        self.sender.send(("log", (record.name, record.levelno, record.getMessage())))


def _limit_resources(limits: ReadLimits) -> None:
    import resource  # POSIX: this runs only where os.fork exists

    # CPU: SIGXCPU (reported as too slow) a second before SIGKILL; a backstop should nobody
    # be left to kill the child at its deadline.
    cpu = math.ceil(limits.seconds) + 1
    _lower(resource.RLIMIT_CPU, cpu, cpu + 1)
    start = _address_space()
    if start is not None:
        memory = start + limits.memory_mb * 2**20
        _lower(resource.RLIMIT_AS, memory, memory)


def _lower(kind: int, soft: int, hard: int) -> None:
    # Never above a hard limit already set (a container's, say): setrlimit would refuse.
    import resource

    _, current = resource.getrlimit(kind)
    if current != resource.RLIM_INFINITY:
        soft, hard = min(soft, current), min(hard, current)
    resource.setrlimit(kind, (soft, hard))


def _address_space() -> int | None:
    # What this process has mapped at its start (Linux); elsewhere RLIMIT_AS is not enforced.
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def late(name: str, limits: ReadLimits) -> str:
    """The message for a file whose reader ran out of time."""
    return (
        f"{name}: reading it took longer than {limits.seconds:g} s, so it was stopped; "
        "remove it or re-save it in a simpler form, or raise REDBOOK_QA_PARSE_SECONDS"
    )


def _expands(name: str, limits: ReadLimits, how: str) -> str:
    kind = _KINDS.get(Path(name).suffix.lower(), "this file")
    return (
        f"{name}: {kind} expands past {limits.memory_mb:,} MB while it is read ({how}); "
        "re-export it from the program that made it or remove it, or raise "
        "REDBOOK_QA_PARSE_MEMORY_MB"
    )


def _failed(name: str, err: Exception) -> str:
    return (
        f"{name} cannot be read ({type(err).__name__}: {err}); re-save it from the program "
        "that made it, or remove it from the corpus folder"
    )
