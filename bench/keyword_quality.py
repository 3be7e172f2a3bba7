"""Tiered keyword search against exact BM25 on a large library, for several budgets (not part of `make bench`).

    .venv/bin/python -m bench.keyword_quality /tmp/sourcebook-bench/synthetic-100000 --queries 200 \
        --budgets 10000:30000,4000:150000

For each budget (rows gathered through the rare words : postings of the common words) it prints the
keyword half's p50/p95 wall and CPU milliseconds (k=100), its recall@10 and @100 against exact BM25
over every content word, and the agreement of the hybrid top 10 with the hybrid top 10 built on
exact BM25 (same dense candidates). In a synthetic library each passage is one of many variants of
a real one (bench/synthetic.py) whose BM25 scores nearly tie, so agreement is also counted on the
real passages the variants come from ("variants"). Exact BM25 takes about 0.1 s a query at 100k
chunks and 2 s at 1M.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.common import SCIFACT, percentiles
from retrieval import evaluation
from retrieval import store as store_module
from retrieval.library import STORE_FILE
from retrieval.search import dense_search, fuse
from retrieval.service import Sourcebook
from retrieval.settings import Settings
from retrieval.store import Store

K = 100


def main() -> None:
    """Measure the budgets named on the command line over one library."""
    parser = argparse.ArgumentParser()
    parser.add_argument("library", type=Path)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--budgets", default=f"{store_module.KEYWORD_ROW_BUDGET}:{store_module.KEYWORD_POSTING_BUDGET}")
    args = parser.parse_args()
    questions = list(evaluation.load_beir(SCIFACT, "train").queries.values())[: args.queries]
    service = Sourcebook(Settings(index_dir=args.library))
    store = service.library.store
    info = args.library / "synthetic.json"
    seeds = json.loads(info.read_text())["seed_passages"] if info.exists() else None

    def variants(ranking, n: int) -> set[int]:
        # Synthetic passage r (rowids from 1, in build order) is a variant of seed passage (r - 1) % seeds.
        return {(rowid - 1) % seeds for rowid, _ in ranking[:n]}

    dense = [dense_search(service.library.index, service.embedder.encode([q]), K) for q in questions]
    exact_up_to = store_module.KEYWORD_EXACT_UP_TO
    store_module.KEYWORD_EXACT_UP_TO = 10**12
    began = time.perf_counter()
    exact = [store.keyword_search(q, K) for q in questions]
    exact_s = (time.perf_counter() - began) / len(questions)
    store_module.KEYWORD_EXACT_UP_TO = exact_up_to
    hybrid_exact = [fuse(d, e, service.fusion) for d, e in zip(dense, exact)]

    results = {"library": str(args.library), "queries": len(questions), "exact_bm25_s_per_query": round(exact_s, 3)}
    for budget in args.budgets.split(","):
        rows, postings = (int(part) for part in budget.split(":"))
        store_module.KEYWORD_ROW_BUDGET, store_module.KEYWORD_POSTING_BUDGET = rows, postings
        # A store of its own per budget: none inherits the word shares another one estimated.
        store = Store(args.library / STORE_FILE)
        wall, cpu, recall10, recall100, hybrid10, variant10, hybrid_variant10 = [], [], [], [], [], [], []
        for question, e, d, he in zip(questions, exact, dense, hybrid_exact):
            c0, t0 = time.process_time(), time.perf_counter()
            tiered = store.keyword_search(question, K)
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            hybrid = fuse(d, tiered, service.fusion)
            hybrid10.append(len({r for r, _ in hybrid[:10]} & {r for r, _ in he[:10]}) / 10)
            if e:
                exact_ids, tiered_ids = [r for r, _ in e], [r for r, _ in tiered]
                recall10.append(len(set(exact_ids[:10]) & set(tiered_ids[:10])) / min(10, len(exact_ids)))
                recall100.append(len(set(exact_ids) & set(tiered_ids)) / len(exact_ids))
                if seeds:
                    variant10.append(len(variants(e, 10) & variants(tiered, 10)) / len(variants(e, 10)))
            if seeds:
                variant10_exact = variants(he, 10)
                hybrid_variant10.append(len(variant10_exact & variants(hybrid, 10)) / len(variant10_exact))
        row = {
            "wall_ms": percentiles(wall), "cpu_ms": percentiles(cpu),
            "recall_at_10": round(float(np.mean(recall10)), 3), "recall_at_100": round(float(np.mean(recall100)), 3),
            "hybrid_top10_agreement": round(float(np.mean(hybrid10)), 3),
        }
        if seeds:
            row["variants_recall_at_10"] = round(float(np.mean(variant10)), 3)
            row["hybrid_variants_top10_agreement"] = round(float(np.mean(hybrid_variant10)), 3)
        results[f"rows {rows}, postings {postings}"] = row
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
