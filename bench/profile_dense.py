"""A loop of single-query exact searches, for profiling FAISS's threading (not part of `make bench`).

    py-spy record --native --format raw -o out.txt -- .venv/bin/python -m bench.profile_dense --threads 2

With FAISS's default OpenMP team (2 threads here) most samples land in libgomp's barrier and
OpenBLAS's threaded gemv instead of the search; with --threads 1 they do not
(bench/results/profiles/, docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np


def main() -> None:
    """Time `--queries` single-query searches over `--size` random unit vectors."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--threads", type=int, default=None, help="OpenMP threads (default: FAISS's own)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.size, 384), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(384))
    index.add_with_ids(vectors, np.arange(args.size, dtype=np.int64))
    queries = vectors[: args.queries] + 0.05 * rng.standard_normal((args.queries, 384), dtype=np.float32)
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    samples = []
    for query in queries:
        started = time.perf_counter()
        index.search(query[None, :], 100)
        samples.append((time.perf_counter() - started) * 1000)
    print(f"{faiss.omp_get_max_threads()} OpenMP threads, {args.size:,} vectors: "
          f"p50 {np.percentile(samples, 50):.2f} ms, p95 {np.percentile(samples, 95):.2f} ms per query")


if __name__ == "__main__":
    main()
