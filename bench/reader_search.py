"""Whether the (first) reader would help `search`: BEIR nDCG@10 of hybrid search alone and
re-ranked by it as `ask` re-ranks its passages (the second reader, seven times the cost a pair, is
left out: search answers in about 10 ms).

python -m bench.reader_search --beir DIR [--split train] --index DIR [--limit N]

For each query: the hybrid search's top passages; the reader reads the first cut of their
sentences and `retrieval.answer.rerank` mixes its best sentence's merit with the retrieval score
(the ask's way, at several reader weights and depths); documents are ranked by their first
passage. Prints one JSON line per way. The library is built in --index when it is empty.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from app.service import Sourcebook
from retrieval import answer as answering
from retrieval import reading
from retrieval.evaluation import beir_metrics, load_beir
from retrieval.settings import Settings

WEIGHTS = (0.25, 0.5)
# (passages re-ranked, sentences the reader reads): the ask's shape, and twice it.
SHAPES = ((5, 12), (10, 24))
DEPTH = 50  # search's most (recall@100 is then of the top 50)


def documents(passages) -> list[str]:
    """The passages' documents in order, each at its first passage."""
    return list(dict.fromkeys(hit.source for hit in passages))


def runs(service: Sourcebook, queries: dict[str, str]) -> dict[str, dict[str, list[str]]]:
    """Document rankings per way of ranking, per query."""
    ways: dict[str, dict[str, list[str]]] = {"hybrid": {}}
    keywords = service.library.keywords
    for query_id, query in queries.items():
        passages = service.searcher.search(query, k=DEPTH)
        ways["hybrid"][query_id] = documents(passages)
        for depth, candidates in SHAPES:
            top = passages[:depth]
            scored = reading.read_candidates(service.reader, query, top, candidates, keywords.share_holding)
            for weight in WEIGHTS:
                order = [*answering.rerank(query, top, scored, reader_weight=weight), *passages[depth:]]
                way = f"reader {weight} over top {depth} ({candidates} sentences)"
                ways.setdefault(way, {})[query_id] = documents(order)
    return ways


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--limit", type=int, help="the first N judged queries only")
    args = parser.parse_args()
    benchmark = load_beir(args.beir, args.split)
    service = Sourcebook(Settings(index_dir=args.index))
    if service.counts()[0] == 0:
        service.ingest_documents(benchmark.documents)
    queries = dict(list(benchmark.queries.items())[: args.limit])
    for way, run in runs(service, queries).items():
        print(json.dumps({"way": way, "queries": len(run), **beir_metrics(run, benchmark.qrels)}), flush=True)


if __name__ == "__main__":
    main()
