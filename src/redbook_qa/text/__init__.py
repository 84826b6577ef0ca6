"""Files to documents to sections, sentences and token-bounded chunks, with exact offsets (pure).

The only I/O of the family is reading files (``loaders``: one per format, behind one
protocol), a corpus folder (``corpus``) and saving uploads (``uploads``); everything else
maps text to values.
"""

from __future__ import annotations

from redbook_qa.text.chunking import chunk_document, chunk_documents, embedding_text
from redbook_qa.text.corpus import load_corpus, load_jsonl
from redbook_qa.text.sentences import split_sentences
from redbook_qa.text.terms import analyze
from redbook_qa.text.tokens import TiktokenCounter, TokenCounter, WhitespaceCounter

__all__ = [
    "TiktokenCounter",
    "TokenCounter",
    "WhitespaceCounter",
    "analyze",
    "chunk_document",
    "chunk_documents",
    "embedding_text",
    "load_corpus",
    "load_jsonl",
    "split_sentences",
]
