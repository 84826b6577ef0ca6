"""Deterministic SHA-256-seeded vectors: a stand-in embedder for wiring tests, never for quality."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from redbook_qa.embedding.base import Span, Tokenized, Vectors


class HashEmbedder:
    """Deterministic vectors seeded from SHA-256 of the text: for wiring tests, never quality.

    The same text gives the same vector in every process; different texts give unrelated
    vectors, so only exact repeats are "similar".
    """

    def __init__(self, dimension: int = 32) -> None:
        if dimension < 1:
            raise ValueError(f"dimension must be >= 1, got {dimension}")
        self._dimension = dimension

    @property
    def name(self) -> str:
        """Return a name that records the dimension."""
        return f"hash-{self._dimension}"

    @property
    def dimension(self) -> int:
        """Return the vector length."""
        return self._dimension

    @property
    def max_tokens(self) -> int:
        """Return a generous limit: hashing reads the whole text."""
        return 1_000_000

    def count_tokens(self, text: str) -> int:
        """Count whitespace-separated words."""
        return len(text.split())

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> Vectors:
        """Hash each text to a unit vector."""
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self._vector(text)
        return out

    def tokenize(self, texts: Sequence[str]) -> Tokenized:
        """Whitespace-separated words with their character offsets."""
        offsets = [
            np.asarray([m.span() for m in re.finditer(r"\S+", t)], dtype=np.int32).reshape(-1, 2)
            for t in texts
        ]
        return Tokenized(
            texts=tuple(texts),
            ids=tuple(np.arange(len(o), dtype=np.int32) for o in offsets),
            offsets=tuple(offsets),
        )

    def embed_spans(
        self,
        tokenized: Tokenized,
        spans: Sequence[Sequence[Span]],
        *,
        show_progress: bool = False,
    ) -> tuple[Vectors, list[Vectors]]:
        """Hash each text, and each span's own text: the same span text, the same vector."""
        texts = tokenized.texts
        pooled = [
            self.embed_documents([text[start:end] for start, end in rows]).reshape(
                len(rows), self._dimension
            )
            for text, rows in zip(texts, spans, strict=True)
        ]
        return self.embed_documents(texts), pooled

    def embed_query(self, text: str) -> Vectors:
        """Hash one question to a ``[1, dimension]`` unit vector."""
        return self._vector(text)[None, :]

    def _vector(self, text: str) -> Vectors:
        seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
        vector = np.random.default_rng(seed).standard_normal(self._dimension).astype(np.float32)
        return vector / np.float32(np.linalg.norm(vector))
