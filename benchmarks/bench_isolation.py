"""What reading a file in a child process costs: per file, against reading it in this process.

For each kind of file (a seed as .txt, the seeds printed to a 5-page PDF, a .docx, a saved
web page), the median of ``--rounds`` reads in this process (``extract_here``) and in a fork
of the reader process (``read_isolated``; the reader process is started before timing, and
its start is timed once on its own). Then a folder of ``--files`` PDFs loaded both ways.
Prints markdown tables. Run: ``python benchmarks/bench_isolation.py`` (dev extra).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from redbook_qa.text.corpus import load_corpus  # noqa: E402
from redbook_qa.text.loaders import ReadLimits, isolation  # noqa: E402
from redbook_qa.text.loaders.choice import extract_here  # noqa: E402

from documents import seed_article, write_docx, write_pdf  # noqa: E402

PAGE = (
    "<html><head><title>Moonleaf Tea</title></head><body><nav>Home | Shop</nav><article>"
    "<h1>Moonleaf Tea</h1>" + "<p>The cooperative picks every leaf by hand in spring.</p>" * 200
    + "</article><footer>Copyright</footer></body></html>"
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--files", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = _files(Path(tmp))
        started = time.perf_counter()
        isolation.read_isolated(
            extract_here, files["seeds as PDF"], name="x.pdf", limits=ReadLimits()
        )
        print(f"reader process start + first file: {time.perf_counter() - started:.2f} s\n")
        print("| file | size | in this process, ms | in a child, ms | child's extra, ms |")
        print("| --- | --- | --- | --- | --- |")
        for kind, path in files.items():
            here = _median(lambda p=path: extract_here(p), args.rounds)
            there = _median(
                lambda p=path: isolation.read_isolated(
                    extract_here, p, name=p.name, limits=ReadLimits()
                ),
                args.rounds,
            )
            size = f"{path.stat().st_size / 1e3:.0f} KB"
            print(f"| {kind} | {size} | {here:.1f} | {there:.1f} | {there - here:+.1f} |")
        _folder(Path(tmp), files["seeds as PDF"], args.files)


def _files(folder: Path) -> dict[str, Path]:
    seeds = sorted((ROOT / "seeds").glob("*.txt"))
    articles = [seed_article(p) for p in seeds]
    title, sections = articles[0]
    page = folder / "page.html"
    page.write_text(PAGE, encoding="utf-8")
    return {
        "seed .txt": seeds[0],
        "seeds as PDF": write_pdf(folder / "seeds.pdf", articles, columns=2),
        "seed as .docx": write_docx(folder / "seed.docx", title, sections),
        "web page .html": page,
    }


def _median(read, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        read()
        times.append(1_000 * (time.perf_counter() - started))
    return statistics.median(times)


def _folder(tmp: Path, pdf: Path, n: int) -> None:
    folder = tmp / "folder"
    folder.mkdir()
    for i in range(n):
        (folder / f"{i:03d}.pdf").write_bytes(pdf.read_bytes())
    original = isolation.read_isolated
    started = time.perf_counter()
    load_corpus(folder)
    isolated = time.perf_counter() - started
    isolation.read_isolated = lambda reader, path, *, name, limits: reader(
        path, name=name, limits=limits
    )
    try:
        started = time.perf_counter()
        load_corpus(folder)
        here = time.perf_counter() - started
    finally:
        isolation.read_isolated = original
    print(f"\n| folder of {n} PDFs | in this process, s | each in a child, s | per file, ms |")
    print("| --- | --- | --- | --- |")
    print(f"| load_corpus | {here:.2f} | {isolated:.2f} | {1_000 * (isolated - here) / n:+.1f} |")


if __name__ == "__main__":
    main()
