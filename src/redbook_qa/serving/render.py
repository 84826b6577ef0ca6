"""Answers as text for a terminal, as Markdown to paste, and as escaped Markdown/HTML for the page.

Everything here is pure. Article text is never trusted: on the page it is escaped so that
neither HTML nor Markdown in it is interpreted, only the markup written here is.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence

from redbook_qa.answering.confidence import confidence_label
from redbook_qa.models import Answer, Chunk, Citation, Passage

_CONTEXT_CHARS = 400
_PREVIEW_CHARS = 260
_MAX_SECTIONS_LISTED = 4
# HTML's specials and Markdown's, each as a numeric character reference, in one pass (two
# passes would escape the "&" and "#" of the first pass's entities).
_ENTITIES = {ch: f"&#{ord(ch)};" for ch in "&<>\"'[]()*_`#|~\\!{}+-"}
# CommonMark lets a backslash make any of these literal, which keeps pasted text readable.
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]<>#|!~])")
_PASTED_MARKER = re.compile(r"\\\[(\d+)\\\]")


def answer_to_text(answer: Answer) -> str:
    """Render an answer and its numbered quotes for a terminal."""
    lines = [answer.text, ""]
    if answer.abstained:
        lines += ["Closest passages:"] + [
            f"  - {p.title} › {p.section} ({p.source})" for p in answer.passages[:3]
        ]
    for c in answer.citations:
        lines.append(f"[{c.number}] {c.title} › {c.section} ({_where(c)})")
        lines.append(f'    "{c.text}"')
    return "\n".join(lines).rstrip()


def answer_to_markdown(answer: Answer, *, question: str = "") -> str:
    """Render an answer with its numbered quotes as Markdown to paste elsewhere.

    Article text is backslash-escaped, so it reads as written wherever the Markdown is
    rendered; the ``[n]`` markers stay plain.

    Args:
        answer: The answer to render.
        question: The question as the person asked it, when it was searched for as
            ``answer.question`` (a rewritten follow-up).
    """
    lines = [f"**Q:** {_pasted(question or answer.question)}"]
    if question and question != answer.question:
        lines.append(f"*searched for: {_pasted(answer.question)}*")
    lines += ["", _pasted(answer.text)]
    if answer.citations:
        lines.append("")
    for c in answer.citations:
        where = f"{_pasted(c.title)} › {_pasted(c.section)} ({_pasted(_where(c))})"
        lines += [f"[{c.number}] {where}", f"> {_pasted(' '.join(c.text.split()))}", ""]
    return "\n".join(lines).rstrip() + "\n"


def escape_markdown(text: str) -> str:
    """Escape text so neither HTML nor Markdown in it is interpreted."""
    return "".join(_ENTITIES.get(ch, ch) for ch in text)


def answer_markdown(answer: Answer, *, searched_for: str = "") -> str:
    """Render the answer for a chat bubble; article text shows as plain text.

    Each ``[n]`` becomes a link to its source in the sources panel (``#source-n``). Under the
    answer come ``searched_for`` (the rewritten question of a follow-up, if given) and any
    notice, such as why a generated answer fell back to quotes.
    """
    lines = answer.text.split("\n")
    if len(lines) > 1 and all(line.startswith("- ") for line in lines):  # a list of quotes
        body = "\n".join(f"- {escape_markdown(line[2:])}" for line in lines)
    else:
        body = escape_markdown(answer.text)
    if answer.abstained:
        body = f"**{body}**\n\nThe closest passages are listed as *related* under Sources."
    for c in answer.citations:
        marker = escape_markdown(f"[{c.number}]")
        link = (
            f'<a href="#source-{c.number}" class="rq-cite" title="{escape_markdown(c.title)}">'
            f"<sup>[{c.number}]</sup></a>"
        )
        body = body.replace(marker, link)
    notes = [] if answer.abstained else [confidence_badge(answer.support)]
    if searched_for:
        notes.append(f"searched for: “{escape_markdown(searched_for)}”")
    if answer.notice:
        notes.append(escape_markdown(answer.notice))
    return body + "".join(f"\n\n<small>{note}</small>" for note in notes)


def confidence_badge(support: float) -> str:
    """Say how likely the answer is on point, as high / medium / low, the figure on hover."""
    label = confidence_label(support)
    return (
        f'<span class="rq-confidence rq-confidence-{label}" '
        f'title="{support:.0%} chance that the quotes answer the question (calibrated on '
        f'SQuAD 2.0 and the evals)">confidence: {label}</span>'
    )


def sources_html(
    answer: Answer,
    source_texts: Mapping[str, str],
    *,
    show_scores: bool = False,
    links: Mapping[str, str] | None = None,
) -> str:
    """Render each citation: title, section, page, and the quote highlighted in its paragraph.

    Args:
        answer: The answer whose citations are shown.
        source_texts: Full (extracted) text of each cited source, keyed by ``source``; a
            source missing here, or changed since it was indexed, is shown as the quote alone.
        show_scores: Also show the fused, dense and keyword scores of the passage each quote
            came from, and the quote's support.
        links: A URL that opens the original file, keyed by ``source``; a quote with a page
            links to it there (``file.pdf#page=N``, which PDF viewers honour).
    """
    links = links or {}
    if answer.abstained:
        related = "".join(_related(p, show_scores=show_scores) for p in answer.passages[:3])
        return (
            '<div class="rq-abstain"><p><strong>The articles don’t say.</strong> '
            "No passage supports an answer; these are the closest.</p>"
            f"{related}</div>"
        )
    return "".join(
        _source(
            c,
            source_texts.get(c.source, ""),
            answer.passages,
            show_scores=show_scores,
            link=links.get(c.source, ""),
        )
        for c in answer.citations
    )


def article_rows(chunks: Sequence[Chunk]) -> list[list[str | int]]:
    """Summarise an index as rows of (title, file, sections, chunk count), one per article."""
    rows: dict[str, tuple[str, list[str], list[Chunk]]] = {}
    for chunk in chunks:
        _, sections, members = rows.setdefault(chunk.source, (chunk.title, [], []))
        if chunk.section not in sections:
            sections.append(chunk.section)
        members.append(chunk)
    table: list[list[str | int]] = []
    for source, (title, sections, members) in rows.items():
        listed = "; ".join(sections[:_MAX_SECTIONS_LISTED])
        more = len(sections) - _MAX_SECTIONS_LISTED
        table.append(
            [title, source, listed + (f"; +{more} more" if more > 0 else ""), len(members)]
        )
    return table


def _source(
    c: Citation, text: str, passages: Sequence[Passage], *, show_scores: bool, link: str
) -> str:
    scores = _scores(c, passages) if show_scores else ""
    section = f"{html.escape(c.section)} · " if c.section != c.title else ""
    page = f" · p. {c.page}" if c.page is not None else ""
    opened = ""
    if link:
        url = link + (f"#page={c.page}" if c.page is not None else "")
        label = f"open p. {c.page}" if c.page is not None else "open the original"
        opened = (
            f' · <a class="rq-original" href="{html.escape(url)}" target="_blank" '
            f'rel="noopener noreferrer">{label}</a>'
        )
    return (
        f'<div class="rq-source" id="source-{c.number}">'
        f'<p class="rq-source-head"><strong>[{c.number}] {html.escape(c.title)}</strong><br>'
        f"<small>{section}{html.escape(c.source)}{page} "
        f"· chars {c.start}–{c.end}{opened}</small>{scores}</p>"
        f'<p class="rq-paragraph">{_in_paragraph(c, text)}</p></div>'
    )


def _in_paragraph(c: Citation, text: str) -> str:
    """Return the quote highlighted inside its line-delimited paragraph, capped in length."""
    quote = f"<mark>{html.escape(c.text)}</mark>"
    if text[c.start : c.end] != c.text:  # the file changed since it was indexed
        return quote
    line_start = text.rfind("\n", 0, c.start) + 1
    line_end = text.find("\n", c.end)
    line_end = len(text) if line_end < 0 else line_end
    lo, hi = max(line_start, c.start - _CONTEXT_CHARS), min(line_end, c.end + _CONTEXT_CHARS)
    return (
        ("…" if lo > line_start else "")
        + html.escape(text[lo : c.start])
        + quote
        + html.escape(text[c.end : hi])
        + ("…" if hi < line_end else "")
    )


def _scores(c: Citation, passages: Sequence[Passage]) -> str:
    passage = next(
        (p for p in passages if p.source == c.source and p.start <= c.start and c.end <= p.end),
        None,
    )
    parts = [] if passage is None else _passage_scores(passage)
    parts.append(f"support {c.score:.2f}")
    return f'<br><small class="rq-scores">{" · ".join(parts)}</small>'


def _passage_scores(p: Passage) -> list[str]:
    parts = [f"fused {p.score:.3f}", f"dense {p.dense_score:.3f}", f"keyword {p.lexical_score:.3f}"]
    if p.matched_terms:
        parts.append("matched: " + html.escape(", ".join(p.matched_terms)))
    return parts


def _related(passage: Passage, *, show_scores: bool) -> str:
    preview = " ".join(passage.text.split())
    cut = "…" if len(preview) > _PREVIEW_CHARS else ""
    scores = (
        f'<br><small class="rq-scores">{" · ".join(_passage_scores(passage))}</small>'
        if show_scores
        else ""
    )
    return (
        f'<div class="rq-related"><p><strong>Related:</strong> {html.escape(passage.title)} › '
        f"{html.escape(passage.section)}<br><small>{html.escape(passage.source)}</small>"
        f"{scores}</p><p>{html.escape(preview[:_PREVIEW_CHARS])}{cut}</p></div>"
    )


def _where(c: Citation) -> str:
    page = f", p. {c.page}" if c.page is not None else ""
    return f"{c.source}{page}:{c.start}-{c.end}"


def _pasted(text: str) -> str:
    return _PASTED_MARKER.sub(r"[\1]", _MARKDOWN_SPECIALS.sub(r"\\\1", text))
