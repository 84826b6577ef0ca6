"""Answers as text for a terminal and as escaped Markdown/HTML for the page (pure)."""

from __future__ import annotations

import html

from redbook_qa.models import Answer, Passage

_CONTEXT_CHARS = 220
# HTML's specials and Markdown's, each as a numeric character reference, in one pass (two
# passes would escape the "&" and "#" of the first pass's entities).
_ENTITIES = {ch: f"&#{ord(ch)};" for ch in "&<>\"'[]()*_`#|~\\!{}+-"}


def answer_to_text(answer: Answer) -> str:
    """Render an answer and its numbered quotes for a terminal."""
    lines = [answer.text, ""]
    if answer.abstained:
        lines += ["Closest passages:"] + [
            f"  - {p.title} › {p.section} ({p.source})" for p in answer.passages[:3]
        ]
    for c in answer.citations:
        lines.append(f"[{c.number}] {c.title} › {c.section} ({c.source}:{c.start}-{c.end})")
        lines.append(f'    "{c.text}"')
    return "\n".join(lines).rstrip()


def escape_markdown(text: str) -> str:
    """Escape text so neither HTML nor Markdown in it is interpreted."""
    return "".join(_ENTITIES.get(ch, ch) for ch in text)


def answer_markdown(answer: Answer) -> str:
    """Render the answer body for a chat bubble; article text shows as plain text."""
    body = escape_markdown(answer.text)
    if answer.abstained:
        return f"**{body}**"
    for c in answer.citations:
        marker = escape_markdown(f"[{c.number}]")
        link = (
            f'<a href="#source-{c.number}" class="rq-cite" title="{escape_markdown(c.title)}">'
            f"<sup>[{c.number}]</sup></a>"
        )
        body = body.replace(marker, link)
    return body


def sources_html(answer: Answer, source_texts: dict[str, str], *, show_scores: bool = False) -> str:
    """Render each citation: title, section, and the quote highlighted in its paragraph.

    Args:
        answer: The answer whose citations are shown.
        source_texts: Full text of each cited source, keyed by ``source``.
        show_scores: Also show each quote's support score.
    """
    if answer.abstained:
        related = "".join(_related(p) for p in answer.passages[:3])
        return f"<p><em>No source supports an answer.</em></p>{related}"
    parts = []
    for c in answer.citations:
        text = source_texts.get(c.source, "")
        before = text[max(0, c.start - _CONTEXT_CHARS) : c.start]
        after = text[c.end : c.end + _CONTEXT_CHARS]
        score = f" · support {c.score:.2f}" if show_scores else ""
        parts.append(
            f'<div class="rq-source" id="source-{c.number}">'
            f"<p><strong>[{c.number}] {html.escape(c.title)}</strong><br>"
            f"<small>{html.escape(c.section)} · {html.escape(c.source)} "
            f"· chars {c.start}–{c.end}{score}</small></p>"
            f"<p>…{html.escape(before)}<mark>{html.escape(c.text)}</mark>"
            f"{html.escape(after)}…</p></div>"
        )
    return "".join(parts)


def _related(passage: Passage) -> str:
    preview = passage.text[:_CONTEXT_CHARS]
    return (
        f"<p><strong>Related:</strong> {html.escape(passage.title)} › "
        f"{html.escape(passage.section)}<br><small>{html.escape(preview)}…</small></p>"
    )
