"""Train the reader: a cross-encoder from the bundled all-MiniLM-L6-v2 weights, on SQuAD pairs.

`make train-reader` (python -m training.train_reader) rebuilds models/reader/ from the bundled
weights and a SQuAD folder, seeded. It checkpoints every few hundred steps into --work, so a
stopped run resumes where it was, logs loss and dev figures there (train.log.jsonl), and at the
end exports the model to ONNX with its tokenizer and a model card.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.mine import read_pairs
from training.onnx_weights import load_onnx_weights
from training.quantise import WEIGHT_LIMIT, as_stored
from training.squad import (
    Pair, all_pairs, load_articles, question_of, questions, split_dev, squad2_training_articles, training_pairs,
)
from training.tables import table_pairs

log = logging.getLogger("train_reader")

DEFAULT_DATA = Path("../shared/datasets/squad")
DEFAULT_OUT = Path("models/reader")
DEFAULT_WORK = Path(".reader-training")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The recipe's knobs; the defaults are the committed model's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with the SQuAD .json.gz files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the ONNX export and card go")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="checkpoints and the training log")
    parser.add_argument("--base", type=Path, default=None, help="starting weights (default: the bundled MiniLM)")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="weights to start from (a later stage), with a fresh optimiser: an earlier run's checkpoint.pt "
                             "or an exported model.onnx such as the shipped models/reader/model.onnx")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--v1-questions", type=int, default=7000, help="SQuAD v1.1 train questions to use")
    parser.add_argument("--near-miss-share", type=float, default=0.35, help="v1.1 questions also made into a near miss")
    parser.add_argument("--reworded-share", type=float, default=0.0,
                        help="v1.1 questions also reworded into a near miss (an opposite, a negation)")
    parser.add_argument("--denied-share", type=float, default=0.0,
                        help="v1.1 questions also read against their answering sentence made to deny it")
    parser.add_argument("--cut-share", type=float, default=0.0,
                        help="v1.1 questions also read against their answering sentence cut short before the answer")
    parser.add_argument("--asked-share", type=float, default=0.0,
                        help="v1.1 questions also turned to ask when or why, where their answering sentence says neither")
    parser.add_argument("--role-share", type=float, default=0.0,
                        help="v1.1 questions also asked with a name swapped for another of the answering sentence")
    parser.add_argument("--joined-share", type=float, default=0.0,
                        help="v1.1 questions also asked together with another of their paragraph, both sentences answering")
    parser.add_argument("--v2-share", type=float, default=1.0,
                        help="share of the SQuAD 2.0 training articles used (a learning curve over real unanswerable "
                             "questions; chosen by the seed)")
    parser.add_argument("--unanswerable-negatives", type=int, default=2,
                        help="sentences taken as negatives for each unanswerable SQuAD 2.0 question")
    parser.add_argument("--floats-only", action="store_true",
                        help="train only the biases and layer norms, what an int8 export keeps in floating point: a "
                             "stage started from an int8 file then keeps all it learnt when quantised again (changes "
                             "to its weight matrices smaller than their int8 step are rounded away)")
    parser.add_argument("--weight-bits", type=int, choices=(7, 8), default=8,
                        help="the bits the int8 export's weights use (7: -64..64, exact in ONNX Runtime's u8s8 "
                             "kernels on every CPU; training.quantise --weight-bits); --int8-aware rounds to them")
    parser.add_argument("--int8-aware", action="store_true",
                        help="read every pair with the weight matrices rounded as the int8 export stores them, "
                             "the gradient moving the exact ones (training.quantise.as_stored), and keep the "
                             "tables (stored in 4 bits) as they are: a whole-model stage from an int8 file then "
                             "keeps what it learns when quantised again")
    parser.add_argument("--tables", type=int, default=0,
                        help="made-up tables whose rows are also read against questions (training/tables.py)")
    parser.add_argument("--mined", type=Path, default=None,
                        help="pairs mined with an earlier reader (python -m training.mine) added to the built ones")
    parser.add_argument("--span-weight", type=float, default=0.0,
                        help="weight of a second task while training: point at the answer's first and last word "
                             "piece in a positive's sentence (the export keeps only the one score)")
    parser.add_argument("--pair-weight", type=float, default=0.0,
                        help="weight of a ranking loss putting each near miss below the answering pair it was made "
                             "from (batches then hold whole questions)")
    parser.add_argument("--sentence-weight", type=float, default=0.0,
                        help="weight of a ranking loss putting each of a question's other sentences below its answering "
                             "one (batches then hold whole questions)")
    parser.add_argument("--list-weight", type=float, default=0.0,
                        help="weight of a choice loss per question: its answering sentence among its sentences and "
                             "'none' (logit 0), or 'none' when it has no answer (batches then hold whole questions)")
    parser.add_argument("--teacher", type=Path, default=None,
                        help="a larger reader's checkpoint.pt (trained from --teacher-base) whose probabilities the "
                             "model also learns to match")
    parser.add_argument("--teacher-base", type=Path, default=None, help="the base model the teacher was trained from")
    parser.add_argument("--teacher-weight", type=float, default=1.0,
                        help="weight of matching the teacher's probabilities, beside the pairs' own labels")
    parser.add_argument("--negatives", type=int, default=1,
                        help="other sentences of its paragraph taken as negatives for each answerable question")
    parser.add_argument("--paired-unanswerable", type=int, nargs="?", const=1, default=0, metavar="N",
                        help="read each unanswerable question also against the answers of its paragraph's N (default "
                             "1) most alike answerable questions")
    parser.add_argument("--layers", type=int, default=6, help="transformer layers kept from the base model")
    parser.add_argument("--max-length", type=int, default=96, help="tokens per (question, sentence) input")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=4e-5)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--checkpoint-every", type=int, default=250, help="steps between checkpoints")
    parser.add_argument("--dev-questions", type=int, default=150, help="calibration questions scored at checkpoints")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (tests)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: every core)")
    args = parser.parse_args(argv)
    if args.teacher and args.teacher_base is None:
        parser.error("--teacher needs --teacher-base, the base model the teacher was trained from")
    return args


def build_pairs(args: argparse.Namespace, rng: random.Random) -> tuple[list[Pair], list[dict]]:
    """The training pairs, shuffled, and the calibration articles (for dev figures)."""
    data = args.data
    dev = split_dev(load_articles(data / "dev-v2.0.json.gz"))
    real = {"negatives": args.negatives, "unanswerable_negatives": args.unanswerable_negatives,
            "paired_unanswerable": args.paired_unanswerable}
    v2 = squad2_training_articles(data, dev)
    if args.v2_share < 1.0:
        v2 = rng.sample(v2, round(len(v2) * args.v2_share))
    pairs = training_pairs(v2, rng=rng, **real)
    v1 = data / "train-v1.1.json.gz"
    if v1.exists() and args.v1_questions:
        articles = load_articles(v1)
        rng.shuffle(articles)
        # Spread the questions over many articles: a few from each.
        per_article = max(1, math.ceil(args.v1_questions / len(articles)))
        for article in articles:
            article = {**article, "paragraphs": rng.sample(article["paragraphs"], min(len(article["paragraphs"]), per_article))}
            pairs += training_pairs(
                [article], rng=rng, negatives=args.negatives, near_miss_share=args.near_miss_share,
                reworded_share=args.reworded_share, denied_share=args.denied_share, cut_share=args.cut_share,
                asked_share=args.asked_share, role_share=args.role_share,
                joined_share=args.joined_share, question_limit=per_article,
            )
    if args.mined:
        pairs += read_pairs(args.mined)
    pairs += table_pairs(args.tables, rng)
    rng.shuffle(pairs)
    return pairs, dev["calibrate"]


def batches(pairs: Sequence[Pair], size: int, rng: random.Random) -> list[list[Pair]]:
    """Batches of pairs of similar length (little padding), in random order."""
    return _packed([[pair] for pair in pairs], size, rng, pool=size * 50)


def question_batches(pairs: Sequence[Pair], size: int, rng: random.Random) -> list[list[Pair]]:
    """Batches of whole questions (a question's pairs with its near misses), of similar length, in random order.

    A question with more pairs than `size` makes a batch of its own.
    """
    units: dict[str, list[Pair]] = {}
    for pair in pairs:
        units.setdefault(question_of(pair), []).append(pair)
    # A question has about three pairs: pools of about 50 batches, as in `batches`.
    return _packed(list(units.values()), size, rng, pool=size * 50 // 3)


def _packed(units: list[list[Pair]], size: int, rng: random.Random, *, pool: int) -> list[list[Pair]]:
    """Units of pairs packed whole into batches of at most `size` pairs, in random order.

    Units are sorted by length within pools of `pool` units: near-uniform lengths per batch,
    still a random stream.
    """
    rng.shuffle(units)
    out: list[list[Pair]] = []
    for first in range(0, len(units), pool):
        batch: list[Pair] = []
        for unit in sorted(units[first : first + pool], key=_mean_length):
            if batch and len(batch) + len(unit) > size:
                out.append(batch)
                batch = []
            batch += unit
        if batch:
            out.append(batch)
    rng.shuffle(out)
    return out


def _mean_length(unit: Sequence[Pair]) -> float:
    return sum(len(p.question) + len(p.context) for p in unit) / len(unit)


def pair_loss(logits, batch: Sequence[Pair]):
    """Logistic ranking loss over the batch's near misses: each should score below the answering pair
    of the question it was made from (a changed question on the same sentence, or the question on
    its sentence made to deny it). Zero when the batch has none."""
    answering = {(p.group, p.context): row for row, p in enumerate(batch) if p.label}
    answer_of = {p.group: row for row, p in enumerate(batch) if p.label}
    return _ranking(logits, [
        (answering[key], row)
        for row, p in enumerate(batch)
        if p.group.endswith("/swapped") and (key := (p.group.removesuffix("/swapped"), p.context)) in answering
    ] + [
        (answer_of[group], row)
        for row, p in enumerate(batch)
        if p.group.endswith("/denied") and (group := p.group.removesuffix("/denied")) in answer_of
    ])


def sentence_loss(logits, batch: Sequence[Pair]):
    """Logistic ranking loss over the batch's answerable questions: each of a question's other
    sentences should score below its answering one. Zero when the batch has none."""
    answering = {p.group: row for row, p in enumerate(batch) if p.label}
    return _ranking(logits, [
        (answering[p.group], row) for row, p in enumerate(batch) if not p.label and p.group in answering
    ])


def list_loss(logits, batch: Sequence[Pair]):
    """Mean over the batch's questions of the cross-entropy of choosing, among the question's
    sentences and "none" (a fixed logit 0), its answering sentence, or "none" when it has none.

    A question of one sentence makes this the usual binary cross-entropy; with more, the loss
    weighs most the sentences scored highest, as the answer-or-decline test (the best one) does.
    """
    import torch

    groups: dict[str, list[int]] = {}
    for row, pair in enumerate(batch):
        groups.setdefault(pair.group, []).append(row)
    losses = []
    for rows in groups.values():
        choices = torch.cat([logits.new_zeros(1), logits[rows]])
        target = next((k + 1 for k, row in enumerate(rows) if batch[row].label), 0)
        losses.append(torch.logsumexp(choices, 0) - choices[target])
    return torch.stack(losses).mean()


def _ranking(logits, rows: Sequence[tuple[int, int]]):
    """Mean softplus(worse - better) over (better, worse) rows of the logits; zero for none."""
    import torch

    if not rows:
        return logits.new_zeros(())
    good, bad = zip(*rows)
    return torch.nn.functional.softplus(logits[list(bad)] - logits[list(good)]).mean()


def load_model(base: Path, layers: int):
    """The base weights with a one-logit classification head, cut to `layers` layers."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=1)
    if layers < model.config.num_hidden_layers:
        model.base_model.encoder.layer = model.base_model.encoder.layer[:layers]
        model.config.num_hidden_layers = layers
    # The word-piece table is half the MiniLM's weights: frozen, each step updates half as many, and
    # words SQuAD never shows keep the meaning the base model gave them.
    model.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    return model, tokenizer


def load_first_layers(model, state: dict) -> None:
    """Load a checkpoint's weights into the model; a checkpoint with more layers gives its first ones."""
    expected = model.state_dict()
    missing = [name for name in expected if name not in state]
    if missing:
        raise ValueError(f"the checkpoint has no weight {missing[0]}: it was not saved from a model of this shape")
    model.load_state_dict({name: value for name, value in state.items() if name in expected}, strict=True)


def load_teacher(args: argparse.Namespace):
    """The teacher reader (its model and tokenizer), in eval mode, from its checkpoint."""
    import torch

    state = torch.load(args.teacher, weights_only=False)["model"]
    layers = {int(key.split(".layer.")[1].split(".")[0]) for key in state if ".encoder.layer." in key}
    model, tokenizer = load_model(args.teacher_base, layers=len(layers))
    model.load_state_dict(state)
    model.eval()
    log.info("matching the teacher in %s", args.teacher)
    return model, tokenizer


def teacher_loss(teacher, batch: Sequence[Pair], logits, max_length: int):
    """Cross-entropy of the model's probabilities against the teacher's, pair by pair."""
    import torch

    model, tokenizer = teacher
    with torch.no_grad():
        targets = torch.sigmoid(model(**encode(tokenizer, batch, max_length)).logits[:, 0])
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)


