"""A conversation as Markdown: questions, answers, quotes with their citations and links; the same from the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from app import service as service_module
from app.export import conversation_markdown
from retrieval.records import Answer, Citation, Hit, Place
from tests.fakes import FakeEmbedder, FakeReader
from tests.helpers import write_files
from ui.cli import app

DOCS = {
    "travel.txt": "Travel\nBook flights through the travel desk at least two weeks ahead. "
    "Economy class is the default for flights under six hours.\n",
    "security.txt": "Security\nReport phishing emails to the security team with the report button.\n",
}


def passage(**overrides) -> Hit:
    fields = dict(
        chunk_id="c1", document_id="d1", source="docs/travel.txt", title="Travel *policy*", heading="Flights",
        page=None, line_start=2, line_end=3, start=7, end=120, text="Book flights early.", score=0.9,
    )
    return Hit.from_dict({**fields, **overrides})


def test_a_conversation_reads_as_questions_answers_and_linked_citations():
    hit = passage()
    cited = Citation(
        n=1, chunk_id="c1", document_id="d1", source="docs/travel.txt", title="Travel *policy*",
        place=Place("Flights", None, 2, 2), start=7, end=26, quote="Book flights early.", score=0.9,
    )
    answered = Answer("How early do I book\nflights?", True, "Book flights early. [1]", (cited,), (hit,))
    declined = Answer("Who runs the canteen?", False, "The documents do not say.", (), (hit,))

    markdown = conversation_markdown([answered, declined], base="http://docs.example:7860")

    link = "http://docs.example:7860/?doc=d1&start=7&end=26&h=4fe3b09f"
    assert markdown == (
        "# Questions to sourcebook\n\n"
        "## How early do I book flights?\n\n"
        "Book flights early. \\[1\\]\n\n"
        f'1. "Book flights early." ([Travel \\*policy\\*]({link}), § Flights, line 2, docs/travel.txt)\n\n'
        "## Who runs the canteen?\n\n"
        "*The documents do not say.*\n\n"
        "See also:\n\n"
        "- [Travel \\*policy\\*](http://docs.example:7860/?doc=d1&start=7&end=120&h=4fe3b09f), § Flights, lines 2–3, "
        "docs/travel.txt\n"
    )
    assert conversation_markdown([]) == "# Questions to sourcebook\n"


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    """A small library the CLI opens with the fake models."""
    embedder = FakeEmbedder()
    monkeypatch.setattr(service_module, "load_embedder", lambda settings: embedder)
    monkeypatch.setattr(service_module, "Reader", lambda directory, **options: FakeReader())
    monkeypatch.setenv("SOURCEBOOK_ABSTAIN_BELOW", "0.5")
    folder = write_files(tmp_path / "docs", DOCS)
    result = CliRunner().invoke(app, ["ingest", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


def test_ask_markdown_prints_what_the_page_exports(corpus):
    question = "How far ahead should flights be booked through the travel desk?"

    result = CliRunner().invoke(app, ["ask", question, "--markdown", "--link-base", "https://docs.example/"])
    answer = CliRunner().invoke(app, ["ask", question, "--json"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"# Questions to sourcebook\n\n## {question}\n\n")
    citation = Answer.from_dict(json.loads(answer.output)).citations[0]
    assert "two weeks ahead" in citation.quote
    assert f"1. {citation.cite_markdown(base='https://docs.example')}\n" in result.output
    assert f"](https://docs.example/?doc={citation.document_id}&start={citation.start}&end={citation.end}&h=" in (
        result.output
    )


def test_ask_markdown_from_stdin_is_one_document_of_every_question(corpus):
    questions = "Which class is the default for short flights?\n\nWhere do I report phishing emails?\n"

    result = CliRunner().invoke(app, ["ask", "--markdown", "-"], input=questions)

    assert result.exit_code == 0, result.output
    assert result.output.count("# Questions to sourcebook") == 1
    headings = [line for line in result.output.splitlines() if line.startswith("## ")]
    assert headings == ["## Which class is the default for short flights?", "## Where do I report phishing emails?"]
    assert "([Security](/?doc=" in result.output


def test_ask_markdown_refuses_a_link_base_that_is_not_a_web_address(corpus):
    result = CliRunner().invoke(app, ["ask", "Where do I report phishing?", "--markdown", "--link-base", "docs.example"])

    assert result.exit_code == 2
    # Typer draws the message in a box: its borders and line breaks are not part of it.
    message = " ".join(result.output.replace("│", " ").split())
    assert "must start with http:// or https://, got 'docs.example'" in message
