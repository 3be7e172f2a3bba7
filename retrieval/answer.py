"""Answers: the sentences of the top passages that answer a question, quoted verbatim and cited."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from ingest.chunking import sentence_spans
from retrieval.embedder import TokenVectors
from retrieval.records import Answer, Citation, Hit
from retrieval.keyword import STOPWORDS, keyword_terms

NOT_ANSWERED = "The documents do not say. The closest passages are below."

# How a sentence's evidence score is made: meaning, shared words, and the rank of its passage.
SEMANTIC_WEIGHT = 0.48
LEXICAL_WEIGHT = 0.28
PASSAGE_WEIGHT = 0.24
# Further sentences join the answer only when nearly as good as the best one.
EXTRA_SENTENCE_MARGIN = 0.05
# A figure from another document is shown beside the best one when the sentence itself matches
# nearly as well, whatever the rank of its passage (which may say less else about the question).
FIGURE_MARGIN = 0.3
MAX_SENTENCES = 3
# How many of the top passages may show that a question is covered (question_support).
SUPPORT_PASSAGES = 3
# Shorter fragments are headings, list items or captions: they do not answer anything alone.
MIN_SENTENCE_WORDS = 4
# A sentence of the form a question asks for (a date for "when", a name for "who") is quoted
# instead of a better scored one of another form, when it scores at most this much lower.
FORM_MARGIN = 0.15

_QUANTITY_QUESTION = re.compile(
    r"\b(how (many|much|big|large|often|long)|what (number|share|percentage|proportion|figure)|number of|"
    r"percent|figures?|statistics?)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d[\d,.]*\s*(?:%|percent|million|billion|thousand|k\b|m\b|bn\b)?", re.IGNORECASE)
# A question whose form asks for a date ("when ...", "in which year ..."), and a date in a sentence.
_DATE_QUESTION = re.compile(r"^\W*when\b|\b(what|which) (year|date|day|month)\b", re.IGNORECASE)
_MONTH = r"jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sept?(ember)?|oct(ober)?|nov(ember)?|dec(ember)?"
_DATE = re.compile(rf"\b(1[89]\d\d|20\d\d)\b|\b({_MONTH})\b", re.IGNORECASE)
# A question asking for a person, and a full name: two or more capitalised words in a row.
_PERSON_QUESTION = re.compile(r"^\W*who\b|\bby whom\b", re.IGNORECASE)
_FULL_NAME = re.compile(r"\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+)+\b")


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence of a retrieved passage, located in its document."""

    hit: Hit
    rank: int
    start: int  # offsets in the document
    end: int
    text: str
    score: float = 0.0


def candidate_sentences(passages: Sequence[Hit]) -> list[Sentence]:
    """Return every distinct sentence of the passages with its document offsets."""
    seen: set[tuple[str, int, int]] = set()
    sentences = []
    for rank, hit in enumerate(passages):
        for local_start, local_end in sentence_spans(hit.text, 0, len(hit.text)):
            key = (hit.document_id, hit.start + local_start, hit.start + local_end)
            if key in seen or len(hit.text[local_start:local_end].split()) < MIN_SENTENCE_WORDS:
                continue
            seen.add(key)
            sentences.append(Sentence(hit, rank, key[1], key[2], hit.text[local_start:local_end]))
    return sentences


def lexical_overlap(question_terms: set[str], sentence: str) -> float:
    """Return the share of the question's content words that the sentence contains (prefix-matched)."""
    if not question_terms:
        return 0.0
    words = set(keyword_terms(sentence))
    # A shared 5-letter prefix counts: "users" matches "user", "launched" matches "launch".
    stems = {word[:5] for word in words}
    hits = sum(1 for term in question_terms if term in words or term[:5] in stems)
    return hits / len(question_terms)


