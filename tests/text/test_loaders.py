"""Loaders on files built at run time: PDFs printed with reportlab, .docx from python-docx."""

from __future__ import annotations

import logging
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from redbook_qa.errors import CorpusError
from redbook_qa.text.chunking import chunk_document
from redbook_qa.text.corpus import load_corpus, read_document
from redbook_qa.text.loaders import SUFFIXES, ReadLimits, extract, loader_for
from redbook_qa.text.loaders.choice import extract_here
from redbook_qa.text.loaders.layout import (
    body_size,
    paragraphs,
    recurring_lines,
    strip_recurring,
)
from redbook_qa.text.loaders.web import HtmlLoader
from redbook_qa.text.loaders.word import DocxLoader
from redbook_qa.text.pages import page_at
from redbook_qa.text.sections import detect_sections
from redbook_qa.text.tokens import WhitespaceCounter

from conftest import SEEDS
from documents import (
    quality,
    seed_article,
    write_docx,
    write_docx_bomb,
    write_encrypted_pdf,
    write_flate_bomb_pdf,
    write_image_pdf,
    write_page_tree_pdf,
    write_pdf,
)

SEED_PATHS = sorted(SEEDS.glob("*.txt"))
HEADER = "Redbook Weekly - Special Edition"
PAGE_HTML = (
    "<html><head><title>Moonleaf Tea | Hill News</title></head><body>"
    "<nav><a href='/'>Home</a> <a href='/about'>About us</a> <a href='/shop'>Shop</a></nav>"
    "<article><h1>Moonleaf Tea</h1><p>The Moonleaf tea cooperative was founded in 1987 by "
    "twelve farmers in the Nilgiri hills, who still pick every leaf by hand.</p>"
    "<h2>Harvest</h2><p>Its green tea is picked every spring and sold in Chennai, where the "
    "markets pay a good price for it each year.</p></article>"
    "<footer>Copyright 2024 Hill News. All rights reserved. Privacy policy.</footer>"
    "<script>alert(1)</script></body></html>"
)


def _seed_text(articles) -> list[str]:
    return [" ".join(p for _, body in sections for p in body) for _, sections in articles]


def test_every_suffix_has_one_loader_and_others_are_refused_by_name():
    assert SUFFIXES == (".txt", ".md", ".html", ".htm", ".pdf", ".docx")
    assert loader_for("A.PDF").kind == "pdf"
    with pytest.raises(CorpusError, match=r"\.odt files cannot be read; use one of \.txt"):
        loader_for("notes.odt")


@pytest.mark.parametrize("columns", [1, 2])
def test_printed_seeds_come_back_whole_without_running_headers_or_page_numbers(tmp_path, columns):
    articles = [seed_article(p) for p in SEED_PATHS[:4]]
    pdf = write_pdf(
        tmp_path / "seeds.pdf", articles, columns=columns, running_header=HEADER, page_numbers=True
    )
    extraction = extract(pdf)
    assert quality(extraction.text, articles) >= 0.99
    assert HEADER not in extraction.text
    assert "Page 2" not in extraction.text
    assert extraction.title == articles[0][0]
    # Paragraphs are whole lines again, so each printed sentence is one quotable span.
    body = _seed_text(articles)[0].split(". ")[3]
    assert body in extraction.text


def test_headings_of_a_printed_article_become_its_sections(tmp_path):
    title, sections = seed_article(SEED_PATHS[0])
    extraction = extract(write_pdf(tmp_path / "a.pdf", [(title, sections)], columns=2))
    found = iter(s.heading for s in detect_sections(extraction.text, extraction.title))
    missing = [h for h, _ in sections if h not in found]  # in order, extra ones allowed
    assert not missing


def test_page_starts_map_each_quote_to_the_page_it_was_printed_on(tmp_path):
    import pypdfium2

    articles = [seed_article(p) for p in SEED_PATHS[:3]]  # each article starts a new page
    path = write_pdf(tmp_path / "three.pdf", articles)
    document = load_corpus(tmp_path)[0]
    assert document.text == read_document(tmp_path, "three.pdf") == extract(path).text
    pdf = pypdfium2.PdfDocument(path)
    pages = [" ".join(pdf[i].get_textpage().get_text_range().split()) for i in range(len(pdf))]
    pdf.close()
    for chunk in chunk_document(document, WhitespaceCounter(), max_tokens=60, overlap=0):
        page = page_at(chunk.metadata, chunk.start)
        assert page == page_at(document.metadata, chunk.start)
        assert page_at(chunk.metadata, chunk.end - 1) == page_at(document.metadata, chunk.end - 1)
        first_words = " ".join(chunk.text.split()[:4])
        assert first_words in pages[page - 1], f"chunk {chunk.id} is not on page {page}"


