"""The grounding check with the real model on the real seeds."""

from __future__ import annotations

import numpy as np

from redbook_qa.answering.grounding import Grounder, draft_sentences

QUESTION = "Who makes Labubu?"


def _align(qa, draft: str):
    context = qa.context(QUESTION, k=5)
    grounder = Grounder(qa.embedder)
    return grounder.align(
        draft, context.evidence, context.passages, question=QUESTION, vectors=context.vectors
    )


def test_draft_markers_are_read_and_removed():
    assert draft_sentences("Cats purr [2]. Dogs bark [1][3]! ok") == [
        ("Cats purr.", (2,)),
        ("Dogs bark!", (1, 3)),
        ("ok", ()),
    ]


def test_a_sentence_the_passages_state_is_supported_by_a_quote_that_states_it(seeds_qa):
    (a,) = _align(seeds_qa, "Labubu is made by Pop Mart.")
    assert a.supported
    assert a.evidence is not None
    assert "Pop Mart" in a.evidence.text


def test_invented_names_and_numbers_are_never_supported(seeds_qa):
    alignments = _align(seeds_qa, "Labubu is made by Mattel. Pop Mart sold 9876543 of them.")
    assert [a.supported for a in alignments] == [False, False]
    assert "mattel" in alignments[0].novel
    assert "9876543" in alignments[1].novel


def test_a_wrong_citation_is_corrected_to_the_passage_that_supports_the_sentence(seeds_qa):
    context = seeds_qa.context(QUESTION, k=5)
    grounder = Grounder(seeds_qa.embedder)
    wrong = next(n for n, p in enumerate(context.passages, 1) if "Pop Mart" not in p.text)
    (a,) = grounder.align(
        f"Labubu is made by Pop Mart [{wrong}].",
        context.evidence,
        context.passages,
        vectors=context.vectors,
    )
    assert a.supported
    assert a.cited == (wrong,)
    assert a.corrected
    assert a.evidence is not None
    assert "Pop Mart" in a.evidence.text


def test_the_context_carries_the_index_time_vectors_of_its_evidence(seeds_qa):
    context = seeds_qa.context(QUESTION, k=5)
    store = seeds_qa.store
    source_of = {c.id: c.source for c in store.chunks}
    row_of = {(source_of[s.chunk_id], s.start, s.end): i for i, s in enumerate(store.sentences)}
    stored = context.vectors
    assert stored is not None
    assert stored.shape == (len(context.evidence), seeds_qa.embedder.dimension)
    for i, evidence in enumerate(context.evidence):
        row = row_of[(evidence.source, evidence.start, evidence.end)]
        np.testing.assert_array_equal(stored[i], store.sentence_vectors[row])
    # Without them the grounder encodes each sentence alone: a vector of the same meaning.
    fresh = Grounder(seeds_qa.embedder)._evidence_vectors(context.evidence, None)
    assert (stored * fresh).sum(axis=1).min() > 0.5