def score_sentences(
    question: str,
    question_vector: np.ndarray,
    sentences: Sequence[Sentence],
    sentence_vectors: np.ndarray,
    *,
    focus: str | None = None,
) -> list[Sentence]:
    """Return the sentences with their evidence scores, best first.

    `focus` is the user's own words when `question` was widened with the conversation so far:
    shared words then count half for the whole and half for the focus, so "and what about
    March?" prefers the sentence about March over the one about the earlier question's January.
    """
    if not sentences:
        return []
    semantic = sentence_vectors @ np.asarray(question_vector, dtype=np.float32).reshape(-1)
    terms = set(keyword_terms(question))
    focus_terms = set(keyword_terms(focus)) if focus and focus != question else None
    scored = []
    for sentence, similarity in zip(sentences, semantic):
        shared = lexical_overlap(terms, sentence.text)
        if focus_terms:
            shared = (shared + lexical_overlap(focus_terms, sentence.text)) / 2
        score = SEMANTIC_WEIGHT * float(similarity) + LEXICAL_WEIGHT * shared + PASSAGE_WEIGHT * sentence.hit.score
        scored.append(Sentence(sentence.hit, sentence.rank, sentence.start, sentence.end, sentence.text, score))
    scored.sort(key=lambda s: (-s.score, s.rank, s.start))
    return scored


_CONTENT_WORD = re.compile(r"\w+")


def word_support(question: str, question_tokens: TokenVectors, passage_tokens: TokenVectors) -> dict[str, float]:
    """Return how well the passage covers each content word of the question, from 0 to 1.

    A word's support is the best cosine between its wordpieces' contextual vectors and any
    token of the passage, averaged over its pieces: a passage that answers a question speaks
    of everything the question asks about, in its own words or others ("founded" and
    "launched by"), while a near miss leaves the asked-about thing ("which university") out.
    """
    if not len(passage_tokens.vectors) or not len(question_tokens.vectors):
        return {}
    best = (_unit_rows(question_tokens.vectors) @ _unit_rows(passage_tokens.vectors).T).max(axis=1)
    support: dict[str, float] = {}
    for match in _CONTENT_WORD.finditer(question):
        word = match.group().lower()
        if word in STOPWORDS or len(word) < 2:
            continue
        pieces = [i for i, (start, end) in enumerate(question_tokens.spans) if start >= match.start() and end <= match.end()]
        if pieces:
            support[word] = min(support.get(word, 1.0), float(best[pieces].mean()))
    return support


def question_support(question: str, question_tokens: TokenVectors, passage_tokens: Sequence[TokenVectors]) -> float:
    """Return how fully the best of the first few passages covers the question, from 0 to 1.

    A passage covers a question as well as it covers its least-supported word; the best of the
    first SUPPORT_PASSAGES passages counts, since the one that answers may rank second or third.
    """
    return max(
        (min(word_support(question, question_tokens, tokens).values(), default=1.0) for tokens in passage_tokens[:SUPPORT_PASSAGES]),
        default=0.0,
    )


def name_support(question: str, question_tokens: TokenVectors, sentence: Sentence, passage_tokens: TokenVectors) -> float:
    """Return how well the sentence itself covers the names in the question, from 0 to 1.

    The quoted sentence must be about what the question names: "Which cloud provider serves
    Globex?" is not answered by a sentence naming Acme's cloud provider, however well its passage
    (which mentions Globex elsewhere) covers the question. Figures are not names here; a
    question naming nothing is fully covered.
    """
    words = {word.lower() for name in names_in(question) if not name.isdigit() for word in _CONTENT_WORD.findall(name)}
    if not words:
        return 1.0
    inside = _pieces_within(sentence, passage_tokens)
    if not inside:
        return 0.0
    within = TokenVectors(tuple(passage_tokens.spans[i] for i in inside), passage_tokens.vectors[inside])
    support = word_support(question, question_tokens, within)
    return min((support[word] for word in words if word in support), default=1.0)