def test_a_300_page_pdf_is_read_page_by_page_with_progress(tmp_path, caplog):
    from reportlab.pdfgen.canvas import Canvas

    path = tmp_path / "long.pdf"
    canvas = Canvas(str(path))
    for n in range(1, 301):
        canvas.drawString(72, 760, f"Chapter {n}")
        for row in range(30):
            canvas.drawString(72, 730 - 20 * row, f"Line {row} of page {n} says the tea is good.")
        canvas.showPage()
    canvas.save()
    caplog.set_level(logging.INFO, logger="redbook_qa.text.loaders.pdf")
    extraction = extract(path)  # its speed: benchmarks/bench_pdf.py
    assert len(extraction.page_starts) == 300
    assert "long.pdf: read page 50 of 300" in caplog.text
    assert "read 300 pages" in caplog.text
    for row in range(30):  # lines of one shape on every page are content, not a footer
        assert f"Line {row} of page 150 says" in extraction.text
    page_150 = extraction.text.index("Line 0 of page 150 says")
    assert extraction.page_starts[149] <= page_150 < extraction.page_starts[150]


def test_an_encrypted_pdf_says_how_to_decrypt_it(tmp_path):
    with pytest.raises(CorpusError, match=r"secret\.pdf is encrypted .*qpdf --decrypt"):
        extract(write_encrypted_pdf(tmp_path / "secret.pdf"))


def test_an_image_only_pdf_says_to_run_ocr_first(tmp_path):
    with pytest.raises(CorpusError, match=r"scan\.pdf: no text layer: run OCR first"):
        extract(write_image_pdf(tmp_path / "scan.pdf"))


def test_a_damaged_pdf_says_so(tmp_path):
    (tmp_path / "cut.pdf").write_bytes(b"%PDF-1.7\n1 0 obj\n<<")
    with pytest.raises(CorpusError, match=r"cut\.pdf is not a readable PDF"):
        extract(tmp_path / "cut.pdf")


def test_word_headings_become_sections_and_tables_rows(tmp_path):
    path = write_docx(
        tmp_path / "tea.docx",
        "Moonleaf Tea",
        [("History", ["Founded in 1987 by twelve farmers."]), ("Harvest", ["Picked by hand."])],
    )
    extraction = extract(path)
    assert extraction.text == (
        "# Moonleaf Tea\n## History\nFounded in 1987 by twelve farmers.\n## Harvest\n"
        "Picked by hand.\nYear | Tons\n2020 | 12\n"
    )
    assert extraction.title == "Moonleaf Tea"
    headings = [s.heading for s in detect_sections(extraction.text, extraction.title)]
    assert headings[:3] == ["Moonleaf Tea", "History", "Harvest"]


@pytest.mark.parametrize(
    "data",
    [b"PK\x03\x04 truncated", b"not a zip at all"],
    ids=["truncated", "not-a-zip"],
)
def test_a_corrupt_docx_says_to_resave_it(tmp_path, data):
    (tmp_path / "bad.docx").write_bytes(data)
    with pytest.raises(CorpusError, match=r"bad\.docx .*(not a readable Word|rename it to)"):
        extract(tmp_path / "bad.docx")


def test_a_zip_with_a_broken_document_part_says_to_resave_it(tmp_path):
    good = write_docx(tmp_path / "good.docx", "T", [("H", ["Text."])])
    broken = tmp_path / "broken.docx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = b"<w:document" if item.filename == "word/document.xml" else src.read(item)
            dst.writestr(item, data)
    with pytest.raises(CorpusError, match=r"broken\.docx is not a readable Word document"):
        extract(broken)


