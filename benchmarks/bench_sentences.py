"""Sentence splitting: the regex splitter vs pysbd, on SQuAD answer spans and the seeds' quotes.

Measures, per splitter: the share of SQuAD 2.0 gold answer spans (every annotator's) cut across
two sentences, the share of the seeds eval's evidence quotes that start (or end) inside a
sentence rather than on its edge, the number of sentences, and the speed in characters per
millisecond. Data is read from ../shared (never copied here):

    PYTHONPATH=src python benchmarks/bench_sentences.py [--pysbd]
"""

from __future__ import annotations

import argparse
import bisect
import json
import time
from collections.abc import Callable
from pathlib import Path

from redbook_qa.text.sentences import split_sentences

Splitter = Callable[[str], list[tuple[int, int]]]
SQUAD = Path("../shared/evaldata/squad2-dev-cs224n")


def _pysbd() -> Splitter:
    import pysbd

    segmenter = pysbd.Segmenter(language="en", clean=False, char_span=True)

    def split(text: str) -> list[tuple[int, int]]:
        # Line breaks end sentences for both splitters; pysbd sees one line at a time.
        spans, offset = [], 0
        for line in text.split("\n"):
            for s in segmenter.segment(line) if line.strip() else []:
                start = offset + s.start + (len(s.sent) - len(s.sent.lstrip()))
                end = offset + s.start + len(s.sent.rstrip())
                if end > start:
                    spans.append((start, end))
            offset += len(line) + 1
        return spans

    return split


def _is_cut(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    """Whether [start, end) does not lie inside one sentence."""
    i = bisect.bisect_right([s for s, _ in spans], start) - 1
    return i < 0 or end > spans[i][1]


def squad_cut_share(split: Splitter, folder: Path) -> tuple[float, int, int, float]:
    docs = {}
    with (folder / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            docs[row["_id"]] = row["text"]
    started = time.perf_counter()
    spans = {doc_id: split(text) for doc_id, text in docs.items()}
    ms = (time.perf_counter() - started) * 1000
    cut = total = 0
    with (folder / "queries.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            meta = json.loads(line)["metadata"]
            for start, answer in meta["answer_spans"]:
                total += 1
                cut += _is_cut(spans[meta["doc_id"]], start, start + len(answer))
    chars = sum(len(t) for t in docs.values())
    return cut / total, total, sum(len(s) for s in spans.values()), chars / ms


def seeds_quote_share(split: Splitter, seeds: Path, questions: Path) -> tuple[float, float, int]:
    texts = [p.read_text(encoding="utf-8") for p in sorted(seeds.glob("*.txt"))]
    spans = [split(t) for t in texts]
    starts = [{s for s, _ in doc} for doc in spans]
    ends = [{e for _, e in doc} for doc in spans]
    bad_start = bad_end = total = 0
    for line in questions.read_text(encoding="utf-8").splitlines():
        for quote in json.loads(line).get("evidence", []):
            for i, text in enumerate(texts):
                at = text.find(quote)
                if at >= 0:
                    total += 1
                    bad_start += at not in starts[i]
                    bad_end += at + len(quote) not in ends[i]
                    break
    return bad_start / total, bad_end / total, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=SQUAD)
    parser.add_argument("--seeds", type=Path, default=Path("seeds"))
    parser.add_argument("--questions", type=Path, default=Path("evals/questions.jsonl"))
    parser.add_argument("--pysbd", action="store_true", help="also measure pysbd")
    args = parser.parse_args()
    splitters: dict[str, Splitter] = {"regex (redbook_qa)": split_sentences}
    if args.pysbd:
        splitters["pysbd"] = _pysbd()
    print(
        "| splitter | SQuAD answers cut | SQuAD sentences | seeds quotes starting mid-sentence "
        "| ending mid-sentence | chars/ms |\n| --- | --- | --- | --- | --- | --- |"
    )
    for name, split in splitters.items():
        cut, n_answers, n_sentences, speed = squad_cut_share(split, args.squad)
        bad_start, bad_end, n_quotes = seeds_quote_share(split, args.seeds, args.questions)
        print(
            f"| {name} | {cut:.2%} of {n_answers} | {n_sentences} | {bad_start:.2%} of "
            f"{n_quotes} | {bad_end:.2%} | {speed:,.0f} |"
        )


if __name__ == "__main__":
    main()
