"""SciFact quality with the approximate modes forced on at a size where they are normally off.

    .venv/bin/python -m bench.approximate_quality /tmp/sourcebook-bench/scifact

Prints nDCG@10, recall@10, recall@100 and MRR@10 (dense, keyword, hybrid) two ways over the same
library: as shipped (exact at SciFact's size), and with the dense index rebuilt as IVF (threshold
lowered to 1,000 vectors). Keyword search is exact BM25 at every size. Not part of `make bench`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app.service import Sourcebook
from bench.common import SCIFACT
from retrieval import evaluation
from retrieval.index import VectorIndex
from retrieval.settings import Settings


def main() -> None:
    """Evaluate the library named on the command line two ways and print the figures as JSON."""
    benchmark = evaluation.load_beir(SCIFACT, "train")
    service = Sourcebook(Settings(index_dir=Path(sys.argv[1])))

    def figures() -> dict:
        runs = evaluation.beir_runs(service, benchmark.queries, fusion=service.fusion)
        return {mode: evaluation.beir_metrics({q: [d for d, _ in r] for q, r in run.items()}, benchmark.qrels)
                for mode, run in runs.items()}

    results = {"as shipped (exact at this size)": figures()}
    index = VectorIndex(service.library.index.dim, exact_up_to=1000)
    for ids, vectors in service.library.store.iter_vectors():
        index.add(ids, vectors)
    service.library.index = index
    results[f"dense {index.kind} forced ({index.count} vectors)"] = figures()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
