"""Answers: the sentences of the top passages that the reader says answer a question, quoted and cited.

Retrieval finds passages; the reader (retrieval/reader.py, a cross-encoder trained here) reads the
question beside each candidate sentence and gives the probability that it answers. The answer
declines unless the best probability clears one calibrated threshold; otherwise it quotes,
verbatim, the accepted sentence of most merit (that probability, the question's words it holds,
its passage's rank).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from ingest.sentences import sentence_spans
from retrieval.reader import reader_context
from retrieval.records import Answer, Citation, Hit, Place
from retrieval.text import STOPWORDS, keyword_terms

NOT_ANSWERED = "The documents do not say. The closest passages are below."

# Shorter fragments are headings, list items or captions: they do not answer anything alone.
MIN_SENTENCE_WORDS = 4
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
# A name of the question that a document uses in at least this share of its passages is its
# subject: the reader is told so beside the document's sentences that do not name it. The
# six-layer reader all but refuses a sentence that does not repeat a name the question asks about
# ("Where does Xiaohongshu rank?" against "the app ranked seventh" under "What is RedNote": 0.05;
# with "Xiaohongshu" beside the title, 0.95), and documents call their subject "the app" or "the
# company". docs/QUALITY.md.
SUBJECT_SHARE = 0.3
# How the passages are ordered for the answer: the merit of their best sentence (as a 0-1 figure)
# and their retrieval score, mixed. Fitted on SQuAD calibration articles (recall@1 0.914 by
# retrieval alone, 0.948 at 0.5); docs/QUALITY.md.
READER_WEIGHT = 0.5
# How the two readers agree (`agreed`): a weighted mean of their log-odds, the second reader (the
# larger one) weighing SECOND_READER_WEIGHT, less DOUBT_WEIGHT times how far apart they are, so
# that the one doubting more carries more of it (on the calibration articles, 0.72 of questions
# whose best sentence only one reader accepts are unanswerable, 0.30 where both accept). Fitted on
# SQuAD calibration articles (bench.reader_weights: near misses declined with at most 5% of
# answerable questions declined, 0.499 with no doubt, 0.523 at 0.2; the test articles 0.510 and
# 0.530 at the same 0.088 of answerable ones); docs/QUALITY.md, "Weighing the two readers" and
# "Weighing the two readers, again".
SECOND_READER_WEIGHT = 0.7
DOUBT_WEIGHT = 0.2

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


class Scorer(Protocol):
    """What answers need of the reader; tests provide a fake one."""

    def score(self, question: str, contexts: Sequence[str]) -> np.ndarray:
        """Return, for each context, the probability that its sentence answers the question."""
        ...


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence of a retrieved passage, located in its document, with the reader's score."""

    hit: Hit
    rank: int
    start: int  # offsets in the document
    end: int
    text: str
    previous: str = ""  # the sentence before it in the passage, which may say what "it" is
    score: float = 0.0


def candidate_sentences(passages: Sequence[Hit]) -> list[Sentence]:
    """Return every distinct sentence of the passages with its document offsets; a sentence that
    leads into a list of short items (`with_short_items`) takes them in."""
    seen: set[tuple[str, int, int]] = set()
    sentences = []
    for rank, hit in enumerate(passages):
        previous = ""
        for local_start, local_end in with_short_items(hit.text, sentence_spans(hit.text, 0, len(hit.text))):
            text = hit.text[local_start:local_end]
            key = (hit.document_id, hit.start + local_start, hit.start + local_end)
            if key not in seen and len(text.split()) >= MIN_SENTENCE_WORDS and not _labels(text, hit):
                seen.add(key)
                sentences.append(Sentence(hit, rank, key[1], key[2], text, previous))
            previous = text
    return sentences


