from __future__ import annotations

import numpy as np
import pytest

from redbook_qa.retrieval.fusion import convex, fuse, rrf, saturate


def test_saturate_maps_scale_to_one_half_and_keeps_weak_matches_weak():
    out = saturate(np.array([0.0, 4.0, 12.0], dtype=np.float32), scale=4.0)
    assert out.tolist() == pytest.approx([0.0, 0.5, 0.75])


def test_convex_weights_each_side():
    dense = np.array([1.0, 0.0], dtype=np.float32)
    lexical = np.array([0.0, 1.0], dtype=np.float32)
    assert convex(dense, lexical, alpha=0.75).tolist() == pytest.approx([0.75, 0.25])
    with pytest.raises(ValueError, match="alpha"):
        convex(dense, lexical, alpha=1.5)


def test_rrf_matches_hand_computed_ranks():
    dense = np.array([0.9, 0.5, 0.1], dtype=np.float32)
    lexical = np.array([0.0, 2.0, 1.0], dtype=np.float32)
    expected = [1 / 61 + 1 / 63, 1 / 62 + 1 / 61, 1 / 63 + 1 / 62]
    assert rrf(dense, lexical).tolist() == pytest.approx(expected)


def test_fuse_picks_by_name_and_rejects_unknown_names():
    dense = np.array([0.2], dtype=np.float32)
    lexical = np.array([0.8], dtype=np.float32)
    assert fuse(dense, lexical, method="dense").tolist() == pytest.approx([0.2])
    assert fuse(dense, lexical, method="lexical").tolist() == pytest.approx([0.8])
    with pytest.raises(ValueError, match="convex"):
        fuse(dense, lexical, method="magic")  # type: ignore[arg-type]
