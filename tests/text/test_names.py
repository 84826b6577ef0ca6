from __future__ import annotations

import pytest

from redbook_qa.errors import CorpusError
from redbook_qa.text.names import AliasTable, load_aliases, mine_aliases

from conftest import SEEDS


def test_aliases_are_mined_from_the_seed_articles():
    table = mine_aliases(p.read_text(encoding="utf-8") for p in sorted(SEEDS.iterdir()))
    names = {n for g in table.groups for n in g}
    assert {"Xiaohongshu", "小红书", "Little Red Book", "KOLs", "Key Opinion Leaders"} <= names
    assert not any("Marketing Prowess" in n for n in names)


def test_expansion_adds_every_name_of_a_matched_group():
    table = AliasTable([["Xiaohongshu", "RedNote", "XHS"]])
    assert table.expand(["rednot", "algorithm"])[:2] == ["rednot", "algorithm"]
    assert "xiaohongshu" in table.expand(["xhs"])
    assert table.expand(["tiktok"]) == ["tiktok"]
    assert table.rewrite("Is XHS popular?") == "Is XHS popular? (Xiaohongshu)"
    assert table.rewrite("Is Xiaohongshu popular?") == "Is Xiaohongshu popular?"


def test_groups_sharing_a_name_merge():
    table = AliasTable([["A Corp", "ACo"], ["ACo", "Alpha Company"]])
    assert table.groups == [["A Corp", "ACo", "Alpha Company"]]


def test_user_alias_file_is_validated(tmp_path):
    good = tmp_path / "aliases.json"
    good.write_text('[["Xiaohongshu", "RedNote"]]', encoding="utf-8")
    assert load_aliases(good).groups == [["Xiaohongshu", "RedNote"]]
    bad = tmp_path / "bad.json"
    bad.write_text('{"Xiaohongshu": "RedNote"}', encoding="utf-8")
    with pytest.raises(CorpusError, match="list of lists"):
        load_aliases(bad)
