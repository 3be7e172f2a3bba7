import json
from pathlib import Path

from bench.reader_signals import SIGNALS, held_out_auc, signals, table


def _record(answerable: bool, best: float, retrieval: float) -> dict:
    return {
        "answerable": answerable, "retrieval_score": retrieval, "unknown_names": [],
        "sentences": [[best, retrieval, 0, 0.5, answerable], [0.1, 0.3, 1, 0.0, False]],
    }


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_a_record_gives_one_value_per_signal_with_the_best_score_as_log_odds():
    values = signals(_record(True, 0.5, 0.8))

    assert len(values) == len(SIGNALS)
    assert values[0] == 0.0 and values[2] == 0.4 and values[3] == 0.8


def test_a_signal_that_separates_the_questions_shows_on_files_it_was_not_fitted_on(tmp_path):
    # The reader's score says nothing here; the top passage's retrieval score says everything.
    def records(shift: float) -> list[dict]:
        return [_record(answerable, 0.3 + 0.1 * (i % 5), 0.2 + shift + (0.6 if answerable else 0.0))
                for i in range(40) for answerable in (True, False)]

    files = (("fit.jsonl", 0.0), ("other.jsonl", 0.05))
    tables = [table(_write(tmp_path / name, records(shift))) for name, shift in files]

    assert held_out_auc(tables, (0,)) == [0.5, 0.5]
    assert held_out_auc(tables, (0, 5)) == [1.0, 1.0]
