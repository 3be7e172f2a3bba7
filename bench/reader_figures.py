"""Thresholds and weights tried on saved reader outcomes (bench.reader_outcomes): fitted on one file, measured on others.

python -m bench.reader_figures CALIBRATE.jsonl [MEASURE.jsonl ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from retrieval.evaluation import QAItem, QAOutcome, calibrate_threshold, score_qa, with_threshold
from training.train_reader import auc


def outcomes(records: list[dict], *, unknown_names: bool) -> list[QAOutcome]:
    """The records as QA outcomes; a question naming something no document has is declined (evidence 0) if asked."""
    result = []
    for r in records:
        evidence = 0.0 if unknown_names and r["unknown_names"] else r["evidence"]
        item = QAItem(r["question"], ("x",) if r["answerable"] else (), r["answerable"])
        result.append(QAOutcome(item, r["ranks"]["0.0"], True, r["correct"], evidence))
    return result


def figures(records: list[dict], threshold: float, *, unknown_names: bool) -> dict:
    """Answer and abstention figures at a threshold, retrieval recall by re-rank weight, and the AUC."""
    report = score_qa(with_threshold(outcomes(records, unknown_names=unknown_names), threshold))
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]
    recall = {w: (round(float(np.mean([r["ranks"][w] == 1 for r in answerable])), 3),
                  round(float(np.mean([r["ranks"][w] is not None and r["ranks"][w] <= 5 for r in answerable])), 3))
              for w in answerable[0]["ranks"]}
    return {
        "threshold": threshold, "answer_hit_rate": report.answer_hit_rate,
        # A file of answerable questions only (squad-unseen.json) has no declines or AUC to give.
        "declined_unanswerable": report.declined_unanswerable, "declined_answerable": report.declined_answerable,
        "best_sentence_holds_answer": round(float(np.mean([r["best_holds_answer"] for r in answerable])), 3),
        "auc": round(auc([r["evidence"] for r in answerable], [r["evidence"] for r in unanswerable]), 3)
        if unanswerable else None,
        "recall@1,@5 by reader weight": recall,
        "questions": f"{len(answerable)} answerable, {len(unanswerable)} unanswerable",
    }


def main() -> None:
    """Fit the balanced threshold on the first file, with and without unknown-name declines; report every file."""
    files = [Path(p) for p in sys.argv[1:]]
    loaded = {path: [json.loads(line) for line in path.read_text().splitlines()] for path in files}
    calibration = loaded[files[0]]
    for unknown in (False, True):
        threshold = calibrate_threshold(outcomes(calibration, unknown_names=unknown))
        strict = calibrate_threshold(outcomes(calibration, unknown_names=unknown), max_wrong_declines=0.05)
        print(f"== unknown-name declines {'on' if unknown else 'off'}: balanced threshold {threshold}, "
              f"at-most-5%-wrong threshold {strict} (fitted on {files[0].name})")
        for path, records in loaded.items():
            print(path.name, "balanced:", json.dumps(figures(records, threshold, unknown_names=unknown)))
            print(path.name, "5%-wrong:", json.dumps(figures(records, strict, unknown_names=unknown)))


if __name__ == "__main__":
    main()
