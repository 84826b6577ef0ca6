"""Index build time next to a bare `model.encode` of the chunk texts alone, same run.

A chunk-level pipeline (what LlamaIndex or Haystack pay for the same corpus) encodes each
chunk once; that bare encode of the chunk texts (title + heading + text, same model and batch
size) is the 1.00× here. Timed side by side on the same documents:

- ``build_store`` with ``sentence_vectors="pooled"``: one forward pass per chunk, sentence
  vectors pooled from its token embeddings
  (:meth:`~redbook_qa.embedding.SentenceTransformerEmbedder.embed_spans`);
- ``build_store`` with ``sentence_vectors="encoded"`` (the default): chunks run from the
  truncation check's token ids, then every quotable sentence encoded again with its title and
  heading.

Each row also prints how many texts the model encoded per chunk. The three are timed in
interleaved rounds and each keeps its best time, so a burst of load from another process
does not land on one of them only.

    python benchmarks/bench_build.py [--corpus DIR_OR_BEIR_JSONL] [--limit 300] [--rounds 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from redbook_qa.config import Settings
from redbook_qa.embedding.transformer import SentenceTransformerEmbedder
from redbook_qa.stores.base import ChunkingParams
from redbook_qa.stores.building import build_store
from redbook_qa.stores.memory import Store
from redbook_qa.text.chunking import embedding_text
from redbook_qa.text.corpus import load_corpus, load_jsonl
from redbook_qa.text.tokens import TiktokenCounter

SQUAD = Path(__file__).resolve().parents[2] / "shared/evaldata/squad2-dev-cs224n/corpus.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=SQUAD if SQUAD.is_file() else Path("seeds"))
    parser.add_argument("--limit", type=int, default=300, help="documents to index")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (best kept)")
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

    def bare(texts: list[str]) -> float:
        started = time.perf_counter()
        embedder.model.encode(texts, batch_size=64, normalize_embeddings=True)
        return time.perf_counter() - started

    def build(params: ChunkingParams) -> tuple[float, Store]:
        started = time.perf_counter()
        store = build_store(docs, embedder, counter, chunking=params)
        return time.perf_counter() - started, store

    pooled = chunking.model_copy(update={"sentence_vectors": "pooled"})
    times: dict[str, list[float]] = {"bare": [], "pooled": [], "encoded": []}
    for _ in range(args.rounds):  # interleaved, so drift in the machine's load hits all three
        seconds, store = build(pooled)
        times["pooled"].append(seconds)
        times["bare"].append(bare([embedding_text(c) for c in store.chunks]))
        times["encoded"].append(build(chunking)[0])
    best = {name: min(values) for name, values in times.items()}
    n = len(store.chunks)
    print(
        f"{len(docs)} documents → {n} chunks, {len(store.sentences)} quotable sentences; "
        f"best of {args.rounds} interleaved rounds (all: "
        + ", ".join(f"{k} {' / '.join(f'{v:.1f}' for v in vs)} s" for k, vs in times.items())
        + ")\n"
    )
    print("| step | seconds | texts encoded per chunk | ratio to bare encode of chunks |")
    print("| --- | --- | --- | --- |")
    rows = [
        ("bare model.encode(chunk texts)", "bare", 1.0),
        ('build_store, sentence_vectors="pooled" (one pass per chunk)', "pooled", 1.0),
        (
            'build_store, sentence_vectors="encoded" (default)',
            "encoded",
            (n + len(store.sentences)) / n,
        ),
    ]
    for label, name, per_chunk in rows:
        ratio = best[name] / best["bare"]
        print(f"| {label} | {best[name]:.1f} | {per_chunk:.2f} | {ratio:.2f}× |")


if __name__ == "__main__":
    main()
