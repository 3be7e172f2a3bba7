"""bench.reader_search: search's ranking alone and re-ranked by the reader, as documents."""

from bench.reader_search import SHAPES, WEIGHTS, documents, runs
from ingest.records import Document
from retrieval.evaluation import beir_metrics

DOCUMENTS = [
    Document(source="tools", title="Tools", text="Tools\n\nThe workshop lends hammers and saws on weekdays."),
    Document(source="forge", title="Forge", text="Forge\n\nThe forge is lit on Fridays. Bring your own hammers."),
    Document(source="cafe", title="Cafe", text="Cafe\n\nThe cafe sells soup and bread at noon."),
]


def test_documents_are_ranked_by_their_first_passage(make_service):
    service = make_service()
    service.ingest_documents(DOCUMENTS)
    passages = service.searcher.search("hammers", k=10)

    assert documents([*passages, *passages]) == list(dict.fromkeys(p.source for p in passages))


def test_every_way_ranks_each_query_s_documents_once(make_service):
    service = make_service()
    service.ingest_documents(DOCUMENTS)
    queries = {"q1": "Which days does the workshop lend hammers?", "q2": "When is soup sold?"}

    ways = runs(service, queries)

    assert len(ways) == 1 + len(SHAPES) * len(WEIGHTS)
    for run in ways.values():
        assert set(run) == set(queries)
        assert all(len(ranking) == len(set(ranking)) for ranking in run.values())
    metrics = beir_metrics(ways["hybrid"], {"q1": {"tools": 1}, "q2": {"cafe": 1}})
    assert metrics["mrr@10"] == 1.0
