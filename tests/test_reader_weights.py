import pytest

from bench.reader_weights import agreed_again, fitted, quoted, rights
from retrieval.reading import agreed


def _record(answerable: bool, *sentences: tuple[float, float, int, float, bool]) -> dict:
    """A saved outcome: each sentence as (first, second, rank, shared words, holds an answer)."""
    return {
        "question": "q", "answerable": answerable, "unknown_names": [], "ranks": {"0.0": 1}, "correct": answerable,
        "sentences": [[agreed(first, second), 0.5, rank, words, holds, first, second, "d", 10 * n, 10 * n + 9]
                      for n, (first, second, rank, words, holds) in enumerate(sentences)],
    }


def test_sentences_are_agreed_again_at_the_weight_and_doubt_asked_best_first():
    record = _record(True, (0.9, 0.3, 0, 0.5, False), (0.6, 0.8, 1, 0.5, True))

    plain, doubting = agreed_again([record], 0.7, 0.0)[0], agreed_again([record], 0.7, 0.5)[0]

    assert plain["evidence"] == pytest.approx(agreed(0.6, 0.8, weight=0.7, doubt=0.0))
    assert [s["holds"] for s in plain["read"]] == [True, False]
    # The doubt costs the sentence the readers disagree on more than the one they agree on.
    assert doubting["read"][1]["score"] < plain["read"][1]["score"] * 0.6
    assert doubting["read"][0]["score"] > plain["read"][0]["score"] * 0.8


def test_the_quote_is_the_accepted_sentence_of_most_merit():
    # The best-scored sentence shares no word with the question; the next holds them all.
    record = agreed_again([_record(True, (0.95, 0.95, 0, 0.0, False), (0.8, 0.8, 0, 1.0, True))], 0.7, 0.0)

    assert quoted(record, 0.5)[0]["correct"]
    # Under the threshold only the best is accepted: it is quoted.
    assert not quoted(record, 0.9)[0]["correct"]


def test_outcomes_without_each_readers_own_score_are_refused():
    record = _record(True, (0.9, 0.9, 0, 0.5, True))
    record["sentences"][0][6] = None

    with pytest.raises(SystemExit, match="reader_outcomes"):
        agreed_again([record], 0.7, 0.2)


def test_a_doubt_weight_lets_the_threshold_decline_what_only_one_reader_accepts():
    # Answerable: both readers accept. Unanswerable: the first reader is sure, the second is not.
    records = ([_record(True, (0.8 + 0.01 * i, 0.8, 0, 0.5, True)) for i in range(10)]
               + [_record(False, (0.99, 0.5 + 0.02 * i, 0, 0.5, False)) for i in range(10)])

    declined = {}
    for doubt in (0.0, 0.5):
        again = agreed_again(records, 0.5, doubt)
        threshold = fitted(again)
        declined[doubt] = sum(rights(again, threshold)[10:])
        assert all(rights(again, threshold)[:10])  # every answerable one still answered, rightly

    assert declined[0.0] < 10 and declined[0.5] == 10


def test_a_file_of_answerable_questions_only_gives_no_declines_or_auc_to_report():
    from bench.reader_figures import figures

    records = [{**_record(True, (0.8, 0.8, 0, 0.5, True)), "evidence": 0.5 + 0.1 * i, "best_holds_answer": True}
               for i in range(4)]

    only_answerable = figures(records, 0.65, unknown_names=False)
    both = figures([*records, {**_record(False, (0.2, 0.2, 0, 0.5, False)), "evidence": 0.2,
                               "best_holds_answer": False}], 0.65, unknown_names=False)

    assert only_answerable["declined_unanswerable"] is None and only_answerable["auc"] is None
    # Two of the four answerable ones are under 0.65.
    assert only_answerable["declined_answerable"] == 0.5
    assert both["declined_unanswerable"] == 1.0 and both["auc"] == 1.0
