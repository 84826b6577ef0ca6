"""Calibrate the grounding check: which generated sentences do the articles support?

Runs the LLM answerer over the seeds question set (answerable cases the extractive gate lets
through), aligns every draft sentence with
:class:`redbook_qa.answering.grounding.Grounder`, and writes one JSON line per sentence
(question, sentence, best passage sentence, similarity, overlap, new facts) to ``--out``.
Sentences labelled by hand in ``evals/grounding_labels.jsonl`` (``{"sentence": ...,
"supported": true|false}``: does the quoted passage sentence state it?)
are then used to sweep the support threshold: the table gives, per threshold, the share of
unsupported sentences let through (to keep near zero) and of supported ones dropped.

    python evals/calibrate_grounding.py --local-llm [--limit 40]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from redbook_qa.answering.generated import LLMAnswerer
from redbook_qa.answering.grounding import W_SIMILARITY, passage_of
from redbook_qa.answering.prompting import build_messages
from redbook_qa.api import RedbookQA
from redbook_qa.config import Settings
from redbook_qa.evaluation.cases import load_cases
from redbook_qa.llm.local import LocalLLMServer
from redbook_qa.models import Passage
from redbook_qa.text.screening import is_flagged

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "evals" / "grounding_labels.jsonl"


def collect(qa: RedbookQA, questions: list[tuple[str, str]]) -> list[dict[str, object]]:
    """Draft an answer to each question and align its sentences; one row per sentence."""
    answerer = qa.llm_answerer
    assert isinstance(answerer, LLMAnswerer)
    rows: list[dict[str, object]] = []
    for case_id, question in questions:
        context = qa.context(question, k=qa.settings.k)
        if answerer.fallback.answer(question, context).abstained:
            continue
        passages = [p for p in context.passages if not is_flagged(p.metadata)]
        draft = _draft(answerer, question, passages)
        evidence = [e for e in context.evidence if passage_of(e, passages) is not None]
        for a in answerer.grounder.align(draft, evidence, passages, question=question):
            rows.append(
                {
                    "id": case_id,
                    "question": question,
                    "sentence": a.sentence,
                    "evidence": a.evidence.text if a.evidence else "",
                    "similarity": round(a.similarity, 4),
                    "overlap": round(a.overlap, 4),
                    "novel": list(a.novel),
                    # Failed for a reason other than the threshold (not a claim, new names).
                    "blocked": bool(a.reason) and not a.reason.startswith("support"),
                }
            )
        print(f"{case_id}: {len(rows)} sentences so far", flush=True)
    return rows


def _draft(answerer: LLMAnswerer, question: str, passages: list[Passage]) -> str:
    messages, _ = build_messages(question, passages, answerer.counter, answerer.context_tokens)
    return answerer.client.complete(messages, max_tokens=answerer.max_answer_tokens)


def sweep(rows: list[dict[str, object]], labels: dict[str, bool]) -> None:
    """Print, per threshold, unsupported sentences accepted and supported ones dropped."""
    labelled = [r for r in rows if r["sentence"] in labels]
    if not labelled:
        print(f"no labelled sentences: label some in {LABELS}")
        return
    similarity = np.array([float(r["similarity"]) for r in labelled])
    overlap = np.array([float(r["overlap"]) for r in labelled])
    blocked = np.array([bool(r.get("blocked", r["novel"])) for r in labelled])
    truth = np.array([labels[str(r["sentence"])] for r in labelled])
    print(f"{len(labelled)} labelled sentences: {truth.sum()} supported, {(~truth).sum()} not")
    print(
        f"blocked by the rules alone: {blocked[~truth].mean():.3f} of unsupported, "
        f"{blocked[truth].mean():.3f} of supported"
    )
    print("| w_similarity | threshold | unsupported accepted | supported dropped | accuracy |")
    print("| --- | --- | --- | --- | --- |")
    for w in (0.4, 0.5, W_SIMILARITY) if W_SIMILARITY not in (0.4, 0.5) else (0.4, 0.5, 0.6):
        support = w * similarity + (1 - w) * overlap
        for threshold in np.arange(0.50, 0.76, 0.025):
            accept = (support >= threshold) & ~blocked
            false_accept = float(np.mean(accept[~truth])) if (~truth).any() else 0.0
            false_drop = float(np.mean(~accept[truth])) if truth.any() else 0.0
            accuracy = float(np.mean(accept == truth))
            print(
                f"| {w:.1f} | {threshold:.3f} | {false_accept:.3f} | {false_drop:.3f} "
                f"| {accuracy:.3f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--out", type=Path, default=ROOT / "evals" / "reports" / "grounding.jsonl")
    parser.add_argument("--reuse", action="store_true", help="sweep the rows already in --out")
    args = parser.parse_args()
    labels = {}
    if LABELS.is_file():
        for line in LABELS.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                labels[row["sentence"]] = bool(row["supported"])
    if args.reuse:
        rows = [json.loads(x) for x in args.out.read_text(encoding="utf-8").splitlines()]
    else:
        cases = [c for c in load_cases(ROOT / "evals" / "questions.jsonl") if not c.follows]
        questions = [(c.id, c.question) for c in cases if c.answerable][: args.limit]
        with LocalLLMServer() as server:
            settings = Settings(llm_base_url=server.base_url, llm_model=server.model)
            rows = collect(RedbookQA.open(settings), questions)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    sweep(rows, labels)


if __name__ == "__main__":
    main()
