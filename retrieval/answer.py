"""Answers: the read sentences that answer a question, quoted verbatim and cited, or a decline.

Retrieval finds passages; the readers (retrieval/reading.py) score their candidate sentences
(retrieval/candidates.py) with the probability that each answers. The answer declines unless the
best probability clears one calibrated threshold; otherwise it quotes the accepted sentence of
most merit (that probability, the question's words it holds, its passage's rank), with the
neighbours or other documents' figures the answer needs, and cites where each sits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from retrieval.candidates import Sentence, shared_words
from retrieval.reading import Scorer, log_odds, read_candidates
from retrieval.records import Answer, Citation, Hit, Place
from retrieval.text import keyword_terms

NOT_ANSWERED = "The documents do not say. The closest passages are below."

MAX_SENTENCES = 3
# Another sentence joins the quote when the reader rates it nearly as high as the best one, and
# it is the best one's neighbour (a two-sentence answer) or a figure from another document.
EXTRA_SENTENCE_MARGIN = 0.1
# How well a sentence answers (`merit`): the reader's log-odds, plus WORDS_WEIGHT times the share
# of the question's words the sentence holds, less RANK_WEIGHT per rank of its passage. The reader
# alone too often prefers a sentence about the subject to the one stating the fact asked for.
# Fitted on SQuAD calibration articles (the quote's first sentence holds the answer: 0.825 of
# answerable questions by the reader alone, 0.840 by merit); docs/QUALITY.md.
WORDS_WEIGHT = 4.0
RANK_WEIGHT = 0.25
# How the passages are ordered for the answer: the merit of their best sentence (as a 0-1 figure)
# and their retrieval score, mixed. Fitted on SQuAD calibration articles (recall@1 0.914 by
# retrieval alone, 0.948 at 0.5); docs/QUALITY.md.
READER_WEIGHT = 0.5

_QUANTITY_QUESTION = re.compile(
    r"\b(how (many|much|big|large|often|long)|what (number|share|percentage|proportion|figure)|number of|"
    r"percent|figures?|statistics?)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d[\d,.]*\s*(?:%|percent|million|billion|thousand|k\b|m\b|bn\b)?", re.IGNORECASE)
# The kind of figure a question asks for, by its wording, and how a sentence states one: a
# duration, a share or change, or a sum of money. A differing figure from another document joins
# the quote only when it is of the kind asked for ("how much time" is not answered by a count of
# users). Checked in that order: "how much time" is a duration before it is anything else.
_FIGURE_KINDS = (
    (re.compile(r"\bhow (long|much time|many (seconds|minutes|hours|days|weeks|months|years))\b", re.IGNORECASE),
     re.compile(r"\d[\d,.]*\s*(seconds?|minutes?|hours?|days?|weeks?|months?|years?)\b", re.IGNORECASE)),
    (re.compile(r"\b(share|percent(age)?|proportion|grow|grew|growth|increase[ds]?|rise|rose|fall|fell|decline[ds]?|"
                r"drop(ped)?|go up|went up|go down|went down)\b", re.IGNORECASE),
     re.compile(r"\d\s*%|\d\s*percent\b", re.IGNORECASE)),
    (re.compile(r"\bhow much\b.*\b(spend|spent|cost|costs|pay|paid|earn|earned|make|made|revenue|money|budget|"
                r"invest(ed)?|worth|charge[ds]?|price)\b", re.IGNORECASE),
     re.compile(r"[$€£¥]\s*\d|\d[\d,.]*\s*(?:million |billion |thousand )?(dollars|yuan|rmb|euros?|pounds|usd)\b",
                re.IGNORECASE)),
)


def numbers_in(text: str) -> set[str]:
    """Return the figures a sentence states, normalised ("376 million", "20%")."""
    return {re.sub(r"\s+", " ", match.group().strip(" .,")).lower() for match in _NUMBER.finditer(text)}


def figure_kind(question: str) -> re.Pattern | None:
    """How a sentence states the kind of figure the question asks for (a duration, a share, a sum of
    money); None when the question does not say, or asks for a count."""
    return next((stated for asks, stated in _FIGURE_KINDS if asks.search(question)), None)


def select(question: str, scored: Sequence[Sentence], threshold: float) -> tuple[list[Sentence], bool]:
    """Pick the sentences to quote; report whether they are differing figures from several documents.

    The best sentence by merit (`quote_order`); for a how-many question, the best sentence of each
    other document giving another figure, of the kind asked for, that the reader also accepts
    (sources disagree: show each); else the best one's neighbours when rated nearly as high (a
    two-sentence answer), but for a table row. A table row comes with its header (`with_headers`).
    """
    ordered = quote_order(question, scored, threshold)
    best = ordered[0]
    floor = max(threshold, best.score - EXTRA_SENTENCE_MARGIN)
    good = [s for s in ordered[1:] if s.score >= floor]
    if _QUANTITY_QUESTION.search(question) and numbers_in(best.text):
        per_document: dict[str, Sentence] = {best.hit.document_id: best}
        figures = [numbers_in(best.text)]
        kind = figure_kind(question)
        for sentence in good:
            found = numbers_in(sentence.text)
            of_kind = kind is None or kind.search(sentence.text)
            if sentence.hit.document_id not in per_document and found and found not in figures and of_kind:
                per_document[sentence.hit.document_id] = sentence
                figures.append(found)
            if len(per_document) == MAX_SENTENCES:
                break
        if len(per_document) > 1:
            return with_headers(list(per_document.values())), True
    chosen = [best]
    # A table's rows are records of their own: the row above is not the rest of an answer.
    neighbours = [] if best.header else [s for s in good if s.header is None]
    for sentence in neighbours:
        if len(chosen) == MAX_SENTENCES:
            break
        if any(_adjacent(sentence, c) for c in chosen):
            chosen.append(sentence)
    # Quotes read in document order.
    chosen.sort(key=lambda s: s.start)
    return with_headers(chosen), False


def with_headers(chosen: Sequence[Sentence]) -> list[Sentence]:
    """The chosen sentences, each table row among them after its header row, which says what its
    cells are ("Room | Seats" above "Cedar | 20"), scored as its row."""
    quoted: list[Sentence] = []
    seen = {(s.hit.document_id, s.start) for s in chosen}
    for sentence in chosen:
        header = sentence.header
        if header is not None and (header.hit.document_id, header.start) not in seen:
            seen.add((header.hit.document_id, header.start))
            quoted.append(replace(header, score=sentence.score))
        quoted.append(sentence)
    return quoted


def merit(sentence: Sentence, question_terms: set[str]) -> float:
    """How well a read sentence answers (`mixed_merit`)."""
    return mixed_merit(sentence.score, shared_words(question_terms, sentence.reads), sentence.rank)


def mixed_merit(score: float, words: float, rank: int) -> float:
    """The reader's probability, the share of the question's words the sentence holds, and its
    passage's rank, mixed (a log-odds scale)."""
    return log_odds(score) + WORDS_WEIGHT * words - RANK_WEIGHT * rank


