"""Hybrid search: dense (FAISS) and keyword (BM25) candidates fused into one ranking (retrieval/fusion.py)."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from retrieval import spelling
from retrieval.embedder import Embedder, TokenVectors
from retrieval.fusion import Fusion, Ranked, fuse
from retrieval.index import VectorIndex
from retrieval.keyword import KeywordIndex
from retrieval.records import Correction, Hit, Place
from retrieval.store import WINDOW_SLOTS, Store
from retrieval.text import WORD

MAX_K = 50
# A misspelt word's nearest library words are looked for in this many passages holding a term near it.
SPELLING_PASSAGES = 20


def check_k(k: int) -> int:
    """Return k if it is a valid number of results, else raise naming the value."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return k


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = WORD.findall(text.lower())
    return {tuple(words[i : i + 3]) for i in range(max(1, len(words) - 2))}


def collapse(
    hits: Sequence[Hit], *, max_overlap: float = 0.5, max_similarity: float = 0.8, limit: int | None = None
) -> list[Hit]:
    """Drop hits that repeat a better one: an overlapping span of the same document, or near-identical text.

    With `limit`, stop once that many hits are kept.
    """
    kept: list[Hit] = []
    kept_shingles: list[set[tuple[str, ...]]] = []
    for hit in hits:
        if limit is not None and len(kept) == limit:
            break
        shingles = _shingles(hit.text)
        duplicate = False
        for other, other_shingles in zip(kept, kept_shingles):
            if other.document_id == hit.document_id:
                overlap = min(other.end, hit.end) - max(other.start, hit.start)
                if overlap > max_overlap * min(hit.end - hit.start, other.end - other.start):
                    duplicate = True
                    break
            shared = len(shingles & other_shingles)
            union = len(shingles) + len(other_shingles) - shared
            if union and shared / union >= max_similarity:
                duplicate = True
                break
        if not duplicate:
            kept.append(hit)
            kept_shingles.append(shingles)
    return kept


# A word that more than this share of the passages contain tells little about which passage a
# query wants ("Xiaohongshu" in a library about Xiaohongshu, "the" in any), yet the model's
# mean weighs it like the rest: the query's vector is pooled from its other word pieces
# (docs/QUALITY.md). Shares are read only in a library of at least COMMON_WORDS_FROM passages.
COMMON_WORD_SHARE = 0.3
COMMON_WORDS_FROM = 20


def pool_query(tokens: TokenVectors, skipped: Sequence[tuple[int, int]] = ()) -> np.ndarray:
    """Return a query's unit vector: the mean of its word pieces outside the `skipped` spans.

    When every piece is skipped (or none is), all of them are pooled: a query made only of
    common words still means something.
    """
    if not tokens.spans:
        raise ValueError("a query needs at least one word piece to pool, got none")
    keep = [
        i for i, (start, end) in enumerate(tokens.spans)
        if not any(first <= start and end <= last for first, last in skipped)
    ]
    mean = (tokens.vectors[keep] if keep else tokens.vectors).mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


# Windows fetched per passage wanted: a passage's several windows often rank together.
WINDOWS_PER_PASSAGE = 4


