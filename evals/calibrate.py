"""Sweep the abstention threshold (`min_support`) on unanswerable vs answerable questions.

Runs the seeds question set and, when present, the SQuAD 2.0 half in ../shared/evaldata, with
abstention switched off, records each answer's support (the calibrated confidence of
redbook_qa.answering.confidence), and prints for a sweep of thresholds the share of unanswerable
questions refused and of answerable ones wrongly refused. These use the shipped weights,
which saw both sets; the threshold itself is chosen on held-out folds by
evals/train_answering.py (`make train-answering`).

    python evals/calibrate.py [--limit 1000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from redbook_qa.answering.conversation import standalone_question
from redbook_qa.api import RedbookQA
from redbook_qa.config import Settings
from redbook_qa.evaluation.beir import load_queries, open_cached
from redbook_qa.evaluation.cases import load_cases

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ROOT.parent / "shared" / "evaldata" / "squad2-dev-cs224n"


def _supports(qa: RedbookQA, questions: list[str]) -> np.ndarray:
    return np.array([qa.ask(q).support for q in questions])


def _sweep(name: str, answerable: np.ndarray, unanswerable: np.ndarray) -> None:
    print(f"\n{name}: {len(answerable)} answerable, {len(unanswerable)} unanswerable")
    print("| min_support | abstention recall | false abstention | balanced accuracy |")
    print("| --- | --- | --- | --- |")
    for threshold in np.arange(0.02, 0.32, 0.02):
        recall = float(np.mean(unanswerable < threshold))
        false = float(np.mean(answerable < threshold))
        print(f"| {threshold:.2f} | {recall:.3f} | {false:.3f} | {(recall + 1 - false) / 2:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=1000)
    args = parser.parse_args()
    off = Settings(min_support=0.0)
    seeds = RedbookQA.open(off)
    cases = load_cases(ROOT / "evals" / "questions.jsonl")
    by_id = {c.id: c for c in cases}
    asked = [
        standalone_question(c.question, [by_id[c.follows].question] if c.follows else [])
        for c in cases
    ]
    scores = _supports(seeds, asked)
    flags = np.array([c.answerable for c in cases])
    _sweep("seeds evals", scores[flags], scores[~flags])
    if SQUAD.is_dir():
        squad = open_cached(SQUAD, cache_dir=ROOT / ".cache" / "beir")
        squad = RedbookQA(squad.store, squad.embedder, settings=off)
        answerable = load_queries(SQUAD / "queries.jsonl")[: args.limit]
        unanswerable = load_queries(SQUAD / "queries_unanswerable.jsonl")[: args.limit]
        _sweep(
            "SQuAD 2.0 half",
            _supports(squad, [q.text for q in answerable]),
            _supports(squad, [q.text for q in unanswerable]),
        )


if __name__ == "__main__":
    main()