def _pieces_within(sentence: Sentence, passage_tokens: TokenVectors) -> list[int]:
    """Return the indices of the passage's word pieces that lie inside the sentence."""
    start, end = sentence.start - sentence.hit.start, sentence.end - sentence.hit.start
    return [i for i, (first, last) in enumerate(passage_tokens.spans) if first >= start and last <= end]


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def sentence_vectors(sentences: Sequence[Sentence], tokens: dict[str, TokenVectors]) -> np.ndarray:
    """Return each sentence's vector: its passage's token vectors over its span, mean-pooled.

    The model pools tokens the same way for a whole text, so this is the sentence read in its
    passage's context, at the cost of one pass over each passage instead of one per sentence.
    `tokens` holds the token vectors of each passage, by chunk id.
    """
    rows = []
    for sentence in sentences:
        passage = tokens[sentence.hit.chunk_id]
        inside = _pieces_within(sentence, passage)
        rows.append(passage.vectors[inside].mean(axis=0) if inside else np.zeros(passage.vectors.shape[1], np.float32))
    return _unit_rows(np.asarray(rows, dtype=np.float32))


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


def numbers_in(text: str) -> set[str]:
    """Return the figures a sentence states, normalised ("376 million", "20%")."""
    return {re.sub(r"\s+", " ", match.group().strip(" .,")).lower() for match in _NUMBER.finditer(text)}


def asks_for_date(question: str) -> bool:
    """Return whether the question's form asks for a date: "when ...", "in which year ...", "on what date ..."."""
    return _DATE_QUESTION.search(question) is not None


def gives_date(text: str) -> bool:
    """Return whether a sentence gives a date: a year, or a month by name."""
    # "may" is the month only when capitalised and not starting the sentence ("May we ...", "it may").
    return any(m.group().lower() != "may" or (m.group() == "May" and m.start() > 0) for m in _DATE.finditer(text))


def asks_for_person(question: str) -> bool:
    """Return whether the question's form asks for a person: "who ...", "by whom ..."."""
    return _PERSON_QUESTION.search(question) is not None


def gives_new_name(text: str, question: str) -> bool:
    """Return whether a sentence gives a full name (two or more capitalised words) the question does not."""
    asked = {word.lower() for word in names_in(question)}
    for match in _FULL_NAME.finditer(text):
        # "The Globex office": a capitalised article or the like opens a sentence, not a name.
        words = [word.lower() for word in re.split(r"[ -]", match.group()) if word.lower() not in STOPWORDS]
        if len(words) >= 2 and not set(words) <= asked:
            return True
    return False


def prefer_answer_form(question: str, scored: Sequence[Sentence]) -> list[Sentence]:
    """Put first the best sentence of the form the question asks for, if it scores nearly as well.

    "When did the tool go live?" is best matched by the sentence describing the tool, which gives
    no date; the one saying "it went live on January 19th" answers it. Likewise "Who founded
    the app?" is answered by a sentence naming someone ("launched by Jane Roe"), not by the best
    sentence about the app.
    """
    if asks_for_date(question):
        fits = gives_date
    elif asks_for_person(question):
        fits = partial(gives_new_name, question=question)
    else:
        return list(scored)
    if not scored or fits(scored[0].text):
        return list(scored)
    floor = scored[0].score - FORM_MARGIN
    fitting = next((s for s in scored if s.score >= floor and fits(s.text)), None)
    if fitting is None:
        return list(scored)
    return [fitting, *(s for s in scored if s is not fitting)]


def select(question: str, scored: Sequence[Sentence]) -> tuple[list[Sentence], bool]:
    """Pick the answering sentences; report whether they are differing figures from several documents."""
    best = scored[0]
    if _QUANTITY_QUESTION.search(question) and numbers_in(best.text):
        # When sources disagree on a figure, show each source's figure rather than pick one;
        # a figure counts only if its sentence names the measure as fully as the best one does.
        # Names are left out of that test: a source may call its subject "it" or "the app".
        names = {term for name in names_in(question) for term in keyword_terms(name)}
        terms = set(keyword_terms(question)) - names
        needed = lexical_overlap(terms, best.text)
        floor = _relevance(best) - FIGURE_MARGIN
        per_document: dict[str, Sentence] = {best.hit.document_id: best}
        figures = [numbers_in(best.text)]
        for sentence in scored[1:]:
            if len(per_document) == MAX_SENTENCES:
                break
            if _relevance(sentence) < floor:
                continue
            found = numbers_in(sentence.text)
            if (
                sentence.hit.document_id not in per_document
                and found
                and all(found != f for f in figures)
                and lexical_overlap(terms, sentence.text) >= needed
            ):
                per_document[sentence.hit.document_id] = sentence
                figures.append(found)
        if len(per_document) > 1:
            return list(per_document.values()), True
    chosen = [best]
    for sentence in scored[1:]:
        if sentence.score < best.score - EXTRA_SENTENCE_MARGIN or len(chosen) == MAX_SENTENCES:
            break
        chosen.append(sentence)
    return chosen, False


