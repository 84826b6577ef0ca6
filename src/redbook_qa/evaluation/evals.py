"""The seeds question set: load cases, run them through ``RedbookQA``, score and gate the report.

No LLM judge: every metric is computed from gold evidence spans and keywords written against
the articles (``evals/questions.jsonl``, documented in ``evals/README.md``).
"""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from redbook_qa.answering.conversation import standalone_question
from redbook_qa.evaluation import metrics
from redbook_qa.evaluation.cases import EvalCase, gold_spans, load_cases, source_texts

if TYPE_CHECKING:
    from redbook_qa.api import Mode, RedbookQA
    from redbook_qa.config import Settings

logger = logging.getLogger(__name__)

HEADLINE = (
    "hit@5",
    "mrr@10",
    "keyword_accuracy",
    "abstention_recall",
    "false_abstention_rate",
    "citation_validity",
    "quote_precision",
    "first_quote_on_point",
    "aspect_coverage",
)
LOWER_IS_BETTER = frozenset({"false_abstention_rate", "latency_p50_ms", "latency_p95_ms"})


class CaseResult(BaseModel):
    """How one case fared."""

    id: str
    kind: str
    question: str
    searched: str
    answerable: bool
    abstained: bool
    answer: str
    keyword_hit: bool
    hit1: float
    hit3: float
    hit5: float
    rr: float
    ndcg: float
    citations: int
    citations_valid: int
    citations_on_gold: int
    quotes_on_evidence: int = 0
    first_on_point: bool = False
    aspects_covered: float | None = None
    support: float = 0.0
    coverage: float
    latency_ms: float
    mode: str = "extractive"
    draft_supported: float | None = None


class EvalReport(BaseModel):
    """Per-case rows, overall figures and figures per kind."""

    created: str
    commit: str
    settings: dict[str, str | int | float | None]
    summary: dict[str, float]
    by_kind: dict[str, dict[str, float]]
    cases: list[CaseResult] = Field(default_factory=list)


def run_evals(
    qa: RedbookQA, cases: Sequence[EvalCase], corpus_dir: Path, *, mode: Mode | None = None
) -> EvalReport:
    """Ask every case, score retrieval, answers and citations, and summarise.

    ``mode`` picks the answerer (``"extractive"`` or ``"llm"``; the instance's default if
    ``None``); retrieval figures do not depend on it.
    """
    texts = source_texts(corpus_dir, cases)
    by_id = {case.id: case for case in cases}
    results = []
    for case in cases:
        history = [by_id[case.follows].question] if case.follows in by_id else []
        searched = standalone_question(case.question, history)
        results.append(_run_case(qa, case, searched, texts, mode=mode))
    settings: dict[str, str | int | float | None] = {
        "embedder": qa.store.manifest.embedder,
        "index": str(qa.store.manifest.index.get("kind")),
        "k": qa.settings.k,
        "max_tokens": qa.settings.max_tokens,
        "overlap": qa.settings.overlap,
        "mode": mode or qa.default_mode,
    }
    return EvalReport(
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        commit=_commit(),
        settings=settings,
        summary=summarise(results),
        by_kind={
            kind: summarise([r for r in results if r.kind == kind])
            for kind in sorted({r.kind for r in results})
        },
        cases=results,
    )


def _run_case(
    qa: RedbookQA, case: EvalCase, searched: str, texts: dict[str, str], *, mode: Mode | None
) -> CaseResult:
    gold = gold_spans(case, texts)
    passages = qa.retrieve(searched, k=10)
    relevant = [
        any(p.source == s and metrics.overlaps((p.start, p.end), span) for s, span in gold)
        for p in passages
    ]
    n_relevant = sum(
        1
        for c in qa.store.all_chunks()
        if any(c.source == s and metrics.overlaps((c.start, c.end), span) for s, span in gold)
    )
    started = time.perf_counter()
    answer = qa.ask(searched, mode=mode)
    latency = (time.perf_counter() - started) * 1000
    valid = sum(1 for c in answer.citations if texts.get(c.source, "")[c.start : c.end] == c.text)
    on_evidence = [
        any(c.source == s and metrics.overlaps((c.start, c.end), span) for s, span in gold)
        for c in answer.citations
    ]
    on_gold = sum(
        1
        for c, hit in zip(answer.citations, on_evidence, strict=True)
        if hit or (c.source == case.source and c.section == case.section)
    )
    aspects = None
    if case.aspects and case.answerable:
        cited = [(c.source, (c.start, c.end)) for c in answer.citations]
        aspects = metrics.aspect_coverage(
            cited, [[gold[i] for i in group] for group in case.aspects]
        )
    return CaseResult(
        id=case.id,
        kind=case.kind,
        question=case.question,
        searched=searched,
        answerable=case.answerable,
        abstained=answer.abstained,
        answer=answer.text,
        keyword_hit=not answer.abstained
        and metrics.contains_any(answer.text, case.answer_keywords),
        hit1=metrics.hit_at(relevant, 1),
        hit3=metrics.hit_at(relevant, 3),
        hit5=metrics.hit_at(relevant, 5),
        rr=metrics.reciprocal_rank(relevant, 10),
        ndcg=metrics.ndcg_at(relevant, n_relevant, 10),
        citations=len(answer.citations),
        citations_valid=valid,
        citations_on_gold=on_gold,
        quotes_on_evidence=sum(on_evidence),
        first_on_point=bool(on_evidence and on_evidence[0]),
        aspects_covered=aspects,
        support=answer.support,
        coverage=metrics.citation_coverage(answer.text, [c.text for c in answer.citations])
        if not answer.abstained
        else 0.0,
        latency_ms=latency,
        mode=answer.mode,
        draft_supported=answer.supported_ratio,
    )


