from __future__ import annotations

from redbook_qa.models import Answer, Chunk, Citation, Passage
from redbook_qa.serving.render import (
    answer_markdown,
    answer_to_markdown,
    article_rows,
    escape_markdown,
    sources_html,
)

SOURCE = "Title\nBefore the quote. <b>Quoted</b> [x](javascript:1) text. After it.\nNext line.\n"
QUOTE = "<b>Quoted</b> [x](javascript:1) text."
START = SOURCE.index(QUOTE)


def _answer(**update):
    citation = Citation(
        number=1, source="a.txt", title="T<i>", section="Sec", text=QUOTE, start=START,
        end=START + len(QUOTE), score=0.61,
    )  # fmt: skip
    passage = Passage(
        text=SOURCE[6:-11], start=6, end=len(SOURCE) - 11, chunk_id="a#0", source="a.txt",
        title="T<i>", section="Sec", score=0.5, dense_score=0.4, lexical_score=0.3,
        matched_terms=("quot",),
    )  # fmt: skip
    values = {
        "question": "What is quoted?",
        "text": f"{QUOTE} [1]",
        "citations": (citation,),
        "passages": (passage,),
    }
    return Answer(**(values | update))


def test_escaping_leaves_no_html_or_markdown_specials():
    escaped = escape_markdown("<script>**x**[a](b)</script>")
    assert not set(escaped) & set("<>*[]()")


def test_answer_markers_link_to_their_sources_and_article_text_stays_text():
    bubble = answer_markdown(_answer(), searched_for="what <is> quoted")
    assert '<a href="#source-1"' in bubble
    assert "<b>" not in bubble
    assert "](javascript" not in bubble
    assert "searched for: “what &#60;is&#62; quoted”" in bubble


def test_the_quote_is_highlighted_inside_its_paragraph_only():
    panel = sources_html(_answer(), {"a.txt": SOURCE})
    assert 'id="source-1"' in panel
    assert "Before the quote. <mark>&lt;b&gt;Quoted&lt;/b&gt;" in panel
    assert "After it.</p>" in panel
    assert "Next line" not in panel
    assert "T&lt;i&gt;" in panel
    assert "fused" not in panel


def test_a_changed_or_missing_source_shows_the_quote_alone():
    panel = sources_html(_answer(), {"a.txt": "something else entirely"})
    assert "<mark>&lt;b&gt;Quoted" in panel
    assert "Before the quote" not in panel


def test_scores_show_the_passage_and_the_quote_support():
    panel = sources_html(_answer(), {}, show_scores=True)
    for shown in ("fused 0.500", "dense 0.400", "keyword 0.300", "matched: quot", "support 0.61"):
        assert shown in panel


def test_an_abstention_says_so_and_offers_related_passages():
    answer = _answer(text="The articles don't say.", citations=(), abstained=True)
    assert answer_markdown(answer).startswith("**The articles don&#39;t say.**")
    panel = sources_html(answer, {})
    assert "The articles don’t say." in panel
    assert "Related:" in panel
    assert "&lt;b&gt;" in panel


def test_markdown_to_copy_has_numbered_quotes_with_article_text_escaped():
    pasted = answer_to_markdown(_answer(), question="and that?")
    assert pasted.startswith("**Q:** and that?\n*searched for: What is quoted?*\n")
    assert "\\<b\\>Quoted\\</b\\> \\[x\\](javascript:1) text. [1]" in pasted
    assert "[1] T\\<i\\> › Sec (a.txt:" in pasted
    assert "> \\<b\\>Quoted" in pasted


def test_article_rows_count_chunks_and_list_sections():
    def chunk(source, section, ordinal):
        return Chunk(
            id=f"{source}#{ordinal}", doc_id=source, source=source, title=f"Title {source}",
            section=section, ordinal=ordinal, n_tokens=1, text="x", start=0, end=1,
        )  # fmt: skip

    chunks = [chunk("a", "One", 0), chunk("a", "Two", 1), chunk("a", "Two", 2)]
    chunks += [chunk("b", f"S{i}", i) for i in range(6)]
    assert article_rows(chunks) == [
        ["Title a", "a", "One; Two", 3],
        ["Title b", "b", "S0; S1; S2; S3; +2 more", 6],
    ]


def test_the_bubble_shows_the_confidence_as_a_word_with_the_figure_on_hover():
    bubble = answer_markdown(_answer(support=0.83))
    assert "confidence: high" in bubble
    assert 'title="83% chance that the quotes answer the question' in bubble
    assert "confidence: low" in answer_markdown(_answer(support=0.1))
    assert "confidence" not in answer_markdown(
        _answer(text="The articles don't say.", citations=(), abstained=True, support=0.02)
    )


def test_a_list_answer_renders_as_a_markdown_list_with_its_text_still_escaped():
    first = _answer().citations[0]
    second = first.model_copy(update={"number": 2})
    answer = _answer(text=f"- {QUOTE} [1]\n- {QUOTE} [2]", citations=(first, second))
    lines = answer_markdown(answer).split("\n")
    assert lines[0].startswith("- ")
    assert lines[1].startswith("- ")
    assert "<b>" not in lines[0]
    assert '<a href="#source-2"' in lines[1]


def _paged(page):
    answer = _answer()
    citation = answer.citations[0].model_copy(update={"source": "a.pdf", "page": page})
    return answer.model_copy(update={"citations": (citation,)})


def test_a_pdf_quote_shows_its_page_and_opens_the_original_there():
    panel = sources_html(_paged(3), {"a.pdf": SOURCE}, links={"a.pdf": "/file=/c/a.pdf"})
    assert "a.pdf · p. 3 · chars" in panel
    assert '<a class="rq-original" href="/file=/c/a.pdf#page=3" target="_blank"' in panel
    assert ">open p. 3</a>" in panel
    assert "a.pdf, p. 3:" in answer_to_markdown(_paged(3))


def test_a_quote_without_a_page_or_link_shows_neither():
    panel = sources_html(_answer(), {"a.txt": SOURCE})
    assert "p. " not in panel
    assert "rq-original" not in panel
    assert "(a.txt:" in answer_to_markdown(_answer())


def test_citations_without_a_page_still_read_and_write_the_same_json():
    citation = _answer().citations[0]
    old_json = citation.model_dump_json(exclude={"page"})
    assert Citation.model_validate_json(old_json) == citation
    assert Citation.model_validate_json(_paged(2).citations[0].model_dump_json()).page == 2