def with_short_items(text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans, each one ending in a colon joined with the lines after it that are too short to
    be sentences (fewer than `MIN_SENTENCE_WORDS` words, one a line): "content at once:" with
    "Short videos" and "Photo albums" is the sentence that states them. Alone, each item would be
    dropped as a fragment and the lead-in would answer nothing."""
    joined: list[tuple[int, int]] = []
    index = 0
    while index < len(spans):
        start, end = spans[index]
        index += 1
        if text[start:end].endswith(":"):
            while index < len(spans) and _short_line(text, end, *spans[index]):
                end = spans[index][1]
                index += 1
        joined.append((start, end))
    return joined


def _short_line(text: str, after: int, start: int, end: int) -> bool:
    """Whether text[start:end] is a line of its own, right after `after`, too short to be a sentence."""
    own_line = "\n" in text[after:start] and "\n" not in text[start:end]
    return own_line and len(text[start:end].split()) < MIN_SENTENCE_WORDS


def _labels(text: str, hit: Hit) -> bool:
    """Whether a line only restates the document's title or its section's heading: it names a subject, answers nothing."""
    line = " ".join(text.split()).casefold()
    return any(label and line == " ".join(label.split()).casefold() for label in (hit.title, hit.place.heading))


def shared_words(question_terms: set[str], sentence: str) -> float:
    """Return the share of the question's content words that the sentence contains (prefix-matched)."""
    if not question_terms:
        return 0.0
    # A shared 5-letter prefix counts: "users" matches "user", "launched" matches "launch".
    stems = {word[:5] for word in keyword_terms(sentence)}
    return sum(1 for term in question_terms if term[:5] in stems) / len(question_terms)


def first_cut(question: str, sentences: Sequence[Sentence], limit: int) -> list[Sentence]:
    """The `limit` sentences the reader should see: those sharing most words with the question,
    then from the best passages. Cheap, so the reader's pass stays short (README, "Speed")."""
    terms = set(keyword_terms(question))
    ranked = sorted(sentences, key=lambda s: (-(shared_words(terms, s.text) + s.hit.score), s.rank, s.start))
    return ranked[:limit]


def subjects(question: str, sources: Sequence[str], share_holding: Callable[[str, str], float]) -> dict[str, list[str]]:
    """The names of the question (not figures) that each source uses throughout (`SUBJECT_SHARE`)."""
    names = [name for name in names_in(question) if not any(ch.isdigit() for ch in name)]
    return {
        source: [name for name in names if share_holding(name, source) >= SUBJECT_SHARE]
        for source in dict.fromkeys(sources)
    }


def read_candidates(
    reader: Scorer, question: str, passages: Sequence[Hit], candidates: int,
    share_holding: Callable[[str, str], float] | None = None,
    *, second: Scorer | None = None, second_reads: int = 0,
) -> list[Sentence]:
    """The first cut (`candidates`) of the passages' sentences, scored by the reader, best first;
    with the keyword index's `share_holding`, each document's `subjects` are told beside them.
    With a `second` reader, only the reader's best `second_reads` are kept, read again (`reread`)."""
    told = subjects(question, [p.source for p in passages], share_holding) if share_holding else None
    scored = read(reader, question, first_cut(question, candidate_sentences(passages), candidates), told)
    if second is None or second_reads <= 0:
        return scored
    return reread(second, question, scored[:second_reads])


def read(
    reader: Scorer, question: str, sentences: Sequence[Sentence], subjects: Mapping[str, Sequence[str]] | None = None
) -> list[Sentence]:
    """Score the sentences with the reader; best first. A sentence whose context does not name its
    document's `subjects` is read with them beside its title."""
    scores = reader.score(question, _contexts(sentences, subjects)) if sentences else []
    return _best_first([replace(s, score=float(p)) for s, p in zip(sentences, scores)])


def reread(second: Scorer, question: str, sentences: Sequence[Sentence]) -> list[Sentence]:
    """The first reader's scored sentences read again by the second, each scored by both (`agreed`); best first.

    The second reader is not told the documents' subjects: it reads "the app" for the name without
    the hint, and with it accepts sentences about the subject that miss the fact asked for (of the
    default corpus, "How many followers does Terri have on TikTok?", which no document answers:
    0.95 for a sentence of the TikTok article told "TikTok", 0.57 not told; it is still answered
    with another sentence on her followers). Calibration articles'
    AUC 0.831 without against 0.829 with (docs/QUALITY.md, "Weighing the two readers").
    """
    scores = second.score(question, _contexts(sentences, None)) if sentences else []
    return _best_first([replace(s, score=agreed(s.score, float(p))) for s, p in zip(sentences, scores)])


def agreed(first: float, second: float, *, weight: float = SECOND_READER_WEIGHT, doubt: float = DOUBT_WEIGHT) -> float:
    """Two readers' probabilities as one: their log-odds' mean, the second weighing `weight`, less
    `doubt` times the distance between them, as a probability."""
    a, b = log_odds(first, 1e-6), log_odds(second, 1e-6)
    return 1 / (1 + math.exp(-((1 - weight) * a + weight * b - doubt * abs(a - b))))


def log_odds(p: float, floor: float = 1e-4) -> float:
    """The probability as log odds, kept finite at 0 and 1 (`p` held within `floor` of them)."""
    p = min(max(p, floor), 1 - floor)
    return math.log(p / (1 - p))


def _contexts(sentences: Sequence[Sentence], subjects: Mapping[str, Sequence[str]] | None) -> list[str]:
    """What the reader reads beside each sentence (`reader_context`), with the `subjects` its context does not name."""
    contexts = []
    for s in sentences:
        said = " ".join((s.text, s.previous, s.hit.title, s.hit.place.heading or "")).casefold()
        unsaid = [name for name in (subjects or {}).get(s.hit.source, ()) if name.casefold() not in said]
        contexts.append(reader_context(s.text, title=s.hit.title, heading=s.hit.place.heading, previous=s.previous,
                                       subjects=unsaid))
    return contexts


def _best_first(scored: list[Sentence]) -> list[Sentence]:
    return sorted(scored, key=lambda s: (-s.score, s.rank, s.start))


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
    two-sentence answer).
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
            return list(per_document.values()), True
    chosen = [best]
    for sentence in good:
        if len(chosen) == MAX_SENTENCES:
            break
        if any(_adjacent(sentence, c) for c in chosen):
            chosen.append(sentence)
    # Quotes read in document order.
    chosen.sort(key=lambda s: s.start)
    return chosen, False