def summarise(results: Sequence[CaseResult]) -> dict[str, float]:
    """Aggregate case results into the report's figures."""
    answerable = [r for r in results if r.answerable]
    answered = [r for r in results if not r.abstained]
    n_citations = sum(r.citations for r in results)
    gold_citations = sum(r.citations for r in answerable if not r.abstained)
    summary = {
        "cases": float(len(results)),
        "hit@1": _mean([r.hit1 for r in answerable]),
        "hit@3": _mean([r.hit3 for r in answerable]),
        "hit@5": _mean([r.hit5 for r in answerable]),
        "mrr@10": _mean([r.rr for r in answerable]),
        "ndcg@10": _mean([r.ndcg for r in answerable]),
        "keyword_accuracy": _mean([float(r.keyword_hit) for r in answerable]),
        "citation_validity": sum(r.citations_valid for r in results) / n_citations
        if n_citations
        else 1.0,
        "citation_precision": sum(r.citations_on_gold for r in answerable if not r.abstained)
        / gold_citations
        if gold_citations
        else 1.0,
        "citation_coverage": _mean([r.coverage for r in answered]),
        # Strict: a quote counts only if it overlaps a gold evidence span.
        "quote_precision": sum(r.quotes_on_evidence for r in answerable if not r.abstained)
        / gold_citations
        if gold_citations
        else 1.0,
        "first_quote_on_point": _mean(
            [float(r.first_on_point) for r in answerable if not r.abstained]
        ),
        "aspect_coverage": _mean(
            [r.aspects_covered for r in answerable if r.aspects_covered is not None]
        ),
        "latency_p50_ms": metrics.percentile([r.latency_ms for r in results], 50),
        "latency_p95_ms": metrics.percentile([r.latency_ms for r in results], 95),
    }
    summary.update(
        metrics.abstention_scores([r.abstained for r in results], [r.answerable for r in results])
    )
    drafted = [r.draft_supported for r in results if r.draft_supported is not None]
    if drafted:  # LLM mode: how much of the drafts the grounding check let through
        summary["draft_supported_rate"] = _mean(drafted)
        summary["llm_answer_rate"] = _mean([float(r.mode == "llm") for r in answered])
        summary["fallback_rate"] = _mean([float(r.mode == "llm-fallback") for r in answered])
    return summary


def check_floors(report: EvalReport, floors: dict[str, float]) -> list[str]:
    """Return one message per headline figure that fell below (or above) its floor."""
    failures = []
    for name, floor in floors.items():
        value = report.summary.get(name)
        if value is None:
            failures.append(f"{name}: missing from the report")
        elif name in LOWER_IS_BETTER and value > floor + 1e-9:
            failures.append(f"{name}: {value:.3f} is above its ceiling {floor:.3f}")
        elif name not in LOWER_IS_BETTER and value < floor - 1e-9:
            failures.append(f"{name}: {value:.3f} is below its floor {floor:.3f}")
    return failures


def format_table(report: EvalReport) -> str:
    """Render the summary and per-kind figures as a Markdown table."""
    columns = [
        "hit@5",
        "mrr@10",
        "keyword_accuracy",
        "quote_precision",
        "first_quote_on_point",
        "aspect_coverage",
        "abstention_recall",
        "false_abstention_rate",
        "latency_p50_ms",
    ]
    header = "| kind | cases | " + " | ".join(columns) + " |"
    lines = [header, "|" + " --- |" * (len(columns) + 2)]
    rows = {**report.by_kind, "**all**": report.summary}
    for kind, figures in rows.items():
        cells = [
            f"{figures.get(c, 0.0):.3f}" if "latency" not in c else f"{figures[c]:.1f}"
            for c in columns
        ]
        lines.append(f"| {kind} | {int(figures['cases'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(report: EvalReport, directory: Path, name: str = "seeds") -> Path:
    """Write the JSON report as ``<name>-latest.json`` under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-latest.json"
    path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def main(
    questions: Path,
    *,
    report_dir: Path,
    floors: Path | None,
    mode: Mode | None = None,
    settings: Settings | None = None,
) -> int:
    """Run the seeds eval from the command line: print the table, write the report, gate.

    The floors gate the extractive answers, CI's default; an LLM run reports without a gate.
    """
    from redbook_qa.api import RedbookQA

    qa = RedbookQA.open(settings)
    mode = mode or qa.default_mode
    report = run_evals(qa, load_cases(questions), qa.settings.corpus_dir, mode=mode)
    print(format_table(report))
    name = "seeds" if mode == "extractive" else f"seeds-{mode}"
    print(f"report: {write_report(report, report_dir, name)}")
    if mode != "extractive":
        extra = ("draft_supported_rate", "llm_answer_rate", "fallback_rate")
        print(" · ".join(f"{k} {report.summary[k]:.3f}" for k in extra if k in report.summary))
        return 0
    if floors is None or not floors.is_file():
        return 0
    failures = check_floors(report, json.loads(floors.read_text(encoding="utf-8")))
    for failure in failures:
        print(f"FLOOR: {failure}")
    return 1 if failures else 0


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"
