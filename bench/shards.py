"""A vector index split into shards by document: each query fans out to every shard, and the
shards' best results are merged by score (docs/SCALING.md).

A design demonstration kept with the benchmarks, not used by sourcebook itself; tests/test_shards.py
checks that its merged results are the unsharded ones.

A document's vectors all live in one shard, chosen by a hash of its id, so shards grow evenly
and a re-ingested document replaces its vectors in one place. For exact shards the merge is
exact: the k best of the whole index are among the union of each shard's k best.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from retrieval.index import VectorIndex
from retrieval.store import WINDOW_SLOTS, Store


def shard_of(document_id: str, shards: int) -> int:
    """Return the shard that holds a document: a stable hash of its id, modulo the shard count."""
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    return int.from_bytes(hashlib.sha256(document_id.encode("utf-8")).digest()[:8], "big") % shards


def merge_top_k(results: Sequence[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-shard (scores, ids) results, one row per query, into the k best per query.

    Best first; equal scores are ordered by id, so the merge does not depend on which shard
    answered first. Empty slots (id -1) are dropped; a row with fewer than k results is padded
    with id -1 and score 0, as `VectorIndex.search` pads.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not results:
        raise ValueError("no shard results to merge")
    scores = np.concatenate([np.asarray(s, dtype=np.float32) for s, _ in results], axis=1)
    ids = np.concatenate([np.asarray(i, dtype=np.int64) for _, i in results], axis=1)
    if len(ids) == 0:
        return np.zeros((0, 1), dtype=np.float32), np.full((0, 1), -1, dtype=np.int64)
    found = ids >= 0
    width = max(1, min(k, int(found.sum(axis=1).max())))
    merged_scores = np.zeros((len(ids), width), dtype=np.float32)
    merged_ids = np.full((len(ids), width), -1, dtype=np.int64)
    for row in range(len(ids)):
        row_scores, row_ids = scores[row][found[row]], ids[row][found[row]]
        # lexsort sorts by the last key first: score descending, then id ascending.
        order = np.lexsort((row_ids, -row_scores))[:width]
        merged_scores[row, : len(order)] = row_scores[order]
        merged_ids[row, : len(order)] = row_ids[order]
    return merged_scores, merged_ids


class ShardedIndex:
    """Several vector indexes over disjoint documents, searched as one: fan out, then merge by score.

    It answers `search`, `count` and `ids` like a `VectorIndex`, so a `Searcher` can use it
    as it is; on a cluster each shard would sit in its own process (docs/SCALING.md).
    """

    def __init__(self, shards: Sequence[VectorIndex]) -> None:
        if not shards:
            raise ValueError("a sharded index needs at least one shard, got none")
        dims = {shard.dim for shard in shards}
        if len(dims) != 1:
            raise ValueError(f"every shard must hold vectors of one size, got sizes {sorted(dims)}")
        self.shards = list(shards)
        self.dim = dims.pop()
        # FAISS releases the GIL, so the shards really are searched at the same time.
        self._pool = ThreadPoolExecutor(max_workers=len(self.shards), thread_name_prefix="shard")

    @classmethod
    def from_store(cls, store: Store, *, dim: int, shards: int) -> ShardedIndex:
        """Split a library's stored vectors into `shards` exact indexes by document id."""
        indexes = [VectorIndex(dim) for _ in range(shards)]
        for vector_ids, vectors in store.iter_vectors():
            rowids = sorted({int(v) // WINDOW_SLOTS for v in vector_ids})
            documents = {rowid: stored.chunk.document_id for rowid, stored in store.chunks(rowids).items()}
            targets = np.array([shard_of(documents[int(v) // WINDOW_SLOTS], shards) for v in vector_ids])
            for number, index in enumerate(indexes):
                mine = targets == number
                if mine.any():
                    index.add(vector_ids[mine], vectors[mine])
        return cls(indexes)

    @property
    def count(self) -> int:
        """Number of vectors held, over all shards."""
        return sum(shard.count for shard in self.shards)

    def shard_sizes(self) -> list[int]:
        """Return the number of vectors in each shard."""
        return [shard.count for shard in self.shards]

    def ids(self) -> np.ndarray:
        """Return the held ids of all shards, sorted."""
        return np.sort(np.concatenate([shard.ids() for shard in self.shards]))

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Ask every shard for its k best per query row at once, and merge them into the k best overall."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        results = list(self._pool.map(lambda shard: shard.search(vectors, k), self.shards))
        return merge_top_k(results, k)

    def close(self) -> None:
        """Stop the threads that search the shards."""
        self._pool.shutdown(wait=True)
