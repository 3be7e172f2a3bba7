"""Reading: the readers score a question's candidate sentences, and two readers' scores become one.

The first reader (retrieval/reader.py, a small cross-encoder trained here) reads the first cut
of the passages' sentences, told each document's subject where a sentence does not name it; a
second, larger reader reads its best few again, and each of those is scored by both (`agreed`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Protocol

import numpy as np

from retrieval.candidates import Sentence, candidate_sentences, first_cut
from retrieval.reader import reader_context
from retrieval.records import Hit
from retrieval.text import STOPWORDS

# A name of the question that a document uses in at least this share of its passages is its
# subject: the reader is told so beside the document's sentences that do not name it. The
# six-layer reader all but refuses a sentence that does not repeat a name the question asks about
# ("Where does Xiaohongshu rank?" against "the app ranked seventh" under "What is RedNote": 0.05;
# with "Xiaohongshu" beside the title, 0.95), and documents call their subject "the app" or "the
# company". docs/QUALITY.md.
SUBJECT_SHARE = 0.3
# How the two readers agree (`agreed`): a weighted mean of their log-odds, the second reader (the
# larger one) weighing SECOND_READER_WEIGHT, less DOUBT_WEIGHT times how far apart they are, so
# that the one doubting more can carry more of it. Fitted on SQuAD calibration articles
# (bench.reader_weights: near misses declined with at most 5% of answerable questions declined).
# With the second reader's stage 6 it leans on it alone but for a tenth, and the doubt no longer
# adds (0.552 declined with none, 0.546 at 0.2, 0.538 at 0.5); with stage 4 it was 0.7 and 0.2
# (0.523 against 0.499 with no doubt). docs/QUALITY.md, "Weighing the two readers, again" and
# "The second reader trained longer".
SECOND_READER_WEIGHT = 0.9
DOUBT_WEIGHT = 0.0


class Scorer(Protocol):
    """What reading needs of a reader; tests provide a fake one."""

    def score(self, question: str, contexts: Sequence[str]) -> np.ndarray:
        """Return, for each context, the probability that its sentence answers the question."""
        ...


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
    text_between: Callable[[str, int, int], str] | None = None,
) -> list[Sentence]:
    """The first cut (`candidates`) of the passages' sentences, scored by the reader, best first;
    with the keyword index's `share_holding`, each document's `subjects` are told beside them.
    With a `second` reader, only the reader's best `second_reads` are kept, read again (`reread`).
    With the store's `text_between`, a passage starting inside a table finds its header above it."""
    told = subjects(question, [p.source for p in passages], share_holding) if share_holding else None
    sentences = candidate_sentences(passages, text_between)
    scored = read(reader, question, first_cut(question, sentences, candidates), told)
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
        said = " ".join((s.reads, s.previous, s.hit.title, s.hit.place.heading or "")).casefold()
        # A table row is about what its first cell names: told the document's subject as well, the
        # reader takes every row for one about it (a calendar of office closures "about Austin":
        # the Krakow row 0.83, Austin's own 0.11, for "Who is the on-call contact for Austin?").
        told = () if s.labelled else (subjects or {}).get(s.hit.source, ())
        unsaid = [name for name in told if name.casefold() not in said]
        contexts.append(reader_context(s.reads, title=s.hit.title, heading=s.hit.place.heading, previous=s.previous,
                                       subjects=unsaid))
    return contexts


def _best_first(scored: list[Sentence]) -> list[Sentence]:
    return sorted(scored, key=lambda s: (-s.score, s.rank, s.start))


_NAME = re.compile(r"\b(?:[A-Z][\w'’-]*|\w*\d\w*)")
# Capitalised, but words of a date, not names: a document may write "March 31" as "2025-03-31".
CALENDAR = frozenset(
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday".split()
)


def names_in(question: str) -> list[str]:
    """Return the words of a question that look like names: capitalised after the first word (not a
    month or a weekday), or with digits.

    A document's subjects are found among them, and the service declines a question naming one
    that no document mentions."""
    names = []
    for match in _NAME.finditer(question):
        word = re.sub(r"['’]s$", "", match.group()).strip("'’-")
        # The first word of a question is capitalised anyway ("What", "How").
        if match.start() == 0 and not any(ch.isdigit() for ch in word) and not word.isupper():
            continue
        if word.lower() not in STOPWORDS and word.lower() not in CALENDAR and word not in names:
            names.append(word)
    return names
