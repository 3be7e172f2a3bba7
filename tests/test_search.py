"""Hybrid search: fusion, duplicate collapsing, filters and argument checks."""

from __future__ import annotations

import multiprocessing
import os
import threading

import pytest

from retrieval.records import Correction, Hit, Place
import numpy as np

from retrieval.embedder import TokenVectors
from retrieval.fusion import Fusion, fuse
from retrieval.search import COMMON_WORDS_FROM, collapse, pool_query
from retrieval.settings import Settings
from retrieval.store import WINDOW_SLOTS
from tests.helpers import write_files

HANDBOOK = {
    "vpn.txt": "Remote access\nConnect to the office network through the VPN client. "
    "The VPN certificate is issued by the platform team and expires after ninety days.\n",
    "expenses.txt": "Expenses\nSubmit travel receipts in the finance portal within thirty days. "
    "Meals abroad are reimbursed up to fifty euros a day.\n",
    "security.txt": "Security\nLaptops must use full-disk encryption. Report a lost badge to reception immediately.\n",
}


def hit(chunk_id: str, document_id: str, start: int, end: int, text: str, score: float = 1.0) -> Hit:
    place = Place(None, None, 1, 1)
    return Hit(chunk_id, document_id, f"{document_id}.txt", document_id, place, start, end, text, score)


def test_rrf_rewards_agreement_between_the_two_rankings():
    dense = [(1, 0.9), (2, 0.8), (3, 0.7)]
    keyword = [(3, 12.0), (4, 11.0), (2, 3.0)]

    fused = fuse(dense, keyword, Fusion(method="rrf", rrf_k=60, dense_weight=1.0, keyword_weight=1.0))

    order = [item for item, _ in fused]
    assert set(order[:2]) == {2, 3}  # found by both sides
    assert order[0] == 3  # rank 1 + rank 3 beats rank 2 + rank 3
    assert set(order) == {1, 2, 3, 4}
    assert all(0 < score <= 1 for _, score in fused)


def test_weights_let_one_side_lead():
    dense = [(1, 0.9), (2, 0.1)]
    keyword = [(2, 9.0), (1, 1.0)]

    assert fuse(dense, keyword, Fusion(dense_weight=2.0, keyword_weight=1.0))[0][0] == 1
    assert fuse(dense, keyword, Fusion(dense_weight=1.0, keyword_weight=2.0))[0][0] == 2


def test_score_mix_uses_the_size_of_the_gaps():
    # Item 2 is a near-tie on the dense side and a clear winner on the keyword side.
    dense = [(1, 0.90), (2, 0.89), (3, 0.10)]
    keyword = [(2, 20.0), (1, 2.0), (3, 1.0)]

    fused = dict(fuse(dense, keyword, Fusion(method="mix", dense_weight=0.5, keyword_weight=0.5)))

    assert fused[2] == pytest.approx(0.5 * 0.79 / 0.80 + 0.5 * 1.0)
    assert fused[1] == pytest.approx(0.5 * 1.0 + 0.5 * 1.0 / 19.0)
    assert fused[3] == 0.0


def test_scaled_mix_measures_each_score_against_the_best_of_its_side():
    # Item 2 is a near-tie on the dense side and a clear winner on the keyword side.
    dense = [(1, 0.90), (2, 0.89), (3, 0.45)]
    keyword = [(2, 20.0), (1, 2.0)]

    fused = dict(fuse(dense, keyword, Fusion(method="scaled", dense_weight=0.5, keyword_weight=0.5)))

    assert fused[2] == pytest.approx(0.5 * 0.89 / 0.90 + 0.5 * 1.0)
    assert fused[1] == pytest.approx(0.5 * 1.0 + 0.5 * 2.0 / 20.0)
    assert fused[3] == pytest.approx(0.5 * 0.5)  # half as similar as the best, and no keyword match


def test_scaled_mix_does_not_depend_on_how_many_candidates_were_taken():
    """A weaker candidate fetched at the end of a list leaves the others' scores as they were
    (min-max would move them all, its zero being the weakest candidate)."""
    dense = [(1, 0.8), (2, 0.6), (3, 0.5)]
    keyword = [(3, 9.0), (1, 3.0)]
    deeper_dense, deeper_keyword = dense + [(4, 0.1)], keyword + [(2, 0.5)]

    for method, same in (("scaled", True), ("mix", False)):
        fusion = Fusion(method=method)
        shallow = dict(fuse(dense, keyword, fusion))
        deep = dict(fuse(deeper_dense, keyword, fusion))
        assert (deep[3] == pytest.approx(shallow[3])) is same, method
    deep = dict(fuse(dense, deeper_keyword, Fusion(method="scaled")))
    assert deep[1] == pytest.approx(dict(fuse(dense, keyword, Fusion(method="scaled")))[1])


def test_scaled_mix_counts_scores_at_or_below_zero_as_no_match():
    fused = dict(fuse([(1, 0.5), (2, -0.2)], [(3, 0.0)], Fusion(method="scaled", dense_weight=1.0, keyword_weight=1.0)))

    assert fused == {1: 0.5, 2: 0.0, 3: 0.0}


