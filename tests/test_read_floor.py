from bench.read_floor import floored, outcomes


def _sentence(agreed: float, first: float, holds: bool) -> list:
    # As bench.reader_outcomes saves it: agreed, retrieval score, rank, shared words, holds, first, second, ...
    return [agreed, 0.9, 1, 0.5, holds, first, 0.5, "doc", 0, 10]


def _record(sentences: list, *, unknown: bool = False) -> dict:
    return {"question": "q", "answerable": True, "unknown_names": ["Zorblax"] if unknown else [],
            "ranks": {"0.0": 1}, "sentences": sentences}


def test_with_no_floor_every_sentence_is_reread_and_the_best_agreed_decides():
    record = _record([_sentence(0.95, 0.01, True), _sentence(0.60, 0.50, False)])

    assert floored(record, 0.0) == (0.95, True, 2)


def test_a_sentence_the_first_reader_gives_less_than_the_floor_is_not_reread():
    record = _record([_sentence(0.95, 0.01, True), _sentence(0.60, 0.50, False)])

    assert floored(record, 0.1) == (0.60, False, 1)
    # None reaches the floor: declined at the first reader's own best, nothing re-read.
    assert floored(record, 0.9) == (0.50, False, 0)


def test_only_the_first_readers_best_four_are_reread():
    record = _record([_sentence(0.99, 0.05, True)] + [_sentence(0.3, 0.6, False) for _ in range(4)])

    assert floored(record, 0.0) == (0.3, False, 4)


def test_a_question_naming_what_no_document_has_is_declined_whatever_the_floor():
    (outcome,), reads = outcomes([_record([_sentence(0.95, 0.9, True)], unknown=True)], 0.0)

    assert outcome.evidence == 0.0 and reads == [1]