def test_a_web_page_keeps_title_and_headings_and_drops_navigation_and_footer(tmp_path):
    (tmp_path / "tea.html").write_text(PAGE_HTML, encoding="utf-8")
    extraction = extract(tmp_path / "tea.html")
    lines = extraction.text.splitlines()
    assert lines[0] == "Moonleaf Tea" == extraction.title
    assert "Harvest" in lines
    assert "About us" not in extraction.text
    assert "Copyright" not in extraction.text
    assert "alert" not in extraction.text
    assert [s.heading for s in detect_sections(extraction.text, extraction.title)] == [
        "Moonleaf Tea",
        "Harvest",
    ]


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("report.txt", "pdf", r"report\.txt is named \.txt but its content is a PDF; rename"),
        ("report.docx", "pdf", r"content is a PDF; rename it to report\.pdf"),
        ("letter.pdf", "docx", r"content is a Word document \(\.docx\); rename it to letter\.docx"),
        ("page.pdf", "html", r"content is a web page \(HTML\); rename it to page\.html"),
        ("notes.docx", "text", r"content is plain text; rename it to notes\.txt"),
    ],
)  # fmt: skip
def test_a_file_whose_extension_lies_names_the_right_one(tmp_path, name, make, message):
    source = tmp_path / "made"
    source.mkdir()
    if make == "pdf":
        data = write_pdf(source / "x.pdf", [("T", [("T", ["Words."])])]).read_bytes()
    elif make == "docx":
        data = write_docx(source / "x.docx", "T", [("H", ["Words."])]).read_bytes()
    elif make == "html":
        data = PAGE_HTML.encode()
    else:
        data = b"Just some words.\n"
    (tmp_path / name).write_bytes(data)
    with pytest.raises(CorpusError, match=message):
        extract(tmp_path / name)


def test_lines_heading_or_footing_most_pages_are_dropped_and_others_kept():
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()  # noqa: SIM905
    pages = [["Weekly", *(f"{words[n]} {words[k]}." for k in range(5)), f"Page {n}"]
             for n in range(1, 6)]  # fmt: skip
    pages[0].insert(0, "Unique title")
    lines = [[(text, 10.0) for text in page] for page in pages]
    recurring = recurring_lines(lines)
    assert recurring == {"weekly", "page #"}
    assert strip_recurring(lines[0], recurring)[0] == ("Unique title", 10.0)
    assert ("Weekly", 10.0) not in strip_recurring(lines[1], recurring)
    assert recurring_lines(lines[:2]) == frozenset(), "two pages are too few to tell"


WRAPPED = [
    ("The Great", 18.0),
    ("Migration:", 18.0),
    ("So the users came over and they all stayed for", 10.0),
    ("the long run, the whole long run of the years", 10.0),
    ("to come.", 10.0),
    ("They liked it.", 10.0),
    ("Why They Stayed", 14.0),
    ("For one thing, a reason that was rather well-", 10.0),
    ("known.", 10.0),
]
JOINED = [
    "The Great Migration:",
    "So the users came over and they all stayed for the long run, the whole long run of "
    "the years to come.",
    "They liked it.",
    "Why They Stayed",
    "For one thing, a reason that was rather well-known.",
]


def test_wrapped_lines_rejoin_into_paragraphs_and_larger_lines_into_one_heading():
    assert body_size([WRAPPED]) == 10.0
    assert paragraphs(WRAPPED, body=10.0) == JOINED


def test_without_larger_fonts_short_unpunctuated_lines_are_the_headings():
    same_size = [(text, 10.0) for text, _ in WRAPPED]
    assert body_size([same_size]) is None
    assert paragraphs(same_size) == ["The Great", "Migration:", *JOINED[1:]], "a colon ends none"


def test_a_missing_docs_extra_names_the_install(tmp_path, monkeypatch):
    # In this process: the reader process has its own modules (tests/text/test_isolation.py
    # shows an ImportError raised there comes back as one).
    path = write_pdf(tmp_path / "a.pdf", [("T", [("T", ["Words."])])])
    monkeypatch.setitem(sys.modules, "pypdfium2", None)  # import fails as if not installed
    with pytest.raises(
        ImportError, match=r'reading PDF files needs .*pip install "redbook_qa\[docs\]"'
    ):
        extract_here(path)


