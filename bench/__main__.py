"""`python -m bench` (`make bench`): every speed, memory and scale figure, written to bench/results/.

Options: --quick ingests the first 1,000 SciFact abstracts instead of all 5,183 for the
pipeline-against-encode comparison; --only picks sections (ingest, index, queries, load); --sizes the
synthetic library sizes; --merge adds this run's rows to the results already written; --cache
names the folder for the libraries built once and reused (default /tmp/sourcebook-bench, or
$SOURCEBOOK_BENCH_CACHE). Nothing here listens anywhere but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

SECTIONS = ("ingest", "index", "queries", "load")


def evaluation_chunks(directory: Path) -> int:
    """Chunks held by a library directory."""
    from retrieval.library import STORE_FILE
    from retrieval.store import Store

    store = Store(directory / STORE_FILE)
    chunks = store.counts()[1]
    store.close()
    return chunks


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmark sections and write the results."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", default=os.environ.get("SOURCEBOOK_BENCH_QUICK") == "1",
                        help="SciFact ingest on the first 1,000 abstracts only (also SOURCEBOOK_BENCH_QUICK=1)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("SOURCEBOOK_BENCH_CACHE", "/tmp/sourcebook-bench")))
    parser.add_argument("--sizes", default="100000,1000000", help="synthetic library sizes, in passages")
    parser.add_argument("--index-sizes", default="10000,25000,50000,100000,1000000",
                        help="vector counts for the index choice table (taken from the largest synthetic library)")
    parser.add_argument("--searches", type=int, default=300, help="queries timed per size for search")
    parser.add_argument("--asks", type=int, default=100, help="questions timed per size for ask")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    parser.add_argument("--merge", action="store_true",
                        help="add this run's rows to the results already in the folder instead of replacing them")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from bench import common, ingest, report, synthetic
    from retrieval import evaluation
    from retrieval.embedder import load_embedder
    from retrieval.settings import Settings

    started = time.perf_counter()
    results: dict = {
        "command": "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "machine": common.machine(),
        "sections": sections,
    }
    args.cache.mkdir(parents=True, exist_ok=True)
    # One embedder (ONNX, exported once into the cache) for every library the benchmark opens.
    embedder = load_embedder(Settings(index_dir=args.cache))
    onnx_dir = args.cache / "model-onnx"
    scifact_dir = args.cache / "scifact"

    if "ingest" in sections:
        results["ingest"] = ingest.run(embedder, onnx_dir, scifact_dir, quick=args.quick)
    benchmark = evaluation.load_beir(common.SCIFACT, "train")
    ingest.ensure_scifact(embedder, scifact_dir, benchmark.documents)
    questions = list(benchmark.queries.values())

    seed = synthetic.load_seed(scifact_dir) if ("index" in sections or "queries" in sections) else None
    libraries = [("SciFact (real)", scifact_dir, evaluation_chunks(scifact_dir))]
    if seed is not None:
        for size in sizes:
            info = synthetic.cached_library(seed, embedder, args.cache / f"synthetic-{size}", size, report=common.say)
            libraries.append((f"synthetic {size:,}", args.cache / f"synthetic-{size}", info["chunks"]))
    if "index" in sections:
        from bench import index_choice

        query_vectors = embedder.encode(questions[: args.searches])
        largest = libraries[-1][1]
        index_sizes = [int(size) for size in args.index_sizes.split(",") if size.strip()]
        results["index_choice"] = index_choice.run(largest, query_vectors, index_sizes)
    if "queries" in sections:
        from bench import queries

        results["queries"] = queries.run(embedder, onnx_dir, libraries, questions,
                                         searches=args.searches, asks=args.asks)

    if "load" in sections:
        from bench import load

        results["load"] = load.run(embedder, onnx_dir, args.cache / "default-corpus")

    results["duration_s"] = round(time.perf_counter() - started, 1)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["targets"] = report.targets(results)
    out = args.out or common.RESULTS
    out.mkdir(parents=True, exist_ok=True)
    if args.merge and (out / "latest.json").exists():
        results = report.merge(json.loads((out / "latest.json").read_text()), results)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = report.markdown(results)
    (out / "latest.md").write_text(markdown)
    report.plots(results, out)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