def _relevance(sentence: Sentence) -> float:
    """The evidence score without the passage-rank part: how well the sentence itself matches."""
    return sentence.score - PASSAGE_WEIGHT * sentence.hit.score


def cite(n: int, sentence: Sentence) -> Citation:
    """Make the citation of a quoted sentence, located to its lines in the document."""
    hit = sentence.hit
    local_start, local_end = sentence.start - hit.start, sentence.end - hit.start
    return Citation(
        n=n,
        chunk_id=hit.chunk_id,
        document_id=hit.document_id,
        source=hit.source,
        title=hit.title,
        heading=hit.heading,
        page=hit.page,
        line_start=hit.line_start + hit.text.count("\n", 0, local_start),
        line_end=hit.line_start + hit.text.count("\n", 0, max(local_start, local_end - 1)),
        start=sentence.start,
        end=sentence.end,
        quote=sentence.text,
        score=round(sentence.score, 4),
    )


def compose(
    question: str,
    passages: Sequence[Hit],
    *,
    question_vector: np.ndarray,
    question_tokens: TokenVectors,
    passage_tokens: Sequence[TokenVectors],
    abstain_below: float,
    support_below: float = 0.0,
    unknown_names: Sequence[str] = (),
    focus: str | None = None,
) -> Answer:
    """Answer from the passages with verbatim quotes and [n] citations, or abstain when evidence is weak.

    `question_tokens` and `passage_tokens` are the token vectors of the user's own question and
    of each passage, in order: sentences are scored by their pooled vectors, and when the
    passages leave a word of the question poorly supported, or the best sentence a name of it
    (`question_support`, `name_support`, below `support_below`), part of what is asked is
    missing and the answer is declined.
    `unknown_names` are names in the question that no document mentions: then the documents
    cannot be answering it, however close the passages look.
    """
    if unknown_names:
        names = ", ".join(unknown_names)
        message = f"The documents do not mention {names}. The closest passages are below."
        return Answer(question=question, answered=False, answer=message, passages=tuple(passages))
    sentences = candidate_sentences(passages)
    tokens = {hit.chunk_id: token_vectors for hit, token_vectors in zip(passages, passage_tokens)}
    vectors = sentence_vectors(sentences, tokens) if sentences else None
    scored = score_sentences(question, question_vector, sentences, vectors, focus=focus) if sentences else []
    scored = prefer_answer_form(focus or question, scored)
    evidence = scored[0].score if scored else 0.0
    support = question_support(focus or question, question_tokens, passage_tokens)
    if scored:
        # The best passages may cover the question while the sentence to quote is about another name.
        support = min(support, name_support(focus or question, question_tokens, scored[0], tokens[scored[0].hit.chunk_id]))
    if evidence < abstain_below or support < support_below:
        return Answer(
            question, answered=False, answer=NOT_ANSWERED, passages=tuple(passages), evidence=evidence, support=support
        )
    chosen, differing = select(question, scored)
    # Quotes read in document order when they come from one document.
    if not differing:
        chosen.sort(key=lambda s: (s.rank, s.start) if len({c.hit.document_id for c in chosen}) > 1 else (0, s.start))
    citations = tuple(cite(n, sentence) for n, sentence in enumerate(chosen, start=1))
    body = " ".join(f"{c.quote} [{c.n}]" for c in citations)
    if differing:
        body = "The documents give different figures: " + body
    return Answer(
        question, answered=True, answer=body, citations=citations, passages=tuple(passages), evidence=evidence, support=support
    )
