"""An experiment: a reader that reads a question beside a whole paragraph and picks its answering sentence or none.

The shipped reader reads one sentence at a time and never sees the paragraph around it, and
never weighs sentences against one another or against "no answer" (SQuAD 2.0's near misses are
written against a paragraph). This one encodes (question, paragraph) once, pools each sentence's
word pieces into a score, scores "none" from [CLS], and is trained with a softmax over "none"
and the sentences. It starts from the shipped reader's encoder.

    python -m training.passage_reader --work .reader-training/p1 [--questions 20000] [--minutes 40]

trains, checkpoints into --work (a stopped run resumes), and logs the figure that decides whether
it is worth serving: on the calibration articles' own paragraphs, the area under the ROC curve
of P(some sentence answers) between answerable and unanswerable questions, beside the top
sentence's hit rate, on the same 600 questions `python -m bench.own_paragraph` reads with the
shipped sentence reader (0.810 / 0.872). Not served: nothing outside training/ loads it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.squad import Question, load_articles, questions, split_dev, squad2_training_articles
from training.train_reader import auc

log = logging.getLogger("passage_reader")

MAX_QUESTION_TOKENS = 48


@dataclass(frozen=True, slots=True)
class Example:
    """A question, its paragraph's sentences, and which one answers (-1: none)."""

    question: str
    sentences: tuple[str, ...]
    answer: int


def example(question: Question) -> Example:
    """The question's paragraph as an example; the first answering sentence is the target."""
    return Example(question.text, question.sentences, min(question.answering) if question.answering else -1)


def build_examples(data: Path, v1_questions: int, rng: random.Random) -> tuple[list[Example], list[Example]]:
    """Training examples (SQuAD 2.0's training articles, `squad2_training_articles`; v1.1 questions) and
    calibration examples."""
    dev = split_dev(load_articles(data / "dev-v2.0.json.gz"))
    train = [example(q) for q in questions(squad2_training_articles(data, dev))]
    v1 = [example(q) for q in questions(load_articles(data / "train-v1.1.json.gz"))] if v1_questions else []
    rng.shuffle(v1)
    train += v1[:v1_questions]
    rng.shuffle(train)
    calibration = [example(q) for q in questions(dev["calibrate"])]
    return train, calibration


def encode(tokenizer, examples: Sequence[Example], max_length: int):
    """Tokenise (question, paragraph) pairs; per example, a (sentences x tokens) mask of each sentence's pieces.

    The paragraph is the sentences joined by spaces; sentences cut off by `max_length` get an
    empty mask (they cannot be chosen).
    """
    import torch

    texts, bounds = [], []
    for ex in examples:
        text, spans = "", []
        for sentence in ex.sentences:
            if text:
                text += " "
            spans.append((len(text), len(text) + len(sentence)))
            text += sentence
        texts.append(text)
        bounds.append(spans)
    questions_ = [tokenizer.convert_tokens_to_string(tokenizer.tokenize(ex.question)[:MAX_QUESTION_TOKENS])
                  for ex in examples]
    inputs = tokenizer(questions_, texts, truncation="only_second", max_length=max_length, padding=True,
                       return_tensors="pt", return_offsets_mapping=True)
    offsets = inputs.pop("offset_mapping")
    most = max(len(spans) for spans in bounds)
    masks = torch.zeros(len(examples), most, offsets.shape[1], dtype=torch.bool)
    for row, spans in enumerate(bounds):
        sequence = inputs.sequence_ids(row)
        for i, (start, end) in enumerate(spans):
            for t, part in enumerate(sequence):
                first, last = int(offsets[row, t, 0]), int(offsets[row, t, 1])
                if part == 1 and start <= first < last <= end:
                    masks[row, i, t] = True
    return inputs, masks


