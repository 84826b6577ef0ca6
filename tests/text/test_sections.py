from __future__ import annotations

import itertools

from redbook_qa.text.sections import detect_sections, heading_end

from conftest import SEEDS


def _sections(name: str):
    text = (SEEDS / name).read_text(encoding="utf-8")
    return text, detect_sections(text, text.split("\n", 1)[0])


def test_digests_under_more_articles_are_articles_of_their_own():
    text, sections = _sections("004_b37c8ff2df9e95d1.txt")
    labubu = [s for s in sections if s.heading.startswith("Labubu: A Pop Culture")]
    assert len(labubu) == 1
    assert labubu[0].title == labubu[0].heading
    assert "Pop Mart" in text[labubu[0].start : labubu[0].end]
    tldr = next(s for s in sections if s.heading == "TL;DR")
    assert tldr.title.startswith("TikTok's Ban Sparks a Migration")
    assert "Pop Mart" not in text[tldr.start : tldr.end]
    titles = {s.title for s in sections}
    assert len([t for t in titles if "Labubu" in t]) == 3


def test_title_case_question_lines_are_headings_but_hashtags_and_links_are_not():
    _, sections = _sections("000_b3cfbc0e092d2c3d.txt")
    headings = [s.heading for s in sections]
    assert "Beyond the Algorithm: A User-Centric Experience?" in headings
    assert "Conclusion: A New Era in Social Media?" in headings
    assert not any(h.endswith(":") for h in headings)
    _, digest_sections = _sections("004_b37c8ff2df9e95d1.txt")
    assert not any(s.heading.startswith("#") or "Read More" in s.heading for s in digest_sections)


def test_sections_tile_the_text_in_order():
    for name in ("000_b3cfbc0e092d2c3d.txt", "004_b37c8ff2df9e95d1.txt"):
        text, sections = _sections(name)
        assert sections[0].start == 0
        assert sections[-1].end == len(text)
        for before, after in itertools.pairwise(sections):
            assert before.end == after.start


def test_markdown_headings_and_text_before_the_first_heading():
    text = "Intro line without heading.\n# Part One\nBody one.\n## Part Two\nBody two.\n"
    sections = detect_sections(text, "Doc")
    assert [s.heading for s in sections] == ["Doc", "Part One", "Part Two"]
    assert text[heading_end(text, sections[1]) : sections[1].end] == "Body one.\n"


def test_a_lone_trailing_short_line_is_body_text():
    text = "Title\nSome body sentence here.\nThe end"
    assert [s.heading for s in detect_sections(text, "Title")] == ["Title"]
