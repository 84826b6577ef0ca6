"""Score any BEIR-layout folder: document retrieval, answers found, and abstention.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``, optional ``answers``) and ``qrels/*.tsv`` (``query-id``, ``corpus-id``,
``score``). The corpus is indexed once into a cache keyed by the model and a content hash, so
a second run only encodes what changed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

from redbook_qa.errors import CorpusError
from redbook_qa.evaluation import metrics
from redbook_qa.retrieval.fusion import FusionMethod
from redbook_qa.text.corpus import load_jsonl

if TYPE_CHECKING:
    from redbook_qa.api import RedbookQA

logger = logging.getLogger(__name__)

RETRIEVE_K = 100
ANSWER_PASSAGES = 5


class Query(BaseModel):
    """A BEIR query, with gold answers when the set has them."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(alias="_id")
    text: str
    answers: list[str] = Field(default_factory=list)


def load_queries(path: Path) -> list[Query]:
    """Read a BEIR queries file."""
    if not path.is_file():
        raise CorpusError(f"queries file {path} does not exist")
    with path.open(encoding="utf-8") as lines:
        return [Query.model_validate_json(line) for line in lines if line.strip()]


def load_qrels(path: Path) -> dict[str, set[str]]:
    """Read a qrels TSV into query id → relevant document ids (score > 0)."""
    qrels: dict[str, set[str]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if float(row["score"]) > 0:
                qrels.setdefault(row["query-id"], set()).add(row["corpus-id"])
    return qrels


Confidences = list[tuple[float, bool]]
"""(confidence shown, first quote holds a gold answer) per question."""


def score_retrieval(
    qa: RedbookQA, queries: Sequence[Query], qrels: dict[str, set[str]]
) -> tuple[dict[str, float], Confidences]:
    """nDCG@10, Recall@10/100, MRR@10 over documents, and answer figures where known."""
    totals: dict[str, list[float]] = {}
    confidences: Confidences = []
    for query in tqdm(queries, desc="answerable", unit="q", leave=False):
        relevant_docs = qrels.get(query.id, set())
        passages = qa.retrieve(query.text, k=RETRIEVE_K)
        ranked = list(dict.fromkeys(p.source for p in passages))
        flags = [doc in relevant_docs for doc in ranked]
        row = {
            "ndcg@10": metrics.ndcg_at(flags, len(relevant_docs), 10),
            "recall@10": metrics.recall_at(flags, len(relevant_docs), 10),
            "recall@100": metrics.recall_at(flags, len(relevant_docs), 100),
            "mrr@10": metrics.reciprocal_rank(flags, 10),
        }
        if query.answers:
            started = time.perf_counter()
            answer = qa.ask(query.text)
            row["latency_ms"] = (time.perf_counter() - started) * 1000
            top = " ".join(p.text for p in passages[:ANSWER_PASSAGES])
            right = not answer.abstained and metrics.contains_any(answer.text, query.answers)
            first = answer.citations[0].text if answer.citations else ""
            row["answer_in_top5_passages"] = float(metrics.contains_any(top, query.answers))
            row["answer_in_answer_text"] = float(right)
            row["answer_in_first_quote"] = float(metrics.contains_any(first, query.answers))
            row["quotes_per_answer"] = float(len(answer.citations))
            row["false_abstention_rate"] = float(answer.abstained)
            confidences.append((answer.support, metrics.contains_any(first, query.answers)))
        for name, value in row.items():
            totals.setdefault(name, []).append(value)
    return _averages(totals), confidences


def score_abstention(
    qa: RedbookQA, queries: Sequence[Query]
) -> tuple[dict[str, float], Confidences]:
    """Share of unanswerable questions on which the answerer abstains."""
    answers = [qa.ask(q.text) for q in tqdm(queries, desc="unanswerable", unit="q", leave=False)]
    rate = sum(a.abstained for a in answers) / len(answers) if answers else 0.0
    return {"unanswerable_abstention_rate": rate}, [(a.support, False) for a in answers]


def crag(summary: dict[str, float], n_answerable: int, n_unanswerable: int) -> float:
    """CRAG-style score over both sets: +1 right, 0 refused, -1 wrong (or not refused)."""
    right = summary.get("answer_in_answer_text", 0.0) * n_answerable
    refused = summary.get("false_abstention_rate", 0.0) * n_answerable
    wrong = n_answerable - right - refused
    answered_unanswerable = (1 - summary.get("unanswerable_abstention_rate", 0.0)) * n_unanswerable
    total = n_answerable + n_unanswerable
    return (right - wrong - answered_unanswerable) / total if total else 0.0


def open_cached(
    directory: Path, *, cache_dir: Path, fusion: FusionMethod | None = None
) -> RedbookQA:
    """Index a BEIR corpus (cached on disk by model and content hash) and return the facade."""
    from redbook_qa.api import RedbookQA
    from redbook_qa.config import Settings

    documents = load_jsonl(directory / "corpus.jsonl")
    overrides: dict[str, object] = {"show_progress": True}
    if fusion:
        overrides["fusion"] = fusion
    settings = Settings.model_validate(overrides)
    digest = hashlib.sha256(
        "\n".join(f"{d.id}\t{d.title}\t{d.text}" for d in documents).encode("utf-8")
    ).hexdigest()[:16]
    model = hashlib.sha256(settings.embedding_model.encode("utf-8")).hexdigest()[:8]
    index_dir = cache_dir / f"{directory.name}-{model}-{digest}"
    return RedbookQA.from_documents(documents, index_dir=index_dir, settings=settings)


def main(
    directory: Path,
    *,
    unanswerable: Path | None,
    limit: int | None,
    fusion: FusionMethod | None,
    report_dir: Path,
    cache_dir: Path,
) -> int:
    """Run the BEIR evaluation from the command line and write its report."""
    qrels_files = sorted((directory / "qrels").glob("*.tsv"))
    qrels_file = next((p for p in qrels_files if p.stem == "test"), None)
    if qrels_file is None:
        raise CorpusError(f"{directory}/qrels/test.tsv is missing")
    qa = open_cached(directory, cache_dir=cache_dir, fusion=fusion)
    queries = load_queries(directory / "queries.jsonl")[:limit]
    summary, confidences = score_retrieval(qa, queries, load_qrels(qrels_file))
    if unanswerable is not None:
        refusable = load_queries(unanswerable)[:limit]
        refused, unanswered = score_abstention(qa, refusable)
        summary.update(refused)
        confidences += unanswered
        answerable = sum(1 for q in queries if q.answers)
        summary["crag_score"] = crag(summary, answerable, len(refusable))
    # Reliability of the confidence shown, over answerable and unanswerable questions.
    table = metrics.reliability_table([p for p, _ in confidences], [o for _, o in confidences])
    for low, high, n, predicted, observed in table:
        summary[f"confidence[{low:.1f},{high:.1f}) n"] = float(n)
        summary[f"confidence[{low:.1f},{high:.1f}) predicted"] = predicted
        summary[f"confidence[{low:.1f},{high:.1f}) observed"] = observed
    report = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": str(directory),
        "queries": len(queries),
        "settings": {
            "embedder": qa.store.manifest.embedder,
            "fusion": qa.settings.fusion,
            "alpha": qa.settings.alpha,
            "min_support": qa.settings.min_support,
            "index": qa.store.manifest.index.get("kind"),
            "chunks": qa.store.manifest.n_chunks,
        },
        "summary": summary,
    }
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / f"beir-{directory.name}-latest.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("| metric | value |\n| --- | --- |")
    for name, value in summary.items():
        print(f"| {name} | {value:.3f} |")
    print(f"report: {path}")
    return 0


def _averages(totals: dict[str, list[float]]) -> dict[str, float]:
    out = {name: sum(values) / len(values) for name, values in totals.items() if values}
    latencies = totals.get("latency_ms", [])
    if latencies:
        out["latency_ms"] = metrics.percentile(latencies, 50)
    return out