def encode(tokenizer, pairs: Sequence[Pair], max_length: int, *, offsets: bool = False):
    """Tokenise (question, context) pairs; the context is cut first, never the question."""
    return tokenizer(
        [p.question for p in pairs],
        [p.context for p in pairs],
        truncation="only_second",
        max_length=max_length,
        padding=True,
        return_tensors="pt",
        return_offsets_mapping=offsets,
    )


def answer_tokens(inputs, pairs: Sequence[Pair]):
    """Per pair, the word pieces where its answer starts and ends in the context (-100: none).

    The sentence opens the context, so the answer's place in the sentence is its place there.
    Also a mask of the context's word pieces, the only places an answer may be pointed at. Takes
    the offsets out of `inputs`, which the model does not read.
    """
    import torch

    offsets = inputs.pop("offset_mapping")
    starts = torch.full((len(pairs),), -100, dtype=torch.long)
    ends = torch.full((len(pairs),), -100, dtype=torch.long)
    context = torch.zeros(offsets.shape[:2], dtype=torch.bool)
    for row, pair in enumerate(pairs):
        pieces = [i for i, sequence in enumerate(inputs.sequence_ids(row)) if sequence == 1]
        context[row, pieces] = True
        first = pair.context.find(pair.answer) if pair.answer and pair.label else -1
        if first < 0:
            continue
        last = first + len(pair.answer)
        covering = [i for i in pieces if offsets[row, i, 1] > first and offsets[row, i, 0] < last]
        if covering and offsets[row, covering[-1], 1] >= last:  # the whole answer survived the cut
            starts[row], ends[row] = covering[0], covering[-1]
    return starts, ends, context


