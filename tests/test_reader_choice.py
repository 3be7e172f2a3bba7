import json

import pytest

from bench import reader_choice
from bench.reader_choice import MAX_CORPUS_DECLINES, standing, verdict


def _record(question: str, answerable: bool, evidence: float, *, unknown: bool = False) -> dict:
    return {"question": question, "answerable": answerable, "evidence": evidence, "correct": answerable,
            "unknown_names": ["Zorblax"] if unknown else [], "ranks": {"0.0": 1}}


def _calibration(unanswerable_scores: list[float]) -> list[dict]:
    # Forty answerable questions scored 0.60-0.99; the unanswerable ones as given.
    answerable = [_record(f"a{i}", True, 0.60 + 0.01 * i) for i in range(40)]
    return answerable + [_record(f"u{i}", False, s) for i, s in enumerate(unanswerable_scores)]


def test_a_reader_that_keeps_near_misses_lower_is_chosen():
    served = standing(_calibration([0.50 + 0.012 * i for i in range(40)]), [[]])
    candidate = standing(_calibration([0.40 + 0.012 * i for i in range(40)]), [[]])

    assert candidate.auc > served.auc and candidate.curve_mean > served.curve_mean
    assert verdict(served, candidate) == {"calibration AUC ahead": True, "curve mean ahead": True,
                                          "corpus declines within bound": True, "chosen": True}
    # The rule is not symmetric: the served reader would not be chosen over the candidate.
    assert not verdict(candidate, served)["chosen"]


def test_a_candidate_for_speed_is_chosen_when_no_worse_by_the_margin_and_not_when_further_behind():
    served = standing(_calibration([0.50 + 0.012 * i for i in range(40)]), [[]])
    # One unanswerable question scored higher than before: a little behind on both counts.
    slightly = [0.50 + 0.012 * i for i in range(40)]
    slightly[0] = 0.995
    behind = standing(_calibration(slightly), [[]])
    # (forty questions a side: one question moves the AUC by 0.025 and each curve point by as much)
    assert 0 < served.auc - behind.auc <= 0.03 and 0 < served.curve_mean - behind.curve_mean <= 0.03

    assert not verdict(served, behind)["chosen"]
    assert verdict(served, behind, no_worse_by=0.03) == {
        "calibration AUC no worse": True, "curve mean no worse": True,
        "corpus declines within bound": True, "chosen": True}
    far_behind = standing(_calibration([0.60 + 0.012 * i for i in range(40)]), [[]])
    assert not verdict(served, far_behind, no_worse_by=0.03)["chosen"]


def test_too_many_corpus_questions_declined_at_its_own_threshold_block_the_choice():
    served = standing(_calibration([0.50 + 0.012 * i for i in range(40)]), [[]])
    calibration = _calibration([0.40 + 0.012 * i for i in range(40)])
    threshold = standing(calibration, [[]]).threshold
    # Answerable corpus questions just under the candidate's threshold, one more than the bound
    # allows; one of them names something no document holds, declined whatever its score.
    corpus = [_record(f"c{i}", True, threshold - 0.01) for i in range(MAX_CORPUS_DECLINES)]
    corpus.append(_record("named", True, 0.99, unknown=True))
    corpus.append(_record("near miss", False, 0.1))

    candidate = standing(calibration, [corpus[:3], corpus[3:]])

    assert candidate.corpus_declines == MAX_CORPUS_DECLINES + 1 and candidate.corpus_answerable == 7
    parts = verdict(served, candidate)
    assert parts["calibration AUC ahead"] and not parts["corpus declines within bound"]
    assert not parts["chosen"]


def test_outcome_files_of_different_questions_are_refused(tmp_path, monkeypatch, capsys):
    calibration = _calibration([0.50 + 0.012 * i for i in range(40)])
    for prefix, cal in (("served", calibration), ("half", calibration[:50])):
        for part, records in (("cal", cal), ("qa", []), ("fresh", [])):
            (tmp_path / f"{prefix}-{part}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    monkeypatch.setattr("sys.argv", ["reader_choice", "--served", str(tmp_path / "served"),
                                     "--candidate", str(tmp_path / "served")])
    reader_choice.main()
    assert '"chosen": false' in capsys.readouterr().out  # no better than itself

    monkeypatch.setattr("sys.argv", ["reader_choice", "--served", str(tmp_path / "served"),
                                     "--candidate", str(tmp_path / "half")])
    with pytest.raises(SystemExit, match="still being written"):
        reader_choice.main()