class PassageReader:
    """The encoder, a sentence head over each sentence's mean piece, a "none" head over [CLS]."""

    def __init__(self, encoder) -> None:
        import torch

        self.encoder = encoder
        width = encoder.config.hidden_size
        self.sentence_head = torch.nn.Linear(width, 1)
        self.none_head = torch.nn.Linear(width, 1)

    def parameters(self):
        trained = [p for p in self.encoder.parameters() if p.requires_grad]
        return trained + list(self.sentence_head.parameters()) + list(self.none_head.parameters())

    def state_dict(self) -> dict:
        return {"encoder": self.encoder.state_dict(), "sentence": self.sentence_head.state_dict(),
                "none": self.none_head.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.encoder.load_state_dict(state["encoder"])
        self.sentence_head.load_state_dict(state["sentence"])
        self.none_head.load_state_dict(state["none"])

    def train(self, on: bool = True) -> None:
        self.encoder.train(on)

    def __call__(self, inputs, masks):
        """Logits (batch x 1 + sentences): "none" first, then each sentence (-inf when cut off)."""
        import torch

        hidden = self.encoder(**inputs).last_hidden_state
        weights = masks.float()
        pooled = torch.einsum("bst,bth->bsh", weights, hidden) / weights.sum(-1, keepdim=True).clamp(min=1)
        sentences = self.sentence_head(pooled).squeeze(-1).masked_fill(~masks.any(-1), -1e4)
        return torch.cat([self.none_head(hidden[:, 0]), sentences], dim=1)


def targets(examples: Sequence[Example], masks):
    """Index of the right choice per example: 0 for none, 1 + the answering sentence; -100 when it was cut off."""
    import torch

    out = []
    for row, ex in enumerate(examples):
        if ex.answer < 0:
            out.append(0)
        else:
            out.append(1 + ex.answer if bool(masks[row, ex.answer].any()) else -100)
    return torch.tensor(out)


def figures(model, tokenizer, examples: Sequence[Example], max_length: int, batch_size: int = 32) -> dict:
    """AUC of P(answered) between answerable and unanswerable examples; top sentence's hit rate."""
    import torch

    model.train(False)
    answered, hits = [], []
    with torch.inference_mode():
        for first in range(0, len(examples), batch_size):
            batch = examples[first : first + batch_size]
            inputs, masks = encode(tokenizer, batch, max_length)
            probabilities = torch.softmax(model(inputs, masks), dim=1).numpy()
            for ex, p in zip(batch, probabilities):
                answered.append((1 - float(p[0]), ex.answer >= 0))
                if ex.answer >= 0:
                    hits.append(int(np.argmax(p[1:])) == ex.answer)
    model.train(True)
    return {"auc": auc([p for p, y in answered if y], [p for p, y in answered if not y]),
            "top1": float(np.mean(hits)) if hits else float("nan"), "questions": len(examples)}


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/squad"))
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--init-from", type=Path, default=Path("models/reader/model.onnx"))
    parser.add_argument("--questions", type=int, default=20000, help="v1.1 questions added to the SQuAD 2.0 ones")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--dev", type=int, default=600, help="calibration questions measured at checkpoints")
    parser.add_argument("--checkpoint-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=31)
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from tqdm import tqdm

    from retrieval.embedder import bundled_model_path
    from training.onnx_weights import load_onnx_weights
    from training.train_reader import load_model, warmup_then_decay

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    train, calibration = build_examples(args.data, args.questions, rng)
    random.Random(0).shuffle(calibration)
    dev = calibration[: args.dev]
    classifier, tokenizer = load_model(bundled_model_path(), 6)
    if args.init_from:
        load_onnx_weights(classifier, args.init_from)
    model = PassageReader(classifier.bert)
    # Batches of similar length within pools, in random order.
    order = sorted(range(len(train)), key=lambda i: sum(len(s) for s in train[i].sentences))
    plan = [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]
    rng.shuffle(plan)
    total = math.ceil(len(plan) * args.epochs)
    plan = (plan * math.ceil(args.epochs))[:total]
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    schedule = warmup_then_decay(optimizer, total)
    args.work.mkdir(parents=True, exist_ok=True)
    checkpoint, logfile = args.work / "checkpoint.pt", args.work / "train.log.jsonl"
    step = 0
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step = state["step"]
    else:
        start = {"event": "start", "examples": len(train), "unanswerable": sum(ex.answer < 0 for ex in train),
                 "steps": total, "args": {k: str(v) for k, v in vars(args).items()},
                 "before": figures(model, tokenizer, dev, args.max_length)}
        log.info("%s", start)
        logfile.write_text(json.dumps(start) + "\n")
    model.train(True)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100)
    running, seen, started = 0.0, 0, time.monotonic()
    bar = tqdm(total=total, initial=step, desc="training the passage reader", unit="step", file=sys.stderr)
    while step < total:
        batch = [train[i] for i in plan[step]]
        inputs, masks = encode(tokenizer, batch, args.max_length)
        goal = targets(batch, masks)
        if bool((goal >= 0).any()):
            loss = loss_fn(model(inputs, masks), goal)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
            running += float(loss.detach()) * len(batch)
            seen += len(batch)
        schedule.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{running / max(1, seen):.4f}")
        if step % args.checkpoint_every == 0 or step == total:
            record = {"event": "checkpoint", "step": step, "loss": running / max(1, seen),
                      "examples_per_second": seen / (time.monotonic() - started),
                      **figures(model, tokenizer, dev, args.max_length)}
            log.info("%s", record)
            with open(logfile, "a") as handle:
                handle.write(json.dumps(record) + "\n")
            running, seen, started = 0.0, 0, time.monotonic()
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "schedule": schedule.state_dict(), "step": step}, checkpoint.with_suffix(".tmp"))
            os.replace(checkpoint.with_suffix(".tmp"), checkpoint)
    bar.close()


if __name__ == "__main__":
    main()
