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

# bm25s's defaults, written once: a database recomputing scores must use the same.
K1 = 1.5
B = 0.75


def bm25_idf(df: int, n_docs: int) -> float:
    """BM25 (Lucene) inverse document frequency of a term held by ``df`` of ``n_docs`` texts."""
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def document_terms(text: str) -> list[str]:
    """The terms BM25 counts in one text (an empty text still holds one, to keep positions)."""
    return analyze(text) or [""]


def term_scores(
    tf: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64], idf: float, avg_length: float
) -> Vector:
    """BM25 scores of one term in texts holding it ``tf`` times, computed as ``bm25s`` does.

    Lucene's variant with bm25s's rounding: the IDF is kept as float32, the term part is
    computed in float64 (its average length is a numpy float64), the product is stored as
    float32. So scores rebuilt from stored term counts equal bm25s's bit for bit.
    """
    tf64 = tf.astype(np.float64)
    norm = K1 * ((1 - B) + B * lengths.astype(np.float64) / avg_length)
    return (np.float64(np.float32(idf)) * (tf64 / (norm + tf64))).astype(np.float32)


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

        model = bm25s.BM25(k1=K1, b=B)
        model.index([document_terms(text) for text in texts], show_progress=False)
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

        The scores are precomputed per (term, text), as ``bm25s`` keeps them; summing a
        query's terms over these gives exactly :meth:`scores`. A database keeps counts
        instead and rebuilds these with :func:`term_scores` (tests check they are equal).
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