def quote_order(question: str, scored: Sequence[Sentence], threshold: float) -> list[Sentence]:
    """The sentences the reader accepts (at least `threshold`; else its best one), by merit, best first."""
    accepted = [s for s in scored if s.score >= threshold] or list(scored[:1])
    terms = set(keyword_terms(question))
    return sorted(accepted, key=lambda s: (-merit(s, terms), s.rank, s.start))


def _adjacent(a: Sentence, b: Sentence) -> bool:
    """Whether two sentences follow one another in one document (only whitespace between)."""
    if a.hit.document_id != b.hit.document_id:
        return False
    first, second = (a, b) if a.start < b.start else (b, a)
    gap = second.start - first.end
    return 0 <= gap <= 3


def cite(n: int, sentence: Sentence) -> Citation:
    """Make the citation of a quoted sentence, on the page and lines of the sentence itself (not of its passage)."""
    hit = sentence.hit
    return Citation(
        n=n,
        chunk_id=hit.chunk_id,
        document_id=hit.document_id,
        source=hit.source,
        title=hit.title,
        place=Place(
            hit.place.heading,
            hit.page_at(sentence.start),
            hit.line_at(sentence.start),
            hit.line_at(max(sentence.start, sentence.end - 1)),
        ),
        start=sentence.start,
        end=sentence.end,
        quote=sentence.text,
        score=round(sentence.score, 4),
    )


