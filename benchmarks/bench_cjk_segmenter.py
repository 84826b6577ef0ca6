"""Chinese question segmentation: own maximum matching vs jieba (plain, and with CC-CEDICT words).

For each segmenter: gloss coverage (the share of a Chinese question's content characters, names
and function words left out, that land in a word the dictionary glosses), the words of each
question, segmentation speed, and optionally the seeds eval's ``chinese`` row (``--eval``).

    PYTHONPATH=src REDBOOK_QA_INDEX_DIR=/tmp/idx python benchmarks/bench_cjk_segmenter.py --eval
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from redbook_qa.retrieval import translation
from redbook_qa.text.cjk import CJK_RUN
from redbook_qa.text.names import DEFAULT_ALIASES

Segmenter = Callable[[str, object], list[str]]


def _jieba_on_glossary(folder: Path) -> Segmenter:
    """jieba's max-probability path over the CC-CEDICT words alone (one count each)."""
    import jieba

    jieba.setLogLevel(60)
    words = sorted(w for w in translation._glossary() if CJK_RUN.fullmatch(w))
    path = folder / "cedict-words.txt"
    path.write_text("".join(f"{w} 1\n" for w in words), encoding="utf-8")
    tokenizer = jieba.Tokenizer(dictionary=str(path))
    tokenizer.tmp_dir = str(folder)
    tokenizer.initialize()
    return lambda run, glossary: tokenizer.lcut(run, HMM=False)


def _jieba(with_glossary: bool) -> Segmenter:
    import jieba

    jieba.setLogLevel(60)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    if with_glossary:
        for word in translation._glossary():
            if 1 < len(word) <= 6 and CJK_RUN.fullmatch(word):
                tokenizer.add_word(word)
    return lambda run, glossary: tokenizer.lcut(run, HMM=False)


def _questions(path: Path) -> list[str]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [r["question"] for r in rows if r.get("kind") == "chinese"]


def _coverage(questions: list[str], segment: Segmenter) -> float:
    glossary = translation._glossary()
    known = [n for group in DEFAULT_ALIASES for n in group if CJK_RUN.search(n)]
    covered = total = 0
    for question in questions:
        for name in known:
            question = question.replace(name, " ")
        for run in CJK_RUN.findall(question):
            for word in segment(run, glossary):
                if len(word) == 1 and word in translation._FUNCTION_WORDS:
                    continue
                total += len(word)
                covered += len(word) if word in glossary else 0
    return covered / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=Path("evals/questions.jsonl"))
    parser.add_argument("--eval", action="store_true", help="also run the seeds eval per segmenter")
    args = parser.parse_args()
    questions = _questions(args.questions)
    segmenters: dict[str, Segmenter] = {"own max matching": translation.segment}
    segmenters["jieba"] = _jieba(False)
    segmenters["jieba + CC-CEDICT words"] = _jieba(True)
    folder = Path(tempfile.mkdtemp(prefix="bench-cjk-"))
    started = time.perf_counter()
    segmenters["jieba on CC-CEDICT only"] = _jieba_on_glossary(folder)
    print(f"jieba on CC-CEDICT only: dictionary built in {time.perf_counter() - started:.1f} s")
    glossary = translation._glossary()
    rows = []
    for name, segment in segmenters.items():
        started = time.perf_counter()
        for _ in range(200):
            for q in questions:
                for run in CJK_RUN.findall(q):
                    segment(run, glossary)
        us = (time.perf_counter() - started) / (200 * len(questions)) * 1e6
        rows.append((name, _coverage(questions, segment), us))
        for q in questions:
            words = [w for r in CJK_RUN.findall(q) for w in segment(r, glossary)]
            print(f"{name:24} {' | '.join(words)}")
    print("\n| segmenter | gloss coverage | µs per question |\n| --- | --- | --- |")
    for name, coverage, us in rows:
        print(f"| {name} | {coverage:.2f} | {us:.0f} |")
    if args.eval:
        from redbook_qa.serving.cli import main as cli

        for name, segment in segmenters.items():
            print(f"\n## seeds eval with {name}")
            translation.segment = segment  # type: ignore[assignment]
            cli(["eval", "--report-dir", "/tmp/bench-cjk-report", "--floors", "/dev/null"])


if __name__ == "__main__":
    main()
