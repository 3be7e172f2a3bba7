"""Per-question outcomes of the reader over a question set, for calibrating and comparing offline.

python -m bench.reader_outcomes (--squad FILE | --qa FILE) --index DIR --out FILE.jsonl [--limit N]

For each question: the reader's best probability, whether the sentence it would quote holds an
answer, whether a name in the question is missing from every document, and the rank of the
first passage holding an answer in retrieval order and after re-ranking by reader and retrieval
at several weights; for every sentence read, each reader's own probability beside the agreed one.
One pass of the model per question; thresholds and weights are then tried on the saved records
(bench.reader_figures, bench.reader_weights) without asking again.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

import numpy as np

from app.service import Sourcebook
from retrieval import answer as answering
from retrieval import reading
from retrieval.candidates import shared_words
from retrieval.evaluation import contains_answer, first_relevant_rank, load_qa, load_squad
from retrieval.settings import Settings
from retrieval.text import keyword_terms

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


class Recording:
    """A reader that keeps the probabilities it gave last, in the order it was given the sentences."""

    def __init__(self, reader: reading.Scorer) -> None:
        self.reader = reader
        self.last: list[float] = []

    def score(self, question: str, contexts: list[str]) -> np.ndarray:
        scores = self.reader.score(question, contexts)
        self.last = [float(p) for p in scores]
        return scores


def main() -> None:
    """Ask every (sampled) question once and write one JSON line of outcomes per question."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path)
    parser.add_argument("--qa", type=Path)
    parser.add_argument("--index", type=Path, required=True, help="the library (made from --squad if empty)")
    parser.add_argument("--model-from", type=Path, help="an index whose model-onnx/ export to reuse")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--candidates", type=int, default=None)
    args = parser.parse_args()
    if args.model_from and not (args.index / "model-onnx").exists():
        args.index.mkdir(parents=True, exist_ok=True)
        shutil.copytree(args.model_from / "model-onnx", args.index / "model-onnx")
    settings = Settings(index_dir=args.index)
    service = Sourcebook(settings)
    if args.squad:
        documents, items = load_squad(args.squad)
        if service.counts()[0] == 0:
            service.ingest_documents(documents)
    else:
        items = load_qa(args.qa)
    if args.limit and args.limit < len(items):
        items = random.Random(0).sample(items, args.limit)
    candidates = args.candidates or settings.reader_candidates
    second = Recording(service.second_reader) if service.second_reader is not None else None
    with open(args.out, "w") as out:
        for item in items:
            # Read as `ask` reads it: misspelt words as the library's nearest words.
            question = service.searcher.read(item.question)[0]
            passages = service.searcher.search(question, k=10)
            answering_passages = passages[: settings.answer_passages]
            unknown = service.library.keywords.missing_words(reading.names_in(question))
            terms = set(keyword_terms(question))
            # What read_candidates does with both readers, in two steps, so that each reader's own
            # probability is kept beside the agreed one (bench.reader_weights refits their weighing).
            scored = reading.read_candidates(service.reader, question, answering_passages, candidates,
                                             service.library.keywords.share_holding,
                                             text_between=service.library.store.text_between)
            own = {(s.hit.document_id, s.start): (round(s.score, 4), None) for s in scored}
            if second is not None and settings.second_reads > 0:
                second.last = []
                reread = scored[: settings.second_reads]
                scored = reading.reread(second, question, reread)
                for s, p in zip(reread, second.last):
                    own[(s.hit.document_id, s.start)] = (round(s.score, 4), round(p, 4))
            best = scored[0].score if scored else 0.0
            # The quote the service would give at the shipped threshold (a refitted one differs a little).
            chosen = answering.select(question, scored, settings.abstain_below)[0] if scored else []
            quote = " ".join(s.text for s in chosen)
            ranks = {}
            for weight in WEIGHTS:
                reranked = answering.rerank(question, answering_passages, scored, reader_weight=weight)
                order = [*reranked, *passages[settings.answer_passages :]]
                ranks[str(weight)] = first_relevant_rank([contains_answer(p.text, item.answers) for p in order])
            out.write(json.dumps({
                "question": item.question, "answerable": item.answerable, "evidence": best,
                "correct": bool(item.answerable and contains_answer(quote, item.answers)),
                "best_holds_answer": bool(item.answerable and scored and contains_answer(scored[0].text, item.answers)),
                "unknown_names": list(unknown), "ranks": ranks,
                "retrieval_score": passages[0].score if passages else 0.0,
                # Every sentence read: reader probability, its passage's retrieval score and rank,
                # its share of the question's words, whether it holds an answer; then the first and
                # the second reader's own probabilities, its document and its offsets.
                "sentences": [[round(s.score, 4), round(s.hit.score, 4), s.rank,
                               round(shared_words(terms, s.text), 3),
                               bool(item.answerable and contains_answer(s.text, item.answers)),
                               *own[(s.hit.document_id, s.start)], s.hit.document_id, s.start, s.end]
                              for s in scored],
            }) + "\n")


if __name__ == "__main__":
    main()
