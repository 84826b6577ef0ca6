"""Keyword search: BM25 over the chunks' search terms, built at index time (``bm25s``)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from redbook_qa.errors import IndexCorruptError, IndexNotFoundError
from redbook_qa.text.terms import analyze

if TYPE_CHECKING:
    import bm25s


Vector = npt.NDArray[np.float32]


def bm25_idf(df: int, n_docs: int) -> float:
    """BM25 (Lucene) inverse document frequency of a term held by ``df`` of ``n_docs`` texts."""
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


class LexicalIndex:
    """BM25 scores of every chunk for a list of query terms."""

    def __init__(self, model: bm25s.BM25) -> None:
        self._model = model
        indptr = np.asarray(model.scores["indptr"])
        self._df = np.diff(indptr).astype(np.float64)
        self._n_docs = int(model.scores["num_docs"])

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        """Index texts (one per chunk, in position order)."""
        import bm25s

        model = bm25s.BM25()
        # An empty document still needs a term so positions stay aligned.
        model.index([analyze(text) or [""] for text in texts], show_progress=False)
        return cls(model)

    @property
    def size(self) -> int:
        """Return the number of indexed texts."""
        return self._n_docs

    def scores(self, terms: Sequence[str]) -> npt.NDArray[np.float32]:
        """BM25 score of every text for ``terms`` (unknown terms score nothing)."""
        known = [t for t in terms if t in self._model.vocab_dict]
        if not known:
            return np.zeros(self._n_docs, dtype=np.float32)
        return np.asarray(self._model.get_scores(known), dtype=np.float32)

    def idf(self, term: str) -> float:
        """Inverse document frequency; a term absent from the corpus gets the highest."""
        column = self._model.vocab_dict.get(term)
        return bm25_idf(0 if column is None else int(self._df[column]), self._n_docs)

    def postings(self) -> Iterator[tuple[str, int, int, npt.NDArray[np.int64], Vector]]:
        """Yield each term's postings: (term, column, df, text positions, BM25 term scores).

        The scores are precomputed per (term, text), as ``bm25s`` keeps them. Summing a
        query's terms over these gives exactly :meth:`scores`: this is how a database keeps
        the same keyword index (see :mod:`redbook_qa.stores.postgres.store`).
        """
        data = np.asarray(self._model.scores["data"], dtype=np.float32)
        indices = np.asarray(self._model.scores["indices"], dtype=np.int64)
        indptr = np.asarray(self._model.scores["indptr"], dtype=np.int64)
        for term, column in self._model.vocab_dict.items():
            if column + 1 >= len(indptr):
                continue  # bm25s's placeholder for unknown words: no column, no postings
            lo, hi = int(indptr[column]), int(indptr[column + 1])
            yield str(term), int(column), hi - lo, indices[lo:hi], data[lo:hi]

    def save(self, directory: Path) -> None:
        """Write the BM25 matrices and vocabulary (numpy and JSON, no pickle)."""
        self._model.save(str(directory), show_progress=False)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        """Read an index written by :meth:`save`."""
        import bm25s

        if not (directory / "params.index.json").is_file():
            raise IndexNotFoundError(
                f"keyword index missing in {directory}; rebuild with `redbook-qa index`"
            )
        try:
            model = bm25s.BM25.load(str(directory), show_progress=False)
        except (OSError, ValueError, KeyError) as err:
            raise IndexCorruptError(
                f"keyword index in {directory} is unreadable ({err}); "
                "delete the index directory and rebuild with `redbook-qa index`"
            ) from err
        return cls(model)