def dense_search(index: VectorIndex, query_vector: np.ndarray, k: int) -> Ranked:
    """Return the k chunks whose best window is nearest by cosine similarity, best first."""
    scores, ids = index.search(query_vector, k * WINDOWS_PER_PASSAGE)
    best: dict[int, float] = {}
    for score, vector_id in zip(scores[0], ids[0]):
        if vector_id >= 0:
            # Results come best first, so a passage's first window is its best.
            best.setdefault(int(vector_id) // WINDOW_SLOTS, float(score))
            if len(best) == k:
                break
    return list(best.items())


# The keyword half of each search runs on one of these threads while the calling thread searches
# the vectors: tantivy and FAISS release the GIL, so the halves overlap on two cores
# (docs/BENCHMARKS.md).
KEYWORD_THREADS = 8
_keyword_pool: tuple[int, ThreadPoolExecutor] | None = None
_keyword_pool_lock = threading.Lock()


def _keyword_threads() -> ThreadPoolExecutor:
    """The keyword threads of this process (a forked child starts its own: it has none of its parent's)."""
    global _keyword_pool
    with _keyword_pool_lock:
        if _keyword_pool is None or _keyword_pool[0] != os.getpid():
            pool = ThreadPoolExecutor(max_workers=KEYWORD_THREADS, thread_name_prefix="sourcebook-keyword")
            _keyword_pool = (os.getpid(), pool)
        return _keyword_pool[1]


class Searcher:
    """Runs hybrid searches over one store, index and embedder."""

    def __init__(
        self, store: Store, index: VectorIndex, keywords: KeywordIndex, embedder: Embedder, *, candidates: int, fusion: Fusion
    ) -> None:
        self.store = store
        self.index = index
        self.keywords = keywords
        self.embedder = embedder
        self.candidates = candidates
        self.fusion = fusion

    def rankings(
        self, query: str, query_vector: np.ndarray | None = None, *, source: str | None = None
    ) -> tuple[Ranked, Ranked]:
        """Return the dense and keyword candidate rankings for a query, encoding it if no vector is given."""
        # The query encodes first, on every core it gets; then the keyword half runs beside the
        # dense one (a millisecond against two or three), rather than beside the encode, where
        # it would take a core from it (docs/BENCHMARKS.md).
        if query_vector is None:
            query_vector = self.query_vectors([query])
        keyword = _keyword_threads().submit(self.keywords.search, query, self.candidates, source=source)
        try:
            dense = self._dense(query_vector, source)
        finally:
            # Wait for the keyword half even if the dense half failed, so no search outlives its call.
            keyword_ranking = keyword.result()
        return dense, keyword_ranking

    def query_vectors(self, queries: Sequence[str]) -> np.ndarray:
        """Return one unit row per query for the dense half: pooled without the library's common words."""
        pooling_by_share = self.keywords.count >= COMMON_WORDS_FROM
        rows = []
        for query, tokens in zip(queries, self.embedder.token_vectors(queries), strict=True):
            if not tokens.spans:
                # Nothing the tokenizer keeps (a zero-width space): the model's own vector of it.
                rows.append(self.embedder.encode([query])[0])
                continue
            common = self.keywords.common_word_spans(query, COMMON_WORD_SHARE) if pooling_by_share else []
            rows.append(pool_query(tokens, common))
        return np.asarray(rows, dtype=np.float32).reshape(len(queries), -1)

    def _dense(self, query_vector: np.ndarray, source: str | None) -> Ranked:
        if source is None:
            return dense_search(self.index, query_vector, self.candidates)
        # Filtering after the fact needs a deeper dense list to leave enough candidates.
        deep = dense_search(self.index, query_vector, self.candidates * 20)
        allowed = {r for r, c in self.store.chunks([r for r, _ in deep]).items() if c.source == source}
        return [pair for pair in deep if pair[0] in allowed][: self.candidates]

    def corrections(self, question: str) -> tuple[Correction, ...]:
        """How to read the question's misspelt words: each as the nearest word the library holds
        (retrieval/spelling.py), found in the passages holding a term near it."""

        def library_words_near(word: str, edits: int) -> list[str]:
            rowids = self.keywords.near(word, edits, limit=SPELLING_PASSAGES)
            return [w for stored in self.store.chunks(rowids).values() for w in spelling.words_of(stored.chunk.text)]

        return spelling.corrections(question, known=self.keywords.written, english=spelling.is_english,
                                    library_words_near=library_words_near, same_stem=self.keywords.same_stem,
                                    listed=spelling.is_listed)

    def read(self, query: str) -> tuple[str, tuple[Correction, ...]]:
        """The query as `ask` and `search` read it (its misspelt words as the library's nearest),
        with the readings made."""
        found = self.corrections(query)
        return spelling.corrected(query, found), found

    def search(self, query: str, *, k: int = 5, source: str | None = None, query_vector: np.ndarray | None = None) -> list[Hit]:
        """Return the k best distinct passages for `query`, optionally from one source only."""
        check_k(k)
        if not query.strip():
            raise ValueError("query must contain some text, got an empty string")
        dense, keyword = self.rankings(query, query_vector, source=source)
        fused = fuse(dense, keyword, self.fusion)
        # Up to 3k passages may be needed, since collapsing drops duplicates; they are read a few at
        # a time (k + 2 first), as in a large library each row read may be a read from disk.
        top = fused[: k * 3]
        hits: list[Hit] = []
        kept: list[Hit] = []
        read = 0
        while read < len(top) and len(kept) < k:
            batch = top[read : read + (k + 2 if read == 0 else k)]
            stored = self.store.chunks([rowid for rowid, _ in batch])
            hits += [to_hit(stored[rowid], score) for rowid, score in batch if rowid in stored]
            read += len(batch)
            kept = collapse(hits, limit=k)
        return kept


def to_hit(stored, score: float) -> Hit:
    """Turn a stored chunk and its score into a Hit."""
    chunk = stored.chunk
    return Hit(
        chunk_id=chunk.id,
        document_id=chunk.document_id,
        source=stored.source,
        title=stored.title,
        place=Place(chunk.heading, chunk.page, chunk.line_start, chunk.line_end),
        start=chunk.start,
        end=chunk.end,
        text=chunk.text,
        score=round(float(score), 4),
        pages=chunk.pages,
    )
