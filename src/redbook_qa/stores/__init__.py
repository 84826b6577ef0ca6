"""Index stores: the protocol, the in-process store (FAISS + BM25), building, folders, homes.

The PostgreSQL store lives in :mod:`redbook_qa.stores.postgres` (extra ``pg``), imported only
when it is used.
"""

from __future__ import annotations

from redbook_qa.stores.base import BuildSpec, Candidates, ChunkingParams, Manifest
from redbook_qa.stores.building import build_store
from redbook_qa.stores.folder import load_store, save_store
from redbook_qa.stores.location import Folder, IndexHome, InMemory, home_for
from redbook_qa.stores.memory import Store
from redbook_qa.stores.protocol import VectorStore

__all__ = [
    "BuildSpec",
    "Candidates",
    "ChunkingParams",
    "Folder",
    "InMemory",
    "IndexHome",
    "Manifest",
    "Store",
    "VectorStore",
    "build_store",
    "home_for",
    "load_store",
    "save_store",
]
