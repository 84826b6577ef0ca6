"""Tests for the vector index, against real FAISS."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt
import pytest

from redbook_qa.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from redbook_qa.stores import ann
from redbook_qa.stores import faiss_index as index_module
from redbook_qa.stores.faiss_index import INDEX_FILE, IndexKind, VectorIndex

Matrix = npt.NDArray[np.float32]
SQRT_HALF = float(np.sqrt(0.5))


def unit_rows(n: int, d: int, seed: int) -> Matrix:
    rows = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    unit: Matrix = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    return unit


def brute_force(base: Matrix, queries: Matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine top-k in float64 numpy, ties broken by position."""
    scores = queries.astype(np.float64) @ base.astype(np.float64).T
    positions = np.arange(base.shape[0])
    order = np.array([np.lexsort((positions, -row))[:k] for row in scores])
    return order, np.take_along_axis(scores, order, 1)


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f[:10]) & set(t[:10])) for f, t in zip(found, truth, strict=True))
    return hits / (10 * len(truth))


@pytest.fixture
def compass() -> Matrix:
    """Four directions in 4-d: the x, y and z axes and the diagonal between x and y."""
    return np.array(
        [
            [1, 0, 0, 0],
            [0, 1, 0, 0],
            [0, 0, 1, 0],
            [SQRT_HALF, SQRT_HALF, 0, 0],
        ],
        dtype=np.float32,
    )


@pytest.fixture(scope="module")
def random_base() -> Matrix:
    return unit_rows(20_000, 64, seed=1)


@pytest.fixture(scope="module")
def random_queries() -> Matrix:
    return unit_rows(100, 64, seed=2)


@pytest.fixture(scope="module", params=["hnsw", "ivfsq8"])
def approximate(request: pytest.FixtureRequest, random_base: Matrix) -> VectorIndex:
    """An index of each approximate kind over the 20k random vectors."""
    return VectorIndex.build(random_base, kind=request.param)


def test_flat_search_finds_the_obvious_nearest_vectors(compass: Matrix) -> None:
    index = VectorIndex.build(compass, kind="flat")

    positions, scores = index.search(compass[[0]], k=2)

    assert positions.tolist() == [[0, 3]]
    np.testing.assert_allclose(scores, [[1.0, SQRT_HALF]], rtol=1e-6)


def test_scores_are_cosine_similarities(compass: Matrix) -> None:
    index = VectorIndex.build(compass, kind="flat")
    query = np.array([[0, SQRT_HALF, SQRT_HALF, 0]], dtype=np.float32)

    positions, scores = index.search(query, k=4)

    assert positions[0, :3].tolist() == [1, 2, 3]
    np.testing.assert_allclose(scores[0], [SQRT_HALF, SQRT_HALF, 0.5, 0.0], atol=1e-6)


def test_k_larger_than_size_returns_every_vector_once(compass: Matrix) -> None:
    index = VectorIndex.build(compass, kind="flat")

    positions, scores = index.search(compass[[2]], k=50)

    assert positions.shape == scores.shape == (1, 4)
    assert sorted(positions[0].tolist()) == [0, 1, 2, 3]
    assert positions[0, 0] == 2


def test_equal_scores_are_ordered_by_position() -> None:
    vectors = unit_rows(60, 4, seed=3)
    twins = [50, 7, 33, 12, 41, 25, 3, 58, 19, 45, 29, 36, 9, 53]  # more ties than FAISS returns
    vectors[twins] = np.array([1, 0, 0, 0], dtype=np.float32)
    index = VectorIndex.build(vectors, kind="flat")

    positions, scores = index.search(np.array([[1, 0, 0, 0]], dtype=np.float32), k=5)

    assert positions[0].tolist() == sorted(twins)[:5]
    assert np.all(scores == scores[0, 0])


