"""BM25 at corpus scale on real text: build time, memory and per-query cost of the keyword side.

Chunks are made of real English sentences: the SQuAD paragraphs in ../shared/evaldata are
split into sentences and recombined (seeded) into runs of three, as many as asked; queries
are the set's real questions. Per query the retriever scores every chunk and takes a top-k
pool, so that is what is timed.

    python benchmarks/bench_lexical.py [--sizes 10000 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path

import numpy as np

from redbook_qa.stores.bm25 import LexicalIndex
from redbook_qa.text.sentences import split_sentences
from redbook_qa.text.terms import analyze

SQUAD = Path(__file__).resolve().parents[2] / "shared/evaldata/squad2-dev-cs224n"
POOL = 32


def _sentences() -> list[str]:
    out = []
    with (SQUAD / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            text = json.loads(line)["text"]
            out.extend(text[a:b] for a, b in split_sentences(text))
    return out


def _chunks(sentences: list[str], n: int, rng: np.random.Generator) -> list[str]:
    starts = rng.integers(0, len(sentences) - 3, size=n)
    return [" ".join(sentences[s : s + 3]) for s in starts]


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    sentences = _sentences()
    with (SQUAD / "queries.jsonl").open(encoding="utf-8") as lines:
        questions = [json.loads(line)["text"] for line in lines][: args.queries]
    rng = np.random.default_rng(0)
    print("| chunks | build s | peak RSS MiB | query p50 ms | query p95 ms |")
    print("| --- | --- | --- | --- | --- |")
    for n in args.sizes:
        texts = _chunks(sentences, n, rng)
        started = time.perf_counter()
        index = LexicalIndex.build(texts)
        build = time.perf_counter() - started
        timings = []
        for question in questions:
            started = time.perf_counter()
            scores = index.scores(analyze(question))
            np.argpartition(-scores, POOL - 1)[:POOL]
            timings.append((time.perf_counter() - started) * 1000)
        p95 = float(np.percentile(timings, 95))
        print(
            f"| {n:,} | {build:.1f} | {_rss_mib():.0f} | {statistics.median(timings):.2f} | "
            f"{p95:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
