"""Fit the answer-bearing and confidence models and write src/redbook_qa/answering/weights.json.

Data: SQuAD 2.0 dev half in ../shared/evaldata (BEIR layout; read, never copied). For every
question the real pipeline retrieves its context over the whole corpus; each candidate
sentence is labelled by whether it holds a gold answer span. Unanswerable questions give
contexts with no such sentence. The contexts are cached in .cache/answering/ (delete it
after a retrieval change).

- bearing: logistic regression, P(sentence holds the answer | features of
  redbook_qa.answering.bearing), over every candidate of answerable questions.
- confidence: logistic regression, P(the best-bearing sentence holds the answer | features
  of redbook_qa.answering.confidence), over answerable and unanswerable questions alike.

Both are fitted twice by article parity (train on even articles, score the odd ones, and the
reverse), so every figure printed is on articles the model did not see; the shipped weights
are then fitted on all of them. The seeds questions (evals/questions.jsonl) are never
trained on: they are the second held-out set, scored with the cross-fitted SQuAD models.

Usage::

    python evals/train_answering.py [--limit N] [--write]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ROOT.parent / "shared" / "evaldata" / "squad2-dev-cs224n"
CACHE = ROOT / ".cache" / "answering"
WEIGHTS = ROOT / "src" / "redbook_qa" / "answering" / "weights.json"
L2 = 1.0
# Seeds rows count this many times a SQuAD row: blog-style lead-ins, filler and "why"
# questions are rare in Wikipedia, common in the articles users bring.
SEEDS_WEIGHT = 10.0
SEEDS_FOLDS = 5
# In the confidence model seeds questions count as SQuAD ones: it is calibrated on both.
CONFIDENCE_SEEDS_WEIGHT = 1.0
# Refuse at most this share of answerable SQuAD questions (held-out folds).
MAX_FALSE_ABSTENTION = 0.05


@dataclass
class Item:
    """One question with its retrieved context and what counts as its answer."""

    qid: str
    question: str
    searched: str
    fold: int  # SQuAD: article parity; seeds: -1 (never trained on)
    answerable: bool
    gold: list[tuple[str, int, int]]  # (source, start, end) spans that answer it
    answers: list[str]
    kind: str
    context: object  # redbook_qa.models.Context

    @property
    def evidence(self) -> list:
        from redbook_qa.answering.bearing import is_candidate

        return [e for e in self.context.evidence if is_candidate(e)]  # type: ignore[attr-defined]

    def labels(self) -> list[int]:
        return [
            int(any(e.source == s and e.start < b and a < e.end for s, a, b in self.gold))
            for e in self.evidence
        ]


def _cached(name: str, build: Callable[[], list[dict]]) -> list[dict]:
    path = CACHE / f"{name}.jsonl"
    if path.is_file():
        return [json.loads(line) for line in path.open(encoding="utf-8")]
    rows = build()
    CACHE.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")
    return rows


def squad_items(limit: int | None) -> list[Item]:
    """SQuAD questions with their contexts over the whole corpus (cached)."""
    from redbook_qa.models import Context

    def build() -> list[dict]:
        from redbook_qa.evaluation.beir import open_cached

        qa = open_cached(SQUAD, cache_dir=ROOT / ".cache" / "beir")
        rows = []
        for path, answerable in (("queries.jsonl", True), ("queries_unanswerable.jsonl", False)):
            for line in (SQUAD / path).open(encoding="utf-8"):
                record = json.loads(line)
                doc = record["metadata"]["doc_id"]
                spans = record["metadata"].get("answer_spans", [])
                rows.append(
                    {
                        "qid": record["_id"],
                        "question": record["text"],
                        "fold": int(doc.split("-a")[1].split("-")[0]) % 2,
                        "answerable": answerable,
                        "gold": [[doc, s, s + len(t)] for s, t in spans],
                        "answers": record.get("answers", []),
                        "context": qa.context(record["text"]).model_dump(mode="json"),
                    }
                )
        return rows

    rows = _cached("squad", build)
    answerable = [r for r in rows if r["answerable"]][:limit]
    unanswerable = [r for r in rows if not r["answerable"]][:limit]
    return [
        Item(
            qid=r["qid"],
            question=r["question"],
            searched=r["question"],
            fold=r["fold"],
            answerable=r["answerable"],
            gold=[tuple(g) for g in r["gold"]],
            answers=r["answers"],
            kind="squad",
            context=Context.model_validate(r["context"]),
        )
        for r in answerable + unanswerable
    ]


def seeds_items() -> list[Item]:
    """The evals/ questions with their contexts over seeds/ (cached)."""
    from redbook_qa.models import Context

    def build() -> list[dict]:
        from redbook_qa.answering.conversation import standalone_question
        from redbook_qa.api import RedbookQA
        from redbook_qa.evaluation.cases import gold_spans, load_cases, source_texts

        qa = RedbookQA.open()
        cases = load_cases(ROOT / "evals" / "questions.jsonl")
        texts = source_texts(qa.settings.corpus_dir, cases)
        by_id = {c.id: c for c in cases}
        rows = []
        for case in cases:
            history = [by_id[case.follows].question] if case.follows in by_id else []
            searched = standalone_question(case.question, history)
            gold = [[s, a, b] for s, (a, b) in gold_spans(case, texts)]
            rows.append(
                {
                    "qid": case.id,
                    "question": case.question,
                    "searched": searched,
                    "answerable": case.answerable,
                    "gold": gold,
                    "answers": case.answer_keywords,
                    "kind": case.kind,
                    "context": qa.context(searched).model_dump(mode="json"),
                }
            )
        return rows

    return [
        Item(
            qid=r["qid"],
            question=r["question"],
            searched=r["searched"],
            fold=2
            + int(hashlib.sha256(r["qid"].rstrip("ab").encode()).hexdigest(), 16) % SEEDS_FOLDS,
            answerable=r["answerable"],
            gold=[tuple(g) for g in r["gold"]],
            answers=r["answers"],
            kind=r["kind"],
            context=Context.model_validate(r["context"]),
        )
        for r in _cached("seeds", build)
    ]


def fit_logistic(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    weight: npt.NDArray[np.float64] | None = None,
    l2: float = L2,
) -> tuple[float, npt.NDArray[np.float64]]:
    """Newton's method on the L2-penalised weighted log-likelihood (standardised inside)."""
    weight = np.ones(len(x)) if weight is None else weight
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    z = np.hstack([np.ones((len(x), 1)), (x - mean) / std])
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -30, 30)))
        gradient = z.T @ (weight * (p - y)) + penalty * beta
        hessian = (z * (weight * p * (1 - p))[:, None]).T @ z + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-9:
            break
    coef = beta[1:] / std
    return float(beta[0] - (coef * mean).sum()), coef


