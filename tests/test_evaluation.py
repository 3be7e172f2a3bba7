"""The evaluation arithmetic, checked on rankings small enough to work out by hand."""

from __future__ import annotations

import json
import math

import pytest

from retrieval.evaluation import (
    QAItem,
    QAOutcome,
    beir_metrics,
    beir_runs,
    calibrate_threshold,
    contains_answer,
    documents_ranking,
    load_beir,
    load_qa,
    mrr_at,
    ndcg_at,
    recall_at,
    score_qa,
    with_threshold,
    write_trec_run,
)
from tests.helpers import write_files


def test_answers_match_after_folding_case_quotes_and_whitespace():
    assert contains_answer("It is a “lifestyle\n bible,” they say", ['"Lifestyle bible,"'])
    assert contains_answer("REDnote’s users", ["rednote's USERS"])
    assert not contains_answer("lifestyle magazine", ["lifestyle bible"])


def test_ndcg_recall_and_mrr_by_hand():
    relevant = {"d2": 1, "d5": 1}
    ranking = ["d1", "d2", "d3", "d4", "d5"]

    ideal = 1 + 1 / math.log2(3)
    assert ndcg_at(ranking, relevant, 10) == pytest.approx((1 / math.log2(3) + 1 / math.log2(6)) / ideal)
    assert recall_at(ranking, relevant, 2) == 0.5
    assert recall_at(ranking, relevant, 5) == 1.0
    assert mrr_at(ranking, relevant, 10) == 0.5
    assert mrr_at(ranking, relevant, 1) == 0.0


def test_beir_metrics_average_over_judged_queries():
    runs = {"q1": ["a", "b"], "q2": ["c", "d"]}
    qrels = {"q1": {"a": 1}, "q2": {"d": 1}}

    metrics = beir_metrics(runs, qrels)

    assert metrics["mrr@10"] == pytest.approx((1 + 0.5) / 2)
    assert metrics["recall@10"] == 1.0


def test_chunk_rankings_collapse_to_documents_by_best_chunk():
    ranked = [(10, 0.9), (11, 0.8), (20, 0.7), (12, 0.6)]
    source_of = {10: "doc-a", 11: "doc-a", 12: "doc-c", 20: "doc-b"}

    assert documents_ranking(ranked, source_of, depth=2) == [("doc-a", 0.9), ("doc-b", 0.7)]


def test_qa_scores_count_declines_separately():
    answerable = QAItem("q", ("x",), True)
    unanswerable = QAItem("u", (), False)
    outcomes = [
        QAOutcome(answerable, rank=1, answered=True, answer_correct=True, evidence=0.9),
        QAOutcome(answerable, rank=4, answered=True, answer_correct=False, evidence=0.6),
        QAOutcome(answerable, rank=None, answered=False, answer_correct=False, evidence=0.1),
        QAOutcome(unanswerable, rank=None, answered=False, answer_correct=False, evidence=0.1),
    ]

    report = score_qa(outcomes)

    assert (report.recall_at_1, report.recall_at_5) == (pytest.approx(1 / 3, abs=1e-4), pytest.approx(2 / 3, abs=1e-4))
    assert report.mrr_at_10 == pytest.approx((1 + 1 / 4) / 3, abs=1e-4)
    assert report.answer_hit_rate == pytest.approx(1 / 3, abs=1e-4)
    assert report.declined_answerable == pytest.approx(1 / 3, abs=1e-4)
    assert report.declined_unanswerable == 1.0


def test_a_set_without_unanswerable_questions_reports_no_declines_of_them_rather_than_none():
    answerable = QAItem("q", ("x",), True)

    report = score_qa([QAOutcome(answerable, rank=1, answered=False, answer_correct=False, evidence=0.1)])

    assert report.declined_unanswerable is None and report.declined_answerable == 1.0
    only_unanswerable = score_qa([QAOutcome(QAItem("u", (), False), rank=None, answered=False,
                                            answer_correct=False, evidence=0.1)])
    assert only_unanswerable.answer_hit_rate is None and only_unanswerable.recall_at_1 is None
    assert only_unanswerable.mrr_at_10 is None and only_unanswerable.declined_unanswerable == 1.0


