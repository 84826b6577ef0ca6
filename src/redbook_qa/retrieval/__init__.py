"""Question to ranked passages and scored evidence: one Query, dense and keyword search, fused."""

from __future__ import annotations

from redbook_qa.retrieval.query import Query, make_query
from redbook_qa.retrieval.retriever import Retriever

__all__ = ["Query", "Retriever", "make_query"]
