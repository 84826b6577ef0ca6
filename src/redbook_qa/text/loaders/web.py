"""Saved web pages (trafilatura): the main content, without navigation or boilerplate."""

from __future__ import annotations

from pathlib import Path

from redbook_qa.errors import CorpusError
from redbook_qa.text.loaders.base import Extraction, require
from redbook_qa.text.loaders.limits import ReadLimits, too_long
from redbook_qa.text.loaders.plain import PlainTextLoader


class HtmlLoader:
    """Reads ``.html``/``.htm`` pages: title first, then headings and paragraphs, one a line.

    trafilatura finds the article among menus, footers, cookie banners and scripts. A page
    too short for that (a bare fragment) falls back to all of its text, so a small page
    still reads. Headings stay as their own unpunctuated lines, which the section detector
    takes as headings.
    """

    kind = "html"
    suffixes = (".html", ".htm")

    def load(self, path: Path, *, shown: str, limits: ReadLimits) -> Extraction:
        """Extract the page's title and main text.

        Raises:
            CorpusError: The file is not UTF-8 text, is larger than ``limits.max_html_bytes``
                (checked before it is read) or yields more than ``limits.max_chars``.
            ImportError: trafilatura is not installed.
        """
        _check_size(path, shown, limits)
        trafilatura = require("trafilatura", "web page (.html)")
        as_text = limits.model_copy(update={"max_chars": limits.max_html_bytes})
        markup = PlainTextLoader().load(path, shown=shown, limits=as_text).text
        if "<html" not in markup.lower():  # a bare fragment: trafilatura reads only documents
            markup = f"<html>{markup}</html>"
        options = {"include_tables": True, "include_links": False, "include_images": False}
        body = trafilatura.extract(markup, include_comments=False, **options) or (
            trafilatura.extract(markup, favor_recall=True, **options)
            or trafilatura.html2txt(markup)
            or ""
        )
        metadata = trafilatura.extract_metadata(markup)
        title = " ".join(str(getattr(metadata, "title", "") or "").split())
        lines = [" ".join(line.split()) for line in str(body).splitlines()]
        lines = [line for line in lines if line]
        if title and (not lines or lines[0] != title):
            lines.insert(0, title)
        if not lines:
            raise CorpusError(f"{shown} has no readable text; save the article's page again")
        text = "\n".join(lines) + "\n"
        if len(text) > limits.max_chars:
            raise CorpusError(too_long(shown, limits))
        return Extraction(text=text, title=title or lines[0])


def _check_size(path: Path, shown: str, limits: ReadLimits) -> None:
    # Before reading: the parse holds tens of times the page's size.
    size = path.stat().st_size
    if size > limits.max_html_bytes:
        raise CorpusError(
            f"{shown} is {size / 1e6:.1f} MB, over the {limits.max_html_bytes / 1e6:g} MB limit "
            "for a web page; save only the article's page (without images inlined), or raise "
            "REDBOOK_QA_MAX_HTML_BYTES"
        )
