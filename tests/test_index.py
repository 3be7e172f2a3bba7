"""The vector index picks exact or IVF search by size, keeps its answers across save and load, and maps files."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from retrieval.index import VectorIndex

DIM = 16


def clustered(count: int, *, seed: int = 0) -> np.ndarray:
    """Unit vectors around 40 centres, as real passage embeddings cluster by topic."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, 40, count)] + 0.35 * rng.standard_normal((count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def grown(count: int, *, exact_up_to: int, batch: int = 500, probe: int = 8) -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    """An index filled in batches, as ingest and rebuilds fill it; ids are spaced like rowids after deletes.

    A few probed lists out of some twenty, so the IVF index here is approximate, as at scale.
    """
    vectors = clustered(count)
    ids = np.arange(count, dtype=np.int64) * 3 + 11
    index = VectorIndex(DIM, exact_up_to=exact_up_to, probe=probe)
    for first in range(0, count, batch):
        index.add(ids[first : first + batch], vectors[first : first + batch])
    return index, ids, vectors


def exact_top(ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    flat = faiss.IndexFlatIP(DIM)
    flat.add(vectors)
    _, positions = flat.search(queries, k)
    return ids[positions]


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact)]))


def test_a_small_index_is_exact_and_matches_brute_force():
    index, ids, vectors = grown(400, exact_up_to=1000)
    queries = clustered(50, seed=1)

    _, found = index.search(queries, 10)

    assert index.kind == "exact"
    assert recall(found, exact_top(ids, vectors, queries, 10)) == 1.0


def test_past_the_threshold_it_switches_to_ivf_and_keeps_recall_against_exact():
    index, ids, vectors = grown(4000, exact_up_to=1000)
    queries = clustered(100, seed=2)

    _, found = index.search(queries, 10)

    assert index.kind == "ivf"
    assert faiss.extract_index_ivf(index._index).nlist > index.probe  # approximate: not every list is read
    assert index.count == 4000
    assert np.array_equal(index.ids(), np.sort(ids))
    assert recall(found, exact_top(ids, vectors, queries, 10)) >= 0.95


def test_removed_vectors_are_never_returned_and_a_shrunk_index_goes_back_to_exact():
    index, ids, vectors = grown(3000, exact_up_to=1000)
    gone = ids[:2600]

    index.remove(gone)
    _, found = index.search(vectors[:50], 10)

    assert index.kind == "exact"  # 400 left: below half the threshold
    assert np.array_equal(index.ids(), np.sort(ids[2600:]))
    assert not set(found.ravel().tolist()) & set(gone.tolist())


@pytest.mark.parametrize("count", [300, 3000], ids=["exact", "ivf"])
def test_load_after_save_gives_the_same_results_from_a_memory_mapped_file(tmp_path, count):
    index, ids, _ = grown(count, exact_up_to=1000)
    queries = clustered(30, seed=3)
    before = index.search(queries, 10)
    path = tmp_path / "vectors.faiss"
    index.save(path, generation=7)

    loaded = VectorIndex.load(path, dim=DIM, generation=7, exact_up_to=1000, probe=8)
    after = loaded.search(queries, 10)

    assert loaded.memory_mapped
    assert loaded.kind == index.kind
    assert np.array_equal(after[1], before[1])
    assert np.allclose(after[0], before[0])
    assert np.array_equal(loaded.ids(), np.sort(ids))


@pytest.mark.parametrize("count", [300, 3000], ids=["exact", "ivf"])
def test_a_loaded_index_can_still_change_and_be_saved_again(tmp_path, count):
    index, ids, vectors = grown(count, exact_up_to=1000)
    path = tmp_path / "vectors.faiss"
    index.save(path, generation=1)
    loaded = VectorIndex.load(path, dim=DIM, generation=1, exact_up_to=1000)

    loaded.remove(ids[:5])
    loaded.add(np.array([1, 2], dtype=np.int64), vectors[:2])
    loaded.save(path, generation=2)
    reloaded = VectorIndex.load(path, dim=DIM, generation=2, exact_up_to=1000)

    assert not loaded.memory_mapped  # copied into memory by the first change
    assert loaded.search(vectors[:1], 1)[1][0, 0] in (1, ids[0])
    assert np.array_equal(reloaded.ids(), np.sort(np.concatenate([ids[5:], [1, 2]])))


def test_a_stale_or_truncated_file_loads_as_none(tmp_path):
    index, _, _ = grown(3000, exact_up_to=1000)
    path = tmp_path / "vectors.faiss"
    index.save(path, generation=4)

    assert VectorIndex.load(path, dim=DIM, generation=5) is None
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert VectorIndex.load(path, dim=DIM, generation=4) is None


def test_one_query_runs_on_one_thread_without_changing_the_callers_setting():
    index, _, vectors = grown(300, exact_up_to=1000)
    before = faiss.omp_get_max_threads()

    index.search(vectors[:1], 5)

    assert faiss.omp_get_max_threads() == before


def test_a_loaded_index_is_read_into_memory_until_it_is_copied(tmp_path):
    index, ids, vectors = grown(3000, exact_up_to=1000)
    path = tmp_path / "vectors.faiss"
    index.save(path, generation=1)
    loaded = VectorIndex.load(path, dim=DIM, generation=1, exact_up_to=1000)
    assert not loaded.wait_until_warm(timeout=0)  # only when asked: a one-off search need not read it all

    assert loaded.warm()
    assert loaded.wait_until_warm(timeout=30)
    assert loaded.memory_mapped
    loaded.remove(ids[:1])  # the first change copies the index into memory and lets the file go
    assert not loaded.wait_until_warm(timeout=0)
    assert not loaded.warm()
    assert not index.warm()  # built in memory: nothing to read
    assert loaded.search(vectors[1:2], 1)[1][0, 0] == ids[1]


def test_an_index_too_large_for_free_memory_is_left_to_the_queries(tmp_path, monkeypatch):
    from retrieval import index as index_module

    index, _, vectors = grown(300, exact_up_to=1000)
    path = tmp_path / "vectors.faiss"
    index.save(path, generation=1)
    monkeypatch.setattr(index_module, "_free_memory", lambda: path.stat().st_size)

    loaded = VectorIndex.load(path, dim=DIM, generation=1)

    assert not loaded.warm()
    assert not loaded.wait_until_warm(timeout=0)
    assert np.array_equal(loaded.search(vectors[:3], 2)[1], index.search(vectors[:3], 2)[1])
