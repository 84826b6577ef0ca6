from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from redbook_qa.models import Answer, Citation, Context, Document


def _citation(number: int) -> Citation:
    return Citation(
        number=number, source="a", title="A", section="A", text="abc", start=0, end=3, score=0.5
    )


def test_a_span_whose_offsets_disagree_with_its_text_is_refused():
    with pytest.raises(ValidationError, match="has length 2"):
        Citation(number=1, source="a", title="A", section="A", text="abc", start=0, end=2, score=1)


def test_citations_must_be_numbered_one_to_n_in_order():
    Answer(question="q", text="abc [1] abc [2]", citations=(_citation(1), _citation(2)))
    with pytest.raises(ValidationError, match=r"numbered 1\.\.n"):
        Answer(question="q", text="abc [2]", citations=(_citation(2),))


def test_an_abstention_carries_no_citations():
    with pytest.raises(ValidationError, match="no citations"):
        Answer(question="q", text="x", abstained=True, citations=(_citation(1),))


def test_a_document_without_a_source_is_cited_by_its_id():
    assert Document(id="p1", title="T", text="x").source == "p1"


def test_a_context_carries_its_vectors_without_serialising_them():
    context = Context(question="q", passages=(), evidence=())
    with_vectors = context.with_vectors(np.zeros((0, 4), dtype=np.float32))
    assert with_vectors.vectors is not None
    assert "vectors" not in with_vectors.model_dump_json()
    with pytest.raises(ValueError, match="3 vectors for 0 evidence"):
        context.with_vectors(np.zeros((3, 4), dtype=np.float32))
