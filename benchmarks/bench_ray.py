"""Embedding throughput: in-process `embed_documents` vs Ray Data with 1 and 2 workers.

All three embed the same chunk texts (SQuAD paragraphs from ../shared/evaldata, chunked as the
index does, or `seeds/` repeated when that folder is missing), in one run, one after another.
Ray's fixed costs are timed apart from its throughput: starting the local cluster (once), and
starting the workers (each `embed_documents` call spawns them and loads the model), measured
by a call of one batch per worker. Steady-state throughput is marginal: the chunks the full
call embeds beyond that small one, over the extra time it takes; end-to-end includes start-up.

    nice python benchmarks/bench_ray.py [--limit 1500] [--address ADDR]
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from redbook_qa.embedding.base import DEFAULT_BATCH_SIZE, Vectors
from redbook_qa.embedding.ray import RayEmbedder
from redbook_qa.embedding.transformer import SentenceTransformerEmbedder
from redbook_qa.text.chunking import chunk_documents, embedding_text
from redbook_qa.text.corpus import load_corpus, load_jsonl
from redbook_qa.text.tokens import TiktokenCounter

SQUAD = Path(__file__).resolve().parents[2] / "shared/evaldata/squad2-dev-cs224n/corpus.jsonl"


def chunk_texts(limit: int) -> list[str]:
    docs = load_jsonl(SQUAD) if SQUAD.is_file() else load_corpus("seeds")
    texts = [embedding_text(c) for c in chunk_documents(docs, TiktokenCounter())]
    repeats = -(-limit // len(texts))
    # Repeats of seeds chunks are varied by their copy number, so no two texts are equal.
    return [t if r == 0 else f"{t} ({r})" for r in range(repeats) for t in texts][:limit]


def timed(embed: Callable[[list[str]], Vectors], texts: list[str]) -> tuple[Vectors, float]:
    started = time.perf_counter()
    vectors = embed(texts)
    return vectors, time.perf_counter() - started


def row(name: str, n: int, plain_s: float, total_s: float, start: tuple[int, float] | None) -> str:
    """One table line; steady throughput is marginal: (n - n_start) / (total - start call)."""
    if start is None:
        steady, start_text = n / total_s, "—"
    else:
        n_start, start_s = start
        extra_s = total_s - start_s
        steady, start_text = (
            (n - n_start) / extra_s if extra_s > 0 else float("nan"),
            f"{start_s:.1f}",
        )
    return (
        f"| {name} | {start_text} | {total_s:.1f} | {n / total_s:.0f} | {steady:.0f} | "
        f"{steady * plain_s / n:.2f}× | {plain_s / total_s:.2f}× |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=1500, help="chunks to embed")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--address", help="a running Ray cluster (default: start a local one)")
    args = parser.parse_args()
    texts = chunk_texts(args.limit)
    plain = SentenceTransformerEmbedder()
    plain.embed_documents(texts[:DEFAULT_BATCH_SIZE])  # load and warm up the model
    expected, plain_s = timed(plain.embed_documents, texts)
    lines = [row("in-process embed_documents", len(texts), plain_s, plain_s, None)]
    cluster = RayEmbedder(address=args.address)
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # it logs every run at INFO
    cluster.connect()
    drift = 0.0
    for workers in args.workers:
        ray = RayEmbedder(address=args.address, workers=workers)
        # One batch per worker: what every call pays to spawn the workers and load the model.
        n_start = workers * DEFAULT_BATCH_SIZE
        _, start_s = timed(ray.embed_documents, texts[:n_start])
        vectors, total_s = timed(ray.embed_documents, texts)
        drift = max(drift, float(np.abs(vectors - expected).max()))
        name = f"Ray Data, {workers} worker{'s' if workers > 1 else ''}"
        lines.append(row(name, len(texts), plain_s, total_s, (n_start, start_s)))
    cluster.close()
    where = "local Ray cluster" if args.address is None else f"Ray cluster at {args.address}"
    print(
        f"{len(texts)} chunks; {os.cpu_count()} CPUs, no GPU; load average after the run "
        f"{os.getloadavg()[0]:.1f}; {where} start: {cluster.startup_seconds:.1f} s; "
        f"largest difference from the in-process vectors: {drift:.1e}\n"
    )
    print(
        "| variant | worker start s | total s | chunks/s end-to-end | chunks/s steady | "
        "steady / plain | end-to-end / plain |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
