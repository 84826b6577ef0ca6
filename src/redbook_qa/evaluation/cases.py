"""The seeds question set: one case per line of ``evals/questions.jsonl``, and its gold spans."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from redbook_qa.errors import CorpusError


class EvalCase(BaseModel):
    """One question with its gold evidence (exact substrings of the source)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    question: str
    answerable: bool
    source: str | None
    section: str | None
    evidence: list[str]
    evidence_sources: list[str] | None = None
    answer_keywords: list[str]
    kind: str
    follows: str | None = None
    # Distinct points a complete answer makes: groups of indexes into ``evidence``.
    aspects: list[list[int]] | None = None


def load_cases(path: Path | str) -> list[EvalCase]:
    """Read eval cases, one JSON object per line."""
    file = Path(path)
    if not file.is_file():
        raise CorpusError(f"eval file {file} does not exist")
    with file.open(encoding="utf-8") as lines:
        return [EvalCase.model_validate_json(line) for line in lines if line.strip()]


def gold_spans(case: EvalCase, texts: dict[str, str]) -> list[tuple[str, tuple[int, int]]]:
    """Where each evidence string of ``case`` lies: (source, (start, end)).

    Raises:
        CorpusError: An evidence string is not in its source (the case is stale).
    """
    sources = case.evidence_sources or [case.source or ""] * len(case.evidence)
    spans = []
    for source, evidence in zip(sources, case.evidence, strict=True):
        start = texts.get(source, "").find(evidence)
        if start < 0:
            raise CorpusError(f"case {case.id}: evidence not found in {source}: {evidence!r}")
        spans.append((source, (start, start + len(evidence))))
    return spans


def source_texts(corpus_dir: Path, cases: Sequence[EvalCase]) -> dict[str, str]:
    """The text of every corpus file and every source the cases name, by relative path."""
    names = {s for c in cases for s in (c.evidence_sources or [c.source or ""]) if s}
    names |= {p.relative_to(corpus_dir).as_posix() for p in corpus_dir.rglob("*") if p.is_file()}
    texts = {}
    for name in names:
        path = corpus_dir / name
        if path.is_file():
            with path.open(encoding="utf-8", errors="replace") as handle:
                texts[name] = handle.read()
    return texts