def matrix(rows: Sequence[dict[str, float]], names: Sequence[str]) -> npt.NDArray[np.float64]:
    return np.array([[r.get(n, 0.0) for n in names] for r in rows], dtype=np.float64)


def as_model(names: Sequence[str], bias: float, coef: npt.NDArray[np.float64]) -> dict:
    return {"bias": bias, "weights": {n: float(c) for n, c in zip(names, coef, strict=True)}}


def bearing_rows(items: Sequence[Item]) -> list[list[dict[str, float]]]:
    from redbook_qa.answering.answer_types import question_shape
    from redbook_qa.answering.bearing import bearing_features

    return [bearing_features(i.evidence, question_shape(i.searched), i.searched) for i in items]


def row_weight(item: Item) -> float:
    return SEEDS_WEIGHT if item.kind != "squad" else 1.0


def fit_bearing(
    items: Sequence[Item], rows: Sequence[list[dict[str, float]]], names: Sequence[str]
) -> dict:
    chosen = [(r, i.labels(), row_weight(i)) for i, r in zip(items, rows, strict=True)]
    chosen = [c for c in chosen if any(c[1])]  # questions with an answer among the candidates
    x = matrix([f for r, _, _ in chosen for f in r], names)
    y = np.array([v for _, labels, _ in chosen for v in labels], dtype=np.float64)
    w = np.array([wt for r, _, wt in chosen for _ in r], dtype=np.float64)
    return as_model(names, *fit_logistic(x, y, w))


def probabilities(model: dict, rows: Sequence[dict[str, float]]) -> list[float]:
    from redbook_qa.answering.bearing import LinearModel

    linear = LinearModel(bias=model["bias"], weights=model["weights"])
    return [linear.probability(r) for r in rows]


def confidence_rows(
    items: Sequence[Item], rows: Sequence[list[dict[str, float]]], bearing: dict
) -> tuple[list[dict[str, float]], list[int]]:
    """Per question: confidence features, and whether its best-bearing sentence answers."""
    from redbook_qa.answering.answer_types import question_shape
    from redbook_qa.answering.confidence import confidence_features, context_signals

    features, labels = [], []
    for item, row in zip(items, rows, strict=True):
        probs = probabilities(bearing, row)
        shape = question_shape(item.searched)
        signals = context_signals(item.context, shape)  # type: ignore[arg-type]
        order = sorted(range(len(probs)), key=lambda k: -probs[k])
        ranked = [(item.evidence[k], probs[k]) for k in order]
        features.append(confidence_features(signals, ranked, item.searched))
        best = order[0] if order else -1
        labels.append(int(item.answerable and best >= 0 and item.labels()[best] == 1))
    return features, labels


def fit_confidence(
    features: list[dict[str, float]], labels: list[int], weights: list[float]
) -> dict:
    from redbook_qa.answering.confidence import CONFIDENCE_FEATURES

    x = matrix(features, CONFIDENCE_FEATURES)
    y = np.array(labels, dtype=np.float64)
    return as_model(CONFIDENCE_FEATURES, *fit_logistic(x, y, np.array(weights)))


