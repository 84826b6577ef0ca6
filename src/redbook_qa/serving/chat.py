"""A chat over the articles for the page: turns with memory, streaming, uploads, feedback.

Handlers take and return plain values (strings, lists of message dicts, :class:`Turn`s), so
they are tested without a browser; the Gradio page in ``ui.py`` only wires them to components.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from redbook_qa.api import Mode, RedbookQA
from redbook_qa.errors import RedbookQAError
from redbook_qa.models import Answer
from redbook_qa.serving.feedback import Feedback, FeedbackLog, Rating
from redbook_qa.serving.render import (
    answer_markdown,
    answer_to_markdown,
    article_rows,
    escape_markdown,
    sources_html,
)
from redbook_qa.text.corpus import read_document
from redbook_qa.text.uploads import ALLOWED_SUFFIXES, Article, read_upload

logger = logging.getLogger(__name__)

# A chat message as Gradio's Chatbot hands it over: "content" is a string, or (Gradio 6) a
# list of parts such as {"type": "text", "text": ...}.
Message = dict[str, Any]
_SEARCHING = "<p><em>Searching the articles…</em></p>"
_CURSOR = " ▍"


@dataclass(frozen=True)
class Turn:
    """One answered question: as typed, as searched, its answer, and where the answer sits."""

    question: str
    searched_for: str
    answer: Answer
    index: int  # position of the answer's message in the chat history
    votes: int = 0  # thumbs recorded on it (at most max_votes_per_answer)


@dataclass(frozen=True)
class Reply:
    """What the page shows after (part of) a turn."""

    history: list[Message]
    sources: str  # the sources panel, HTML
    markdown: str  # the answer with its quotes, as Markdown to copy
    turns: list[Turn]


_NOTHING_ADDED = "Nothing was added: fix or leave out the files marked ✗ and upload them again."
# Turns a visitor's session keeps (for feedback and the sources panel): bounded, so a long
# chat does not grow the server's memory without end (benchmarks/bench_load.py soak).
MAX_TURNS = 20


class ChatSession:
    """The page's handlers over one :class:`RedbookQA`, shared by every visitor.

    Per-visitor state (the history and the turns) is passed in and handed back, never kept
    here; what is kept is shared by all: the facade, the feedback file, and a cache of source
    texts for the sources panel. What a visitor can make the server keep is bounded by the
    facade's settings: a question is cut at ``max_question_chars`` before it is stored, a
    session keeps :data:`MAX_TURNS` turns, an answer takes ``max_votes_per_answer`` votes.

    ``link`` turns a corpus file into a URL the page can open (the Gradio page serves each
    cited PDF this way, so "open p. N" shows the page); without it no links are shown.
    """

    def __init__(
        self,
        qa: RedbookQA,
        *,
        feedback: FeedbackLog | None = None,
        link: Callable[[Path], str] | None = None,
    ) -> None:
        self.qa = qa
        self.feedback = feedback
        self._link = link
        self._texts: dict[str, tuple[str, str]] = {}  # source -> (digest, text)
        self._upload_lock = threading.Lock()

    def stream(
        self,
        message: str,
        history: Sequence[Message] | None,
        turns: Sequence[Turn] | None = None,
        *,
        k: int | None = None,
        mode: str | None = None,
        show_scores: bool = False,
    ) -> Iterator[Reply]:
        """Answer a chat message, yielding the page as it fills in; the last reply is final.

        A follow-up is first rewritten into a standalone question using the earlier
        questions; the answer's bubble shows it as "searched for: …". A streaming answerer's
        draft grows in the bubble until the checked answer replaces it.
        """
        history, turns = list(history or []), list(turns or [])
        message = _cut(message, self.qa.settings.max_question_chars)
        question = message.strip()
        earlier = [t.question for t in turns] or [
            _message_text(m) for m in history if m.get("role") == "user"
        ]
        searched = self.qa.standalone(question, earlier) if question else question
        shown = [*history, _user(message)]
        yield Reply([*shown, _assistant("…")], _SEARCHING, "", turns)
        draft = ""
        try:
            # Draft pieces first (from a streaming answerer), then always the checked Answer.
            for item in self.qa.ask_stream(searched, k=k or None, mode=_mode(mode)):
                if isinstance(item, str):
                    draft += item
                    bubble = _assistant(escape_markdown(draft) + _CURSOR)
                    yield Reply([*shown, bubble], _SEARCHING, "", turns)
                else:
                    turn = Turn(question, searched, item, index=len(shown))
                    yield self._final(turn, shown, turns, show_scores=show_scores)
        except (RedbookQAError, ValueError, TypeError) as err:
            yield Reply([*shown, _assistant(f"⚠️ {escape_markdown(str(err))}")], "", "", turns)

    def respond(
        self,
        message: str,
        history: Sequence[Message] | None,
        turns: Sequence[Turn] | None = None,
        *,
        k: int | None = None,
        mode: str | None = None,
        show_scores: bool = False,
    ) -> Reply:
        """Answer a chat message and return only the final reply (see :meth:`stream`)."""
        *_, last = self.stream(message, history, turns, k=k, mode=mode, show_scores=show_scores)
        return last

    def sources(self, turns: Sequence[Turn], *, show_scores: bool = False) -> str:
        """Render the sources panel for the latest turn (empty before the first answer)."""
        if not turns:
            return ""
        answer = turns[-1].answer
        texts = {c.source: self._source_text(c.source) for c in answer.citations}
        return sources_html(answer, texts, show_scores=show_scores, links=self._links(answer))

    def articles(self) -> list[list[str | int]]:
        """List the indexed articles: title, file, sections, chunk count."""
        return article_rows(self.qa.store.all_chunks())

    def upload(self, paths: Sequence[Path | str] | None) -> str:
        """Add uploaded files to the corpus, update the index, and say what changed (Markdown).

        All or nothing: each file is checked (in a child process, within the settings'
        limits) and reported, and only if every one passes are they indexed together and
        moved into the folder (see :meth:`RedbookQA.refresh`); otherwise nothing changes.
        """
        if self.qa.corpus_dir is None:
            return "✗ This page was opened without a corpus folder, so it cannot add articles."
        if not paths:
            return f"Choose {', '.join(ALLOWED_SUFFIXES)} files to add."
        with self._upload_lock:  # one upload at a time; each sees every file saved before it
            articles: list[Article] = []
            refused: list[str] = []
            for path in paths:
                try:
                    articles.append(read_upload(path, limits=self.qa.settings.read_limits))
                except (RedbookQAError, OSError) as err:
                    refused.append(f"✗ {escape_markdown(str(err))}")
            if refused:
                kept = [f"· {escape_markdown(a.name)}: not added" for a in articles]
                return "\n\n".join([*refused, *kept, _NOTHING_ADDED])
            return self._add(articles)

    def rate(self, turns: Sequence[Turn], index: int, *, rating: Rating) -> tuple[str, list[Turn]]:
        """Record a thumbs up or down on the answer at ``index``; say so, with the new turns.

        An answer takes at most ``max_votes_per_answer`` votes; the turns handed back count
        this one.
        """
        turns = list(turns)
        position = next((i for i, t in enumerate(turns) if t.index == index), None)
        if position is None:
            return "Only answers can be rated.", turns
        if self.feedback is None:
            return "Feedback is not recorded on this page.", turns
        turn = turns[position]
        if turn.votes >= self.qa.settings.max_votes_per_answer:
            return "This answer's votes are already recorded; thank you.", turns
        answer = turn.answer
        record = Feedback(
            question=turn.question,
            searched_for=turn.searched_for,
            answer_markdown=answer_to_markdown(answer, question=turn.question),
            citations=answer.citations,
            rating=rating,
            mode=answer.mode,
        )
        try:
            self.feedback.append(record)
        except RedbookQAError as err:
            return f"Not saved: {escape_markdown(str(err))}", turns
        turns[position] = replace(turn, votes=turn.votes + 1)
        return f"Thanks: your {'👍' if rating == 'up' else '👎'} is saved for the evals.", turns

    def _final(
        self, turn: Turn, shown: list[Message], turns: list[Turn], *, show_scores: bool
    ) -> Reply:
        answer = turn.answer
        rewritten = turn.searched_for if turn.searched_for != turn.question else ""
        bubble = _assistant(answer_markdown(answer, searched_for=rewritten))
        return Reply(
            [*shown, bubble],
            self.sources([turn], show_scores=show_scores),
            answer_to_markdown(answer, question=turn.question),
            [*turns, turn][-MAX_TURNS:],
        )

    def _add(self, articles: Sequence[Article]) -> str:
        try:
            change = self.qa.refresh(adding=articles)
        except (RedbookQAError, ValueError, OSError) as err:
            return f"✗ Nothing was added: {escape_markdown(str(err))}"
        logger.info("refreshed the index after an upload: %s", change.describe())
        lines = []
        for article in articles:
            outcome = (
                "added"
                if article.name in change.added
                else "updated"
                if article.name in change.changed
                else "unchanged"
            )
            lines.append(f"✓ {escape_markdown(article.name)}: {outcome}")
        return "\n\n".join([*lines, f"Index: {escape_markdown(change.describe())}."])

    def _source_text(self, source: str) -> str:
        digest = self.qa.store.manifest.documents.get(source, "")
        cached = self._texts.get(source)
        if cached is not None and cached[0] == digest:
            return cached[1]
        try:
            limits = self.qa.settings.read_limits
            text = read_document(self._corpus_root(), source, limits=limits)  # as indexed
        except (RedbookQAError, OSError, ImportError):
            return ""  # the panel then shows the quote alone
        self._texts[source] = (digest, text)
        return text

    def _links(self, answer: Answer) -> dict[str, str]:
        # Only PDFs: they open at the cited page, and a browser shows them without running
        # the file's scripts as the page's own (an uploaded .html would).
        if self._link is None:
            return {}
        root = self._corpus_root()
        return {
            c.source: self._link((root / c.source).resolve())
            for c in answer.citations
            if c.source.lower().endswith(".pdf") and (root / c.source).is_file()
        }

    def _corpus_root(self) -> Path:
        return Path(self.qa.corpus_dir or self.qa.settings.corpus_dir)


def _cut(message: str, max_chars: int) -> str:
    # Before anything is stored: the session's turns, the history, the feedback file.
    if not isinstance(message, str) or len(message) <= max_chars:
        return message
    return f"{message[:max_chars]} … (cut to {max_chars:,} characters)"


def _mode(value: str | None) -> Mode | None:
    # The facade checks the value and says which modes exist.
    return cast("Mode", value) if value else None


def _message_text(message: Message) -> str:
    content = message.get("content")
    parts = content if isinstance(content, list) else [content]
    texts = [p.get("text") if isinstance(p, dict) else p for p in parts]
    return html.unescape(" ".join(t for t in texts if isinstance(t, str)))


def _user(text: str) -> Message:
    return {"role": "user", "content": escape_markdown(text)}


def _assistant(text: str) -> Message:
    return {"role": "assistant", "content": text}
