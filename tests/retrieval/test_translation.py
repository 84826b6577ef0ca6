"""Chinese questions over English articles, through the CC-CEDICT query translation."""

from __future__ import annotations

from redbook_qa.retrieval.translation import segment, strip_cjk, translate_query
from redbook_qa.text.cjk import has_cjk


def test_segmentation_prefers_the_split_with_fewer_words():
    words = {"哪家", "家公", "公司", "产品"}
    assert segment("哪家公司的产品", words) == ["哪家", "公司", "的", "产品"]


def test_chinese_words_become_english_glosses_and_known_names_are_left_alone():
    gloss = translate_query("Labubu是哪家公司的产品？", known=["小红书"])
    assert "company" in gloss.split()
    assert "small red book" not in translate_query("小红书的创始人是谁？", known=["小红书"])
    assert translate_query("Who founded Pop Mart?") == ""


def test_cjk_helpers():
    assert has_cjk("Labubu的创始人")
    assert not has_cjk("Labubu")
    assert strip_cjk("Labubu的创始人是谁？ (Xiaohongshu)") == "Labubu (Xiaohongshu)"


def test_a_question_in_chinese_finds_the_english_passage_that_answers_it(seeds_qa):
    passages = seeds_qa.retrieve("Labubu的创始人是谁？", k=5)
    assert any("Wang Ning" in p.text for p in passages)
    answer = seeds_qa.ask("哪位明星让Labubu走红？")
    assert not answer.abstained
    assert "Lisa" in answer.text or "BLACKPINK" in answer.text