def test_fusion_defaults_are_the_settings_defaults():
    default = {name: field.default for name, field in Settings.model_fields.items()}

    assert Fusion() == Fusion(default["fusion"], default["rrf_k"], default["dense_weight"], default["keyword_weight"])


def test_unknown_fusion_is_rejected_by_name():
    with pytest.raises(ValueError, match="'max'"):
        fuse([], [], Fusion(method="max"))


def test_collapse_drops_overlapping_spans_and_copies_but_keeps_neighbours():
    text = "alpha beta gamma delta epsilon zeta eta theta"
    hits = [
        hit("a", "doc1", 0, 100, text),
        hit("b", "doc1", 30, 130, "other words that overlap most of the first span"),  # 70% overlap
        hit("c", "doc1", 90, 190, "a neighbour that overlaps only a little bit"),
        hit("d", "doc2", 0, 100, text),  # a copy in another document
        hit("e", "doc3", 0, 50, "something else entirely"),
    ]

    assert [h.chunk_id for h in collapse(hits)] == ["a", "c", "e"]
    assert [h.chunk_id for h in collapse(hits, limit=2)] == ["a", "c"]


def test_the_passage_about_the_question_ranks_first(make_service, tmp_path):
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", HANDBOOK))

    assert service.search("how long is the VPN certificate valid", k=3).hits[0].source == "docs/vpn.txt"
    assert service.search("reimbursed meals abroad", k=3).hits[0].source == "docs/expenses.txt"
    assert service.search("lost badge", k=3).hits[0].source == "docs/security.txt"


def test_a_misspelt_query_is_read_as_the_library_spells_it_and_says_so(make_service, tmp_path):
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", HANDBOOK))

    found = service.search("full-disk encrpytion", k=3)

    assert found.corrections == (Correction("encrpytion", "encryption"),)
    assert found.hits[0].source == "docs/security.txt"
    assert found.query == "full-disk encrpytion"
    assert found.reading() == "Read “encrpytion” as “encryption”."
    assert service.search("full-disk encryption", k=3).corrections == ()
    # Asked to, it reads every word as typed.
    assert service.search("full-disk encrpytion", k=3, as_typed=True).corrections == ()


def test_keyword_side_finds_exact_rare_terms(make_service, tmp_path):
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", HANDBOOK))

    ranked = service.library.keywords.search("encryption", 5)
    assert len(ranked) == 1
    assert service.library.store.chunks([ranked[0][0]])[ranked[0][0]].source == "docs/security.txt"


def test_source_filter_keeps_to_one_document(make_service, tmp_path):
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", HANDBOOK))

    hits = service.search("VPN certificate", k=5, source="docs/expenses.txt").hits

    assert hits and {h.source for h in hits} == {"docs/expenses.txt"}


def test_hits_carry_their_place_in_the_document(make_service, tmp_path):
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", HANDBOOK))

    top = service.search("full-disk encryption laptops", k=1).hits[0]
    document = service.document(top.document_id)

    assert document.text[top.start : top.end] == top.text
    assert (top.place.line_start, top.place.line_end) == (1, 2)
    assert top.place.heading == "Security" or top.title == "Security"


@pytest.mark.parametrize("k", [0, 51, -1, 2.5, True])
def test_k_outside_1_to_50_is_refused_with_its_value(make_service, k):
    with pytest.raises(ValueError, match=f"k must be an integer from 1 to 50, got {k!r}"):
        make_service().search("anything", k=k)


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_queries_are_refused(make_service, query):
    with pytest.raises(ValueError, match="must contain some text"):
        make_service().search(query)


def test_query_syntax_in_a_query_is_treated_as_words(make_service, tmp_path):
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", HANDBOOK))

    hits = service.search('VPN" OR NEAR(certificate AND * -', k=2).hits

    assert hits[0].source == "docs/vpn.txt"


def test_the_keyword_half_runs_while_the_vectors_are_searched(make_service, tmp_path, monkeypatch):
    """The query is encoded first; then the keyword search has started before the vector search ends."""
    from retrieval import search as search_module

    service = make_service()
    service.ingest(write_files(tmp_path / "docs", HANDBOOK))
    keywords, embedder = service.library.keywords, service.embedder
    keyword_started, encoded = threading.Event(), threading.Event()
    keyword_search, token_vectors, dense_search = keywords.search, embedder.token_vectors, search_module.dense_search
    seen = []

    def keyword_search_noted(*args, **kwargs):
        seen.append(("keyword after encode", encoded.is_set()))
        keyword_started.set()
        return keyword_search(*args, **kwargs)

    def token_vectors_noted(texts):
        vectors = token_vectors(texts)
        encoded.set()
        return vectors

    def dense_search_waiting(*args, **kwargs):
        seen.append(("keyword during dense", keyword_started.wait(timeout=5)))
        return dense_search(*args, **kwargs)

    monkeypatch.setattr(keywords, "search", keyword_search_noted)
    monkeypatch.setattr(embedder, "token_vectors", token_vectors_noted)
    monkeypatch.setattr(search_module, "dense_search", dense_search_waiting)
    hits = service.search("how long is the VPN certificate valid", k=3).hits

    assert sorted(seen) == [("keyword after encode", True), ("keyword during dense", True)]
    assert hits[0].source == "docs/vpn.txt"


