"""Approximate FAISS indexes: build HNSW or IVF, then tune search breadth to a recall target.

Used by :class:`redbook_qa.stores.faiss_index.VectorIndex` for kinds other than "flat".
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import faiss

_Vectors = npt.NDArray[np.float32]
_Positions = npt.NDArray[np.int64]
ParamValue = int | float | str

TARGET_RECALL = 0.95
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
PQ_BITS = 8

_MIN_POINTS_PER_LIST = 39  # FAISS k-means warns below this many training points per centroid
_TRAIN_POINTS_PER_LIST = 64
MIN_SIZE = {"flat": 0, "hnsw": 1, "ivfsq8": _MIN_POINTS_PER_LIST, "ivfpq": 2**PQ_BITS * 39}
# Search-breadth knob of each approximate kind: (params key, FAISS parameter name).
KNOBS = {
    "hnsw": ("ef_search", "efSearch"),
    "ivfsq8": ("nprobe", "nprobe"),
    "ivfpq": ("nprobe", "nprobe"),
}
_EF_SEARCH_MAX = 512
_TUNING_QUERIES = 100
_MIN_RELATIVE_GAIN = 0.01


def build_tuned(
    matrix: _Vectors, kind: str, *, seed: int
) -> tuple[faiss.Index, dict[str, ParamValue]]:
    """Build an approximate index of kind over matrix, its search breadth tuned."""
    index, params = _build_ann(matrix, kind, seed=seed)
    key, name = KNOBS[kind]
    top = int(params.get("nlist", _EF_SEARCH_MAX))
    params[key], params["tuned_recall"] = _tune(index, matrix, name, top, seed=seed)
    return index, params


@contextmanager
def omp_threads(count: int) -> Iterator[None]:
    """Run FAISS with count OpenMP threads, then restore the calling thread's setting."""
    import faiss

    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _build_ann(
    matrix: _Vectors, kind: str, *, seed: int
) -> tuple[faiss.Index, dict[str, ParamValue]]:
    import faiss

    n, d = matrix.shape
    ip = faiss.METRIC_INNER_PRODUCT
    if kind == "hnsw":
        graph = faiss.IndexHNSWFlat(d, HNSW_M, ip)
        graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        # Parallel insertion links nodes in thread-scheduling order; one thread is reproducible.
        with omp_threads(1):
            graph.add(matrix)
        return graph, {"kind": kind, "hnsw_m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION}
    nlist = _choose_nlist(n)
    params: dict[str, ParamValue] = {"kind": kind, "nlist": nlist, "seed": seed}
    index: faiss.IndexIVF
    if kind == "ivfpq":
        pq_m = max(m for m in range(1, max(1, d // 8) + 1) if d % m == 0)
        product = faiss.IndexIVFPQ(faiss.IndexFlatIP(d), d, nlist, pq_m, PQ_BITS, ip)
        product.pq.cp.seed = seed
        index = product
        params |= {"pq_m": pq_m, "pq_bits": PQ_BITS}
    else:
        sq8 = faiss.ScalarQuantizer.QT_8bit
        index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(d), d, nlist, sq8, ip)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, min(n, _TRAIN_POINTS_PER_LIST * nlist), replace=False))
    index.cp.seed = seed
    index.train(matrix[sample])
    index.add(matrix)
    return index, params


def _choose_nlist(n: int) -> int:
    """Pick about 4·sqrt(n) inverted lists (FAISS's rule of thumb), a well-trained power of 2."""
    nlist = 1 << round(math.log2(4 * math.sqrt(n)))
    while nlist > 1 and nlist * _MIN_POINTS_PER_LIST > n:
        nlist //= 2
    return nlist


def set_knob(index: faiss.Index, name: str, value: int) -> None:
    """Set a FAISS search parameter (efSearch, nprobe) on index."""
    import faiss

    faiss.ParameterSpace().set_index_parameter(index, name, value)


def _tune(
    index: faiss.Index, matrix: _Vectors, name: str, top: int, *, seed: int
) -> tuple[int, float]:
    """Double a search-breadth knob until recall@10 on sampled rows reaches TARGET_RECALL.

    Stops early once recall stops improving (quantisation caps it), and then keeps one doubling
    of headroom, because real questions sit farther from the corpus than its own rows do.
    """
    import faiss

    n = matrix.shape[0]
    steps = [2**i for i in range(4 if name == "efSearch" else 0, top.bit_length())]
    probes = np.sort(np.random.default_rng(seed).choice(n, min(n, _TUNING_QUERIES), replace=False))
    depth = min(10, n - 1)
    _, truth = faiss.knn(matrix[probes], matrix, depth + 1, metric=faiss.METRIC_INNER_PRODUCT)
    chosen, best = steps[0], -1.0
    for i, value in enumerate(steps):
        set_knob(index, name, value)
        _, found = index.search(matrix[probes], depth + 1)
        recall = _recall(probes, truth, found, depth)
        if recall >= TARGET_RECALL:
            chosen, best = steps[min(i + 1, len(steps) - 1)], recall
            break
        if recall < best * (1 + _MIN_RELATIVE_GAIN):
            break
        chosen, best = value, recall
    set_knob(index, name, chosen)
    return chosen, round(best, 4)


def _recall(probes: _Positions, truth: _Positions, found: _Positions, depth: int) -> float:
    """Share of each probe's true neighbours (itself excluded) that the index found."""
    if depth == 0:
        return 1.0
    hits = 0
    for probe, expected, got in zip(probes.tolist(), truth.tolist(), found.tolist(), strict=True):
        expected_top = [p for p in expected if p != probe][:depth]
        got_top = [p for p in got if p not in (probe, -1)][:depth]
        hits += len(set(expected_top) & set(got_top))
    return hits / (len(probes) * depth)
