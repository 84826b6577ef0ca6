from __future__ import annotations

from redbook_qa.text.sentences import count_words, split_sentences


def _texts(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


def test_sentences_keep_exact_offsets():
    text = "  First one. Second one!  Third?\nFourth line"
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == ["First one.", "Second one!", "Third?", "Fourth line"]


def test_abbreviations_and_list_markers_do_not_end_sentences():
    assert _texts("Ban in the U.S. was news. 1. Is it real? Yes.") == [
        "Ban in the U.S. was news.",
        "1. Is it real?",
        "Yes.",
    ]


def test_initials_acronyms_and_bracketed_abbreviations_do_not_end_sentences():
    text = (
        "William E. Simon met E.I. du Pont (e.g. at the U.N. office) ca. 2 times. "
        "Trinity-St. Paul's is old. It ended in World War I. The war was long."
    )
    assert _texts(text) == [
        "William E. Simon met E.I. du Pont (e.g. at the U.N. office) ca. 2 times.",
        "Trinity-St. Paul's is old.",
        "It ended in World War I.",
        "The war was long.",
    ]


def test_a_capital_letter_after_a_lower_case_word_still_ends_a_sentence():
    assert _texts("It is the hardest problem in C. Of course it is. Take vitamin D. Now.") == [
        "It is the hardest problem in C.",
        "Of course it is.",
        "Take vitamin D.",
        "Now.",
    ]


def test_a_full_stop_before_a_lower_case_word_is_not_a_sentence_end():
    assert _texts("The strain Y. pestis spread. Approx. five died.") == [
        "The strain Y. pestis spread.",
        "Approx. five died.",
    ]


def test_cjk_full_stops_split_without_spaces():
    assert _texts("小红书是平台。用户很多！Fine.") == ["小红书是平台。", "用户很多！", "Fine."]


def test_a_slice_of_the_text_is_split_with_offsets_into_the_whole():
    text = "Skip me. Take this. And this."
    start = text.index("Take")
    assert [text[a:b] for a, b in split_sentences(text, start)] == ["Take this.", "And this."]


def test_words_are_counted_with_cjk_characters_as_words():
    assert count_words("three plain words") == 3
    assert count_words("小红书 app") == 4
