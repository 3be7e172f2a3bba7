"""Starter questions come from the indexed documents themselves."""

from __future__ import annotations

from pathlib import Path

from app.suggestions import answers_about, candidate_questions
from ingest.records import Document, Section
from retrieval.records import Answer, Citation, Place
from tests.helpers import write_files


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



def test_questions_a_newcomer_asks_come_first_made_from_what_sentences_state_about_the_names_in_titles():
    about = (
        "Acme at a glance\nAcme is a maker of garden robots. In 2009 Ida Berg and Tom Lund founded Acme. "
        "Today Acme has 40,000 monthly active users and is headquartered in Malmo, near Lund Harbour. "
        "Ida Berg spoke at Lund Harbour about Acme and its robots.\n"
    )
    plan = document("Acme release plan", "Acme release plan\nAcme launched its first robot in 2012. "
                    "The Zephyr robot follows in May.\nWhat's Happening Right Now?\nThe team is testing.\n",
                    ["What's Happening Right Now?"])

    questions = candidate_questions([document("Acme at a glance", about, []), plan])

    # What the sentences state about Acme (named in the titles), in a fixed order of kinds; not about
    # Lund Harbour or Ida Berg, mentioned in passing; a title-case heading is not asked as it is.
    assert questions[:5] == ["What is Acme?", "When was Acme launched?", "Who founded Acme?",
                             "How many users does Acme have?", "Where is Acme based?"]
    assert not any("Lund" in q or "Ida" in q or "Happening" in q for q in questions)


def test_a_starter_question_counts_as_answered_only_when_its_quote_names_what_it_asks_about():
    def answer(quote: str, answered: bool = True) -> Answer:
        citation = Citation(1, "c", "d", "d.txt", "T", Place(None, None, 1, 1), 0, len(quote), quote, 0.9)
        return Answer("q", answered, quote, (citation,))

    assert answers_about("How many users does Acme have?", answer("Acme has 40,000 monthly active users."))
    assert not answers_about("How many users does Acme have?", answer("Globex has 9 million users."))
    assert not answers_about("How many users does Acme have?", answer("Acme has 40,000 users.", answered=False))
    # A question without a name needs a word of its subject in the quote.
    assert not answers_about("What do the documents say about things that caught our attention?",
                             answer("Read about it in our note."))
    assert answers_about("What do the documents say about travel expenses?", answer("Keep receipts for travel."))


def _team_notes(folder: Path, teams: int) -> Path:
    """A library of many small documents, each with a heading the documents answer."""
    names = [f"team{n:02d}" for n in range(teams)]
    return write_files(folder, {
        f"{name}.md": f"# {name.title()} handbook\n\n## {name.title()} parking rules\n\n"
                      f"The {name} parking rules: bikes go in the {name} shed behind the office.\n"
        for name in names
    })


def _counting(service, monkeypatch) -> tuple[list[str], list[str]]:
    """Record the documents the service reads and the questions it asks."""
    read: list[str] = []
    asked: list[str] = []
    document, ask = service.document, service.ask
    monkeypatch.setattr(service, "document", lambda document_id: read.append(document_id) or document(document_id))
    monkeypatch.setattr(service, "ask", lambda question, **options: asked.append(question) or ask(question, **options))
    return read, asked


def test_starter_questions_in_a_large_library_read_a_few_documents(make_service, tmp_path, monkeypatch):
    # The fake reader's score is the share of the question's words a sentence holds: a quarter here.
    service = make_service(abstain_below=0.2)
    service.ingest(_team_notes(tmp_path / "notes", 40))
    read, asked = _counting(service, monkeypatch)

    questions = service.suggested_questions(3)

    # Round-robin over the first documents read: one question from each of three teams.
    assert questions == [f"What do the documents say about team0{n} handbook?" for n in range(3)]
    assert len(read) <= 8 and len(asked) <= 12
    # Asked again with the library unchanged: the same list, without reading or asking anything.
    assert service.suggested_questions(3) == questions and len(read) <= 8 and len(asked) <= 12


def test_the_questions_already_found_are_shown_at_once_and_none_once_the_library_changes(
    make_service, tmp_path, monkeypatch
):
    # The page draws its start screen from these first, then asks for the rest (ui/web.py, show_start).
    service = make_service(abstain_below=0.2)
    service.ingest(_team_notes(tmp_path / "notes", 4))
    read, asked = _counting(service, monkeypatch)

    assert service.known_suggestions(3) == [] and asked == []
    questions = service.suggested_questions(3)
    assert len(questions) == 3 and service.known_suggestions(3) == questions
    assert service.known_suggestions(2) == questions[:2]

    service.ingest(_team_notes(tmp_path / "more", 6))
    asks = len(asked)
    assert service.known_suggestions(3) == [] and len(asked) == asks


def test_when_nothing_is_answerable_starter_questions_stop_after_a_bounded_number_of_tries(
    make_service, tmp_path, monkeypatch
):
    # A threshold no answer reaches (no sentence holds every word of a question): every question is declined.
    service = make_service(abstain_below=1.0)
    service.ingest(_team_notes(tmp_path / "notes", 40))
    read, asked = _counting(service, monkeypatch)

    assert service.suggested_questions(3) == []
    assert len(asked) == 12 and len(read) <= 16
