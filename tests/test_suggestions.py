"""Starter questions come from the indexed documents themselves."""

from __future__ import annotations

from ingest.records import Document, Section
from retrieval.suggestions import candidate_questions


def document(title: str, text: str, headings: list[str]) -> Document:
    sections = []
    for heading in headings:
        start = text.index(heading)
        sections.append(Section(heading, start, len(text)))
    # Each section ends where the next begins.
    sections = [Section(s.heading, s.start, sections[i + 1].start if i + 1 < len(sections) else len(text))
                for i, s in enumerate(sections)]
    return Document(source=f"{title}.txt", title=title, text=text, sections=tuple(sections))


def test_questions_come_from_headings_in_turn_across_documents():
    handbook = document(
        "Handbook",
        "Handbook\nIntroduction\nWelcome aboard.\nTravel Expenses\nKeep your receipts for travel expenses.\n"
        "How do I get a laptop?\nAsk the IT desk.\n",
        ["Introduction", "Travel Expenses", "How do I get a laptop?"],
    )
    plan = document("Release plan", "Release plan\nThe Zephyr Launch\nThe team ships Zephyr in May.\n", ["The Zephyr Launch"])
    untitled = document("Meeting notes", "Notes from the meeting about parking.\n", [])

    questions = candidate_questions([handbook, plan, untitled])

    assert questions == [
        "What do the documents say about travel expenses?",  # generic "Introduction" skipped
        "What do the documents say about the Zephyr launch?",  # a name keeps its capital
        "What is “Meeting notes” about?",
        "How do I get a laptop?",  # a heading that is a question is asked as it is
    ]
