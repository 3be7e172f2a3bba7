"""Hard negatives mined with a trained reader: the sentences it wrongly rates as answers.

python -m training.mine --reader models/reader --out .reader-training/mined.jsonl

Earlier stages take their negatives by shared words, from the question's own paragraph. In use the
reader also sees sentences of other passages of the same document (retrieval hands it the top
passages), and the sentences that fool it are not always those sharing the most words. This reads
each question beside its paragraph's other sentences and the article's sentences that share words
with it, scores them with the given reader, and keeps the ones it rates highest as negatives, with
the question's answering sentence as the positive; near misses made from v1.1 questions (a swapped
fact, an opposite, a negation) are kept when the reader is fooled by them.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from ingest.sentences import sentence_spans
from retrieval.reader import reader_context
from training.squad import (
    Pair,
    Question,
    article_vocabulary,
    context_of,
    load_articles,
    mentions_answer,
    near_miss,
    questions,
    readable_title,
    reworded_miss,
    shared_words,
    squad2_training_articles,
)

# A negative from another paragraph scored above this is more likely an answer SQuAD did not mark
# (an article states a fact more than once) than a mistake: left out, not learnt as "no".
OTHER_PARAGRAPH_CEILING = 0.9


def article_sentences(article: dict) -> list[tuple[int, str, str]]:
    """Every sentence of an article as (paragraph index, sentence, reader context)."""
    title = readable_title(article["title"])
    out = []
    for p, paragraph in enumerate(article["paragraphs"]):
        context = paragraph["context"]
        sentences = [context[s:e] for s, e in sentence_spans(context)]
        for i, sentence in enumerate(sentences):
            out.append((p, sentence, reader_context(sentence, title=title, previous=sentences[i - 1] if i else "")))
    return out


def paragraph_questions(article: dict) -> Iterator[tuple[int, Question]]:
    """The article's questions with the index of the paragraph each is about."""
    for p, paragraph in enumerate(article["paragraphs"]):
        # Read one paragraph at a time, with the ids questions() would give them in the whole
        # article (SQuAD v1.1 train has none of its own), so no two paragraphs' questions share one.
        qas = [{**qa, "id": qa.get("id") or f"{article['title']}/{p}/{q}"} for q, qa in enumerate(paragraph["qas"])]
        for question in questions([{"title": article["title"], "paragraphs": [{**paragraph, "qas": qas}]}]):
            yield p, question


def candidates(question: Question, paragraph: int, sentences: Sequence[tuple[int, str, str]], *, others: int) -> list[tuple[str, bool]]:
    """Negative candidates: (context, from another paragraph) for the paragraph's non-answering
    sentences and the `others` sentences of other paragraphs sharing the most words (at least two)."""
    own = [
        (context_of(question, i), False)
        for i, sentence in enumerate(question.sentences)
        if i not in question.answering and len(sentence.split()) >= 4 and not mentions_answer(sentence, question.answers)
    ]
    scored = []
    for p, sentence, context in sentences:
        if p == paragraph or len(sentence.split()) < 4 or mentions_answer(sentence, question.answers):
            continue
        shared = shared_words(question.text, sentence)
        if shared >= 2:
            scored.append((shared, context))
    scored.sort(key=lambda sc: -sc[0])
    return own + [(context, True) for _, context in scored[:others]]


def mine_question(reader, question: Question, negatives: Sequence[tuple[str, bool]], *, keep: int) -> list[Pair]:
    """The question's positive and the `keep` negatives the reader rates highest."""
    pairs = [Pair(question.text, context_of(question, i), 1.0, question.id) for i in sorted(question.answering)[:1]]
    if negatives:
        scores = reader.score(question.text, [context for context, _ in negatives])
        ranked = sorted(zip(scores, negatives), key=lambda sn: -sn[0])
        chosen = [(s, n) for s, n in ranked if not (n[1] and s > OTHER_PARAGRAPH_CEILING)][:keep]
        pairs += [Pair(question.text, context, 0.0, question.id) for _, (context, _) in chosen]
    return pairs


