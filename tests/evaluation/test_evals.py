from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from redbook_qa.api import RedbookQA
from redbook_qa.evaluation.cases import load_cases
from redbook_qa.evaluation.evals import EvalReport, check_floors, run_evals
from redbook_qa.stores.faiss_index import VectorIndex

from conftest import DATA, ROOT

FLOORS = json.loads((ROOT / "evals" / "floors.json").read_text(encoding="utf-8"))


def _report(summary: dict[str, float]) -> EvalReport:
    return EvalReport(created="now", commit="x", settings={}, summary=summary, by_kind={})


def test_floors_flag_drops_and_rises_in_the_wrong_direction():
    floors = {"hit@5": 0.9, "false_abstention_rate": 0.1}
    assert check_floors(_report({"hit@5": 0.95, "false_abstention_rate": 0.05}), floors) == []
    failures = check_floors(_report({"hit@5": 0.5, "false_abstention_rate": 0.3}), floors)
    assert len(failures) == 2
    assert "below its floor" in failures[0]
    assert "above its ceiling" in failures[1]
    assert check_floors(_report({}), {"hit@5": 0.9}) == ["hit@5: missing from the report"]


@pytest.mark.integration
def test_small_eval_runs_end_to_end_with_follow_ups(embedder):
    qa = RedbookQA.from_dir(DATA, embedder=embedder)
    report = run_evals(qa, load_cases(DATA / "eval_cases.jsonl"), DATA)
    rows = {r.id: r for r in report.cases}
    assert rows["t-1"].hit1 == 1.0
    assert rows["t-1"].keyword_hit
    assert rows["t-2"].abstained
    assert rows["t-3"].searched.startswith("And kittens? (")
    assert report.summary["citation_validity"] == 1.0


@pytest.mark.integration
def test_seeds_eval_meets_the_recorded_floors(seeds_qa):
    report = run_evals(seeds_qa, load_cases(ROOT / "evals" / "questions.jsonl"), ROOT / "seeds")
    assert check_floors(report, FLOORS) == []


@pytest.mark.integration
def test_a_broken_retriever_fails_the_gate(seeds_qa):
    store = seeds_qa.store
    shuffled = np.random.default_rng(0).permutation(store.chunk_vectors)
    broken_store = dataclasses.replace(
        store, chunk_vectors=shuffled, index=VectorIndex.build(shuffled, kind="flat")
    )
    broken = RedbookQA(broken_store, seeds_qa.embedder, settings=seeds_qa.settings)
    report = run_evals(broken, load_cases(ROOT / "evals" / "questions.jsonl"), ROOT / "seeds")
    assert any(f.startswith(("hit@5", "mrr@10")) for f in check_floors(report, FLOORS))