def span_loss(head, hidden, starts, ends, context):
    """Cross-entropy of the answer's first and last word piece among the context's pieces."""
    import torch

    if not bool((starts >= 0).any()):
        return hidden.new_zeros(())
    logits = head(hidden).masked_fill(~context.unsqueeze(-1), -1e4)
    loss = torch.nn.functional.cross_entropy
    return (loss(logits[..., 0], starts, ignore_index=-100) + loss(logits[..., 1], ends, ignore_index=-100)) / 2


def score(model, tokenizer, pairs: Sequence[Pair], max_length: int, batch_size: int = 64) -> np.ndarray:
    """The model's probability for each pair that the sentence answers the question."""
    import torch

    model.eval()
    out = np.zeros(len(pairs), dtype=np.float32)
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i].question) + len(pairs[i].context))
    with torch.inference_mode():
        for first in range(0, len(order), batch_size):
            rows = order[first : first + batch_size]
            logits = model(**encode(tokenizer, [pairs[i] for i in rows], max_length)).logits[:, 0]
            out[rows] = torch.sigmoid(logits).numpy()
    model.train()
    return out


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Area under the ROC curve: the chance a random positive outscores a random negative."""
    if not positives or not negatives:
        return float("nan")
    values = np.concatenate([positives, negatives])
    ranks = values.argsort().argsort().astype(np.float64) + 1
    # Ties share their mean rank.
    for value in np.unique(values):
        tied = values == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    n_pos, n_neg = len(positives), len(negatives)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def question_figures(groups: dict[str, list[tuple[float, float]]]) -> dict[str, float]:
    """Per question (its sentences' (score, label)): top-sentence accuracy and answerability AUC."""
    answerable = [g for g in groups.values() if any(label for _, label in g)]
    unanswerable = [g for g in groups.values() if not any(label for _, label in g)]
    top = [max(g, key=lambda sl: sl[0])[1] for g in answerable]
    return {
        "top1": float(np.mean(top)) if top else float("nan"),
        "answerable_auc": auc([max(s for s, _ in g) for g in answerable], [max(s for s, _ in g) for g in unanswerable]),
        "questions": len(groups),
    }


def dev_figures(model, tokenizer, dev_questions, max_length: int) -> dict[str, float]:
    """Score every sentence of each dev question's paragraph; figures per question."""
    pairs = [pair for question in dev_questions for pair in all_pairs(question)]
    scores = score(model, tokenizer, pairs, max_length)
    groups: dict[str, list[tuple[float, float]]] = {}
    for pair, value in zip(pairs, scores):
        groups.setdefault(pair.group, []).append((float(value), pair.label))
    return question_figures(groups)


def export_onnx(model, tokenizer, out: Path, *, max_length: int) -> Path:
    """Write model.onnx (dynamic batch and length), tokenizer.json and reader.json into `out`."""
    import torch

    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.eval()
    sample = encode(tokenizer, [Pair("what is it?", "it is a test [SEP] title.", 0.0, "")], max_length)
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in sample]
    torch.onnx.export(
        model,
        tuple(sample[name] for name in names),
        str(staging / "model.onnx"),
        input_names=names,
        output_names=["logits"],
        dynamic_axes={name: {0: "batch", 1: "tokens"} for name in names} | {"logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    tokenizer.backend_tokenizer.save(str(staging / "tokenizer.json"))
    (staging / "reader.json").write_text(json.dumps({"max_length": max_length, "layers": model.config.num_hidden_layers}, indent=2))
    keep = [name for name in ("README.md",) if (out / name).exists()]
    for name in keep:
        shutil.copy2(out / name, staging / name)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return out / "model.onnx"


def warmup_then_decay(optimizer, total: int):
    """The learning rate's schedule: up linearly over the first tenth of `total` steps, then down
    linearly to zero at the last."""
    import torch

    warmup = max(1, total // 10)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))
    )


def sha256(path: Path) -> str:
    """The file's sha256, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def train(args: argparse.Namespace) -> dict:
    """Train (resuming from --work when a checkpoint is there), export, and return the last dev figures."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from tqdm import tqdm

    from retrieval.embedder import bundled_model_path

    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    pairs, calibration = build_pairs(args, rng)
    dev_rng = random.Random(args.seed)
    dev_questions = list(questions(calibration))
    dev_rng.shuffle(dev_questions)
    dev_questions = dev_questions[: args.dev_questions]
    make_batches = question_batches if args.pair_weight or args.sentence_weight or args.list_weight else batches
    plan = make_batches(pairs, args.batch_size, rng)
    total = math.ceil(len(plan) * args.epochs)
    if args.max_steps is not None:
        total = min(total, args.max_steps)
    # Later epochs reuse the pairs in a new order.
    while len(plan) < total:
        plan += make_batches(pairs, args.batch_size, rng)
    plan = plan[:total]

    base = args.base or bundled_model_path()
    model, tokenizer = load_model(base, args.layers)
    # The second task's head reads the last layer's word pieces; it trains with the model and is
    # not exported.
    span_head = torch.nn.Linear(model.config.hidden_size, 2) if args.span_weight else None
    if args.floats_only:
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name.endswith(".bias") or name.endswith("LayerNorm.weight"))
    if args.int8_aware:
        for module in model.modules():
            if isinstance(module, torch.nn.Embedding):
                module.weight.requires_grad_(False)
    # The weights each pair is read with: as the int8 export will hold them, or as they are.
    as_read = (lambda: as_stored(model, WEIGHT_LIMIT[args.weight_bits])) if args.int8_aware else contextlib.nullcontext
    trained = [p for p in model.parameters() if p.requires_grad] + (list(span_head.parameters()) if span_head else [])
    optimizer = torch.optim.AdamW(trained, lr=args.lr, weight_decay=0.01)
    schedule = warmup_then_decay(optimizer, total)
    args.work.mkdir(parents=True, exist_ok=True)
    checkpoint = args.work / "checkpoint.pt"
    logfile = args.work / "train.log.jsonl"
    step = 0
    if args.init_from and not checkpoint.exists():
        if args.init_from.suffix == ".onnx":
            load_onnx_weights(model, args.init_from)
        else:
            load_first_layers(model, torch.load(args.init_from, weights_only=False)["model"])
        log.info("starting from the weights in %s", args.init_from)
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        if span_head is not None:
            span_head.load_state_dict(state["span_head"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step = state["step"]
        log.info("resuming at step %d of %d", step, total)
    else:
        with open(logfile, "w") as handle:
            handle.write(json.dumps({"event": "start", "pairs": len(pairs), "positives": sum(p.label for p in pairs),
                                     "steps": total, "args": {k: str(v) for k, v in vars(args).items()}}) + "\n")

    loss_fn = torch.nn.BCEWithLogitsLoss()
    teacher = load_teacher(args) if args.teacher else None
    model.train()
    running, seen, started = 0.0, 0, time.monotonic()
    figures: dict = {}
    bar = tqdm(total=total, initial=step, desc="training the reader", unit="step", file=sys.stderr)
    while step < total:
        batch = plan[step]
        inputs = encode(tokenizer, batch, args.max_length, offsets=span_head is not None)
        labels = torch.tensor([p.label for p in batch], dtype=torch.float32)
        with as_read():
            if span_head is None:
                logits = model(**inputs).logits[:, 0]
                loss = loss_fn(logits, labels)
            else:
                spans = answer_tokens(inputs, batch)
                output = model(**inputs, output_hidden_states=True)
                logits = output.logits[:, 0]
                loss = loss_fn(logits, labels) + args.span_weight * span_loss(span_head, output.hidden_states[-1], *spans)
            if teacher is not None:
                loss = loss + args.teacher_weight * teacher_loss(teacher, batch, logits, args.max_length)
            if args.pair_weight:
                loss = loss + args.pair_weight * pair_loss(logits, batch)
            if args.sentence_weight:
                loss = loss + args.sentence_weight * sentence_loss(logits, batch)
            if args.list_weight:
                loss = loss + args.list_weight * list_loss(logits, batch)
            loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        step += 1
        running += float(loss.detach()) * len(batch)
        seen += len(batch)
        bar.update(1)
        bar.set_postfix(loss=f"{running / seen:.4f}")
        if step % args.checkpoint_every == 0 or step == total:
            with as_read():
                figures = dev_figures(model, tokenizer, dev_questions, args.max_length) if dev_questions else {}
            record = {"event": "checkpoint", "step": step, "loss": running / max(1, seen),
                      "pairs_per_second": seen / (time.monotonic() - started), **figures}
            with open(logfile, "a") as handle:
                handle.write(json.dumps(record) + "\n")
            log.info("%s", record)
            running, seen, started = 0.0, 0, time.monotonic()
            staging = checkpoint.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "schedule": schedule.state_dict(), "step": step,
                        **({"span_head": span_head.state_dict()} if span_head is not None else {})}, staging)
            os.replace(staging, checkpoint)
    bar.close()
    onnx_file = export_onnx(model, tokenizer, args.out, max_length=args.max_length)
    summary = {"event": "exported", "file": str(onnx_file), "sha256": sha256(onnx_file), "step": step, **figures}
    with open(logfile, "a") as handle:
        handle.write(json.dumps(summary) + "\n")
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: train and export, printing the summary as JSON."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    print(json.dumps(train(parse_args(argv)), indent=2))


if __name__ == "__main__":
    main()