def test_importing_the_loaders_imports_no_format_library():
    code = (
        "import sys, redbook_qa.text.corpus; "
        "print(sorted(m for m in ('pypdfium2', 'docx', 'trafilatura') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# Files small on disk and huge once read (issue #24): each limit holds before the work.


def test_a_page_tree_claiming_a_million_pages_is_refused_before_a_page_is_read(tmp_path):
    path = write_page_tree_pdf(tmp_path / "tree.pdf", levels=6)
    assert path.stat().st_size < 2_000
    with pytest.raises(CorpusError, match=r"tree\.pdf has 1,000,000 pages, more than the 2,000"):
        extract(path)


def test_text_past_the_document_limit_stops_the_pdf_at_the_first_page_over(tmp_path):
    path = write_page_tree_pdf(tmp_path / "tree.pdf", levels=2)  # 100 pages of 12 lines
    assert len(extract(path).text) > 40_000
    with pytest.raises(CorpusError, match=r"more than 5,000 characters .*up to page 10 of 100"):
        extract(path, limits=ReadLimits(max_chars=5_000))


def test_a_pdf_whose_page_expands_past_the_memory_limit_is_refused_saying_so(tmp_path):
    path = write_flate_bomb_pdf(tmp_path / "bomb.pdf", expanded_bytes=10_000_000)
    assert path.stat().st_size < 30_000
    with pytest.raises(CorpusError, match=r"bomb\.pdf: this PDF expands past 64 MB while it is"):
        extract(path, limits=ReadLimits(memory_mb=64))


def test_a_docx_part_declared_past_the_limit_is_refused_before_it_is_inflated(tmp_path):
    path = write_docx_bomb(tmp_path / "bomb.docx", expanded_bytes=3_000_000)
    assert path.stat().st_size < 50_000  # python-docx's own template is most of it
    limits = ReadLimits(max_part_bytes=1_000_000)
    with pytest.raises(CorpusError, match=r"word/document\.xml expands to 3\.0 MB, over the 1 MB"):
        extract(path, limits=limits)


def test_images_in_a_docx_count_toward_its_memory_not_the_xml_part_limit(tmp_path):
    path = write_docx(tmp_path / "photo.docx", "Harvest", [("Notes", ["Picked in spring."])])
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/media/image1.bmp", bytes(17 * 2**20))  # python-docx adds 0.8 MiB
    limits = ReadLimits(max_part_bytes=1_000_000)
    assert "Picked in spring." in extract(path, limits=limits).text
    with pytest.raises(CorpusError, match=r"its parts expand to 18 MB in all, past the 16 MB"):
        extract(path, limits=limits.model_copy(update={"memory_mb": 16}))


def test_a_docx_part_that_lies_about_its_size_is_inflated_a_megabyte_at_a_time(tmp_path):
    path = write_docx_bomb(tmp_path / "lie.docx", expanded_bytes=30_000_000, declared=4_000)
    tracemalloc.start()
    try:
        with pytest.raises(CorpusError, match=r"word/document\.xml does not inflate to what it"):
            DocxLoader().load(path, shown="lie.docx", limits=ReadLimits())  # in this process
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000, f"{peak:,} bytes at the peak: the part was inflated whole"


def test_a_docx_past_the_text_limit_stops_at_the_first_paragraph_over(tmp_path):
    body = [f"Paragraph {n} says the harvest was good this year." for n in range(200)]
    path = write_docx(tmp_path / "long.docx", "Harvest", [("Notes", body)])
    with pytest.raises(CorpusError, match=r"more than 2,000 characters .*up to paragraph \d+"):
        extract(path, limits=ReadLimits(max_chars=2_000))


def test_a_web_page_over_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    page = tmp_path / "big.html"
    page.write_bytes(b"<html><body>" + b"<p>Filler text.</p>" * 60_000 + b"</body></html>")
    limits = ReadLimits(max_html_bytes=1_000_000)
    with pytest.raises(CorpusError, match=r"big\.html is 1\.1 MB, over the 1 MB limit for a web"):
        extract(page, limits=limits)
    monkeypatch.setattr(Path, "open", None)  # reading it now would fail: it is not read
    with pytest.raises(CorpusError, match="over the 1 MB limit"):
        HtmlLoader().load(page, shown="big.html", limits=limits)


def test_plain_text_past_the_document_limit_is_refused(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("Long\n" + "word " * 1_000, encoding="utf-8")
    with pytest.raises(CorpusError, match=r"long\.txt holds more than 1,000 characters"):
        extract(path, limits=ReadLimits(max_chars=1_000))