def fit_all(items: Sequence[Item], rows: Sequence[list[dict[str, float]]]) -> dict[str, dict]:
    """The ranking, bearing and confidence models (confidence reads the ranking's output)."""
    from redbook_qa.answering.bearing import BEARING_FEATURES, RANKING_FEATURES

    ranking = fit_bearing(items, rows, RANKING_FEATURES)
    feats, labels = confidence_rows(items, rows, ranking)
    weights = [CONFIDENCE_SEEDS_WEIGHT if i.kind != "squad" else 1.0 for i in items]
    return {
        "ranking": ranking,
        "bearing": fit_bearing(items, rows, BEARING_FEATURES),
        "confidence": fit_confidence(feats, labels, weights),
    }


def cross_fit(
    items: list[Item], rows: list[list[dict[str, float]]]
) -> dict[int, tuple[dict, dict]]:
    """Ranking and confidence models fitted without each fold (key = the held-out fold)."""
    models = {}
    for fold in sorted({i.fold for i in items}):
        train = [k for k, i in enumerate(items) if i.fold != fold]
        fitted = fit_all([items[k] for k in train], [rows[k] for k in train])
        models[fold] = (fitted["ranking"], fitted["confidence"])
    return models


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, help="at most this many SQuAD questions of each kind")
    parser.add_argument(
        "--write", action="store_true", help="write src/redbook_qa/answering/weights.json"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    squad = squad_items(args.limit)
    seeds = seeds_items()
    took = time.perf_counter() - started
    print(f"{len(squad)} SQuAD and {len(seeds)} seeds contexts in {took:.0f} s")
    items = squad + seeds
    rows = bearing_rows(items)
    models = cross_fit(items, rows)
    evaluate(items, rows, models)
    if args.write:
        tau = threshold(items, rows, models)
        payload = {
            **fit_all(items, rows),
            "abstain_below": tau,
            "trained_on": "SQuAD 2.0 dev half and evals/questions.jsonl",
        }
        WEIGHTS.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {WEIGHTS}")
    return 0


def evaluate(all_items, all_rows, models) -> None:
    """Held-out figures: first sentence on point, and confidence at the abstention threshold."""
    for name in ("SQuAD", "seeds"):
        pairs = [
            (i, r)
            for i, r in zip(all_items, all_rows, strict=True)
            if (i.kind == "squad") == (name == "SQuAD")
        ]
        items, rows = [i for i, _ in pairs], [r for _, r in pairs]
        first_base = first_model = n = 0
        conf: list[tuple[float, int, bool]] = []
        for item, row in zip(items, rows, strict=True):
            bearing, confidence = models[item.fold]
            probs = probabilities(bearing, row)
            labels = item.labels()
            if item.answerable and labels:
                n += 1
                first_base += labels[0]
                first_model += labels[int(np.argmax(probs))]
            feats, gold = confidence_rows([item], [row], bearing)
            conf.append((probabilities(confidence, feats)[0], gold[0], item.answerable))
        print(
            f"{name}: best sentence holds the answer: retrieval order "
            f"{first_base / max(n, 1):.3f}, ranking model {first_model / max(n, 1):.3f} "
            f"({n} answerable with candidates)"
        )
        answerable = sorted(p for p, _, a in conf if a)
        tau = answerable[int(MAX_FALSE_ABSTENTION * len(answerable))] if answerable else 0.0
        refused = [p < tau for p, _, a in conf if not a]
        print(
            f"   confidence threshold at {MAX_FALSE_ABSTENTION:.0%} false abstention: {tau:.3f}; "
            f"unanswerable refused {sum(refused) / max(len(refused), 1):.3f}"
        )
        reliability(conf)


def held_out_confidence(items, rows, models) -> list[tuple[float, int, bool, str]]:
    """(confidence, first quote on point, answerable, kind) of each item, by its fold's model."""
    out = []
    for item, row in zip(items, rows, strict=True):
        bearing, confidence = models[item.fold]
        feats, gold = confidence_rows([item], [row], bearing)
        out.append((probabilities(confidence, feats)[0], gold[0], item.answerable, item.kind))
    return out


def threshold(items, rows, models) -> float:
    """The highest confidence threshold refusing at most 5 % of answerable questions, on
    the held-out SQuAD folds and the held-out seeds folds alike."""
    scored = held_out_confidence(items, rows, models)
    taus = []
    for squad in (True, False):
        ok = sorted(p for p, _, a, k in scored if a and (k == "squad") == squad)
        taus.append(ok[int(MAX_FALSE_ABSTENTION * len(ok))] if ok else 1.0)
    print(f"abstention threshold: {min(taus):.3f} (SQuAD alone {taus[0]:.3f}, seeds {taus[1]:.3f})")
    return round(min(taus), 3)


def reliability(conf: list[tuple[float, int, bool]]) -> None:
    from redbook_qa.evaluation.metrics import reliability_table

    for low, high, n, predicted, observed in reliability_table(
        [p for p, _, _ in conf], [bool(g) for _, g, _ in conf]
    ):
        print(
            f"   [{low:.1f}, {high:.1f}): n={n:5d} "
            f"predicted {predicted:.3f} observed {observed:.3f}"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    raise SystemExit(main())
