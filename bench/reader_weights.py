"""How the two readers agree (`agreed`: weight, doubt), tried on saved outcomes: fitted on one file, measured on others.

python -m bench.reader_weights CALIBRATE.jsonl [MEASURE.jsonl ...] [--weights 0.6 0.7 ...] [--doubts 0 0.1 ...]

bench.reader_outcomes keeps each reader's own probability for every sentence the second reader
read. For each weight and doubt this agrees them again, takes the best as the evidence and the
sentence of most merit among those accepted as the quote (the first sentence of what `select`
quotes: a second document's figure or a neighbour joining it is not counted), fits the threshold
as the served one is fitted (the most near misses declined, at most 5% of answerable questions)
on the first file and reports every file at it, with how many questions turned right and wrong
against the served weighing at its own fitted threshold. Retrieval recall is not recomputed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.reader_figures import figures, outcomes
from retrieval import answer as answering
from retrieval import reading
from retrieval.evaluation import calibrate_threshold


def agreed_again(records: list[dict], weight: float, doubt: float) -> list[dict]:
    """The records with each sentence's two probabilities agreed at `weight` and `doubt`, best first
    (`read`), and the best one as the evidence."""
    result = []
    for record in records:
        read = []
        for score, _, rank, words, holds, first, second, *_ in record["sentences"]:
            if second is None:
                raise SystemExit("outcomes without each reader's own probability: run bench.reader_outcomes again")
            read.append({"score": reading.agreed(first, second, weight=weight, doubt=doubt),
                         "words": words, "rank": rank, "holds": holds})
        read.sort(key=lambda s: (-s["score"], s["rank"]))
        result.append({**record, "evidence": read[0]["score"] if read else 0.0, "read": read})
    return result


def quoted(records: list[dict], threshold: float) -> list[dict]:
    """The records with `correct` set by the sentence `quote_order` puts first at `threshold`."""
    result = []
    for record in records:
        accepted = [s for s in record["read"] if s["score"] >= threshold] or record["read"][:1]
        best = max(accepted, default=None,
                   key=lambda s: (answering.mixed_merit(s["score"], s["words"], s["rank"]), -s["rank"]))
        first = record["read"][0] if record["read"] else None
        result.append({**record, "correct": bool(record["answerable"] and best and best["holds"]),
                       "best_holds_answer": bool(record["answerable"] and first and first["holds"])})
    return result


def fitted(calibration: list[dict]) -> float:
    """The threshold as the served one is fitted."""
    return calibrate_threshold(outcomes(calibration, unknown_names=True), max_wrong_declines=0.05)


def rights(records: list[dict], threshold: float) -> list[bool]:
    """Per question, whether it was answered rightly (answerable) or declined (unanswerable)."""
    result = []
    for r in quoted(records, threshold):
        answered = answering.clears(r["evidence"], threshold) and not r["unknown_names"]
        result.append(r["correct"] and answered if r["answerable"] else not answered)
    return result


def main() -> None:
    """Report, for each weighing, the calibration-fitted threshold and every file's figures at it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.5, 0.6, 0.7, 0.8, 0.9])
    parser.add_argument("--doubts", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3])
    args = parser.parse_args()
    loaded = {path: [json.loads(line) for line in path.read_text().splitlines()] for path in args.files}
    served = {path: agreed_again(records, reading.SECOND_READER_WEIGHT, reading.DOUBT_WEIGHT)
              for path, records in loaded.items()}
    served_threshold = fitted(served[args.files[0]])
    for weight in args.weights:
        for doubt in args.doubts:
            again = {path: agreed_again(records, weight, doubt) for path, records in loaded.items()}
            threshold = fitted(again[args.files[0]])
            for path, records in again.items():
                f = figures(quoted(records, threshold), threshold, unknown_names=True)
                pairs = list(zip(rights(served[path], served_threshold), rights(records, threshold)))
                print(f"weight {weight:.2f} doubt {doubt:.2f} threshold {threshold:.4f} {path.name}: "
                      f"{f['answer_hit_rate']:.3f} / {f['declined_unanswerable']:.3f} / {f['declined_answerable']:.3f} "
                      f"AUC {f['auc']:.3f}; against the served weighing {sum(n and not s for s, n in pairs)} "
                      f"turned right, {sum(s and not n for s, n in pairs)} wrong")


if __name__ == "__main__":
    main()
