"""Fit the answer-bearing and confidence models and write src/redbook_qa/answering/weights.json.

Data: SQuAD 2.0 dev half in ../shared/evaldata (BEIR layout; read, never copied). For every
question the real pipeline retrieves its context over the whole corpus; each candidate
sentence is labelled by whether it holds a gold answer span. Unanswerable questions give
contexts with no such sentence. The contexts are cached in .cache/answering/ (delete it
after a retrieval change).

- bearing: logistic regression, P(sentence holds the answer | features of
  redbook_qa.answering.bearing), over every candidate of answerable questions.
- confidence: logistic regression, P(a sentence the answer would quote holds the answer |
  features of redbook_qa.answering.confidence), over answerable and unanswerable questions alike,
  plus generated negatives: each answerable question asked of the corpus without the
  paragraph that answers it (the on-topic question the articles don't answer, which SQuAD's
  one-word swaps don't teach).
- continuation: logistic regression, P(the sentence after the best-ranked one holds the
  answer it lacks), read by redbook_qa.answering.continuation to widen quote [1].

All are fitted twice by article parity (train on even articles, score the odd ones, and the
reverse), so every figure printed is on articles the model did not see; the shipped weights
are then fitted on all of them. The seeds questions (evals/questions.jsonl) are trained on
only inside 5 folds (each scored by the models fitted without its fold), weighted
SEEDS_WEIGHT.

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
# In the confidence model too (held out, seeds 5-fold / SQuAD by parity, AUROC of answerable vs
# unanswerable): weight 1 gives seeds 0.768 / SQuAD 0.674, 3 gives 0.780 / 0.672, 10 gives
# 0.805 / 0.664 and the best CRAG on SQuAD (-0.124 vs -0.144 at 3, 2026-12-03).
CONFIDENCE_SEEDS_WEIGHT = SEEDS_WEIGHT
# Refuse at most this share of answerable SQuAD questions (held-out folds).
MAX_FALSE_ABSTENTION = 0.05
# Weight of a generated negative (an answerable question asked of the corpus without the
# paragraph that answers it) against a real question in the confidence model.
GENERATED_WEIGHT = 1.0
# Kinds of item drawn from SQuAD (the rest are seeds questions, by their evals kind).
SQUAD_KINDS = frozenset({"squad", "generated"})


@dataclass(frozen=True)
class ConfidenceWeights:
    """What a generated negative and a seeds question count in the confidence model."""

    generated: float = GENERATED_WEIGHT
    seeds: float = CONFIDENCE_SEEDS_WEIGHT

    def of(self, kind: str) -> float:
        return {"squad": 1.0, "generated": self.generated}.get(kind, self.seeds)


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
    return [_as_item(r, kind="squad", fold=r["fold"]) for r in answerable + unanswerable]


def removed_items(limit: int | None) -> list[Item]:
    """Generated negatives: answerable SQuAD questions asked of the corpus without their paragraph.

    This is the question users ask most often that the articles do not answer: on topic (the
    article's other paragraphs are still there) but about something no paragraph says ("Who
    founded it?"). SQuAD's own unanswerable questions are the other kind, one word swapped in a
    paragraph that is there. A question whose answer string still appears in the retrieved
    context (another paragraph says it too) is dropped: it is not a negative.
    """

    def build() -> list[dict]:
        from redbook_qa.evaluation.beir import open_cached

        qa = open_cached(SQUAD, cache_dir=ROOT / ".cache" / "beir")
        sources = sorted(json.loads(line)["_id"] for line in (SQUAD / "corpus.jsonl").open())
        rows = []
        for line in (SQUAD / "queries.jsonl").open(encoding="utf-8"):
            record = json.loads(line)
            doc = record["metadata"]["doc_id"]
            others = [s for s in sources if s != doc]
            context = qa.context(record["text"], filters={"source": others})
            said = " ".join(e.text for e in context.evidence).lower()
            if any(a.lower() in said for a in record.get("answers", []) if a.strip()):
                continue
            rows.append(
                {
                    "qid": "removed-" + record["_id"],
                    "question": record["text"],
                    "fold": int(doc.split("-a")[1].split("-")[0]) % 2,
                    "context": context.model_dump(mode="json"),
                }
            )
        return rows

    rows = _cached("squad-removed", build)[:limit]
    return [_as_item(r, kind="generated", fold=r["fold"]) for r in rows]


def seeds_items() -> list[Item]:
    """The evals/ questions with their contexts over seeds/ (cached)."""

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
        _as_item(r, kind=r["kind"], fold=2 + _digest(r["qid"].rstrip("ab")) % SEEDS_FOLDS)
        for r in _cached("seeds", build)
    ]


def _digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16)


def _as_item(row: dict, *, kind: str, fold: int) -> Item:
    """An Item from a cached row (generated negatives have no answer, gold or own wording)."""
    from redbook_qa.models import Context

    return Item(
        qid=row["qid"],
        question=row["question"],
        searched=row.get("searched", row["question"]),
        fold=fold,
        answerable=row.get("answerable", False),
        gold=[tuple(g) for g in row.get("gold", [])],
        answers=row.get("answers", []),
        kind=kind,
        context=Context.model_validate(row["context"]),
    )


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
    return 1.0 if item.kind in SQUAD_KINDS else SEEDS_WEIGHT


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
    items: Sequence[Item], rows: Sequence[list[dict[str, float]]], ranking: dict, bearing: dict
) -> tuple[list[dict[str, float]], list[int]]:
    """Per question: confidence features, and whether a sentence it would quote answers."""
    from redbook_qa.answering.answer_types import question_shape
    from redbook_qa.answering.confidence import confidence_features, context_signals

    features, labels = [], []
    for item, row in zip(items, rows, strict=True):
        probs, bears = probabilities(ranking, row), probabilities(bearing, row)
        shape = question_shape(item.searched)
        signals = context_signals(item.context, shape)  # type: ignore[arg-type]
        order = sorted(range(len(probs)), key=lambda k: -probs[k])
        ranked = [(item.evidence[k], probs[k], bears[k]) for k in order]
        features.append(confidence_features(signals, ranked, item.searched))
        shown = order[: quotes_shown(shape)]
        labels.append(int(item.answerable and any(item.labels()[k] for k in shown)))
    return features, labels


def quotes_shown(shape) -> int:
    """How many of the best-ranked sentences an answer may quote: what confidence is about.

    The answerer quotes up to two sentences for a question with one answer and up to four
    for a many-sided one; a user reads the answer whole, and a right second quote is a
    right answer. (Held out, labelling by quote [1] alone gave AUROC 0.815 / 0.663 against
    seeds traps / SQuAD unanswerables and refused 0.21 / 0.08 of them at the threshold the
    answerer uses; these counts give 0.887 / 0.677 and refuse 0.36 / 0.11.)
    """
    from redbook_qa.answering.extractive import quote_budget

    return quote_budget(shape)


def fit_confidence(
    features: list[dict[str, float]], labels: list[int], weights: list[float]
) -> dict:
    from redbook_qa.answering.confidence import CONFIDENCE_FEATURES

    x = matrix(features, CONFIDENCE_FEATURES)
    y = np.array(labels, dtype=np.float64)
    return as_model(CONFIDENCE_FEATURES, *fit_logistic(x, y, np.array(weights)))


def fit_all(
    items: Sequence[Item],
    rows: Sequence[list[dict[str, float]]],
    weights: ConfidenceWeights = ConfidenceWeights(),
) -> dict[str, dict]:
    """The ranking, bearing, confidence and continuation models (the last two read the first
    two's output)."""
    from redbook_qa.answering.bearing import BEARING_FEATURES, RANKING_FEATURES

    ranking = fit_bearing(items, rows, RANKING_FEATURES)
    bearing = fit_bearing(items, rows, BEARING_FEATURES)
    feats, labels = confidence_rows(items, rows, ranking, bearing)
    return {
        "ranking": ranking,
        "bearing": bearing,
        "confidence": fit_confidence(feats, labels, [weights.of(i.kind) for i in items]),
        "continuation": fit_continuation(items, rows, ranking, bearing),
    }


def continuation_pair(
    item: Item, row: list[dict[str, float]], ranking: dict, bearing: dict
) -> tuple[dict[str, float], int, int] | None:
    """(features, first holds the answer, next holds it) for the ranking's first sentence."""
    from redbook_qa.answering.continuation import continuation_features, following

    evidence = item.evidence
    if not evidence:
        return None
    ranks, bears = probabilities(ranking, row), probabilities(bearing, row)
    first = int(np.argmax(ranks))
    after = following(evidence[first], evidence)
    if after is None:
        return None
    k = evidence.index(after)
    features = continuation_features(
        row[first], row[k], rank=ranks[first], bearing=bears[first], next_bearing=bears[k]
    )
    labels = item.labels()
    return features, labels[first], labels[k]


def fit_continuation(
    items: Sequence[Item], rows: Sequence[list[dict[str, float]]], ranking: dict, bearing: dict
) -> dict:
    """P(the next sentence holds the answer the first one lacks), over answerable questions."""
    from redbook_qa.answering.continuation import CONTINUATION_FEATURES

    pairs = [
        (pair, row_weight(item))
        for item, row in zip(items, rows, strict=True)
        if item.answerable
        and any(item.labels())
        and (pair := continuation_pair(item, row, ranking, bearing)) is not None
    ]
    x = matrix([features for (features, _, _), _ in pairs], CONTINUATION_FEATURES)
    y = np.array([float(not a and b) for (_, a, b), _ in pairs])
    w = np.array([weight for _, weight in pairs])
    return as_model(CONTINUATION_FEATURES, *fit_logistic(x, y, w))


def cross_fit(
    items: list[Item],
    rows: list[list[dict[str, float]]],
    weights: ConfidenceWeights = ConfidenceWeights(),
) -> dict[int, tuple[dict, dict, dict, dict]]:
    """Ranking, confidence, bearing and continuation models fitted without each fold (key:
    the held-out fold)."""
    models = {}
    for fold in sorted({i.fold for i in items}):
        train = [k for k, i in enumerate(items) if i.fold != fold]
        fitted = fit_all([items[k] for k in train], [rows[k] for k in train], weights)
        models[fold] = (
            fitted["ranking"],
            fitted["confidence"],
            fitted["bearing"],
            fitted["continuation"],
        )
    return models


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, help="at most this many SQuAD questions of each kind")
    parser.add_argument(
        "--generated-weight",
        type=float,
        default=GENERATED_WEIGHT,
        help="weight of a generated negative in the confidence model (0: scored, not trained on)",
    )
    parser.add_argument(
        "--seeds-weight",
        type=float,
        default=CONFIDENCE_SEEDS_WEIGHT,
        help="weight of a seeds question in the confidence model",
    )
    parser.add_argument(
        "--write", action="store_true", help="write src/redbook_qa/answering/weights.json"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    squad = squad_items(args.limit)
    generated = removed_items(args.limit)
    weights = ConfidenceWeights(generated=args.generated_weight, seeds=args.seeds_weight)
    seeds = seeds_items()
    took = time.perf_counter() - started
    print(f"{len(squad)} SQuAD and {len(seeds)} seeds contexts in {took:.0f} s")
    items = squad + generated + seeds
    rows = bearing_rows(items)
    models = cross_fit(items, rows, weights)
    evaluate(items, rows, models)
    if args.write:
        tau = threshold(items, rows, models)
        payload = {
            **fit_all(items, rows, weights),
            "abstain_below": tau,
            "trained_on": "SQuAD 2.0 dev half and evals/questions.jsonl",
        }
        WEIGHTS.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {WEIGHTS}")
    return 0


def evaluate(all_items, all_rows, models) -> None:
    """Held-out figures: first sentence on point, and confidence at the abstention threshold.

    Negatives are scored against the answerable questions of their own collection: SQuAD's
    unanswerable and generated ones against SQuAD's answerable, the seeds' against the seeds'.
    """
    scored = held_out_confidence(all_items, all_rows, models)
    for name in ("SQuAD", "seeds"):
        picked = [
            k for k, i in enumerate(all_items) if (i.kind in SQUAD_KINDS) == (name == "SQuAD")
        ]
        pairs = [(all_items[k], all_rows[k]) for k in picked]
        first_base = first_model = n = 0
        for item, row in pairs:
            probs = probabilities(models[item.fold][0], row)
            labels = item.labels()
            if item.answerable and labels:
                n += 1
                first_base += labels[0]
                first_model += labels[int(np.argmax(probs))]
        print(
            f"{name}: best sentence holds the answer: retrieval order "
            f"{first_base / max(n, 1):.3f}, ranking model {first_model / max(n, 1):.3f} "
            f"({n} answerable with candidates)"
        )
        mine = [scored[k] for k in picked]
        answerable = sorted(p for p, _, a, _ in mine if a)
        tau = answerable[int(MAX_FALSE_ABSTENTION * len(answerable))] if answerable else 0.0
        print(f"   confidence threshold at {MAX_FALSE_ABSTENTION:.0%} false abstention: {tau:.3f}")
        for kind in sorted({k for _, _, a, k in mine if not a}):
            negatives = [p for p, _, a, k in mine if not a and k == kind]
            refused = sum(p < tau for p in negatives) / len(negatives)
            print(
                f"   {kind} unanswerable ({len(negatives)}): refused {refused:.3f}, "
                f"AUROC {auroc(answerable, negatives):.3f}"
            )
        reliability([(p, g, a) for p, g, a, k in mine if k != "generated"])
        continuation_table([(i, r) for i, r in pairs if i.answerable], models)


def continuation_table(pairs, models) -> None:
    """Held out: how often quote [1] holds the answer if it brings its next sentence at t."""
    from redbook_qa.answering.bearing import LinearModel
    from redbook_qa.answering.continuation import CONTINUE_ABOVE

    scored = []
    for item, row in pairs:
        ranking, _, bearing, continuation = models[item.fold]
        pair = continuation_pair(item, row, ranking, bearing) if any(item.labels()) else None
        if pair is not None:
            model = LinearModel(continuation["bias"], continuation["weights"])
            scored.append((model.probability(pair[0]), pair[1], pair[2]))
    for t in sorted({1.1, 0.5, 0.3, CONTINUE_ABOVE, 0.1}, reverse=True):
        hit = sum(bool(a or (p >= t and b)) for p, a, b in scored) / max(len(scored), 1)
        grown = sum(p >= t for p, _, _ in scored) / max(len(scored), 1)
        print(
            f"   next sentence brought at {t:.2f}: quote [1] holds the answer {hit:.3f}, "
            f"{grown:.3f} widened ({len(scored)} with a next sentence)"
        )


def auroc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """P(a random positive scores above a random negative), ties counting half."""
    if not positives or not negatives:
        return float("nan")
    neg = np.sort(np.asarray(negatives))
    pos = np.asarray(positives)
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below + 0.5 * ties).sum() / (len(pos) * len(neg)))


def held_out_confidence(items, rows, models) -> list[tuple[float, int, bool, str]]:
    """(confidence, a quote it shows on point, answerable, kind) of each item, by its fold's
    model."""
    out = []
    for item, row in zip(items, rows, strict=True):
        ranking, confidence, bearing, _ = models[item.fold]
        feats, gold = confidence_rows([item], [row], ranking, bearing)
        out.append((probabilities(confidence, feats)[0], gold[0], item.answerable, item.kind))
    return out


def threshold(items, rows, models) -> float:
    """The highest confidence threshold refusing at most 5 % of answerable questions, on
    the held-out SQuAD folds and the held-out seeds folds alike."""
    scored = held_out_confidence(items, rows, models)
    taus = []
    for squad in (True, False):
        ok = sorted(p for p, _, a, k in scored if a and (k == "squad") == squad)  # answerable
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
