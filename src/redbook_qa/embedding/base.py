"""The embedder protocol: text to unit vectors, one model for passages and questions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    pass


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