def test_flat_search_matches_brute_force_cosine(
    random_base: Matrix, random_queries: Matrix
) -> None:
    base = random_base[:3000]
    index = VectorIndex.build(base, kind="flat")

    positions, scores = index.search(random_queries, k=10)

    expected_positions, expected_scores = brute_force(base, random_queries, 10)
    np.testing.assert_array_equal(positions, expected_positions)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)


def test_batched_search_equals_one_query_at_a_time(random_base: Matrix) -> None:
    index = VectorIndex.build(random_base[:3000], kind="flat")
    queries = unit_rows(40, 64, seed=4)  # large enough for FAISS's BLAS path

    batch_positions, _ = index.search(queries, k=10)

    singles = [index.search(queries[[i]], k=10)[0][0] for i in range(len(queries))]
    np.testing.assert_array_equal(batch_positions, np.array(singles))


def test_approximate_kinds_reach_recall_095_against_brute_force(
    approximate: VectorIndex, random_base: Matrix, random_queries: Matrix
) -> None:
    positions, _ = approximate.search(random_queries, k=10)

    truth, _ = brute_force(random_base, random_queries, 10)
    assert recall_at_10(positions, truth) >= 0.95
    assert float(approximate.params["tuned_recall"]) >= ann.TARGET_RECALL


def test_ivfpq_index_is_much_smaller_than_flat(tmp_path: Path) -> None:
    base = unit_rows(10_000, 16, seed=5)  # few dimensions keep product-quantiser training quick
    VectorIndex.build(base, kind="flat").save(tmp_path / "flat")
    pq = VectorIndex.build(base, kind="ivfpq")
    pq.save(tmp_path / "pq")

    flat_bytes = (tmp_path / "flat" / INDEX_FILE).stat().st_size
    assert (tmp_path / "pq" / INDEX_FILE).stat().st_size < flat_bytes / 3
    assert pq.params["pq_m"] == 2
    assert pq.search(base[:3], k=5)[0].shape == (3, 5)


