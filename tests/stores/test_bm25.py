from __future__ import annotations

import math

import pytest

from redbook_qa.errors import IndexCorruptError, IndexNotFoundError
from redbook_qa.stores.bm25 import LexicalIndex
from redbook_qa.text.terms import analyze


def test_analyze_stems_drops_stopwords_and_bigrams_cjk():
    assert analyze("Why did the users pick algorithms?") == ["user", "pick", "algorithm"]
    assert analyze("小红书") == ["小红", "红书"]


def test_bm25_ranks_the_text_with_rare_matching_terms_first():
    index = LexicalIndex.build(
        ["cats sleep all day", "dogs bark at the mail carrier", "cats and dogs play", ""]
    )
    scores = index.scores(analyze("barking dogs"))
    assert scores.argmax() == 1
    assert scores[0] == 0.0
    assert scores[3] == 0.0
    assert index.scores(["unknownterm"]).sum() == 0.0


def test_idf_is_highest_for_unseen_terms():
    index = LexicalIndex.build(["cat dog", "cat bird", "cat fish"])
    assert index.idf("cat") < index.idf("dog") < index.idf("zebra")
    assert index.idf("zebra") == pytest.approx(math.log(1 + 3.5 / 0.5))


def test_save_load_round_trip_and_clear_errors(tmp_path):
    index = LexicalIndex.build(["alpha beta", "beta gamma"])
    index.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25")
    assert loaded.scores(["beta"]).tolist() == index.scores(["beta"]).tolist()
    with pytest.raises(IndexNotFoundError, match="redbook-qa index"):
        LexicalIndex.load(tmp_path / "missing")
    (tmp_path / "bm25" / "vocab.index.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="rebuild"):
        LexicalIndex.load(tmp_path / "bm25")


def test_scores_from_term_counts_equal_the_precomputed_ones_bit_for_bit():
    """What a database stores (counts, lengths, df) rebuilds bm25s's scores exactly."""
    from collections import Counter

    import numpy as np

    from redbook_qa.stores.bm25 import bm25_idf, document_terms, term_scores

    texts = [
        "Pop Mart sells Labubu blind boxes",
        "Labubu labubu labubu: the monster with teeth",
        "",
        "Xiaohongshu users share notes about boxes and toys, and more boxes",
        "小红书 用户 分享 笔记",
    ]
    lexical = LexicalIndex.build(texts)
    docs = [document_terms(t) for t in texts]
    lengths = np.array([len(d) for d in docs])
    counts = [Counter(d) for d in docs]
    for term, _, df, positions, scores in lexical.postings():
        tf = np.array([counts[p][term] for p in positions.tolist()])
        idf = bm25_idf(df, len(texts))
        rebuilt = term_scores(tf, lengths[positions], idf, lengths.sum() / len(texts))
        np.testing.assert_array_equal(rebuilt, scores)
