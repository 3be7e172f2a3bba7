"""Starter questions for a newcomer, made from whatever documents are indexed."""

from __future__ import annotations

from collections.abc import Sequence

from ingest.records import Document

# Headings that name a part of any document rather than a subject.
_GENERIC_HEADINGS = frozenset(
    """introduction contents content summary conclusion conclusions references sources abstract notes
    appendix acknowledgements acknowledgments about background overview preface foreword index
    glossary bibliography""".split()
)


def candidate_questions(documents: Sequence[Document]) -> list[str]:
    """Return questions drawn from the documents' headings and titles, taking documents in turn."""
    per_document: list[list[str]] = []
    for document in documents:
        questions = []
        for section in document.sections:
            heading = section.heading.strip().rstrip(":")
            if heading.lower() in _GENERIC_HEADINGS or len(heading.split()) < 2:
                continue
            questions.append(heading if heading.endswith("?") else f"What do the documents say about {heading}?")
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
