"""A citation says where its quote is: the quote's own page and lines, for every kind of file."""

from __future__ import annotations

import hashlib
import sqlite3

import docx
import pytest

from ingest.records import Page
from retrieval.records import Answer, Citation
from retrieval.store import Store
from tests.helpers import write_files
from tests.test_loaders import make_docx, make_pdf
from ui.api import AskResponse

# Page 2's first sentence answers; the document is short, so its one passage starts on page 1.
REPORT_PAGES = [
    "Quarterly report of the northern branch.\nThe committee met twice during the spring.\n"
    "It reviewed the branch budget for the year.",
    "Revenue grew by forty percent in the second quarter.\nCosts stayed where they were.",
]
REVENUE_QUESTION = "How much did revenue grow in the second quarter?"
REVENUE_SENTENCE = "Revenue grew by forty percent in the second quarter."

# One paragraph hard-wrapped over several lines: the answering sentence starts on the fourth line
# of the file and ends on the sixth, inside a passage that starts on the first.
PARKING_MD = (
    "# Parking\n"
    "\n"
    "The garage under building B opens at seven in the morning.\n"
    "Visitors may park there on weekdays, and the garage keeps forty\n"
    "spaces reserved for visitors who register\n"
    "at the front desk.\n"
)
PARKING_QUESTION = "How many spaces does the garage keep reserved for visitors who register?"


@pytest.fixture
def service(make_service, tmp_path):
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", {"report.pdf": make_pdf(REPORT_PAGES), "parking.md": PARKING_MD}))
    return service


def file_line_of(text: str, fragment: str) -> int:
    """The 1-based line of `text` on which `fragment` starts, found by reading the lines."""
    return next(number for number, line in enumerate(text.splitlines(), start=1) if fragment in line)


def test_a_quote_on_page_two_of_a_passage_from_page_one_is_cited_on_page_two(service):
    answer = service.ask(REVENUE_QUESTION)

    citation = answer.citations[0]
    assert citation.quote == REVENUE_SENTENCE
    passage = next(p for p in answer.passages if p.chunk_id == citation.chunk_id)
    assert passage.place.page == 1 and passage.start == 0  # the passage starts on page 1...
    assert citation.place.page == 2  # ...and the quote is on page 2
    document = service.document(citation.document_id)
    assert [p.number for p in document.pages] == [1, 2]
    assert document.page_at(citation.start) == 2  # what the viewer shows
    line = file_line_of(document.text, REVENUE_SENTENCE)
    assert line > passage.place.line_start
    assert (citation.place.line_start, citation.place.line_end) == (line, line)


def test_the_api_gives_the_quotes_page_and_lines(service, client):
    response = client.post("/api/ask", json={"question": REVENUE_QUESTION})

    assert response.status_code == 200
    body = AskResponse.model_validate(response.json())
    citation = body.citations[0]
    text = service.document(citation.document_id).text
    assert citation.quote == REVENUE_SENTENCE
    assert citation.page == 2
    assert citation.line_start == citation.line_end == file_line_of(text, REVENUE_SENTENCE)


def test_a_markdown_quote_is_cited_on_the_lines_of_the_file_it_spans(service, tmp_path):
    citation = service.ask(PARKING_QUESTION).citations[0]

    assert citation.quote.startswith("Visitors may park") and citation.quote.endswith("at the front desk.")
    assert citation.place.page is None
    lines = (tmp_path / "docs" / "parking.md").read_text()
    assert (citation.place.line_start, citation.place.line_end) == (
        file_line_of(lines, "Visitors may park"),
        file_line_of(lines, "at the front desk."),
    )
    assert (citation.place.line_start, citation.place.line_end) == (4, 6)


# The same paragraphs as a page and a Word file would hold them: the opening sentence, then the
# answering one with a line break ended by <br> or a soft break in each of its lines.
OPENING, *ANSWER_LINES = PARKING_MD.split("\n\n", 1)[1].splitlines()


def _docx_with_lines(document: docx.document.Document) -> None:
    document.add_heading("Parking", level=1)
    document.add_paragraph(OPENING)
    paragraph = document.add_paragraph(ANSWER_LINES[0])
    for line in ANSWER_LINES[1:]:
        paragraph.add_run().add_break()
        paragraph.add_run(line)


OTHER_FORMATS = {
    "parking.txt": PARKING_MD.removeprefix("# "),
    "parking-crlf.txt": PARKING_MD.removeprefix("# ").replace("\n", "\r\n"),
    "parking.html": f"<html><body><h1>Parking</h1><p>{OPENING}</p><p>{'<br>'.join(ANSWER_LINES)}</p></body></html>",
    "parking.docx": make_docx(_docx_with_lines),
}


@pytest.mark.parametrize("name", sorted(OTHER_FORMATS))
def test_the_quote_is_on_the_lines_its_citation_names_in_every_format(make_service, tmp_path, name):
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", {name: OTHER_FORMATS[name]}))

    citation = service.ask(PARKING_QUESTION).citations[0]

    assert citation.quote.startswith("Visitors may park"), citation.quote
    text = service.document(citation.document_id).text
    assert (citation.place.line_start, citation.place.line_end) == (
        file_line_of(text, "Visitors may park"),
        file_line_of(text, "at the front desk."),
    )
    assert citation.place.line_end > citation.place.line_start


