"""The second reader only where the first gives a sentence a chance, tried on saved outcomes.

python -m bench.read_floor CALIBRATE.jsonl [MEASURE.jsonl ...] [--floors 0,0.03,0.1,0.2]

From `bench.reader_outcomes` records, which keep each re-read sentence's own first and second
probabilities: only those of the first reader's best four (`second_reads`) that it gives at least
the floor are read again, and the answer is decided among them; with none, the question is
declined at the first reader's best. For each floor: the 5% threshold fitted on the first file,
each file's unanswerable questions declined at it, and on the first file the sentences re-read per
question and the rounds they take one pair per core on two cores (docs/QUALITY.md, "The second
reader only where the first gives a sentence a chance").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bench import reader_figures
from retrieval.evaluation import QAOutcome, calibrate_threshold, score_qa, with_threshold

# Fields of a saved sentence (bench.reader_outcomes): agreed probability, ..., holds an answer,
# the first reader's own probability.
AGREED, HOLDS, FIRST = 0, 4, 5
SECOND_READS = 4
CORES = 2


def floored(record: dict, floor: float, reads: int = SECOND_READS) -> tuple[float, bool, int]:
    """The question's best probability, whether that sentence holds an answer, and how many
    sentences the second reader read, had it read only those the first gave at least `floor`."""
    best_first = sorted(record["sentences"], key=lambda s: -s[FIRST])[:reads]
    reread = [s for s in best_first if s[FIRST] >= floor]
    if reread:
        best = max(reread, key=lambda s: s[AGREED])
        return best[AGREED], best[HOLDS], len(reread)
    if best_first:
        return best_first[0][FIRST], best_first[0][HOLDS], 0
    return 0.0, False, 0


def outcomes(records: list[dict], floor: float) -> tuple[list[QAOutcome], list[int]]:
    """The records as QA outcomes under the floor (`reader_figures.outcomes`: a question naming
    what no document has is declined), and the sentences re-read for each."""
    decided = [floored(r, floor) for r in records]
    as_floored = [{**r, "evidence": evidence, "correct": bool(holds)}
                  for r, (evidence, holds, _) in zip(records, decided)]
    return reader_figures.outcomes(as_floored, unknown_names=True), [read for _, _, read in decided]


def main() -> None:
    """Print, for each floor, the threshold fitted on the first file and every file's declines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--floors", default="0,0.03,0.1,0.2")
    args = parser.parse_args()
    loaded = [[json.loads(line) for line in path.read_text().splitlines()] for path in args.files]
    for floor in (float(f) for f in args.floors.split(",")):
        fitted, reads = outcomes(loaded[0], floor)
        threshold = calibrate_threshold(fitted, max_wrong_declines=0.05)
        declined = [score_qa(with_threshold(outcomes(records, floor)[0], threshold)).declined_unanswerable
                    for records in loaded]
        rounds = np.mean([-(-n // CORES) for n in reads])
        print(json.dumps({"floor": floor, "threshold": threshold, "declined_unanswerable": dict(
            zip((p.name for p in args.files), declined)), "reread_per_question": round(float(np.mean(reads)), 2),
            "rounds": round(float(rounds), 2)}))


if __name__ == "__main__":
    main()
