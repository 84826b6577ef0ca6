"""Typed values that flow between the modules: documents, chunks, passages, citations, answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# "extractive": quoted sentences; "llm": generated sentences that passed the grounding check;
# "llm-fallback": the generated draft failed (or the server did), so the quotes were used.
AnswerMode = Literal["extractive", "llm", "llm-fallback"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Span(_Frozen):
    """A verbatim span of a source text: ``source_text[start:end] == text``."""

    text: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)

    @model_validator(mode="after")
    def _check_span(self) -> _Span:
        if self.end - self.start != len(self.text):
            raise ValueError(
                f"span [{self.start}, {self.end}) has length {self.end - self.start}, "
                f"but its text has {len(self.text)} characters"
            )
        return self


class Document(_Frozen):
    """One article as read from disk (or given by the caller).

    ``text`` is the file's content exactly as read for ``.txt``/``.md`` files, so every offset
    into it also holds against the file, and the text its loader extracted for other formats
    (:mod:`redbook_qa.text.loaders`); a PDF's page starts are in ``metadata``
    (:mod:`redbook_qa.text.pages`). ``source`` is the path relative to the corpus root (or the
    id for documents that come from code); it is what citations point to.
    """

    id: str = Field(min_length=1)
    title: str
    text: str
    source: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _default_source(self) -> Document:
        if not self.source:
            object.__setattr__(self, "source", self.id)
        return self


class Section(_Frozen):
    """A headed part of a document; digests under a group heading get their own ``title``."""

    title: str
    heading: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class Chunk(_Span):
    """A token-bounded, sentence-aligned window of one section."""

    id: str
    doc_id: str
    source: str
    title: str
    section: str
    ordinal: int = Field(ge=0)
    n_tokens: int = Field(ge=0)
    metadata: dict[str, str] = Field(default_factory=dict)


class Sentence(_Span):
    """One sentence of a chunk: the unit an extractive answer quotes."""

    chunk_id: str


class Passage(_Span):
    """A retrieved chunk with the scores that ranked it."""

    chunk_id: str
    source: str
    title: str
    section: str
    score: float
    dense_score: float = 0.0
    lexical_score: float = 0.0
    matched_terms: tuple[str, ...] = ()
    metadata: dict[str, str] = Field(default_factory=dict)
    page: int | None = Field(default=None, ge=1)  # where the passage starts, for a PDF


class Evidence(_Span):
    """A candidate answer sentence from a retrieved passage, scored against the question.

    ``score`` is retrieval's ranking of candidates; the answerer re-scores them for how
    well they answer (see :mod:`redbook_qa.answering.bearing`) from the signals kept here.
    """

    chunk_id: str
    source: str
    title: str
    section: str
    score: float
    similarity: float  # cosine of the sentence (with its title and heading) to the question
    coverage: float  # IDF-weighted share of the question's terms in the sentence (and heading)
    window_coverage: float = 0.0  # the same over the sentence and its neighbours
    neighbour_similarity: float = 0.0  # the higher cosine to the question of its neighbours
    # Window coverage of the question's names and numbers alone, and of its other terms
    # (1.0 when it has none): a swapped entity or a missing relation shows in one of them.
    name_coverage: float = 1.0
    relation_coverage: float = 1.0
    novelty: float = 0.0  # share of the sentence's terms the question and title lack
    new_terms: int = 0  # how many terms those are
    passage_score: float = 0.0  # fused score of the passage it comes from
    # The whitespace up to the next sentence when only whitespace lies between them, so the
    # two can be quoted as one verbatim span; "" when the next sentence is not adjacent.
    after: str = ""
    page: int | None = None  # the page the sentence starts on, for a PDF


class Context(_Frozen):
    """What retrieval hands the answerer: ranked passages and their scored sentences.

    ``question`` is the question as searched for (with its aliases' names, or the English
    gloss of a Chinese question).
    ``redundancy[i][j]`` is the cosine between evidence sentences ``i`` and ``j`` (for the
    first ``len(redundancy)`` of them), so quotes can be chosen to cover distinct points;
    ``unmatched`` is the IDF-weighted share of the question's terms that no top passage
    holds.
    """

    question: str
    passages: tuple[Passage, ...]
    evidence: tuple[Evidence, ...]
    redundancy: tuple[tuple[float, ...], ...] = ()
    unmatched: float = 0.0
    # The same, split: over the question's names (capitalised or CJK words) and over its
    # other terms, the relation asked about ("founded", "headquartered", "cost").
    unmatched_names: float = 0.0
    unmatched_relation: float = 0.0
    # The evidence sentences' index-time vectors, row i for evidence[i]: not a field (vectors
    # are never validated or serialised), carried along so that no later step fetches them.
    _vectors: npt.NDArray[np.float32] | None = PrivateAttr(default=None)

    def with_vectors(self, vectors: npt.NDArray[np.float32]) -> Context:
        """Return this context carrying its evidence sentences' vectors."""
        if len(vectors) != len(self.evidence):
            raise ValueError(f"{len(vectors)} vectors for {len(self.evidence)} evidence sentences")
        copy = self.model_copy()
        copy._vectors = vectors
        return copy

    @property
    def vectors(self) -> npt.NDArray[np.float32] | None:
        """The evidence sentences' vectors, or ``None`` if the context was built without them."""
        return self._vectors


class Citation(_Span):
    """A numbered quote that backs one or more sentences of an answer.

    ``start``/``end`` are offsets into the source's extracted text (for a .txt or .md file,
    the file itself); ``page`` is the PDF page the quote starts on, ``None`` for other files,
    so JSON written before pages existed still reads.
    """

    number: int = Field(ge=1)
    source: str
    title: str
    section: str
    score: float
    page: int | None = Field(default=None, ge=1)

    @classmethod
    def quoting(cls, evidence: Evidence, number: int, score: float | None = None) -> Citation:
        """Cite ``evidence`` as quote ``[number]`` (with its own score unless one is given)."""
        return cls(
            number=number,
            source=evidence.source,
            title=evidence.title,
            section=evidence.section,
            text=evidence.text,
            start=evidence.start,
            end=evidence.end,
            score=evidence.score if score is None else score,
            page=evidence.page,
        )


class Answer(_Frozen):
    """A cited answer, or a plain statement that the articles don't say."""

    question: str
    text: str
    citations: tuple[Citation, ...] = ()
    abstained: bool = False
    passages: tuple[Passage, ...] = ()
    mode: AnswerMode = "extractive"
    support: float = 0.0
    supported_ratio: float | None = None
    notice: str = ""

    @model_validator(mode="after")
    def _check_citations(self) -> Answer:
        if self.abstained and self.citations:
            raise ValueError("an abstaining answer carries no citations")
        numbers = [c.number for c in self.citations]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"citations must be numbered 1..n in order, got {numbers}")
        return self


class CorpusChange(_Frozen):
    """What an index refresh found: articles added, changed and removed, by source."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    n_chunks: int = 0

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def describe(self) -> str:
        """Say in one line what changed, for a person."""
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (
                ("added", self.added),
                ("updated", self.changed),
                ("removed", self.removed),
            )
            if names
        ]
        if not parts:
            return "no articles changed"
        return "; ".join(parts) + f" ({self.n_chunks} chunks indexed)"
