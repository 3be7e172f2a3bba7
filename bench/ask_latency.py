"""Ask latency over HTTP on one library, one client: python -m bench.ask_latency --index DIR [--qa FILE] [--asks N].

The real app (API, no page) under uvicorn in its own process on 127.0.0.1 (bench.server, which
loads the readers at start as `sourcebook serve` does); five warm-up rounds, then each question
asked once in turn, k=5. Prints the start-up breakdown, the readers' load times and the
search and ask percentiles as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench.queries import http_figures
from retrieval.evaluation import load_qa
from retrieval.reader import Reader
from retrieval.settings import Settings


def main() -> None:
    """Time the reader's load, then search and ask over HTTP."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--qa", type=Path, default=Path("corpus/qa.jsonl"))
    parser.add_argument("--asks", type=int, default=122)
    args = parser.parse_args()
    settings = Settings()  # the readers the server loads (SOURCEBOOK_READER_DIR, SOURCEBOOK_SECOND_READER_DIR)
    started = time.perf_counter()
    Reader(settings.reader_dir)
    reader_load_s = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    if settings.second_reads:
        Reader(settings.second_reader_dir)
    second_reader_load_s = round(time.perf_counter() - started, 3)
    questions = [item.question for item in load_qa(args.qa)]
    figures = http_figures(args.index, questions, searches=len(questions), asks=args.asks)
    print(json.dumps({"reader_load_s": reader_load_s, "second_reader_load_s": second_reader_load_s, **figures}, indent=2))


if __name__ == "__main__":
    main()
