"""Index choice: exact search against IVF (and HNSW, for comparison) at growing sizes.

Vectors are those of the largest synthetic library (bench/synthetic.py: real SciFact passage
vectors mixed and jittered), its first 10k, 25k, ... of them,
queries are the real SciFact claims encoded by the model. Each index answers the same queries
one at a time (k=100, the candidates hybrid search takes), on one thread, as a server does.
"""

from __future__ import annotations

import time
from pathlib import Path

import faiss
import numpy as np

from bench.common import percentiles, say
from bench.synthetic import stored_vectors
from retrieval import index as vector_index
from retrieval.index import VectorIndex

K = 100
# FAISS's own default (all cores), restored after each one-thread measurement.
DEFAULT_THREADS = faiss.omp_get_max_threads()


def _latency(search, queries: np.ndarray) -> dict:
    samples = []
    for query in queries:
        started = time.perf_counter()
        search(query[None, :])
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def _recall(found: np.ndarray, exact: np.ndarray, depth: int) -> float:
    return round(float(np.mean([len(set(f[:depth]) & set(e[:depth])) / depth for f, e in zip(found, exact)])), 4)


def measure(vectors: np.ndarray, queries: np.ndarray, *, hnsw: bool, threads_row: bool = False) -> list[dict]:
    """Rows for one size: exact, the automatic choice (VectorIndex), and optionally HNSW."""
    size = len(vectors)
    ids = np.arange(size, dtype=np.int64)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    faiss.omp_set_num_threads(1)
    try:
        _, truth = exact.search(queries, K)
        rows = [{"size": size, "index": "exact (IndexFlatIP)", "build_s": 0.0, "recall_at_10": 1.0,
                 "recall_at_100": 1.0, **_latency(lambda q: exact.search(q, K), queries),
                 "bytes_per_vector": vectors.shape[1] * 4 + 8}]
    finally:
        faiss.omp_set_num_threads(DEFAULT_THREADS)
    if threads_row:
        # Before the fix: FAISS's default OpenMP team for a single query (see docs/BENCHMARKS.md).
        rows.append({"size": size, "index": f"exact, FAISS default ({faiss.omp_get_max_threads()} OpenMP threads)",
                     "build_s": 0.0, "recall_at_10": 1.0, "recall_at_100": 1.0,
                     **_latency(lambda q: exact.search(q, K), queries), "bytes_per_vector": vectors.shape[1] * 4 + 8})
    del exact

    # The automatic choice, grown in the batches a rebuild from the store uses.
    started = time.perf_counter()
    automatic = VectorIndex(vectors.shape[1])
    for first in range(0, size, 10_000):
        automatic.add(ids[first : first + 10_000], vectors[first : first + 10_000])
    built = time.perf_counter() - started
    _, found = automatic.search(queries, K)
    label = ("exact" if automatic.kind == "exact" else
             f"IVF{vector_index.ivf_lists(automatic._trained_for)},Flat nprobe={automatic.probe}")
    rows.append({"size": size, "index": f"automatic: {label}", "build_s": round(built, 1),
                 "recall_at_10": _recall(found, truth, 10), "recall_at_100": _recall(found, truth, 100),
                 **_latency(lambda q: automatic.search(q, K), queries),
                 "bytes_per_vector": vectors.shape[1] * 4 + 8})
    del automatic

    if hnsw:
        started = time.perf_counter()
        graph = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = 40
        graph.add(vectors)
        built = time.perf_counter() - started
        for ef in (64, 128):
            graph.hnsw.efSearch = ef
            faiss.omp_set_num_threads(1)
            try:
                _, found = graph.search(queries, K)
                timing = _latency(lambda q: graph.search(q, K), queries)
            finally:
                faiss.omp_set_num_threads(DEFAULT_THREADS)
            rows.append({"size": size, "index": f"HNSW32 efSearch={ef} (no removal)", "build_s": round(built, 1),
                         "recall_at_10": _recall(found, truth, 10), "recall_at_100": _recall(found, truth, 100),
                         **timing, "bytes_per_vector": vectors.shape[1] * 4 + 32 * 2 * 4 + 8})
        del graph
    return rows


def run(library: Path, queries: np.ndarray, sizes: list[int], *, hnsw_sizes: tuple[int, ...] = (100_000,)) -> list[dict]:
    """The index choice table over the first `sizes` vectors of a (synthetic) library."""
    everything = stored_vectors(library, limit=max(sizes))
    rows = []
    for size in sizes:
        if size > len(everything):
            continue
        say(f"index choice: {size:,} vectors")
        rows.extend(measure(everything[:size], queries, hnsw=size in hnsw_sizes, threads_row=size == 100_000))
    return rows
