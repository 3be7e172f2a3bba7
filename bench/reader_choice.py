"""The rule that chooses the next second reader, applied to saved outcomes (docs/QUALITY.md, "The rule for the next second reader").

python -m bench.reader_choice --served PREFIX --candidate PREFIX

Each PREFIX names three `bench.reader_outcomes` files, PREFIX-cal.jsonl (the calibration
articles), PREFIX-qa.jsonl and PREFIX-fresh.jsonl (the corpus's question sets). Each reader's
threshold is fitted on its own calibration file by the 5% rule; the candidate is chosen when
(1) its calibration AUC beats the served reader's, (2) its unanswerable questions declined,
averaged over the points that decline 5, 10, 15, 20 and 25% of the answerable ones, beat the
served reader's, and (3) at its threshold the corpus's sets together decline at most
`MAX_CORPUS_DECLINES` of their answerable questions. The test articles are not read here: they
are asked once, after the choice.

A candidate whose point is speed at the same answers (its recipe says so before it is measured)
is held to "no worse" instead: with `--no-worse-by MARGIN`, parts (1) and (2) ask its AUC and
curve mean to be at least the served reader's less MARGIN; (3) is unchanged.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.reader_figures import outcomes
from retrieval.evaluation import calibrate_threshold, score_qa, with_threshold
from training.train_reader import auc

CURVE_POINTS = (0.05, 0.10, 0.15, 0.20, 0.25)
# 5% of qa.jsonl's and fresh.jsonl's 133 answerable questions, as the rule was written.
MAX_CORPUS_DECLINES = 6


@dataclass(frozen=True)
class Standing:
    """One reader's figures under the rule."""

    threshold: float
    auc: float
    curve: tuple[float, ...]
    corpus_declines: int
    corpus_answerable: int

    @property
    def curve_mean(self) -> float:
        return float(np.mean(self.curve))


def standing(calibration: list[dict], corpus: list[list[dict]]) -> Standing:
    """A reader's threshold, AUC and curve on the calibration records, and its corpus declines at that threshold."""
    fitted = outcomes(calibration, unknown_names=True)
    curve = []
    for share in CURVE_POINTS:
        report = score_qa(with_threshold(fitted, calibrate_threshold(fitted, max_wrong_declines=share)))
        curve.append(report.declined_unanswerable)
    threshold = calibrate_threshold(fitted, max_wrong_declines=0.05)
    answerable = [r for records in corpus for r in records if r["answerable"]]
    # Declined as reader_figures declines: under the threshold, or naming what no document holds.
    declined = sum(not o.answered for o in with_threshold(outcomes(answerable, unknown_names=True), threshold))
    return Standing(
        threshold=threshold,
        auc=auc([r["evidence"] for r in calibration if r["answerable"]],
                [r["evidence"] for r in calibration if not r["answerable"]]),
        curve=tuple(curve),
        corpus_declines=declined,
        corpus_answerable=len(answerable),
    )


def verdict(served: Standing, candidate: Standing, *, no_worse_by: float | None = None) -> dict[str, bool]:
    """Each part of the rule, and whether the candidate is chosen (all three pass); with
    `no_worse_by`, parts (1) and (2) ask only that it be no further behind than that."""
    if no_worse_by is None:
        parts = {"calibration AUC ahead": candidate.auc > served.auc,
                 "curve mean ahead": candidate.curve_mean > served.curve_mean}
    else:
        parts = {"calibration AUC no worse": candidate.auc >= served.auc - no_worse_by,
                 "curve mean no worse": candidate.curve_mean >= served.curve_mean - no_worse_by}
    parts["corpus declines within bound"] = candidate.corpus_declines <= MAX_CORPUS_DECLINES
    return {**parts, "chosen": all(parts.values())}


def load(prefix: str, part: str) -> list[dict]:
    """The saved outcomes PREFIX-PART.jsonl."""
    return [json.loads(line) for line in Path(f"{prefix}-{part}.jsonl").read_text().splitlines()]


def main() -> None:
    """Print both readers' standings and the verdict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--served", required=True, help="prefix of the served reader's outcome files")
    parser.add_argument("--candidate", required=True, help="prefix of the candidate's outcome files")
    parser.add_argument("--no-worse-by", type=float, default=None, metavar="MARGIN",
                        help="a candidate for speed: (1) and (2) ask it to be behind by at most MARGIN")
    args = parser.parse_args()
    loaded = {name: {part: load(prefix, part) for part in ("cal", "qa", "fresh")}
              for name, prefix in (("served", args.served), ("candidate", args.candidate))}
    for part in ("cal", "qa", "fresh"):
        # A file still being written, or one of another question set, is not compared.
        questions = [[r["question"] for r in loaded[name][part]] for name in loaded]
        if questions[0] != questions[1]:
            raise SystemExit(f"{part}: the two readers' outcome files do not hold the same questions "
                             f"({len(questions[0])} and {len(questions[1])}); is one still being written?")
    standings = {name: standing(files["cal"], [files["qa"], files["fresh"]]) for name, files in loaded.items()}
    for name, s in standings.items():
        print(f"{name}: threshold {s.threshold}, calibration AUC {s.auc:.4f}, curve "
              f"{' / '.join(f'{d:.3f}' for d in s.curve)} (mean {s.curve_mean:.4f}), "
              f"corpus answerable declined {s.corpus_declines} of {s.corpus_answerable}")
    print(json.dumps(verdict(standings["served"], standings["candidate"], no_worse_by=args.no_worse_by)))


if __name__ == "__main__":
    main()
