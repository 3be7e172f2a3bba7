"""Starter questions for a newcomer, made from whatever documents are indexed."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ingest.records import Document

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


def candidate_questions(documents: Sequence[Document]) -> list[str]:
    """Return questions drawn from the documents' headings and titles, taking documents in turn."""
    per_document: list[list[str]] = []
    for document in documents:
        questions = []
        for section in document.sections:
            heading = section.heading.strip().rstrip(":")
            if heading.lower() in _GENERIC_HEADINGS or len(heading.split()) < 2:
                continue
            if heading.endswith("?"):
                questions.append(heading)
            else:
                questions.append(f"What do the documents say about {_in_sentence(heading, document.text)}?")
        if not questions and document.title:
            questions.append(f"What is “{document.title}” about?")
        per_document.append(questions)
    # Round-robin, so the first suggestions cover different documents.
    ordered: list[str] = []
    for depth in range(max((len(q) for q in per_document), default=0)):
        for questions in per_document:
            if depth < len(questions) and questions[depth] not in ordered:
                ordered.append(questions[depth])
    return ordered
