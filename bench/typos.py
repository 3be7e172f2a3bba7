"""A question set with one slip of the keys in each question, to measure how misspellings are read.

python -m bench.typos QA.jsonl --out TYPOS.jsonl [--seed 1]

In each question one word of five letters or more (not a stopword) gets one seeded slip at any
place in it, the first letter included: a letter left out, doubled, changed to a common one, or
swapped with the next. Answers stay as they were, so `sourcebook eval TYPOS.jsonl` measures the
answer step on the questions as a hurried asker types them.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

from retrieval.text import STOPWORDS

WORD = re.compile(r"(?<![\w'’-])[^\W\d_]{5,}(?!\w)")
COMMON_LETTERS = "aeioustnrl"


def slip(word: str, rng: random.Random) -> str:
    """The word with one slip of the keys (never the word itself)."""
    while True:
        kind = rng.choice(("leave out", "double", "change", "swap"))
        i = rng.randrange(len(word) - (kind == "swap"))
        if kind == "leave out":
            typed = word[:i] + word[i + 1 :]
        elif kind == "double":
            typed = word[:i] + word[i] + word[i:]
        elif kind == "change":
            letter = rng.choice(COMMON_LETTERS)
            typed = word[:i] + (letter.upper() if word[i].isupper() else letter) + word[i + 1 :]
        else:
            typed = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if typed != word:
            return typed


def with_typo(question: str, rng: random.Random) -> str:
    """The question with one of its longer words mistyped (as it was when it has none)."""
    words = [m for m in WORD.finditer(question) if m.group().casefold() not in STOPWORDS]
    if not words:
        return question
    chosen = rng.choice(words)
    return question[: chosen.start()] + slip(chosen.group(), rng) + question[chosen.end() :]


def main() -> None:
    """Write the question set with one typo in each question."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("qa", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    lines = []
    for line in args.qa.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            lines.append(json.dumps({**item, "question": with_typo(item["question"], rng)}, ensure_ascii=False))
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
