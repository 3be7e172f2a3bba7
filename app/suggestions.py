"""Starter questions for a newcomer, made from whatever documents are indexed."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from ingest.records import Document
from ingest.sentences import sentence_spans
from retrieval.reading import names_in
from retrieval.records import Answer
from retrieval.text import STOPWORDS, keyword_terms

# The words of the heading questions' template, which say nothing about the subject.
_TEMPLATE_WORDS = frozenset({"docum", "say"})

# Headings that name a part of any document rather than a subject.
_GENERIC_HEADINGS = frozenset(
    """introduction contents content summary conclusion conclusions references sources abstract notes
    appendix acknowledgements acknowledgments about background overview preface foreword index
    glossary bibliography""".split()
)


def _in_sentence(heading: str, text: str) -> str:
    """Write a heading as it would read mid-sentence: "origin and development", but "Xiaohongshu".

    A capitalised word stays capitalised only where the document treats it as a name: more often
    capitalised in mid-sentence than written in lower case.
    """

    def fold(word: str) -> str:
        if not (word[:1].isupper() and word[1:].islower()):
            return word  # "RED", "iPhone", "3D": written that way on purpose
        bare = re.escape(re.match(r"[^\W\d_]*", word).group())
        named = len(re.findall(rf"[a-z,] {bare}\b", body))
        return word if named > len(re.findall(rf"\b{bare.lower()}\b", body)) else word.lower()

    # The heading's own line would count as a mid-sentence capital; leave it out.
    body = text.replace(heading, " ")
    return " ".join(fold(word) for word in heading.split())


# What a newcomer asks about a name, and the words of a sentence that show the documents say it.
# {name} stands for the name; a question is made only where one sentence has the name before the
# cue (or, for "founded X", after it), so each is about something a document states.
_FACT_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("What is {name}?", r"^{name}(?:\s*\([^)]{{0,60}}\))?(?:,[^,]{{0,120}},)?\s+(?:is|was)\s+(?:a|an|the)\b"),
    ("Who founded {name}?", r"\b{name}\b[^.;]{{0,80}}?\b(?:co-?)?founded\b|\bfounded\s+{name}\b|\b{name}['’]s\s+(?:co-?)?founders?\b"),
    ("How many users does {name} have?",
     r"\b{name}\b[^.;]{{0,100}}?\b\d[\d,.]*\s*(?:million|billion|thousand|m|bn)?\s+(?:monthly\s+|daily\s+)?(?:active\s+)?users\b"),
    ("When was {name} launched?", r"\b{name}\b[^.;]{{0,60}}?\blaunched\b[^.;]{{0,40}}?\b(?:19|20)\d\d\b"),
    ("Where is {name} based?", r"\b{name}\b[^.;]{{0,80}}?\b(?:based|headquartered)\s+in\b"),
    ("Who owns {name}?", r"\b{name}\b[^.;]{{0,40}}?\bowned\s+by\b|\b{name}['’]s\s+(?:parent|owner)\b"),
    ("How many employees does {name} have?", r"\b{name}\b[^.;]{{0,80}}?\b\d[\d,.]*\s+(?:employees|staff)\b"),
)
# A capitalised word, or two or three in a row ("Red Note", "Apple App Store").
_CAPITALISED = re.compile(r"\b[A-Z][\w’'-]*[a-z0-9][\w’'-]*(?:\s+[A-Z][\w’'-]*[a-z0-9][\w’'-]*){0,2}\b")
_NOT_NAMES = frozenset(
    """january february march april may june july august september october november december monday tuesday
    wednesday thursday friday saturday sunday however meanwhile according although because since while""".split()
)
# A name must be written capitalised in the middle of sentences this often in the library to count.
MIN_NAME_MENTIONS = 3


def topic_names(documents: Sequence[Document]) -> Counter[str]:
    """Count the names the documents are about: written capitalised mid-sentence (runs of up to
    three words) at least MIN_NAME_MENTIONS times, and named in a title or heading.

    A place or a nationality mentioned in passing ("Hong Kong", "Chinese") is not what a newcomer
    asks about; what the titles and headings name is.
    """
    counts: Counter[str] = Counter()
    for document in documents:
        for start, end in sentence_spans(document.text):
            sentence = document.text[start:end]
            for match in _CAPITALISED.finditer(sentence):
                name = match.group()
                if match.start() == 0:
                    # Every sentence's first word is capitalised: "Today Acme" names Acme.
                    name = name.partition(" ")[2]
                    if not name:
                        continue
                name = re.sub(r"['’]s$", "", name)
                first = name.split()[0].lower()
                if first not in STOPWORDS and first not in _NOT_NAMES:
                    counts[name] += 1
    labels = " ".join([d.title for d in documents] + [s.heading for d in documents for s in d.sections]).lower()
    return Counter({
        name: n for name, n in counts.items()
        if n >= MIN_NAME_MENTIONS and re.search(rf"\b{re.escape(name.lower())}\b", labels)
    })


def fact_questions(document: Document, names: Counter[str]) -> list[str]:
    """Return questions a newcomer would ask about the library's names that this document's sentences answer.

    A sentence speaks of the first of the names it holds ("Xiaohongshu ... opened a Hong Kong office
    ... based in Hong Kong" is about Xiaohongshu). The most mentioned names first; for each, the
    questions in _FACT_QUESTIONS order.
    """
    found: set[tuple[int, int, str]] = set()
    for start, end in sentence_spans(document.text):
        sentence = document.text[start:end]
        held = [(m.start(), name) for name in names if (m := re.search(rf"\b{re.escape(name)}\b", sentence))]
        if not held:
            continue
        _, name = min(held)
        for order, (question, cue) in enumerate(_FACT_QUESTIONS):
            if re.search(cue.format(name=re.escape(name)), sentence):
                found.add((-names[name], order, question.format(name=name)))
    return [question for *_, question in sorted(found)]


def candidate_questions(documents: Sequence[Document]) -> list[str]:
    """Return starter questions, documents taken in turn: first what they state about the library's
    names ("Who founded X?"), then questions from their headings and titles."""
    names = topic_names(documents)
    facts = _in_turn([fact_questions(document, names) for document in documents])
    return facts + [q for q in _heading_questions(documents) if q not in facts]


def _heading_questions(documents: Sequence[Document]) -> list[str]:
    """Return questions drawn from the documents' headings and titles, taking documents in turn."""
    per_document: list[list[str]] = []
    for document in documents:
        questions = []
        for section in document.sections:
            heading = section.heading.strip().rstrip(":")
            if heading.lower() in _GENERIC_HEADINGS or len(heading.split()) < 2:
                continue
            if heading.endswith("?"):
                if _reads_as_a_question(heading):
                    questions.append(heading)
            else:
                questions.append(f"What do the documents say about {_in_sentence(heading, document.text)}?")
        if not questions and document.title:
            questions.append(f"What is “{document.title}” about?")
        per_document.append(questions)
    return _in_turn(per_document)


_QUESTION_WORDS = frozenset("what who whom whose when where why how which is are can could does do did should will would".split())


def _reads_as_a_question(heading: str) -> bool:
    """Whether a heading ending in "?" is a question a person would ask ("How do I get a laptop?"),
    not a heading in title case ("What's Happening Right Now?") or a run of them ("Rednote or RED?")."""
    words = heading.split()
    first = re.sub(r"['’]\w*$", "", words[0]).lower()
    later = [w for w in words[1:] if w[:1].isalpha()]
    title_case = len(later) >= 2 and sum(w[:1].isupper() for w in later) > len(later) / 2
    return heading.count("?") == 1 and len(words) >= 3 and first in _QUESTION_WORDS and not title_case


def _in_turn(per_document: Sequence[Sequence[str]]) -> list[str]:
    """Round-robin over the documents' lists, so the first suggestions cover different documents."""
    ordered: list[str] = []
    for depth in range(max((len(q) for q in per_document), default=0)):
        for questions in per_document:
            if depth < len(questions) and questions[depth] not in ordered:
                ordered.append(questions[depth])
    return ordered


def answers_about(question: str, answer: Answer) -> bool:
    """Whether `answer` answers a starter question: not declined, and its quotes name what the question
    names, so a newcomer's first click does not show a sentence about something else."""
    quoted = " ".join(citation.quote for citation in answer.citations)
    names = names_in(question)
    if names:
        return answer.answered and all(name.casefold() in quoted.casefold() for name in names)
    # No name to look for: the quote must at least share a word with what is asked about.
    asked = {term[:5] for term in keyword_terms(question)} - _TEMPLATE_WORDS
    return answer.answered and bool(asked & {term[:5] for term in keyword_terms(quoted)})