def test_a_malformed_qa_line_is_named(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text('{"question": "ok?", "answers": ["a"], "answerable": true}\n{"answers": []}\n')

    with pytest.raises(ValueError, match=r"qa.jsonl:2"):
        load_qa(path)


def test_an_answerable_question_needs_answer_strings(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text('{"question": "ok?", "answers": [], "answerable": true}\n')

    with pytest.raises(ValueError, match="at least one answer string"):
        load_qa(path)


def test_beir_layout_is_read_with_titles_and_judged_queries_only(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        json.dumps({"_id": "7", "title": "Sleep", "text": "Sleep improves memory."}) + "\n"
        + json.dumps({"_id": "8", "title": "", "text": "Coffee delays sleep."}) + "\n"
    )
    (tmp_path / "queries.jsonl").write_text(
        json.dumps({"_id": "1", "text": "memory and sleep"}) + "\n" + json.dumps({"_id": "2", "text": "unjudged"}) + "\n"
    )
    (tmp_path / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n1\t7\t1\n")

    benchmark = load_beir(tmp_path, "train")

    assert [(d.source, d.title, d.text) for d in benchmark.documents] == [
        ("7", "Sleep", "Sleep\n\nSleep improves memory."), ("8", "8", "Coffee delays sleep.")]
    assert benchmark.queries == {"1": "memory and sleep"}
    assert benchmark.qrels == {"1": {"7": 1}}


def test_trec_run_lines(tmp_path):
    path = tmp_path / "run.trec"

    write_trec_run(path, {"q1": [("d1", 0.9), ("d2", 0.5)]}, "hybrid")

    assert path.read_text().splitlines() == ["q1 Q0 d1 1 0.900000 hybrid", "q1 Q0 d2 2 0.500000 hybrid"]


def test_calibration_declines_at_most_the_allowed_share_of_answerable_questions():
    answerable = QAItem("q", ("x",), True)
    unanswerable = QAItem("u", (), False)
    evidence = [0.2, 0.5, 0.6, 0.7] + [0.8] * 16  # 20 answerable questions: 5% allows one decline
    outcomes = [QAOutcome(answerable, 1, True, True, e) for e in evidence]
    outcomes += [QAOutcome(unanswerable, None, True, False, e) for e in (0.1, 0.3, 0.55)]

    threshold = calibrate_threshold(outcomes, max_wrong_declines=0.05)
    report = score_qa(with_threshold(outcomes, threshold))

    assert threshold == 0.5
    assert report.declined_answerable == 0.05
    assert report.declined_unanswerable == pytest.approx(2 / 3, abs=1e-4)


def test_balanced_calibration_weighs_right_answers_and_declines_alike():
    answerable = QAItem("q", ("x",), True)
    unanswerable = QAItem("u", (), False)
    # Four answerable questions, two of them answered wrongly at low scores; four unanswerable
    # ones, three of them scoring low. Declining below 0.5 loses no right answer and catches three.
    outcomes = [QAOutcome(answerable, 1, True, right, e) for right, e in ((True, 0.9), (True, 0.8), (False, 0.4), (False, 0.3))]
    outcomes += [QAOutcome(unanswerable, None, True, False, e) for e in (0.2, 0.35, 0.45, 0.95)]

    threshold = calibrate_threshold(outcomes)
    report = score_qa(with_threshold(outcomes, threshold))

    assert threshold == 0.8
    assert report.answer_hit_rate == 0.5 and report.declined_unanswerable == 0.75
    # With no more than a quarter of the answerable questions declined, it stops lower.
    assert calibrate_threshold(outcomes, max_wrong_declines=0.25) == 0.4


@pytest.mark.parametrize("name", ["qa.jsonl", "fresh.jsonl"])
def test_every_answer_of_the_corpus_question_sets_stands_in_one_of_its_articles(name):
    from pathlib import Path

    corpus = Path(__file__).resolve().parent.parent / "corpus"
    articles = [path.read_text(encoding="utf-8") for path in sorted(corpus.glob("*.txt"))]
    items = load_qa(corpus / name)

    assert len(articles) == 5 and sum(i.answerable for i in items) >= 40
    missing = [(i.question, a) for i in items for a in i.answers if not any(contains_answer(t, [a]) for t in articles)]
    assert missing == []


def test_beir_runs_read_each_query_as_search_does(make_service, tmp_path):
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", {
        "locks.txt": "Laptops use full-disk encryption.\n", "meals.txt": "Meals abroad are reimbursed.\n"}))

    runs = beir_runs(service, {"q": "encrpytion"}, fusion=service.fusion)

    # The misspelt word matches no passage as typed; read as "encryption", the keyword side finds it.
    assert [source for source, _ in runs["keyword"]["q"]] == ["docs/locks.txt"]
    assert runs["hybrid"]["q"][0][0] == "docs/locks.txt"
