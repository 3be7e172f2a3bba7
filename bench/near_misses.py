"""How a reader scores the near misses each rule of training/squad.py makes, beside the questions they were made from.

python -m bench.near_misses [--reader DIR] [--articles FILE] [--per-article 25] [--seed 7]

On articles nothing trains on (default: SQuAD v1.1's dev articles that SQuAD 2.0's dev file
lacks, `squad-unseen.json` of `training.split_squad`), each sampled answerable question is read
against its answering sentence as asked, and then as each rule turns it into a near miss the
sentence no longer answers: a fact swapped for another of the article (`near_miss`), an opposite
or a negation (`reworded_miss`), another name of the sentence asked about (`role_swapped`);
and, to be accepted, the question asked together with another of its paragraph (`joined`), when
one is there. Questions are sampled among those `role_swapped` can turn, so every kind is read on
the same questions' sentences. Prints, per kind, how many were read, the mean probability and the
share at or above the served threshold: a kind the reader accepts as readily as the real answers
is one it has not learnt (docs/QUALITY.md, "Near misses that keep every word").
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from retrieval.reader import Reader
from retrieval.settings import SECOND_READER_DIR, Settings
from training.squad import (
    Question, article_vocabulary, context_of, joined, near_miss, questions, reworded_miss, role_swapped,
)

Score = Callable[[str, str], float]


def read_kinds(score: Score, articles: Sequence[dict], *, per_article: int, rng: random.Random) -> dict[str, list[float]]:
    """Each kind's probabilities: "as asked", then one list per rule, over up to `per_article`
    questions of each article that `role_swapped` can turn; "joined" (two-part questions, which
    should be accepted as the questions are) last."""
    read: dict[str, list[float]] = {"as asked": [], "fact swapped": [], "reworded": [], "role swapped": [], "joined": []}
    for article in articles:
        vocabulary = article_vocabulary(article)
        asked: list[Question] = [q for q in questions([article]) if q.answering]
        rng.shuffle(asked)
        taken = 0
        for question in asked:
            role = role_swapped(question, rng)
            if role is None:
                continue
            context = context_of(question, min(question.answering))
            read["as asked"].append(score(question.text, context))
            read["role swapped"].append(score(role, context))
            for kind, turned in (("fact swapped", near_miss(question, vocabulary, rng)),
                                 ("reworded", reworded_miss(question, rng))):
                if turned is not None:
                    read[kind].append(score(turned, context))
            # The first other question of the paragraph that joins (no draw: the other kinds' draws stay as they were).
            two_part = next((text for other in asked if other.sentences == question.sentences
                             and other is not question and (text := joined(question, other))), None)
            if two_part is not None:
                read["joined"].append(score(two_part, context))
            taken += 1
            if taken == per_article:
                break
    return read


def summary(read: dict[str, list[float]], threshold: float) -> dict[str, dict[str, float]]:
    """Per kind: how many were read, their mean probability and the share at or above `threshold`."""
    return {
        kind: {"read": len(values), "mean": round(float(np.mean(values)), 3),
               "accepted": round(float(np.mean(np.array(values) >= threshold)), 3)}
        for kind, values in read.items() if values
    }


def main() -> None:
    """Read the sampled questions and their near misses and print the summary as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reader", type=Path, default=SECOND_READER_DIR)
    parser.add_argument("--articles", type=Path, default=Path(".reader-training/squad-unseen.json"))
    parser.add_argument("--per-article", type=int, default=25)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    reader = Reader(args.reader)
    articles = json.loads(args.articles.read_text())["data"]
    read = read_kinds(lambda question, context: float(reader.score(question, [context])[0]), articles,
                      per_article=args.per_article, rng=random.Random(args.seed))
    threshold = Settings().abstain_below
    print(json.dumps({"reader": str(args.reader), "threshold": threshold, **summary(read, threshold)}, indent=2))


if __name__ == "__main__":
    main()
