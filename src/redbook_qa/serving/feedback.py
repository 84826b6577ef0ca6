"""Thumbs up/down on answers, appended to a local JSON Lines file for later eval curation.

What one vote can cost is bounded: a record is at most :data:`MAX_FEEDBACK_RECORD_BYTES`
(the page also cuts questions at ``max_question_chars``), an answer takes at most
``max_votes_per_answer`` votes (counted by the page), and the file stops growing at
``max_feedback_bytes`` (``Settings``; defaults in :mod:`redbook_qa.config`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from redbook_qa.config import MAX_FEEDBACK_BYTES
from redbook_qa.errors import LimitError
from redbook_qa.models import AnswerMode, Citation

logger = logging.getLogger(__name__)

FEEDBACK_FILE = "feedback.jsonl"
Rating = Literal["up", "down"]
MAX_FEEDBACK_RECORD_BYTES = 64_000
"""Largest record: a 2,000-character question, its rewrite, and an answer of a few quotes."""


class Feedback(BaseModel):
    """One person's verdict on one answer, with what is needed to turn it into an eval case."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time: str = Field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    question: str
    searched_for: str
    answer_markdown: str
    citations: tuple[Citation, ...] = ()
    rating: Rating
    mode: AnswerMode


class FeedbackLog:
    """An append-only JSON Lines file of :class:`Feedback`, safe across threads and processes.

    Each record is written with one ``write`` to a file opened for appending, under a lock
    (and an advisory file lock where the platform has one), so concurrent records never
    interleave.
    """

    def __init__(self, path: Path | str, *, max_bytes: int = MAX_FEEDBACK_BYTES) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def append(self, feedback: Feedback) -> None:
        """Add one record to the end of the file, creating the file and its folder if needed.

        Raises:
            LimitError: The record is over :data:`MAX_FEEDBACK_RECORD_BYTES`, or the file
                would grow past ``max_bytes``; nothing is written.
        """
        line = (feedback.model_dump_json() + "\n").encode("utf-8")
        if len(line) > MAX_FEEDBACK_RECORD_BYTES:
            raise LimitError(
                f"this answer is too long to keep as feedback ({len(line):,} bytes, at most "
                f"{MAX_FEEDBACK_RECORD_BYTES:,}); ask a shorter question to rate its answer"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, _locked(self.path) as fd:
            if os.fstat(fd).st_size + len(line) > self.max_bytes:
                raise LimitError(
                    f"{self.path} has reached its {self.max_bytes:,}-byte limit; move it away "
                    "to collect more feedback, or raise REDBOOK_QA_MAX_FEEDBACK_BYTES"
                )
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        logger.debug("feedback %s recorded in %s", feedback.rating, self.path)

    def read(self) -> list[Feedback]:
        """Return every record, oldest first (none if the file does not exist yet)."""
        if not self.path.is_file():
            return []
        with self.path.open(encoding="utf-8") as lines:
            return [Feedback.model_validate_json(line) for line in lines if line.strip()]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl  # POSIX only; elsewhere the thread lock alone guards the file
        except ImportError:
            yield fd
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield fd
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
