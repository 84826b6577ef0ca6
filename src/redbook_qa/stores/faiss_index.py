"""Vector index: find the stored unit vectors with the largest inner product to a query."""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import numpy.typing as npt

from redbook_qa.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from redbook_qa.stores.ann import (
    KNOBS,
    MIN_SIZE,
    ParamValue,
    build_tuned,
    omp_threads,
    set_knob,
)

if TYPE_CHECKING:
    import faiss

logger = logging.getLogger(__name__)

_Vectors = npt.NDArray[np.float32]
_Positions = npt.NDArray[np.int64]
IndexKind = Literal["auto", "flat", "hnsw", "ivfsq8", "ivfpq"]
# Extra nearest neighbours fetched past k, so that equal scores at the cut can be ordered by
# position the same way in every store (the PostgreSQL store uses it too).
TIE_MARGIN = 8

INDEX_FILE = "index.faiss"
# Measured by benchmarks/bench_scale.py (d=384, one thread; table in benchmarks/README.md):
# exact search of one query takes ~0.3 ms at 10k vectors, ~2 ms at 30k, 3-4 ms at 50k, ~7 ms
# at 100k and ~63 ms at 1M, while tuned IVF-SQ8 answers in 0.1-0.2 ms with recall@10 ~0.97-0.99
# up to 1M. Below 50k exact search stays under the 5 ms budget, so "auto" keeps exact,
# reproducible results; from 50k on it builds IVF-SQ8.
ANN_THRESHOLD = 50_000
_SMALL_BATCH = 20  # FAISS uses BLAS from 20 queries on; below, one thread avoids oversubscription


class VectorIndex:
    """Unit vectors addressed by position, searched by inner product (= cosine similarity).

    Create one with `VectorIndex.build` or `VectorIndex.load`.
    """

    def __init__(self, faiss_index: faiss.Index, params: Mapping[str, ParamValue]) -> None:
        """Wrap a built FAISS index and the parameters that describe it."""
        self._index = faiss_index
        self._params = dict(params)

    @classmethod
    def build(cls, vectors: _Vectors, *, kind: IndexKind = "auto", seed: int = 0) -> VectorIndex:
        """Index L2-normalised vectors; row i is found again as position i.

        Args:
            vectors: float32 array [n, d] with unit-length rows.
            kind: "flat" is exact. "hnsw" is a graph over the full vectors (fast, memory as
                flat plus links). "ivfsq8" and "ivfpq" cluster the vectors and quantise them to
                8 bits per dimension or to d/8 bytes. "auto" is "flat" below `ANN_THRESHOLD`
                (50k, where one exact 384-d query reaches 3-4 ms in benchmarks/bench_scale.py)
                and "ivfsq8" from there on. Approximate kinds raise their search
                breadth until recall@10 on a sample of rows reaches `TARGET_RECALL`.
            seed: seeds k-means and the tuning sample; the same vectors give the same file.

        Raises:
            ValueError: unknown kind, vectors not [n, d] or not unit length, or too few
                vectors for the kind.
        """
        if kind not in get_args(IndexKind):
            raise ValueError(f"kind must be one of {get_args(IndexKind)}, got {kind!r}")
        matrix = _checked_vectors(vectors)
        n = matrix.shape[0]
        chosen = ("ivfsq8" if n >= ANN_THRESHOLD else "flat") if kind == "auto" else kind
        if n < MIN_SIZE[chosen]:
            raise ValueError(
                f"a {chosen!r} index needs at least {MIN_SIZE[chosen]} vectors, got {n}; "
                'use kind="flat" or kind="auto"'
            )
        started = time.perf_counter()
        if chosen == "flat":
            index, params = _build_flat(matrix)
        else:
            index, params = build_tuned(matrix, chosen, seed=seed)
        elapsed = time.perf_counter() - started
        logger.info("indexed %d vectors (%s) in %.1f s", n, chosen, elapsed)
        return cls(index, params)

    @property
    def size(self) -> int:
        """Number of stored vectors."""
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        """Length of each stored vector."""
        return int(self._index.d)

    @property
    def kind(self) -> str:
        """The built kind: "flat", "hnsw", "ivfsq8" or "ivfpq" (never "auto")."""
        return str(self._params["kind"])

    @property
    def params(self) -> dict[str, ParamValue]:
        """Build and search parameters as plain JSON values, for the index manifest."""
        return dict(self._params)

    def search(self, queries: _Vectors, k: int) -> tuple[_Positions, _Vectors]:
        """Return positions and scores of the k best vectors for each query, best first.

        Equal scores keep the smaller position first. Both arrays have shape
        [q, min(k, size)]; fewer columns only if an approximate index found fewer candidates.

        Raises:
            ValueError: k is not positive, or queries are not shaped [q, dimension].
        """
        if k <= 0:
            raise ValueError(f"k must be a positive number of results, got {k}")
        matrix = np.ascontiguousarray(queries, dtype=np.float32)
        if matrix.ndim != 2:
            raise ValueError(f"queries must be shaped [q, d], got {matrix.shape}; use v[None, :]")
        if matrix.shape[1] != self.dimension:
            raise ValueError(
                f"query dimension {matrix.shape[1]} does not match index dimension "
                f"{self.dimension}; embed queries with the model that built the index"
            )
        wanted = min(k, self.size)
        if wanted == 0 or matrix.shape[0] == 0:
            return np.empty((len(matrix), 0), np.int64), np.empty((len(matrix), 0), np.float32)
        fetch = min(self.size, wanted + TIE_MARGIN)
        positions, scores = self._sorted_search(matrix, fetch)
        # Exact ties may continue past what FAISS returned: widen until the cut is clean.
        while fetch < self.size and _is_tied_at_cut(positions, scores, wanted):
            fetch = min(self.size, 2 * fetch)
            positions, scores = self._sorted_search(matrix, fetch)
        keep = min(wanted, int((positions >= 0).sum(axis=1).min()))
        return positions[:, :keep], scores[:, :keep]

    def _sorted_search(self, matrix: _Vectors, fetch: int) -> tuple[_Positions, _Vectors]:
        with omp_threads(1) if len(matrix) < _SMALL_BATCH else nullcontext():
            scores, positions = self._index.search(matrix, fetch)
        scores = np.where(positions >= 0, scores, -np.inf).astype(np.float32)
        order = np.lexsort((positions, -scores), axis=-1)
        return np.take_along_axis(positions, order, 1), np.take_along_axis(scores, order, 1)

    def save(self, directory: Path | str) -> None:
        """Write `index.faiss` into directory atomically (temporary file, then rename)."""
        import faiss

        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target, prefix=f".{INDEX_FILE}.", suffix=".tmp")
        os.close(handle)
        try:
            faiss.write_index(self._index, temporary)
            with open(temporary, "rb") as written:
                os.fsync(written.fileno())
            os.chmod(temporary, 0o644)
            os.replace(temporary, target / INDEX_FILE)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    @classmethod
    def load(
        cls, directory: Path | str, *, params: Mapping[str, object] | None = None
    ) -> VectorIndex:
        """Read `index.faiss` from directory and apply the search breadth saved in params.

        Args:
            directory: an index directory written by `save`.
            params: the `params` stored in the manifest. Their kind must match the file and
                their "ef_search"/"nprobe" are applied; without them the file's own are used.

        Raises:
            IndexNotFoundError: the file does not exist.
            IndexCorruptError: the file is truncated or is not a FAISS index.
            IndexMismatchError: the file holds another kind of index than params say.
        """
        import faiss

        path = Path(directory) / INDEX_FILE
        if not path.is_file():
            raise IndexNotFoundError(f"no vector index at {path}; build it with `redbook-qa index`")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as err:
            reason = str(err).rsplit(".cpp:", 1)[-1].split(": ", 1)[-1]
            raise IndexCorruptError(
                f"vector index {path} is truncated or unreadable ({reason}); "
                "delete it and rebuild with `redbook-qa index`"
            ) from err
        stored = _describe(index, path)
        if params is not None:
            stored = _merge_params(stored, params, path)
        if stored["kind"] in KNOBS:
            key, name = KNOBS[str(stored["kind"])]
            set_knob(index, name, int(stored[key]))
        return cls(index, stored)

    def __repr__(self) -> str:
        """Show kind, size and dimension."""
        return f"VectorIndex(kind={self.kind!r}, size={self.size}, dimension={self.dimension})"


