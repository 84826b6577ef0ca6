"""Keyword search: BM25 over stemmed, stopword-free terms, built at index time (``bm25s``)."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from redbook_qa.errors import IndexCorruptError, IndexNotFoundError

if TYPE_CHECKING:
    import bm25s

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
# Function words and question words: they say how a question is asked, not what about.
STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each even few for
    from further had has have having he her here hers herself him himself his how i if in into
    is it its itself just let me more most my myself no nor not now of off on once only or
    other our ours out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself s t d ll
    re ve m don doesn didn isn aren wasn weren tell say says said according
    """.split()  # noqa: SIM905 - a word list reads best as text
)


@functools.lru_cache(maxsize=1)
def _stemmer() -> object:
    import Stemmer

    return Stemmer.Stemmer("english")


def analyze(text: str) -> list[str]:
    """Turn text into search terms: lowercased, stopwords dropped, Snowball-stemmed.

    CJK runs, which carry no spaces, become overlapping character bigrams.
    """
    words: list[str] = []
    for token in _TOKEN.findall(text.lower()):
        if _CJK_RUN.fullmatch(token):
            words.extend(token[i : i + 2] for i in range(max(1, len(token) - 1)))
        elif token not in STOPWORDS and (len(token) > 1 or token.isdigit()):
            words.append(token)
    ascii_words = [w for w in words if not _CJK_RUN.match(w)]
    stems = iter(_stemmer().stemWords(ascii_words))  # type: ignore[attr-defined]
    return [w if _CJK_RUN.match(w) else next(stems) for w in words]


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
        the same keyword index (see :mod:`redbook_qa.pgstore`).
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
