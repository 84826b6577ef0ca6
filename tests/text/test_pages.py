from __future__ import annotations

from redbook_qa.text.pages import PAGE_STARTS_KEY, page_at, page_metadata, pages_within


def test_an_offset_falls_on_the_last_page_that_starts_at_or_before_it():
    metadata = page_metadata([0, 10, 10, 25])  # page 3 is empty: it starts where 4 does
    assert metadata == {PAGE_STARTS_KEY: "1@0 2@10 3@10 4@25"}
    assert [page_at(metadata, o) for o in (0, 9, 10, 24, 25, 999)] == [1, 1, 3, 3, 4, 4]


def test_text_without_pages_has_no_page():
    assert page_metadata([]) == {}
    assert page_at({}, 5) is None
    assert pages_within({"lang": "en"}, 0, 5) == {"lang": "en"}


def test_a_chunk_keeps_only_the_pages_it_touches_and_maps_offsets_as_the_document_does():
    document = {**page_metadata([0, 100, 200, 300]), "lang": "en"}
    chunk = pages_within(document, 150, 320)
    assert chunk == {PAGE_STARTS_KEY: "2@100 3@200 4@300", "lang": "en"}
    for offset in (150, 199, 200, 319):
        assert page_at(chunk, offset) == page_at(document, offset)