def _checked_vectors(vectors: _Vectors) -> _Vectors:
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise ValueError(f"vectors must be shaped [n, d] with d > 0, got {matrix.shape}")
    squared = np.einsum("ij,ij->i", matrix, matrix)
    bad = np.flatnonzero(~(np.abs(squared - 1.0) <= 2e-3))  # also catches NaN
    if bad.size:
        norm = math.sqrt(abs(float(squared[bad[0]])))
        raise ValueError(
            f"vectors must be L2-normalised, but row {bad[0]} has norm {norm:.4g}; "
            "divide each row by its norm"
        )
    return matrix


def _is_tied_at_cut(positions: _Positions, scores: _Vectors, wanted: int) -> bool:
    """Whether a last fetched result ties the k-th, so more tied results may lie beyond."""
    return bool(np.any((positions[:, -1] >= 0) & (scores[:, -1] == scores[:, wanted - 1])))


def _build_flat(matrix: _Vectors) -> tuple[faiss.Index, dict[str, ParamValue]]:
    import faiss

    index = faiss.IndexFlatIP(matrix.shape[1])
    index.add(matrix)
    return index, {"kind": "flat"}


def _describe(index: faiss.Index, path: Path) -> dict[str, ParamValue]:
    """Recover the kind and search breadth of a FAISS index read from path."""
    import faiss

    if index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise IndexMismatchError(f"{path} does not score by inner product; rebuild the index")
    if isinstance(index, faiss.IndexFlat):
        return {"kind": "flat"}
    if isinstance(index, faiss.IndexHNSWFlat):
        return {"kind": "hnsw", "ef_search": index.hnsw.efSearch}
    if isinstance(index, faiss.IndexIVFScalarQuantizer | faiss.IndexIVFPQ):
        kind = "ivfpq" if isinstance(index, faiss.IndexIVFPQ) else "ivfsq8"
        return {"kind": kind, "nlist": index.nlist, "nprobe": index.nprobe}
    raise IndexMismatchError(f"{path} holds a {type(index).__name__}; rebuild the index")


def _merge_params(
    stored: dict[str, ParamValue], params: Mapping[str, object], path: Path
) -> dict[str, ParamValue]:
    """Overlay manifest params on those read from the file, after checking they agree."""
    if params.get("kind") != stored["kind"]:
        raise IndexMismatchError(
            f"manifest says the index kind is {params.get('kind')!r} but {path} holds a "
            f"{stored['kind']!r} index; rebuild with `redbook-qa index`"
        )
    merged = stored | {k: v for k, v in params.items() if isinstance(v, int | float | str)}
    key = KNOBS.get(str(stored["kind"]), ("", ""))[0]
    value = merged.get(key, 1)
    if type(value) is not int or value < 1:
        raise IndexMismatchError(f"manifest {key} must be a positive integer, got {value!r}")
    return merged
