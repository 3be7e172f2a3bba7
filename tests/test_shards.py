"""A sharded index: the corpus split four ways by document, a query fanned out and merged."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from app.service import Sourcebook
from bench.shards import ShardedIndex, merge_top_k, shard_of
from retrieval.index import VectorIndex
from retrieval.search import Searcher
from retrieval.settings import Settings
from retrieval.store import WINDOW_SLOTS
from tests.fakes import FakeEmbedder, FakeReader
from tests.helpers import CORPUS


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """The default corpus ingested with the fake model, and the same vectors split into four shards.

    Made once for the module (the tests only read it): an ingest of the corpus is most of their cost.
    """
    folder = tmp_path_factory.mktemp("shards")
    shutil.copytree(CORPUS, folder / "corpus")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        service = Sourcebook(Settings(index_dir=folder / "index"), embedder=FakeEmbedder(), reader=FakeReader())
        service.ingest(folder / "corpus")
    sharded = ShardedIndex.from_store(service.library.store, dim=service.library.dim, shards=4)
    yield service, sharded
    sharded.close()


def questions() -> list[str]:
    lines = (CORPUS / "qa.jsonl").read_text().splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def test_the_corpus_splits_into_four_shards_by_document(library):
    service, sharded = library
    store = service.library.store

    sizes = sharded.shard_sizes()
    assert len(sizes) == 4 and all(size > 0 for size in sizes)
    # Every vector is in exactly one shard, and none is lost.
    assert sum(sizes) == service.library.index.count
    assert np.array_equal(sharded.ids(), store.vector_ids())
    for number, shard in enumerate(sharded.shards):
        rowids = sorted({int(v) // WINDOW_SLOTS for v in shard.ids()})
        documents = {stored.chunk.document_id for stored in store.chunks(rowids).values()}
        # A document's vectors all live in the shard its id hashes to.
        assert documents and all(shard_of(document, 4) == number for document in documents)


def assert_same_top_k(expected: tuple[np.ndarray, np.ndarray], got: tuple[np.ndarray, np.ndarray],
                      every_score: list[dict[int, float]]) -> None:
    """The same k best: equal scores rank by rank, and each id really has the score it is listed with.

    Where several vectors have exactly the same score (overlapping passages share windows),
    which of them comes first is arbitrary in FAISS too; everywhere else the ids are equal.
    """
    (expected_scores, expected_ids), (scores, ids) = expected, got
    assert ids.shape == expected_ids.shape
    np.testing.assert_allclose(scores, expected_scores, rtol=0, atol=1e-6)
    for row, (row_scores, row_ids) in enumerate(zip(scores, ids)):
        assert len(set(row_ids.tolist())) == len(row_ids)
        for score, vector_id in zip(row_scores, row_ids):
            assert every_score[row][int(vector_id)] == pytest.approx(float(score), abs=1e-6)
        # Only places whose score another vector shares exactly may differ.
        for score in row_scores[row_ids != expected_ids[row]]:
            assert sum(abs(other - score) <= 1e-6 for other in every_score[row].values()) > 1


def test_the_merged_top_k_equals_the_unsharded_top_k(library, embedder):
    service, sharded = library
    index = service.library.index
    vectors = embedder.encode(questions())
    all_scores, all_ids = index.search(vectors, index.count)
    every_score = [dict(zip(row_ids.tolist(), row_scores.tolist())) for row_scores, row_ids in zip(all_scores, all_ids)]

    for k in (1, 10, 40):
        expected = index.search(vectors, k)
        got = sharded.search(vectors, k)
        assert got[1].shape == (len(vectors), k)
        assert_same_top_k(expected, got, every_score)
        # One query at a time (the way a search asks) gives the same as the batch.
        single = sharded.search(vectors[:1], k)
        assert np.array_equal(single[1][0], got[1][0])


def test_hybrid_search_over_the_shards_returns_the_same_passages(library, embedder):
    service, sharded = library
    fusion = service.fusion

    stored = service.library
    unsharded = Searcher(stored.store, stored.index, stored.keywords, embedder, candidates=100, fusion=fusion)
    fanned_out = Searcher(stored.store, sharded, stored.keywords, embedder, candidates=100, fusion=fusion)

    for question in questions()[:20]:
        expected = [(hit.chunk_id, hit.score) for hit in unsharded.search(question, k=5)]
        assert [(hit.chunk_id, hit.score) for hit in fanned_out.search(question, k=5)] == expected
    top = fanned_out.search("Which cloud provider does Xiaohongshu use?", k=1)[0]
    assert "cloud" in top.text.lower()


def test_merge_keeps_the_best_drops_empty_slots_and_orders_ties_by_id():
    shard_a = (np.array([[0.9, 0.5, 0.1]]), np.array([[7, 3, 4]]))
    shard_b = (np.array([[0.5, 0.0]]), np.array([[2, -1]]))  # a shard with one vector: an empty slot
    empty = (np.array([[0.0]]), np.array([[-1]]))  # an empty shard

    scores, ids = merge_top_k([shard_a, shard_b, empty], k=3)

    assert ids.tolist() == [[7, 2, 3]]
    assert np.allclose(scores, [[0.9, 0.5, 0.5]])
    scores, ids = merge_top_k([shard_b, empty], k=5)
    assert ids.tolist() == [[2]] and np.allclose(scores, [[0.5]])


def test_shards_are_checked_where_they_are_made():
    with pytest.raises(ValueError, match="shards must be at least 1, got 0"):
        shard_of("abc", 0)
    with pytest.raises(ValueError, match="one size, got sizes \\[8, 16\\]"):
        ShardedIndex([VectorIndex(8), VectorIndex(16)])
    with pytest.raises(ValueError, match="k must be at least 1, got 0"):
        merge_top_k([(np.zeros((1, 1)), np.zeros((1, 1), np.int64))], k=0)
    # The same id always lands in the same shard, and ids spread over all of them.
    assert shard_of("3f2a9c0d11aa42b7", 4) == shard_of("3f2a9c0d11aa42b7", 4)
    assert {shard_of(f"document-{n}", 4) for n in range(64)} == {0, 1, 2, 3}
