"""Text to unit vectors behind one protocol: the bundled MiniLM, a hash stand-in, a Ray cluster.

Importing the family is cheap: torch and sentence-transformers load on first use, Ray when a
:class:`RayEmbedder` is made.
"""

from __future__ import annotations

from redbook_qa.embedding.base import BUNDLED_MODEL, Embedder, Vectors
from redbook_qa.embedding.choice import embedder_named
from redbook_qa.embedding.hash import HashEmbedder
from redbook_qa.embedding.transformer import SentenceTransformerEmbedder

__all__ = [
    "BUNDLED_MODEL",
    "Embedder",
    "HashEmbedder",
    "SentenceTransformerEmbedder",
    "Vectors",
    "embedder_named",
]
