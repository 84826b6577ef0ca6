"""Which embedder a model name means: ``hash-N`` the stand-in, else a sentence-transformers one."""

from __future__ import annotations

from redbook_qa.embedding.base import Embedder
from redbook_qa.embedding.hash import HashEmbedder
from redbook_qa.embedding.transformer import SentenceTransformerEmbedder


def embedder_named(name: str, *, device: str | None = None) -> Embedder:
    """Return the embedder ``name`` designates (as an index manifest records it).

    ``hash-32`` is the :class:`HashEmbedder` of dimension 32; any other name is a
    sentence-transformers model (``bundled:all-MiniLM-L6-v2``, a local path, a cached name),
    loaded on first use.
    """
    if name.startswith("hash-") and name[5:].isdigit():
        return HashEmbedder(int(name[5:]))
    return SentenceTransformerEmbedder(name, device=device)