def test_a_store_made_before_passages_kept_their_pages_gets_them_back(service):
    path = service.library.store.path
    document_id = service.ask(REVENUE_QUESTION).citations[0].document_id
    service.library.store.close()
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE chunks DROP COLUMN pages")

    store = Store(path)
    try:
        stored = store.chunks(store.chunk_rowids())
        document = store.document(document_id)
    finally:
        store.close()

    pages = [s.chunk.pages for s in stored.values() if s.chunk.document_id == document_id]
    assert pages == [(Page(1, 0, document.pages[1].start), Page(2, document.pages[1].start, len(document.text)))]
    assert all(s.chunk.pages == () for s in stored.values() if s.chunk.document_id != document_id)


# --- the text to paste ---------------------------------------------------------------------


def known_citation(**overrides) -> Citation:
    fields = dict(
        n=1, chunk_id="c1", document_id="0123456789abcdef", source="docs/report.pdf", title="Quarterly report",
        heading="Revenue", page=2, line_start=14, line_end=15, start=1200, end=1262,
        quote="Revenue grew by forty percent\nin the second quarter.", score=0.9,
    )
    return Citation.from_dict({**fields, **overrides})


def test_a_citation_reads_as_quote_title_section_page_lines_and_source():
    citation = known_citation()

    assert citation.cite() == (
        '"Revenue grew by forty percent in the second quarter." '
        "(Quarterly report, § Revenue, p. 2, lines 14–15, docs/report.pdf)"
    )
    assert citation.cite_markdown() == (
        '"Revenue grew by forty percent in the second quarter." '
        "([Quarterly report](/?doc=0123456789abcdef&start=1200&end=1262&h=ae889505), § Revenue, p. 2, lines 14–15, "
        "docs/report.pdf)"
    )


def test_a_citation_without_section_or_page_names_its_line():
    citation = known_citation(heading=None, page=None, line_start=3, line_end=3, source="docs/notes.txt", title="Notes")

    assert citation.cite() == '"Revenue grew by forty percent in the second quarter." (Notes, line 3, docs/notes.txt)'
    assert citation.cite_markdown().endswith(
        "(/?doc=0123456789abcdef&start=1200&end=1262&h=ae889505), line 3, docs/notes.txt)"
    )


def test_the_markdown_form_escapes_what_markdown_would_read_as_markup():
    citation = known_citation(
        title="Plans [draft]", heading=None, page=None, line_start=1, line_end=1, source="docs/q1_plans.md",
        quote="Ship *two* apps_now, see [here](http://x) <b>",
    )

    assert citation.cite() == '"Ship *two* apps_now, see [here](http://x) <b>" (Plans [draft], line 1, docs/q1_plans.md)'
    assert citation.cite_markdown() == (
        r'"Ship \*two\* apps\_now, see \[here\](http://x) \<b\>" '
        r"([Plans \[draft\]](/?doc=0123456789abcdef&start=1200&end=1262&h=23eb4d2c), line 1, docs/q1\_plans.md)"
    )


def test_asked_citations_carry_their_text_to_paste(service):
    pdf = service.ask(REVENUE_QUESTION).citations[0]
    parking = service.ask(PARKING_QUESTION).citations[0]

    title = service.document(pdf.document_id).title
    assert pdf.cite() == f'"{REVENUE_SENTENCE}" ({title}, p. 2, line {pdf.place.line_start}, docs/report.pdf)'
    quote = " ".join(parking.quote.split())
    assert parking.cite() == f'"{quote}" (Parking, § Parking, lines 4–6, docs/parking.md)'


def test_the_api_gives_the_texts_to_paste(service, client):
    body = client.post("/api/ask", json={"question": PARKING_QUESTION}).json()

    citation = AskResponse.model_validate(body).citations[0]
    assert citation.cite == service.ask(PARKING_QUESTION).citations[0].cite()
    assert citation.cite.endswith("(Parking, § Parking, lines 4–6, docs/parking.md)")
    link = f"(/?doc={citation.document_id}&start={citation.start}&end={citation.end}&h={citation.url[-8:]})"
    assert citation.cite_markdown.endswith(f"([Parking]{link}, § Parking, lines 4–6, docs/parking.md)")


def test_an_answer_reads_as_its_quotes_each_with_its_citation_and_survives_its_json_shape():
    first = known_citation()
    second = known_citation(n=2, quote="Costs fell.", heading=None, page=3, line_start=20, line_end=20, start=1500,
                            end=1511)
    answer = Answer("How did revenue do?", True, "Revenue grew. [1] Costs fell. [2]", (first, second))

    assert answer.cite() == f"{first.cite()}\n{second.cite()}"
    assert answer.cite_markdown(base="https://x.org") == (
        f"{first.cite_markdown(base='https://x.org')}\n\n{second.cite_markdown(base='https://x.org')}"
    )
    assert "([Quarterly report](https://x.org/?doc=0123456789abcdef&start=1500&end=1511&h=5324d720), p. 3" in (
        answer.cite_markdown(base="https://x.org")
    )
    assert Answer.from_dict(answer.to_dict()) == answer


def test_a_citation_link_carries_a_short_hash_of_its_quote():
    citation = known_citation()
    digest = hashlib.sha256("Revenue grew by forty percent\nin the second quarter.".encode()).hexdigest()

    assert citation.url == f"/?doc=0123456789abcdef&start=1200&end=1262&h={digest[:8]}"
    # Another text at the same span gives another link; the same text the same one.
    assert known_citation(quote="Revenue fell by forty percent\nin the second quarter.").url != citation.url
    assert known_citation(n=2, score=0.1).url == citation.url
