"""redbook_qa: answers grounded in a folder of articles, every sentence citing an exact span.

Importing the package is cheap: the model, FAISS and Gradio load on first use.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from redbook_qa.errors import (
    ContextBudgetError,
    CorpusError,
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    RedbookQAError,
)
from redbook_qa.models import Answer, Citation, Document, Passage
from redbook_qa.version import __version__

if TYPE_CHECKING:
    from redbook_qa.answering.base import Answerer
    from redbook_qa.api import RedbookQA
    from redbook_qa.config import Settings
    from redbook_qa.embedding.base import Embedder
    from redbook_qa.stores.base import Filters
    from redbook_qa.stores.protocol import VectorStore

__all__ = [
    "Answer",
    "Answerer",
    "Citation",
    "ContextBudgetError",
    "CorpusError",
    "Document",
    "Embedder",
    "IndexCorruptError",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "Passage",
    "RedbookQA",
    "RedbookQAError",
    "Settings",
    "VectorStore",
    "__version__",
    "ask",
    "default_instance",
    "load_corpus",
    "retrieve",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())

_default: RedbookQA | None = None
_default_lock = threading.Lock()

_LAZY = {
    "Answerer": "redbook_qa.answering.base",
    "Embedder": "redbook_qa.embedding.base",
    "RedbookQA": "redbook_qa.api",
    "Settings": "redbook_qa.config",
    "VectorStore": "redbook_qa.stores.protocol",
    "load_corpus": "redbook_qa.text.corpus",
}


def __getattr__(name: str) -> Any:
    """Import heavy modules only when their names are first used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'redbook_qa' has no attribute {name!r}")


def default_instance() -> RedbookQA:
    """Return the shared instance over ``Settings()`` (corpus ``seeds/``, index ``embeddings/``)."""
    global _default
    with _default_lock:
        if _default is None:
            from redbook_qa.api import RedbookQA

            _default = RedbookQA.open()
        return _default


def ask(question: str, *, k: int | None = None, filters: Filters | None = None) -> Answer:
    """Answer ``question`` from the default corpus, citing exact spans, or abstain."""
    return default_instance().ask(question, k=k, filters=filters)


def retrieve(question: str, k: int = 5, *, filters: Filters | None = None) -> list[Passage]:
    """Return the ``k`` best passages of the default corpus for ``question``."""
    return default_instance().retrieve(question, k=k, filters=filters)
