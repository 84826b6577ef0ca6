"""PDF extraction: text quality and speed on the seeds printed with reportlab, and a long PDF.

Prints one markdown table: for each layout, pages, seconds, pages/s, and the share of the
printed words found in order in the extracted text (difflib matching blocks). Run:
``python benchmarks/bench_pdf.py`` (needs the dev extra: reportlab, pypdfium2).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from redbook_qa.text.loaders import extract  # noqa: E402

from documents import quality, seed_article, write_pdf  # noqa: E402


def main() -> None:
    articles = [seed_article(p) for p in sorted((ROOT / "seeds").glob("*.txt"))]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        layouts = {
            "1 column": {"columns": 1},
            "2 columns + header/footer": {
                "columns": 2, "running_header": "Redbook Weekly", "page_numbers": True,
            },
            "seeds x10, 2 columns + header/footer": {
                "columns": 2, "running_header": "Redbook Weekly", "page_numbers": True,
            },
        }  # fmt: skip
        for name, options in layouts.items():
            printed = articles * (10 if "x10" in name else 1)
            path = write_pdf(Path(tmp) / "bench.pdf", printed, **options)
            started = time.perf_counter()
            extraction = extract(path)
            seconds = time.perf_counter() - started
            pages = len(extraction.page_starts)
            score = quality(extraction.text, printed)
            rows.append((name, pages, seconds, pages / seconds, score))
        rows.append(_long_pdf(Path(tmp) / "long.pdf"))
    print("| layout | pages | seconds | pages/s | words recovered in order |")
    print("| --- | --- | --- | --- | --- |")
    for name, pages, seconds, rate, score in rows:
        print(f"| {name} | {pages} | {seconds:.2f} | {rate:.0f} | {score:.2%} |")


def _long_pdf(path: Path) -> tuple[str, int, float, float, float]:
    """300 pages of 30 lines each, drawn line by line (as a report or a manual is)."""
    from reportlab.pdfgen.canvas import Canvas

    canvas = Canvas(str(path))
    pages = []
    for n in range(1, 301):
        pages.append(
            [f"Line {row} of page {n} says the tea is picked by hand." for row in range(30)]
        )
        for row, line in enumerate(pages[-1]):
            canvas.drawString(72, 760 - 20 * row, line)
        canvas.showPage()
    canvas.save()
    started = time.perf_counter()
    extraction = extract(path)
    seconds = time.perf_counter() - started
    # Page by page: difflib is quadratic on one long run of near-identical lines.
    ends = [*extraction.page_starts[1:], len(extraction.text)]
    texts = [extraction.text[a:b] for a, b in zip(extraction.page_starts, ends, strict=True)]
    score = sum(
        quality(text, [("", [("", lines)])]) for text, lines in zip(texts, pages, strict=True)
    ) / len(pages)
    return "300 pages, 30 lines each", len(extraction.page_starts), seconds, 300 / seconds, score


if __name__ == "__main__":
    main()