def merit(sentence: Sentence, question_terms: set[str]) -> float:
    """How well a read sentence answers (`mixed_merit`)."""
    return mixed_merit(sentence.score, shared_words(question_terms, sentence.text), sentence.rank)


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
) -> Answer:
    """Answer from the passages with verbatim quotes and [n] citations, or decline when the reader
    finds no sentence that answers.

    `candidates` sentences (a cheap first cut) are read; the answer is declined when the best of
    them is below `abstain_below`. `unknown_names` are names in the question that no document
    mentions: then the documents cannot be answering it. `share_holding(name, source)` (the
    keyword index's) finds the question's names each document uses throughout (`subjects`). A
    `second_reader` re-reads the reader's best `second_reads`, and the answer is decided among them.
    """
    if unknown_names:
        names = ", ".join(unknown_names)
        message = f"The documents do not mention {names}. The closest passages are below."
        return Answer(question=question, answered=False, answer=message, passages=tuple(passages))
    scored = read_candidates(reader, question, passages, candidates, share_holding,
                             second=second_reader, second_reads=second_reads)
    ranked = tuple(rerank(question, passages, scored))
    evidence = scored[0].score if scored else 0.0
    if not scored or not clears(evidence, abstain_below):
        return Answer(question, answered=False, answer=NOT_ANSWERED, passages=ranked, evidence=evidence)
    chosen, differing = select(question, scored, abstain_below)
    citations = tuple(cite(n, sentence) for n, sentence in enumerate(chosen, start=1))
    body = " ".join(f"{c.quote} [{c.n}]" for c in citations)
    if differing:
        body = "The documents give different figures: " + body
    return Answer(question, answered=True, answer=body, citations=citations, passages=ranked, evidence=evidence)


_NAME = re.compile(r"\b(?:[A-Z][\w'’-]*|\w*\d\w*)")


def names_in(question: str) -> list[str]:
    """Return the words of a question that look like names: capitalised after the first word, or with digits."""
    names = []
    for match in _NAME.finditer(question):
        word = re.sub(r"['’]s$", "", match.group()).strip("'’-")
        # The first word of a question is capitalised anyway ("What", "How").
        if match.start() == 0 and not any(ch.isdigit() for ch in word) and not word.isupper():
            continue
        if word.lower() not in STOPWORDS and word not in names:
            names.append(word)
    return names
