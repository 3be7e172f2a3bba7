"""Search with the query pooled without common words against the model's plain vector, in one run
(not part of `make bench`).

    .venv/bin/python -m bench.query_pooling LIBRARY --searches 300

LIBRARY is an index directory (a SciFact ingest, say). Each SciFact claim is searched twice in
turn, k=10: once with the vector `Embedder.encode` gives (what search used before), once as
search now does it (`Searcher.query_vectors`); the common-word lookup is also timed alone.
Prints milliseconds per search as JSON.
"""

from __future__ import annotations

import json
import time

from bench.common import library_and_claims, percentiles
from retrieval.search import COMMON_WORD_SHARE


def main() -> None:
    """Open the library named on the command line and time both ways of making the query vector."""
    service, claims = library_and_claims("Time searches with the pooled query vector against the plain one.")
    searcher = service.searcher
    for claim in claims[:20]:
        searcher.search(claim, k=10)
    plain, pooled, lookup = [], [], []
    for claim in claims:
        t0 = time.perf_counter()
        searcher.search(claim, k=10, query_vector=service.embedder.encode([claim]))
        t1 = time.perf_counter()
        searcher.search(claim, k=10)
        t2 = time.perf_counter()
        searcher.keywords.common_word_spans(claim, COMMON_WORD_SHARE)
        t3 = time.perf_counter()
        plain.append((t1 - t0) * 1000)
        pooled.append((t2 - t1) * 1000)
        lookup.append((t3 - t2) * 1000)
    passages = searcher.keywords.count
    print(json.dumps({"passages": passages, "plain_vector": percentiles(plain), "pooled_vector": percentiles(pooled),
                      "common_word_lookup": percentiles(lookup)}, indent=1))


if __name__ == "__main__":
    main()
