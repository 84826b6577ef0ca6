"""Build PDF and Word files at test time (reportlab, python-docx): no binary fixtures in git."""

from __future__ import annotations

import difflib
import io
import struct
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

Article = tuple[str, Sequence[tuple[str, Sequence[str]]]]  # title, [(heading, paragraphs)]


def latin1(text: str) -> str:
    """Keep what reportlab's built-in fonts can print (WinAnsi): CJK and emoji drop out."""
    return "".join(ch for ch in text if ord(ch) < 256)


def seed_article(path: Path) -> Article:
    """A seed article as (title, sections): its short unpunctuated lines are headings."""
    from redbook_qa.text.sections import detect_sections

    text = path.read_text(encoding="utf-8")
    title = text.splitlines()[0].strip()
    sections = []
    for section in detect_sections(text, title):
        lines = [line.strip() for line in text[section.start : section.end].splitlines()]
        body = [latin1(line) for line in lines[1:] if line]
        sections.append((latin1(section.heading), [b for b in body if b.strip()]))
    return latin1(title), sections


def write_pdf(
    path: Path,
    articles: Sequence[Article],
    *,
    columns: int = 1,
    running_header: str = "",
    page_numbers: bool = False,
) -> Path:
    """Print articles to a PDF: titles, headings, paragraphs, in one or more columns."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate, Paragraph
    from reportlab.platypus.flowables import PageBreak

    styles = getSampleStyleSheet()
    width, height = A4
    margin, gap = 2 * cm, 0.8 * cm
    column = (width - 2 * margin - (columns - 1) * gap) / columns
    frames = [
        Frame(margin + i * (column + gap), margin, column, height - 2 * margin, id=f"c{i}")
        for i in range(columns)
    ]

    def furniture(canvas, doc):
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        if running_header:
            canvas.drawString(margin, height - 1.2 * cm, running_header)
        if page_numbers:
            canvas.drawRightString(width - margin, 1.2 * cm, f"Page {doc.page}")
        canvas.restoreState()

    document = BaseDocTemplate(str(path), pagesize=A4, title=articles[0][0] if articles else "")
    document.addPageTemplates([PageTemplate(frames=frames, onPage=furniture)])
    story = []
    for i, (title, sections) in enumerate(articles):
        if i:
            story.append(PageBreak())
        story.append(Paragraph(_escaped(title), styles["Title"]))
        for heading, paragraphs in sections:
            if heading != title:
                story.append(Paragraph(_escaped(heading), styles["Heading2"]))
            story.extend(Paragraph(_escaped(p), styles["BodyText"]) for p in paragraphs)
    document.build(story)
    return path


def write_image_pdf(path: Path, pages: int = 2) -> Path:
    """A scan: pages with drawings and no text layer."""
    from reportlab.pdfgen.canvas import Canvas

    canvas = Canvas(str(path))
    for _ in range(pages):
        canvas.rect(100, 100, 300, 400, fill=1)
        canvas.showPage()
    canvas.save()
    return path


def write_encrypted_pdf(path: Path, text: str = "Secret words.") -> Path:
    """A password-protected PDF (the user password is needed to open it)."""
    from reportlab.lib.pdfencrypt import StandardEncryption
    from reportlab.pdfgen.canvas import Canvas

    canvas = Canvas(str(path), encrypt=StandardEncryption("secret", canPrint=0))
    canvas.drawString(100, 700, text)
    canvas.save()
    return path


def write_docx(path: Path, title: str, sections: Sequence[tuple[str, Sequence[str]]]) -> Path:
    """A Word document: a Title paragraph, Heading 1 per section, body paragraphs, a table."""
    import docx

    document = docx.Document()
    document.core_properties.title = title
    document.add_paragraph(title, style="Title")
    for heading, paragraphs in sections:
        document.add_heading(heading, level=1)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    table = document.add_table(rows=2, cols=2)
    for r, row in enumerate((("Year", "Tons"), ("2020", "12"))):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.save(str(path))
    return path


def _words(text: str) -> list[str]:
    return latin1(text).split()


def printed_words(articles) -> list[str]:
    """The words as printed: each title once, then the headings and paragraphs."""
    words: list[str] = []
    for title, sections in articles:
        words += _words(title)
        for heading, body in sections:
            words += ([] if heading == title else _words(heading)) + _words(" ".join(body))
    return words


def quality(extracted: str, articles) -> float:
    """Share of the printed words found in order in the extraction (difflib matching blocks)."""
    printed = printed_words(articles)
    matcher = difflib.SequenceMatcher(None, printed, _words(extracted), autojunk=False)
    return sum(b.size for b in matcher.get_matching_blocks()) / len(printed)


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Hostile files, built byte by byte: tiny on disk, huge once read (issue #24).


def write_flate_bomb_pdf(path: Path, expanded_bytes: int) -> Path:
    """One page whose FlateDecode content stream inflates to ``expanded_bytes`` of drawing.

    Each drawing operator becomes an object in PDFium: the page takes about 20 times the
    stream's size in memory to parse (100 MB from 195 KB on disk).
    """
    content = _deflated(b"0 0 m 1 1 l S\n", expanded_bytes)
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>"
    return _write_raw_pdf(path, [_catalog(), _pages([3], 1), page, _stream(content)])


def write_page_tree_pdf(path: Path, levels: int, *, lines: int = 12) -> Path:
    """A page tree whose nodes each list the next level's node ten times: 10**levels pages.

    About a kilobyte, one real page (``lines`` numbered lines) seen through every path.
    """
    objects = [_catalog()]
    for level in range(levels):  # objects 2 .. levels+1: one node per level
        child = level + 3
        kids = b" ".join(b"%d 0 R" % child for _ in range(10))
        parent = b"" if level == 0 else b"/Parent %d 0 R " % (level + 1)
        count = 10 ** (levels - level)
        objects.append(b"<< /Type /Pages %s/Kids [%s] /Count %d >>" % (parent, kids, count))
    leaf, font, content = levels + 2, levels + 3, levels + 4
    objects.append(
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
        b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (leaf - 1, content, font)
    )
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    shown = b" 0 -14 Td ".join(b"(Line %d of a page seen through every path.) Tj" % n
                               for n in range(lines))  # fmt: skip
    objects.append(_stream(zlib.compress(b"BT /F1 12 Tf 72 700 Td %s ET" % shown)))
    return _write_raw_pdf(path, objects)


def write_docx_bomb(path: Path, expanded_bytes: int, *, declared: int | None = None) -> Path:
    """A Word document whose body inflates to ``expanded_bytes`` of empty paragraphs.

    With ``declared``, the zip says the body is that many bytes (a lie the CRC catches).
    """
    import docx

    plain = path.with_suffix(".plain.docx")
    document = docx.Document()
    document.add_paragraph("A harmless first paragraph.")
    document.save(str(plain))
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            if item.filename != "word/document.xml":
                target.writestr(item, source.read(item.filename), zipfile.ZIP_DEFLATED)
    plain.unlink()
    head = b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
    head += b'wordprocessingml/2006/main"><w:body>'
    tail = b"</w:body></w:document>"
    fill = b"<w:p/>" * ((expanded_bytes - len(head) - len(tail)) // 6)
    body = head + fill + tail
    _append_deflated(path, "word/document.xml", body, declared)
    return path


def _append_deflated(path: Path, name: str, data: bytes, declared: int | None) -> None:
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    if declared is None:
        return
    raw = bytearray(path.read_bytes())  # rewrite the size both headers declare
    local = raw.rfind(b"PK\x03\x04")
    central = raw.rfind(b"PK\x01\x02")
    struct.pack_into("<I", raw, local + 22, declared)
    struct.pack_into("<I", raw, central + 24, declared)
    path.write_bytes(bytes(raw))


def _deflated(unit: bytes, total: int) -> bytes:
    # Compressed a megabyte at a time: the expanded bytes never exist in this process.
    compressor = zlib.compressobj(9)
    block = unit * max(1, min(total, 1_000_000) // len(unit))
    parts, done = [], 0
    while done < total:
        parts.append(compressor.compress(block))
        done += len(block)
    parts.append(compressor.flush())
    return b"".join(parts)


def _catalog() -> bytes:
    return b"<< /Type /Catalog /Pages 2 0 R >>"


def _pages(kids: Sequence[int], count: int) -> bytes:
    refs = b" ".join(b"%d 0 R" % kid for kid in kids)
    return b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, count)


def _stream(data: bytes) -> bytes:
    return b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(data), data)


def _write_raw_pdf(path: Path, objects: Sequence[bytes]) -> Path:
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % offset for offset in offsets)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1))
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    path.write_bytes(out.getvalue())
    return path
