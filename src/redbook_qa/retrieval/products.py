"""Small matrix products of the query path, run on one BLAS thread."""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from redbook_qa.embedding.base import Vectors


@functools.lru_cache(maxsize=1)
def _blas() -> object:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def small_product(matrix: Vectors, vector: Vectors) -> npt.NDArray[np.float32]:
    """Return ``matrix @ vector`` on one BLAS thread.

    On a 2-core machine, BLAS threads spinning up for a tiny product fight torch's threads
    and cost more than the product itself.
    """
    with _blas().limit(limits=1, user_api="blas"):  # type: ignore[attr-defined]
        return np.asarray(matrix @ vector, dtype=np.float32)


def pairwise_cosines(vectors: Vectors) -> tuple[tuple[float, ...], ...]:
    """Pairwise cosines of unit vectors, as plain tuples for a frozen value."""
    if not len(vectors):
        return ()
    with _blas().limit(limits=1, user_api="blas"):  # type: ignore[attr-defined]
        matrix = vectors @ vectors.T
    return tuple(tuple(float(x) for x in row) for row in matrix.tolist())
