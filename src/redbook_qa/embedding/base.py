"""The embedder protocol: text to unit vectors, one model for passages and questions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]

"""float32 array of shape ``[n, dimension]``, each row of unit length."""

BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"

DEFAULT_BATCH_SIZE = 64


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors; the same model embeds passages and questions."""

    @property
    def name(self) -> str:
        """Identify the model, as recorded in an index manifest."""
        ...

    @property
    def dimension(self) -> int:
        """Return the length of every vector."""
        ...

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> Vectors:
        """Embed passages, in order."""
        ...

    def embed_query(self, text: str) -> Vectors:
        """Embed one question as a ``[1, dimension]`` array."""
        ...

    def count_tokens(self, text: str) -> int:
        """Count the model's own input tokens, special tokens included."""
        ...

    @property
    def max_tokens(self) -> int:
        """Return how many input tokens the model reads before it truncates."""
        ...


Span = tuple[int, int]
"""A character range ``[start, end)`` of a text."""


@dataclass(frozen=True)
class Tokenized:
    """Texts as an embedder's tokenizer sees them, computed once and reused.

    ``ids[i]`` are the model's input ids of ``texts[i]``, special tokens included and never
    truncated (so ``lengths`` is the truncation check); ``offsets[i][j]`` is the character range
    of token ``j`` in ``texts[i]`` (``(0, 0)`` for special tokens).
    """

    texts: tuple[str, ...]
    # int32: a 100k-chunk corpus holds ~20M ids and twice as many offsets.
    ids: tuple[npt.NDArray[np.int32], ...]
    offsets: tuple[npt.NDArray[np.int32], ...]
    """One ``[n_tokens, 2]`` array of character ranges per text."""

    @property
    def lengths(self) -> list[int]:
        """Model tokens of each text, special tokens included."""
        return [len(row) for row in self.ids]

    def select(self, rows: Iterable[int]) -> Tokenized:
        """The texts at ``rows``, in that order."""
        picked = list(rows)
        return Tokenized(
            texts=tuple(self.texts[r] for r in picked),
            ids=tuple(self.ids[r] for r in picked),
            offsets=tuple(self.offsets[r] for r in picked),
        )

    @staticmethod
    def concat(parts: Sequence[Tokenized]) -> Tokenized:
        """Join tokenisations end to end."""
        return Tokenized(
            texts=tuple(t for part in parts for t in part.texts),
            ids=tuple(i for part in parts for i in part.ids),
            offsets=tuple(o for part in parts for o in part.offsets),
        )


@runtime_checkable
class SpanEmbedder(Embedder, Protocol):
    """An embedder that also pools vectors of spans of a text from the same forward pass.

    One pass over a chunk gives the chunk's vector and, by pooling the chunk's token
    embeddings over each sentence's tokens ("late chunking"), a vector per sentence, so
    sentences are never encoded again on their own. Embedders without it (a custom one, the
    Ray cluster) get the plain path: every sentence encoded with its title and heading.
    """

    def tokenize(self, texts: Sequence[str]) -> Tokenized:
        """Tokenise texts once, untruncated, keeping each token's character offsets."""
        ...

    def embed_spans(
        self,
        tokenized: Tokenized,
        spans: Sequence[Sequence[Span]],
        *,
        show_progress: bool = False,
    ) -> tuple[Vectors, list[Vectors]]:
        """Embed each text once; return its vector and one vector per span of ``spans[i]``.

        Texts longer than :attr:`max_tokens` are truncated as ``embed_documents`` would.
        """
        ...
