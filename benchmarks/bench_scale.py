"""How VectorIndex kinds scale with corpus size: build time, memory, latency, recall.

Synthetic unit vectors stand in for chunk embeddings, so no model is needed:

- ``uniform``: i.i.d. Gaussian directions. The worst case for any approximate index: every
  point is nearly equidistant from every other (nearest-neighbour cosine ~0.2 at d=384).
- ``clustered``: a mixture of Gaussians, normalised. Topics of ``--cluster-size`` chunks around
  random unit centres, isotropic noise of norm ``--spread`` (cosine to the centre ~0.7 for
  spread 1). Closer to real embeddings, which are far from uniform.

For each size and index kind it measures build time, the serialized index size, the growth of
resident memory during the build, single-query latency (p50/p95, one query at a time as the
library's query path runs it) and recall@10 against exact brute-force search. The last column
is the 1-minute load average after the row: above the core count, other processes competed for
the CPU and the timings are pessimistic.

Usage::

    PYTHONPATH=src python benchmarks/bench_scale.py --sizes 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import faiss
import numpy as np
import numpy.typing as npt

from redbook_qa.stores.faiss_index import INDEX_FILE, IndexKind, VectorIndex

Matrix = npt.NDArray[np.float32]
_BLOCK = 100_000


def _normalise(rows: Matrix) -> Matrix:
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def _blocks(n: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, _BLOCK):
        yield start, min(n, start + _BLOCK)


def make_uniform(n: int, dim: int, rng: np.random.Generator) -> Matrix:
    out = np.empty((n, dim), np.float32)
    for start, stop in _blocks(n):
        out[start:stop] = _normalise(rng.standard_normal((stop - start, dim), dtype=np.float32))
    return out


def make_clustered(
    n: int, dim: int, rng: np.random.Generator, *, n_clusters: int, spread: float
) -> Matrix:
    centres = _normalise(rng.standard_normal((n_clusters, dim), dtype=np.float32))
    out = np.empty((n, dim), np.float32)
    for start, stop in _blocks(n):
        labels = rng.integers(n_clusters, size=stop - start)
        noise = rng.standard_normal((stop - start, dim), dtype=np.float32)
        out[start:stop] = _normalise(centres[labels] + noise * np.float32(spread / np.sqrt(dim)))
    return out


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def recall_at(found: npt.NDArray[np.int64], truth: npt.NDArray[np.int64], k: int) -> float:
    hits = sum(
        len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth, strict=True)
    )
    return hits / (len(truth) * k)


def _knob(params: dict[str, int | float | str]) -> str:
    keys = ("nlist", "nprobe", "ef_search", "hnsw_m", "pq_m")
    return " ".join(f"{key}={params[key]}" for key in keys if key in params) or "exact"


def bench_kind(workdir: Path, kind: str, k: int) -> dict[str, object]:
    """Build and query one kind in a fresh process, so memory and threads start clean."""
    gc.collect()
    base = np.array(np.load(workdir / "base.npy"))  # anonymous memory, like a real corpus
    queries = np.load(workdir / "queries.npy")
    truth = np.load(workdir / "truth.npy")
    rss_before = rss_bytes()
    started = time.perf_counter()
    index = VectorIndex.build(base, kind=cast(IndexKind, kind))
    build_s = time.perf_counter() - started
    rss_delta = rss_bytes() - rss_before
    index.save(workdir / kind)
    file_bytes = (workdir / kind / INDEX_FILE).stat().st_size
    shutil.rmtree(workdir / kind)
    latencies, found = [], []
    for row in range(len(queries)):
        tick = time.perf_counter()
        positions, _ = index.search(queries[row : row + 1], k)
        latencies.append(time.perf_counter() - tick)
        found.append(positions[0])
    ms = np.array(latencies) * 1e3
    return {
        "kind": kind,
        "params": _knob(index.params),
        "build_s": build_s,
        "file_mib": file_bytes / 2**20,
        "rss_mib": rss_delta / 2**20,
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "recall": recall_at(np.array(found), truth, k),
        "load": os.getloadavg()[0],
    }


def held_out(points: Matrix, n: int, k: int) -> tuple[Matrix, Matrix, npt.NDArray[np.int64]]:
    """Split off the rows after n as queries; return corpus, queries and their exact top k."""
    base, queries = points[:n], points[n:]
    _, truth = faiss.knn(queries, base, k, metric=faiss.METRIC_INNER_PRODUCT)
    return base, queries, truth


@contextmanager
def worker_dir(base: Matrix, queries: Matrix, truth: npt.NDArray[np.int64]) -> Iterator[Path]:
    """A temporary directory holding the arrays `bench_kind` reads."""
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        for name, array in (("base", base), ("queries", queries), ("truth", truth)):
            np.save(workdir / f"{name}.npy", array)
        del base, queries, truth  # the caller may free them while workers run
        yield workdir


def run_worker(workdir: Path, kind: str, k: int) -> dict[str, object]:
    command = [sys.executable, __file__, "--worker", str(workdir), kind, str(k)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


HEADER = (
    "| data | n | kind | parameters | build s | index MiB | RSS Δ MiB | p50 ms | p95 ms "
    "| recall@10 | load |\n|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"
)


def format_row(data: str, n: int, row: dict[str, object]) -> str:
    return (
        f"| {data} | {n:,} | {row['kind']} | {row['params']} | {row['build_s']:.1f} "
        f"| {row['file_mib']:.0f} | {row['rss_mib']:.0f} | {row['p50_ms']:.2f} "
        f"| {row['p95_ms']:.2f} | {row['recall']:.3f} | {row['load']:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--kinds", nargs="+", default=["flat", "hnsw", "ivfsq8", "ivfpq"])
    parser.add_argument("--data", nargs="+", default=["clustered", "uniform"])
    parser.add_argument("--cluster-size", type=int, default=100)
    parser.add_argument("--spread", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", nargs=3, metavar=("DIR", "KIND", "K"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        workdir, kind, k = args.worker
        print(json.dumps(bench_kind(Path(workdir), kind, int(k))), flush=True)
        return
    print(f"faiss {faiss.__version__}, {os.cpu_count()} cores, dim {args.dim}", flush=True)
    rows = []
    for data in args.data:
        for n in args.sizes:
            rng = np.random.default_rng(args.seed)
            total = n + args.queries
            if data == "uniform":
                points = make_uniform(total, args.dim, rng)
            else:
                clusters = max(1, n // args.cluster_size)
                points = make_clustered(
                    total, args.dim, rng, n_clusters=clusters, spread=args.spread
                )
            base, queries, truth = held_out(points, n, args.k)
            with worker_dir(base, queries, truth) as workdir:
                del points, base, queries
                for kind in args.kinds:
                    row = format_row(data, n, run_worker(workdir, kind, args.k))
                    rows.append(row)
                    print(row, flush=True)
    print("\n" + HEADER + "\n" + "\n".join(rows), flush=True)


if __name__ == "__main__":
    main()
