"""Build PDF and Word files at test time (reportlab, python-docx): no binary fixtures in git."""

from __future__ import annotations

import difflib
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