def rerank(
    question: str, passages: Sequence[Hit], scored: Sequence[Sentence], *, reader_weight: float = READER_WEIGHT
) -> list[Hit]:
    """Order the passages by their best sentence's merit (0 to 1) and their retrieval score, mixed."""
    terms = set(keyword_terms(question))
    best: dict[str, float] = {}
    for sentence in scored:
        value = float(1 / (1 + np.exp(-merit(sentence, terms))))
        best[sentence.hit.chunk_id] = max(best.get(sentence.hit.chunk_id, 0.0), value)
    order = sorted(
        range(len(passages)),
        key=lambda i: (-(reader_weight * best.get(passages[i].chunk_id, 0.0) + (1 - reader_weight) * passages[i].score), i),
    )
    return [passages[i] for i in order]


def clears(evidence: float, abstain_below: float) -> bool:
    """Whether the reader's best probability is enough to answer: the one test of answer-or-decline.

    `compose` declines below it, and evaluation re-scores runs at other thresholds with it.
    """
    return evidence >= abstain_below


def compose(
    question: str,
    passages: Sequence[Hit],
    *,
    reader: Scorer,
    abstain_below: float,
    candidates: int,
    unknown_names: Sequence[str] = (),
    share_holding: Callable[[str, str], float] | None = None,
    second_reader: Scorer | None = None,
    second_reads: int = 0,
    text_between: Callable[[str, int, int], str] | None = None,
) -> Answer:
    """Answer from the passages with verbatim quotes and [n] citations, or decline when the reader
    finds no sentence that answers.

    `candidates` sentences (a cheap first cut) are read; the answer is declined when the best of
    them is below `abstain_below`. `unknown_names` are names in the question that no document
    mentions: then the documents cannot be answering it. `share_holding(name, source)` (the
    keyword index's) finds the question's names each document uses throughout (`subjects`). A
    `second_reader` re-reads the reader's best `second_reads`, and the answer is decided among them.
    `text_between(document id, start, end)` (the store's) finds the header of a table a passage starts inside.
    """
    if unknown_names:
        names = ", ".join(unknown_names)
        message = f"The documents do not mention {names}. The closest passages are below."
        return Answer(question=question, answered=False, answer=message, passages=tuple(passages))
    scored = read_candidates(reader, question, passages, candidates, share_holding,
                             second=second_reader, second_reads=second_reads, text_between=text_between)
    ranked = tuple(rerank(question, passages, scored))
    evidence = scored[0].score if scored else 0.0
    if not scored or not clears(evidence, abstain_below):
        return Answer(question, answered=False, answer=NOT_ANSWERED, passages=ranked, evidence=evidence)
    chosen, differing = select(question, scored, abstain_below)
    citations = tuple(cite(n, sentence) for n, sentence in enumerate(chosen, start=1))
    parts = []
    for n, (sentence, citation) in enumerate(zip(chosen, citations)):
        if n:
            # A table's row starts a line of its own, under its header, and ends one.
            parts.append("\n" if sentence.header or chosen[n - 1].header else " ")
        parts.append(f"{citation.quote} [{citation.n}]")
    body = "".join(parts)
    if differing:
        body = "The documents give different figures: " + body
    return Answer(question, answered=True, answer=body, citations=citations, passages=ranked, evidence=evidence)
