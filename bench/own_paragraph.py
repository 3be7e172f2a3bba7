"""How well the sentence reader tells answerable from unanswerable SQuAD 2.0 questions on their own paragraphs.

python -m bench.own_paragraph [--reader DIR] [--part train|calibrate] [--questions 600]

Every sentence of the question's own paragraph is read (no retrieval, no first cut); the
question's figure is its best sentence's probability. Prints the area under the ROC curve of that
figure between answerable and unanswerable questions, and how often the best sentence holds the
answer. On the articles the reader trained on it says how well the reader fits its own near
misses; on the calibration articles, how well that carries (docs/QUALITY.md, "Where the
reader falls short"); training.passage_reader logs the same two figures for the paragraph reader.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from retrieval.reader import Reader
from retrieval.settings import READER_DIR
from training.squad import all_pairs, load_articles, questions, split_dev
from training.train_reader import auc


def main() -> None:
    """Read each sampled question's paragraph and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reader", type=Path, default=READER_DIR)
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/squad"))
    parser.add_argument("--part", choices=("train", "calibrate"), default="calibrate")
    parser.add_argument("--questions", type=int, default=600)
    args = parser.parse_args()
    reader = Reader(args.reader)
    sample = list(questions(split_dev(load_articles(args.data / "dev-v2.0.json.gz"))[args.part]))
    random.Random(0).shuffle(sample)
    best: list[tuple[float, bool]] = []
    hits = []
    for question in sample[: args.questions]:
        pairs = all_pairs(question)
        if not pairs:
            continue
        scores = reader.score(question.text, [pair.context for pair in pairs])
        best.append((float(np.max(scores)), bool(question.answering)))
        if question.answering:
            hits.append(pairs[int(np.argmax(scores))].label == 1.0)
    print(json.dumps({
        "part": args.part, "questions": len(best),
        "auc": round(auc([p for p, y in best if y], [p for p, y in best if not y]), 3),
        "top1": round(float(np.mean(hits)), 3),
    }))


if __name__ == "__main__":
    main()