def test_auto_is_exact_below_the_threshold_and_approximate_above(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = unit_rows(2_000, 16, seed=6)
    assert VectorIndex.build(base, kind="auto").kind == "flat"

    monkeypatch.setattr(index_module, "ANN_THRESHOLD", 1_000)
    approximate = VectorIndex.build(base, kind="auto")

    assert approximate.kind == "ivfsq8"
    assert {"nlist", "nprobe", "seed", "tuned_recall"} <= approximate.params.keys()


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfsq8"])
def test_save_then_load_gives_identical_results(
    kind: IndexKind, random_base: Matrix, random_queries: Matrix, tmp_path: Path
) -> None:
    original = VectorIndex.build(random_base[:5000], kind=kind)
    original.save(tmp_path)

    loaded = VectorIndex.load(tmp_path, params=original.params)

    assert loaded.params == original.params
    assert (loaded.size, loaded.dimension, loaded.kind) == (5000, 64, kind)
    for got, want in zip(
        loaded.search(random_queries, k=10), original.search(random_queries, k=10), strict=True
    ):
        np.testing.assert_array_equal(got, want)


def test_load_applies_the_manifest_search_breadth(random_base: Matrix, tmp_path: Path) -> None:
    original = VectorIndex.build(random_base[:5000], kind="ivfsq8")
    original.save(tmp_path)

    loaded = VectorIndex.load(tmp_path, params={**original.params, "nprobe": 1})

    assert loaded.params["nprobe"] == 1
    assert VectorIndex.load(tmp_path).params["nprobe"] == original.params["nprobe"]


def test_load_rejects_a_manifest_of_another_kind(compass: Matrix, tmp_path: Path) -> None:
    VectorIndex.build(compass, kind="flat").save(tmp_path)

    with pytest.raises(IndexMismatchError, match=r"'hnsw'.*'flat'.*rebuild"):
        VectorIndex.load(tmp_path, params={"kind": "hnsw", "ef_search": 64})


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfsq8", "ivfpq"])
def test_building_twice_writes_byte_identical_files(kind: IndexKind, tmp_path: Path) -> None:
    base = unit_rows(10_000, 16, seed=7)
    VectorIndex.build(base, kind=kind, seed=3).save(tmp_path / "first")
    VectorIndex.build(base, kind=kind, seed=3).save(tmp_path / "second")

    first = (tmp_path / "first" / INDEX_FILE).read_bytes()
    assert first == (tmp_path / "second" / INDEX_FILE).read_bytes()


def test_save_replaces_the_file_and_leaves_no_temporary_files(
    compass: Matrix, tmp_path: Path
) -> None:
    VectorIndex.build(compass[:2], kind="flat").save(tmp_path)
    VectorIndex.build(compass, kind="flat").save(tmp_path)

    assert [p.name for p in tmp_path.iterdir()] == [INDEX_FILE]
    assert VectorIndex.load(tmp_path).size == 4


def test_missing_index_file_raises_not_found_with_rebuild_hint(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match=r"index\.faiss.*redbook-qa index") as caught:
        VectorIndex.load(tmp_path / "nowhere")

    assert isinstance(caught.value, FileNotFoundError)


@pytest.mark.parametrize("keep", [0, 10, 0.5, -1])
def test_truncated_index_file_raises_corrupt_with_fix(
    keep: float, random_base: Matrix, tmp_path: Path
) -> None:
    VectorIndex.build(random_base[:100], kind="flat").save(tmp_path)
    path = tmp_path / INDEX_FILE
    data = path.read_bytes()
    path.write_bytes(data[: int(keep * len(data)) if isinstance(keep, float) else keep])

    with pytest.raises(IndexCorruptError, match=r"index\.faiss is truncated.*rebuild"):
        VectorIndex.load(tmp_path)


def test_foreign_file_raises_corrupt(tmp_path: Path) -> None:
    (tmp_path / INDEX_FILE).write_text("not a faiss index at all\n" * 10)

    with pytest.raises(IndexCorruptError, match="redbook-qa index"):
        VectorIndex.load(tmp_path)


def test_k_must_be_positive(compass: Matrix) -> None:
    index = VectorIndex.build(compass, kind="flat")

    with pytest.raises(ValueError, match="k must be a positive number of results, got 0"):
        index.search(compass, k=0)


def test_query_dimension_mismatch_names_both_dimensions(compass: Matrix) -> None:
    index = VectorIndex.build(compass, kind="flat")

    with pytest.raises(ValueError, match="query dimension 3 does not match index dimension 4"):
        index.search(np.ones((1, 3), dtype=np.float32) / np.sqrt(3), k=1)


def test_build_rejects_vectors_that_are_not_unit_length(compass: Matrix) -> None:
    with pytest.raises(ValueError, match=r"L2-normalised.*row 1 has norm 2"):
        VectorIndex.build(compass * np.array([[1], [2], [1], [1]], dtype=np.float32))


def test_build_rejects_an_unknown_kind_listing_the_allowed_ones(compass: Matrix) -> None:
    with pytest.raises(ValueError, match=r"kind must be one of .*'flat'.*got 'annoy'"):
        VectorIndex.build(compass, kind="annoy")  # type: ignore[arg-type]


def test_approximate_kind_with_too_few_vectors_points_to_flat(compass: Matrix) -> None:
    with pytest.raises(ValueError, match=r"at least 39 vectors, got 4.*flat"):
        VectorIndex.build(compass, kind="ivfsq8")


def test_empty_index_returns_no_results() -> None:
    index = VectorIndex.build(np.zeros((0, 4), dtype=np.float32))

    positions, scores = index.search(np.array([[1, 0, 0, 0]], dtype=np.float32), k=3)

    assert positions.shape == scores.shape == (1, 0)


def test_single_query_search_restores_the_thread_setting(compass: Matrix) -> None:
    before = faiss.omp_get_max_threads()

    VectorIndex.build(compass, kind="flat").search(compass[[0]], k=2)

    assert faiss.omp_get_max_threads() == before
