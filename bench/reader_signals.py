"""Does anything else an ask knows tell answerable from not better than the reader's best score?

python -m bench.reader_signals CALIBRATE.jsonl [MEASURE.jsonl ...]

For each set of signals a logistic regression is fitted on the first file of saved reader
outcomes (bench.reader_outcomes) and its AUC printed on every file: the first is where it was
fitted, the others are held out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from retrieval.reading import log_odds
from training.train_reader import auc

# What an ask has besides the best sentence's score, from the outcome records.
SIGNALS = (
    "best (log odds)", "second best (log odds)", "best - second", "best's passage retrieval score",
    "best's shared words", "top passage retrieval score", "sentences above 0.5", "names no document has",
    "best's passage rank",
)
TRIED = ((0,), (0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 6), (0, 7), (0, 8), tuple(range(len(SIGNALS))))


def signals(record: dict) -> list[float]:
    """One record's signals, in SIGNALS' order."""
    sentences = record["sentences"]  # [score, passage retrieval score, passage rank, shared words, holds answer]
    scores = [s[0] for s in sentences] or [0.0]
    second = scores[1] if len(scores) > 1 else 0.0
    best = sentences[0] if sentences else [0.0, 0.0, 0, 0.0, False]
    return [
        log_odds(scores[0]), log_odds(second), scores[0] - second, best[1], best[3], record["retrieval_score"],
        float(sum(s > 0.5 for s in scores)), float(bool(record["unknown_names"])), float(best[2]),
    ]


def table(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The file's signals and whether each question is answerable."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return np.array([signals(r) for r in records]), np.array([r["answerable"] for r in records])


def held_out_auc(tables: list[tuple[np.ndarray, np.ndarray]], columns: tuple[int, ...]) -> list[float]:
    """Fit on the first table with the chosen signals; the AUC on it and on each of the others."""
    from sklearn.linear_model import LogisticRegression

    x, y = tables[0]
    model = LogisticRegression(max_iter=2000).fit(x[:, list(columns)], y)
    figures = []
    for x, y in tables:
        decision = model.decision_function(x[:, list(columns)])
        figures.append(auc(decision[y].tolist(), decision[~y].tolist()))
    return figures


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__.strip())
    paths = [Path(arg) for arg in sys.argv[1:]]
    tables = [table(path) for path in paths]
    print("signals | " + " | ".join(path.name for path in paths))
    for columns in TRIED:
        names = "all" if len(columns) == len(SIGNALS) else " + ".join(SIGNALS[c] for c in columns)
        print(f"{names} | " + " | ".join(f"{value:.3f}" for value in held_out_auc(tables, columns)))


if __name__ == "__main__":
    main()