def test_a_failing_keyword_half_fails_the_search(make_service, tmp_path, monkeypatch):
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", HANDBOOK))

    def broken(*args, **kwargs):
        raise OSError("keyword index segment is unreadable")

    monkeypatch.setattr(service.library.keywords, "search", broken)
    with pytest.raises(OSError, match="unreadable"):
        service.search("VPN certificate", k=3)


def test_a_forked_process_can_search_after_its_parent_did(make_service, tmp_path):
    """A child forked after its parent searched has none of the parent's keyword threads; it starts its own."""
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", HANDBOOK))
    assert service.search("lost badge", k=1).hits[0].source == "docs/security.txt"

    def search_in_child():
        hits = make_service().search("lost badge", k=1).hits
        os._exit(0 if hits and hits[0].source == "docs/security.txt" else 1)

    child = multiprocessing.get_context("fork").Process(target=search_in_child)
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        child.join()
    assert child.exitcode == 0


def test_a_search_reads_only_the_passages_it_needs(make_service, tmp_path, monkeypatch):
    """k + 2 passages are read first; more only when collapsing duplicates leaves fewer than k."""
    files = {f"note{n}.txt": f"Note {n}\nThe heating in room {n} is serviced on day {n} by the facilities team.\n"
             for n in range(10)}
    copy = "Boiler\nThe boiler in the basement is replaced every twelve years by contractors.\n"
    files.update({f"copy{n}.txt": copy for n in range(5)})
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", files))
    store = service.library.store
    chunks, read = store.chunks, []

    def counting(rowids):
        read.append(len(rowids))
        return chunks(rowids)

    monkeypatch.setattr(store, "chunks", counting)
    hits = service.search("when is the heating in room 5 serviced", k=2).hits
    assert read == [4] and len(hits) == 2

    read.clear()
    hits = service.search("how often is the basement boiler replaced", k=2).hits
    assert read == [4, 2]  # the first four were all copies of one passage
    assert "boiler" in hits[0].text and "heating" in hits[1].text


def test_a_pooled_query_leaves_out_the_skipped_pieces():
    tokens = TokenVectors(((0, 4), (5, 9), (10, 14)), np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 3.0]], np.float32))

    assert pool_query(tokens, [(5, 9)]) == pytest.approx(np.array([1.0, 3.0]) / np.sqrt(10.0))
    # Nothing skipped, or everything: the mean of every piece.
    everything = np.array([1.0, 4.0]) / np.sqrt(17.0)
    assert pool_query(tokens) == pytest.approx(everything)
    assert pool_query(tokens, [(0, 14)]) == pytest.approx(everything)
    with pytest.raises(ValueError, match="at least one word piece"):
        pool_query(TokenVectors((), np.zeros((0, 2), np.float32)))


def test_a_word_most_passages_share_does_not_steer_the_dense_half(make_service, tmp_path):
    topics = ["parking", "lunch", "printers", "badges", "laptops", "holidays", "mail", "desks", "lockers", "showers",
              "coffee", "plants", "keys", "bikes", "visitors", "meetings", "phones", "lights", "heating", "music"]
    files = {f"{topic}.txt": f"Globex {topic} are handled by the facilities desk.\n" for topic in topics}
    files["newsletter.txt"] = "Globex Globex Globex: the Globex newsletter.\n"
    files["refunds.txt"] = "Refunds at Globex: a refund is paid back in full.\n"
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", files))
    assert service.counts()[1] >= COMMON_WORDS_FROM
    searcher = service.searcher

    dense, _ = searcher.rankings("Globex refunds")

    def source(rowid):
        return service.library.store.chunks([rowid])[rowid].source

    assert source(dense[0][0]).endswith("refunds.txt")
    # Pooled with "Globex", the newsletter that repeats it would be nearest.
    _, plain = searcher.index.search(service.embedder.encode(["Globex refunds"]), 1)
    assert source(int(plain[0][0]) // WINDOW_SLOTS).endswith("newsletter.txt")


def test_a_small_library_pools_every_piece_of_the_query(make_service, tmp_path):
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", HANDBOOK))
    query = "the VPN certificate of the platform team"

    assert service.searcher.query_vectors([query])[0] == pytest.approx(service.embedder.encode([query])[0], abs=1e-6)


def test_every_fusion_method_the_settings_accept_has_a_function():
    from retrieval.fusion import FUSE, FusionMethod

    assert set(FUSE) == set(FusionMethod)
    assert Settings(fusion="rrf").fusion is FusionMethod.RRF
    with pytest.raises(ValueError):
        Settings(fusion="max")