def mine_near_misses(reader, question: Question, vocabulary: dict, rng: random.Random, *, floor: float) -> list[Pair]:
    """Made near misses of an answerable question that the reader rates above `floor` (it is fooled)."""
    made = [text for text in (near_miss(question, vocabulary, rng), reworded_miss(question, rng)) if text]
    if not made:
        return []
    context = context_of(question, min(question.answering))
    out = []
    for text in made:
        if float(reader.score(text, [context])[0]) > floor:
            out.append(Pair(text, context, 0.0, question.id + "/swapped"))
    return out


def mine(args: argparse.Namespace, *, reader=None) -> dict:
    """Score the candidates with `reader` (default: the export at args.reader), write the kept
    pairs as JSON lines and return counts."""
    from retrieval.reader import Reader

    rng = random.Random(args.seed)
    reader = reader or Reader(args.reader)
    v1_file = args.data / "train-v1.1.json.gz"
    v2 = squad2_training_articles(args.data)
    v1 = load_articles(v1_file) if v1_file.exists() and args.v1_questions else []
    rng.shuffle(v1)
    per_article = max(1, math.ceil(args.v1_questions / max(1, len(v1))))

    work: list[tuple[dict, int, Question, bool]] = []  # (article, paragraph, question, make near misses)
    for article in v2:
        chosen = list(paragraph_questions(article))
        answerable = [pq for pq in chosen if pq[1].answering]
        rng.shuffle(answerable)
        work += [(article, p, q, False) for p, q in chosen if not q.answering]
        work += [(article, p, q, False) for p, q in answerable[: math.ceil(len(answerable) * args.v2_answerable_share)]]
    for article in v1:
        chosen = list(paragraph_questions(article))
        rng.shuffle(chosen)
        work += [(article, p, q, True) for p, q in chosen[:per_article]]

    counts = {"questions": 0, "unanswerable": 0, "pairs": 0, "positives": 0, "near_misses": 0, "from_other_paragraphs": 0}
    sentences_of: dict[str, list] = {}
    vocabulary_of: dict[str, dict] = {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as out:
        for article, p, question, near in tqdm(work, desc="mining", unit="question", file=sys.stderr, mininterval=10):
            key = article["title"]
            if key not in sentences_of:
                sentences_of = {key: article_sentences(article)}  # one article at a time: keep memory flat
                vocabulary_of = {key: article_vocabulary(article)}
            negatives = candidates(question, p, sentences_of[key], others=args.others)
            keep = args.unanswerable_negatives if not question.answering else args.negatives
            pairs = mine_question(reader, question, negatives, keep=keep)
            if near:
                made = mine_near_misses(reader, question, vocabulary_of[key], rng, floor=args.near_miss_floor)
                counts["near_misses"] += len(made)
                pairs += made
            own = {context_of(question, i) for i in range(len(question.sentences))}
            counts["from_other_paragraphs"] += sum(1 for pair in pairs if pair.context not in own)
            counts["questions"] += 1
            counts["unanswerable"] += not question.answering
            counts["pairs"] += len(pairs)
            counts["positives"] += sum(pair.label for pair in pairs)
            for pair in pairs:
                out.write(json.dumps(asdict(pair)) + "\n")
    return counts


def read_pairs(path: Path) -> list[Pair]:
    """The pairs a mining run wrote."""
    with open(path) as handle:
        return [Pair(**json.loads(line)) for line in handle if line.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The mining run's knobs; the defaults are the ones that made the committed model's pairs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/squad"))
    parser.add_argument("--reader", type=Path, default=Path("models/reader"), help="the exported reader that scores")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--v1-questions", type=int, default=442, help="SQuAD v1.1 train questions, a few per article")
    parser.add_argument("--v2-answerable-share", type=float, default=0.0,
                        help="share of the SQuAD 2.0 training articles' answerable questions (all unanswerable ones are used)")
    parser.add_argument("--others", type=int, default=4, help="sentences of other paragraphs scored per question")
    parser.add_argument("--negatives", type=int, default=2, help="negatives kept per answerable question")
    parser.add_argument("--unanswerable-negatives", type=int, default=3, help="negatives kept per unanswerable question")
    parser.add_argument("--near-miss-floor", type=float, default=0.1,
                        help="a made near miss is kept when the reader rates it above this")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: mine and print the counts as JSON."""
    print(json.dumps(mine(parse_args(argv)), indent=2))


if __name__ == "__main__":
    main()
