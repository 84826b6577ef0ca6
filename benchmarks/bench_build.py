"""Index build throughput next to a bare `model.encode` of the same texts, same run.

The pipeline embeds every chunk (title + heading + text) and every quotable sentence; the
bare baseline encodes exactly those texts with the same model and batch size. The ratio
build / bare is what the pipeline adds (chunking, BM25, FAISS, bookkeeping).

    python benchmarks/bench_build.py [--corpus DIR_OR_BEIR_JSONL] [--limit 600]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from redbook_qa.config import Settings
from redbook_qa.embedding.transformer import SentenceTransformerEmbedder
from redbook_qa.stores.base import ChunkingParams
from redbook_qa.stores.building import build_store
from redbook_qa.text.chunking import embedding_text
from redbook_qa.text.corpus import load_corpus, load_jsonl
from redbook_qa.text.tokens import TiktokenCounter

SQUAD = Path(__file__).resolve().parents[2] / "shared/evaldata/squad2-dev-cs224n/corpus.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=SQUAD if SQUAD.is_file() else Path("seeds"))
    parser.add_argument("--limit", type=int, default=600, help="documents to index")
    args = parser.parse_args()
    docs = load_jsonl(args.corpus) if args.corpus.suffix == ".jsonl" else load_corpus(args.corpus)
    docs = docs[: args.limit]
    settings = Settings()
    embedder = SentenceTransformerEmbedder(settings.embedding_model)
    embedder.embed_query("warm up")
    chunking = ChunkingParams(
        max_tokens=settings.max_tokens, overlap=settings.overlap, encoding=settings.encoding
    )
    counter = TiktokenCounter(settings.encoding)
    counter.count("warm up")
    started = time.perf_counter()
    store = build_store(docs, embedder, counter, chunking=chunking)
    build = time.perf_counter() - started
    texts = [embedding_text(c) for c in store.chunks] + [s.text for s in store.sentences]
    started = time.perf_counter()
    embedder.model.encode(texts, batch_size=64, normalize_embeddings=True)
    bare = time.perf_counter() - started
    print(
        f"{len(docs)} documents → {len(store.chunks)} chunks + {len(store.sentences)} "
        f"sentences = {len(texts)} texts\n"
    )
    print("| step | seconds | texts/s | ratio to bare encode |")
    print("| --- | --- | --- | --- |")
    print(f"| bare model.encode(texts) | {bare:.1f} | {len(texts) / bare:.0f} | 1.00× |")
    print(
        f"| build_store (whole pipeline) | {build:.1f} | {len(texts) / build:.0f} | "
        f"{build / bare:.2f}× |"
    )


if __name__ == "__main__":
    main()
