"""Answers quote the answering sentence verbatim, cite where it is, and abstain when unsupported."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from retrieval.answer import NOT_ANSWERED, cite, figure_kind, numbers_in, quote_order, rerank, select
from retrieval.candidates import Sentence, asks, candidate_sentences, first_cut
from retrieval.reading import SUBJECT_SHARE, agreed, names_in, subjects
from app.service import Sourcebook
from ingest.sentences import sentence_spans
from retrieval.records import Hit, Place
from retrieval.settings import ABSTAIN_BELOW, Settings
from tests.fakes import FakeReader
from tests.helpers import write_files


def _hit(text: str, *, chunk: str = "c", document: str = "d", score: float = 0.0, heading: str | None = None,
         start: int = 0) -> Hit:
    return Hit(chunk, document, f"{document}.txt", "Handbook", Place(heading, None, 1, 1), start, start + len(text), text,
               score)


def _sentence(hit: Hit, text: str, score: float) -> Sentence:
    start = hit.text.index(text)
    return Sentence(hit, 0, hit.start + start, hit.start + start + len(text), text, score=score)


HANDBOOK = {
    "leave.txt": "Paid leave\nEvery employee receives twenty-five days of paid leave per calendar year. "
    "Unused leave days expire at the end of March.\n",
    "laptops.txt": "Equipment\nNew starters receive a laptop on their first morning. "
    "Laptops are replaced every three years by the IT desk.\n",
    "parking.md": "# Parking\n\nThe garage under building B has forty parking spaces for visitors.\n",
}


@pytest.fixture
def service(make_service, tmp_path):
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", HANDBOOK))
    return service


def test_the_answer_quotes_the_sentence_that_answers(service):
    answer = service.ask("How many days of paid leave does an employee receive per year?")

    assert answer.answered
    assert "twenty-five days of paid leave" in answer.answer
    assert answer.citations[0].source == "docs/leave.txt"
    assert "[1]" in answer.answer


def test_every_quote_is_the_document_text_at_its_span(service):
    for question in ["When do unused leave days expire?", "How often are laptops replaced?", "visitor parking spaces"]:
        answer = service.ask(question)
        assert answer.citations, question
        for citation in answer.citations:
            document = service.document(citation.document_id)
            assert document.text[citation.start : citation.end] == citation.quote
            assert citation.quote in answer.answer
            assert document.line_at(citation.start) == citation.place.line_start
            assert document.line_at(citation.end - 1) == citation.place.line_end


def test_citations_carry_title_heading_and_source(service):
    citation = service.ask("How many parking spaces are there for visitors in the garage?").citations[0]

    assert (citation.source, citation.title, citation.place.heading) == ("docs/parking.md", "Parking", "Parking")
    assert citation.place.line_start == citation.place.line_end == 3


def test_an_unrelated_question_is_declined_with_passages_to_see(service):
    answer = service.ask("Which quantum chromodynamics lattice simulation converged?")

    assert not answer.answered
    assert answer.answer == NOT_ANSWERED
    assert answer.citations == ()
    assert answer.passages  # the closest passages, offered as "see also"


def test_a_question_naming_something_no_document_mentions_is_declined(service):
    answer = service.ask("How many days of paid leave do employees in Brazil receive?")

    assert not answer.answered
    assert "Brazil" in answer.answer


def test_differing_figures_from_two_documents_are_both_shown(make_service, tmp_path):
    service = make_service()
    service.ingest(
        write_files(
            tmp_path / "docs",
            {
                "report-a.txt": "Users\nThe app had 225 million monthly active users at the end of 2024.\n",
                "report-b.txt": "Audience\nThe app counted 376 million monthly active users in late 2024.\n",
                "other.txt": "Office\nThe office moved to a new building in the spring.\n",
            },
        )
    )

    answer = service.ask("How many monthly active users does the app have?")

    assert answer.answered
    assert answer.answer.startswith("The documents give different figures")
    assert {c.source for c in answer.citations} == {"docs/report-a.txt", "docs/report-b.txt"}
    assert "225 million" in answer.answer and "376 million" in answer.answer


def test_markers_number_the_citations_in_order(service):
    answer = service.ask("paid leave days per calendar year expire")

    assert [int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)] == [c.n for c in answer.citations]
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))


def test_names_are_the_capitalised_and_numeric_words_of_a_question():
    assert names_in("Is RedNote available in India, and how many users?") == ["RedNote", "India"]
    assert names_in("What did Xiaohongshu’s team do in 2024?") == ["Xiaohongshu", "2024"]
    # A month or a weekday is a date's word; a document may write the date in figures.
    assert names_in("Which licence renews at the end of March, on a Friday?") == []
    assert names_in("how many users are there?") == []


def test_numbers_are_read_with_their_units():
    assert numbers_in("It had 225 million users, up 30.5% from 172 million.") == {"225 million", "30.5%", "172 million"}


def test_the_citation_score_is_the_readers_probability(service, reader):
    answer = service.ask("How often are laptops replaced by the IT desk?")

    assert answer.answered
    quote = answer.citations[0].quote
    assert quote == "Laptops are replaced every three years by the IT desk."
    read = dict((context.split(" [SEP] ")[0], None) for _, context in reader.read)
    assert quote in read
    assert answer.citations[0].score == pytest.approx(float(reader.score("How often are laptops replaced by the IT desk?", [quote])[0]), abs=1e-4)
    assert answer.evidence == pytest.approx(answer.citations[0].score, abs=1e-4)


def test_the_reader_reads_each_sentence_with_its_title_section_and_the_sentence_before(service, reader):
    service.ask("When do unused leave days expire?")

    contexts = [context for _, context in reader.read]
    expected = (
        "Unused leave days expire at the end of March. [SEP] Paid leave. "
        "Every employee receives twenty-five days of paid leave per calendar year."
    )
    assert expected in contexts


def test_a_documents_subject_the_question_names_is_told_beside_the_sentences_that_do_not_name_it(
    make_service, reader, tmp_path
):
    text = ("About us\nAcme makes hand tools for carpenters. "
            "Acme was started by two smiths in Leeds. Its workshop has forty benches and a forge. "
            "The company opened an office in Berlin in March 2019.\n")

    contexts = _contexts_read(make_service(), reader, tmp_path, {"about.txt": text}, "When did Acme open an office abroad?")

    assert contexts["The company opened an office in Berlin in March 2019."].startswith("About us (Acme).")
    # A sentence naming it, or after one that does, is read as it stands.
    assert contexts["Acme was started by two smiths in Leeds."].startswith("About us. ")
    assert contexts["Its workshop has forty benches and a forge."].startswith("About us. ")


def test_a_table_row_is_not_told_its_documents_subject(make_service, reader, tmp_path):
    text = ("# Closures\n\nEvery office closes on its own holiday.\n\n"
            "| Office | Holiday |\n|---|---|\n| Krakow | Constitution Day |\n| Austin | Thanksgiving |\n")

    contexts = _contexts_read(make_service(), reader, tmp_path, {"closures.md": text}, "Which holiday closes Austin?")

    # Austin is the document's subject (named in its one passage), but the Krakow row is about Krakow.
    assert contexts["Krakow — Holiday Constitution Day"].startswith("Closures. ")


def _contexts_read(service: Sourcebook, reader, tmp_path, files: dict[str, str], question: str) -> dict[str, str]:
    """Ingest the files, ask the question; what the (fake) reader read beside each sentence it read."""
    service.ingest(write_files(tmp_path / "docs", files))
    service.ask(question)
    return {context.split(" [SEP] ")[0]: context.split(" [SEP] ")[1] for _, context in reader.read}


def test_a_subject_is_a_name_of_the_question_its_document_uses_throughout():
    shares = {("Acme", "about.txt"): SUBJECT_SHARE, ("Berlin", "about.txt"): 0.1, ("Acme", "news.txt"): 0.1}

    found = subjects("Did Acme open in Berlin in 2019?", ["about.txt", "news.txt", "about.txt"],
                     lambda word, source: shares.get((word, source), 1.0))

    # A figure is never a subject (a missing year means another fact).
    assert found == {"about.txt": ["Acme"], "news.txt": ["Berlin"]}


def test_the_reader_reads_only_the_first_cut_of_sentences(make_service, reader, tmp_path):
    sentences = [f"Filler sentence number {i} talks about nothing in particular here." for i in range(30)]
    text = "Notes\n" + " ".join(sentences[:15]) + " The canteen opens at noon on weekdays. " + " ".join(sentences[15:])
    service = make_service(reader_candidates=4)
    service.ingest(write_files(tmp_path / "docs", {"notes.txt": text}))

    answer = service.ask("When does the canteen open on weekdays?")

    assert len(reader.read) <= 4
    assert answer.answered and answer.citations[0].quote == "The canteen opens at noon on weekdays."


class _SecondReader:
    """A second reader that doubts sentences holding `doubted` (0.05) and accepts the rest (0.9)."""

    def __init__(self, doubted: str) -> None:
        self.doubted = doubted
        self.read: list[str] = []
        self.contexts: list[str] = []

    def score(self, question, contexts):
        self.contexts.extend(contexts)
        self.read.extend(context.split(" [SEP] ")[0] for context in contexts)
        return np.array([0.05 if self.doubted in c.split(" [SEP] ")[0] else 0.9 for c in contexts], dtype=np.float32)


def test_two_readers_agree_on_a_weighted_mean_of_their_log_odds():
    assert agreed(0.8, 0.8) == pytest.approx(0.8)
    # Odds 1 and 9: served, 9 to the power SECOND_READER_WEIGHT (0.9), no doubt (DOUBT_WEIGHT 0).
    assert agreed(0.5, 0.9) == pytest.approx(9**0.9 / (1 + 9**0.9))
    # The other way round: the first reader's odds of 9 count a tenth.
    assert agreed(0.9, 0.5) == pytest.approx(9**0.1 / (1 + 9**0.1))
    assert agreed(0.1, 0.9) > 0.5 > agreed(0.9, 0.1)  # the second reader carries it
    assert agreed(1.0, 0.0) == pytest.approx(1 / (1 + 1e6**0.8))  # certain either way: no overflow


def test_with_a_doubt_the_reader_that_doubts_carries_more():
    # Odds 1 and 9 at weight 0.7: 9 to the 0.7, less 0.2 of the distance between them (9 to the 1):
    # odds of 3.
    assert agreed(0.5, 0.9, weight=0.7, doubt=0.2) == pytest.approx(0.75)
    # The other way round the second reader doubts, and weighs more: odds of 9 to the 0.1.
    assert agreed(0.9, 0.5, weight=0.7, doubt=0.2) == pytest.approx(9**0.1 / (1 + 9**0.1))
    # Opposed by as much, neither carries it: the second reader's accept comes to even odds.
    assert agreed(0.1, 0.9, weight=0.7, doubt=0.2) == pytest.approx(0.5)
    assert agreed(0.9, 0.1, weight=0.7, doubt=0.2) < 0.5


def test_the_second_reader_rereads_only_the_first_readers_best_sentences(settings, embedder, tmp_path):
    first, second = FakeReader(), _SecondReader(doubted="New starters")
    service = Sourcebook(Settings(**{**settings.model_dump(), "second_reads": 2}), embedder=embedder,
                         reader=first, second_reader=second)
    service.ingest(write_files(tmp_path / "docs", HANDBOOK))

    answer = service.ask("How often are laptops replaced by the IT desk?")

    best_two = sorted(first.read, key=lambda read: -float(first.score(*read)[0]))[:2]
    assert sorted(second.read) == sorted(context.split(" [SEP] ")[0] for _, context in best_two)
    citation = answer.citations[0]
    assert citation.quote == "Laptops are replaced every three years by the IT desk."
    # The citation's score is the two readers' agreed probability.
    question = "How often are laptops replaced by the IT desk?"
    assert citation.score == pytest.approx(agreed(float(first.score(question, [citation.quote])[0]), 0.9), abs=1e-4)


def test_only_the_first_reader_is_told_a_documents_subject(settings, embedder, tmp_path):
    text = ("About us\nAcme makes hand tools for carpenters. "
            "Acme was started by two smiths in Leeds. Its workshop has forty benches and a forge. "
            "The company opened an office in Berlin in March 2019.\n")
    first, second = FakeReader(), _SecondReader(doubted="nothing")
    service = Sourcebook(Settings(**{**settings.model_dump(), "second_reads": 12}), embedder=embedder,
                         reader=first, second_reader=second)
    service.ingest(write_files(tmp_path / "docs", {"about.txt": text}))

    service.ask("When did Acme open an office abroad?")

    sentence = "The company opened an office in Berlin in March 2019."
    # Both read the sentence before it; only the first is told the subject.
    assert (sentence + " [SEP] About us (Acme). Its workshop has forty benches and a forge.") in [
        context for _, context in first.read]
    assert sentence + " [SEP] About us. Its workshop has forty benches and a forge." in second.contexts


def test_the_second_reader_can_overrule_the_first(settings, embedder, tmp_path):
    question = "How often are laptops replaced by the IT desk?"
    alone = Sourcebook(settings, embedder=embedder, reader=FakeReader())
    alone.ingest(write_files(tmp_path / "docs", HANDBOOK))
    assert alone.ask(question).answered

    doubting = Sourcebook(settings, embedder=embedder, reader=FakeReader(), second_reader=_SecondReader(doubted=""))
    answer = doubting.ask(question)

    # The first reader's best (three of its four words shared, 0.75) doubted by the second: declined.
    assert not answer.answered
    assert answer.evidence == pytest.approx(agreed(0.75, 0.05), abs=1e-4)


def test_the_threshold_unless_set_is_the_one_calibrated_for_the_readers_in_use(monkeypatch, tmp_path):
    assert Settings(index_dir=tmp_path).abstain_below == ABSTAIN_BELOW["with the second reader"]
    assert Settings(index_dir=tmp_path, second_reads=0).abstain_below == ABSTAIN_BELOW["first reader alone"]
    monkeypatch.setenv("SOURCEBOOK_SECOND_READS", "0")
    assert Settings(index_dir=tmp_path).abstain_below == ABSTAIN_BELOW["first reader alone"]
    assert Settings(index_dir=tmp_path, abstain_below=0.9).abstain_below == 0.9


def test_a_reader_given_without_a_second_reads_alone(make_service, reader, tmp_path):
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", HANDBOOK))
    assert service.second_reader is None

    answer = service.ask("How often are laptops replaced by the IT desk?")

    # Its own probability decides: nothing re-read, no agreed score.
    question = "How often are laptops replaced by the IT desk?"
    assert answer.evidence == pytest.approx(float(reader.score(question, [answer.citations[0].quote])[0]), abs=1e-4)


def test_first_cut_keeps_the_sentences_sharing_most_words_with_the_question():
    hit = _hit("The garage has forty spaces. Lunch is served at noon. Visitors park in the garage for free.")
    sentences = candidate_sentences([hit])

    kept = first_cut("Where do visitors park?", sentences, 1)

    assert [s.text for s in kept] == ["Visitors park in the garage for free."]


def test_a_line_restating_the_title_or_heading_is_not_a_sentence_to_quote():
    text = "Rules for visitor parking\nParking for visitors of the office\nVisitors park in the garage for free."
    place = Place("Parking for visitors of the office", None, 1, 3)
    hit = Hit("c", "d", "d.txt", "Rules for visitor parking", place, 0, len(text), text, 0.0)

    assert [s.text for s in candidate_sentences([hit])] == ["Visitors park in the garage for free."]


def test_a_sentence_that_asks_a_question_is_not_a_sentence_to_quote():
    text = ("Still, we had questions. When was the app renamed? “Wasn’t it called RED abroad?” "
            "The app was renamed in June. If it shuts down, the question arises: where will its users go?")

    assert [s.text for s in candidate_sentences([_hit(text)])] == [
        "Still, we had questions.", "The app was renamed in June.",
        # It opens with no question word: a statement that ends by asking, kept.
        "If it shuts down, the question arises: where will its users go?",
    ]
    assert asks("How do I reset my password?") and asks("(Who approves travel expenses?)")
    assert not asks("Howard approves travel expenses?") and not asks("Who approves travel expenses.")


def test_an_faq_is_answered_by_its_answer_not_by_its_question(make_service, tmp_path):
    faq = {"faq.md": "# Onboarding FAQ\n\n## How long is the probation period?\n\n"
                     "The probation period lasts six months, with a review at the end of the third month.\n\n"
                     "## Where are the coding standards?\n\nThe coding standards are kept in the engineering wiki.\n",
           "faq.txt": "Team questions\n\nWho approves travel expenses for the team?\n"
                      "Travel expenses are approved by your team lead, up to 500 euros.\n"}
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", faq))

    for question, answer in [("How long is the probation period?", "The probation period lasts six months"),
                             ("Who approves travel expenses for the team?", "Travel expenses are approved")]:
        quotes = [c.quote for c in service.ask(question).citations]
        # The heading's own line ("## How long ...?"), which shares every word, is never quoted.
        assert quotes and quotes[0].startswith(answer) and not any("?" in q for q in quotes), (question, quotes)


def test_a_table_row_is_read_with_its_headers_labels_and_the_header_is_no_candidate():
    markdown = ("## Ports\n\n| service | port |\n|---|---|\n| web page | 7860 |\n| database | 5432 |\n\n"
                "The web page listens on port 7860 unless you set PORT.")
    # As the HTML and Word loaders write a table: cells between " | ", a row a paragraph.
    html = "Each room can be booked.\n\nRoom | Floor | Seats\n\nAmber | 2 | 8\n\nCedar | 5\n\nBirch | 3 | 12"

    rows = [(s.text, s.labelled, s.header.text if s.header else None, s.previous)
            for s in candidate_sentences([_hit(markdown)]) if s.labelled]
    assert rows == [("| web page | 7860 |", "web page — port 7860", "| service | port |", "## Ports"),
                    ("| database | 5432 |", "database — port 5432", "| service | port |", "## Ports")]
    sentences = candidate_sentences([_hit(html)])
    assert [(s.text, s.labelled) for s in sentences] == [
        ("Each room can be booked.", ""), ("Amber | 2 | 8", "Amber — Floor 2, Seats 8"),
        # A row with a cell fewer (an empty one the loader left out) is read as it stands: here as
        # too short to be a sentence. The rows after it are still the table's.
        ("Birch | 3 | 12", "Birch — Floor 3, Seats 12"),
    ]
    header = sentences[1].header
    assert html[header.start : header.end] == header.text == "Room | Floor | Seats"
    assert sentences[1].reads == "Amber — Floor 2, Seats 8" and sentences[0].reads == "Each room can be booked."
    # A Markdown cell may hold an escaped "|".
    escaped = "Operators:\n\n| operator | meaning |\n|---|---|\n| a \\| b | either one |\n"
    assert [s.labelled for s in candidate_sentences([_hit(escaped)]) if s.labelled] == ["a \\| b — meaning either one"]


def test_a_dot_inside_a_cell_does_not_cut_its_row_in_two():
    # "c. 1475" and "Closed. Reopens" end no sentence inside a row: cut there, the row was no row,
    # and a Markdown table whose first row was cut read no row at all.
    markdown = "Exhibits.\n\n| Exhibit | Made | Case |\n|---|---|---|\n| The Vase | c. 1475 | 18 |\n| The Map | 1620 | 3 |\n"
    html = "Opening hours.\n\nOffice | Saturday | Sunday\n\nLeeds | Closed. Reopens Monday | 10:00\n\nCork | 9:00 | 11:00"

    assert [s.labelled for s in candidate_sentences([_hit(markdown)]) if s.labelled] == [
        "The Vase — Made c. 1475, Case 18", "The Map — Made 1620, Case 3"]
    assert [s.labelled for s in candidate_sentences([_hit(html)]) if s.labelled] == [
        "Leeds — Saturday Closed. Reopens Monday, Sunday 10:00", "Cork — Saturday 9:00, Sunday 11:00"]
    # A two-column table, as the loaders write a key beside its value.
    pairs = "Site facts.\n\nItem | Value\n\nLeeds office | Closed. Reopens Monday\n\nCork office | Open daily"
    assert [s.labelled for s in candidate_sentences([_hit(pairs)]) if s.labelled] == [
        "Leeds office — Value Closed. Reopens Monday", "Cork office — Value Open daily"]
    # Prose with a "|" in it is still cut into its sentences.
    prose = "The filter reads a | b as either. Its output goes to c | d for sorting."
    assert [prose[a:b] for a, b in sentence_spans(prose)] == [
        "The filter reads a | b as either.", "Its output goes to c | d for sorting."]


def test_rows_are_read_as_they_stand_when_their_header_is_not_known():
    # The passage may start inside a table; a row of figures heads nothing; a "|" in prose is no cell.
    inside = "Amber | 2 | 8\nBirch | 3 | 12\nCedar | 5 | 20"
    figures = "Sales by year.\n2023 | 2024 | 2025\n10 | 12 | 15\n11 | 13 | 16"
    prose = "The filter reads a | b as either. Its output goes to c | d for sorting."

    for text in (inside, figures, prose):
        assert not any(s.labelled or s.header for s in candidate_sentences([_hit(text, start=40)])), text
    # Rows of a table whose header is not known, then a Markdown table right under them: that
    # one's header is its first line above the "|---|".
    stacked = "Amber | 2 | 8\nBirch | 3 | 12\n| Room | Seats |\n|---|---|\n| Cedar | 20 |"
    assert [s.labelled for s in candidate_sentences([_hit(stacked, start=40)]) if s.labelled] == ["Cedar — Seats 20"]


def test_a_passage_starting_inside_a_table_finds_its_header_above_it():
    document = ("# Closures\n\nOffices close on these days.\n\n| Office | Closed from |\n|---|---|\n"
                "| Lisbon | 25 April |\n| Dublin | 4 August |\n| Austin | 27 November |\n")
    start = document.index("| Dublin")
    hit = Hit("c2", "d", "d.md", "Closures", Place("Closures", None, 8, 9), start, len(document), document[start:], 0.0)

    def text_between(document_id: str, begin: int, end: int) -> str:
        assert document_id == "d"
        return document[max(0, begin) : end]

    dublin, austin = candidate_sentences([hit], text_between)

    assert (dublin.labelled, austin.labelled) == ("Dublin — Closed from 4 August", "Austin — Closed from 27 November")
    header = dublin.header
    assert document[header.start : header.end] == header.text == "| Office | Closed from |"
    # Cited where it is: line 5 of the document, above the passage's first line.
    assert cite(1, header).place.line_start == 5 and cite(1, dublin).place.line_start == 8
    # Without the store, the rows are read as they stand.
    assert not any(s.labelled for s in candidate_sentences([hit]))


def test_a_passage_deep_inside_a_long_table_finds_its_header_however_far_above():
    rows = "".join(f"| Part {n:03d} | Shelf {n} |\n" for n in range(400))  # some 9,000 characters of rows
    document = "# Parts\n\nWhere each part is kept.\n\n| Part | Shelf |\n|---|---|\n" + rows
    start = document.index("| Part 390 |")
    hit = Hit("c9", "d", "d.md", "Parts", Place("Parts", None, 396, 405), start, len(document), document[start:], 0.0)
    reads = []

    def text_between(document_id: str, begin: int, end: int) -> str:
        reads.append(end - begin)
        return document[max(0, begin) : end]

    first = candidate_sentences([hit], text_between)[0]

    assert first.labelled == "Part 390 — Shelf Shelf 390" and first.header.text == "| Part | Shelf |"
    # The nearest 4,000 characters were all rows, so it read further, once.
    assert reads == [4_000, 32_000]


def test_a_quoted_table_row_comes_after_its_header_and_takes_no_neighbouring_row():
    html = "Each room can be booked.\n\nRoom | Floor | Seats\n\nAmber | 2 | 8\n\nBirch | 3 | 12\n\nCedar | 5 | 20"
    rows = {s.text: s for s in candidate_sentences([_hit(html)])}
    best, neighbour = replace(rows["Birch | 3 | 12"], score=0.95), replace(rows["Cedar | 5 | 20"], score=0.9)

    chosen, _ = select("How many seats does Birch have?", [best, neighbour], threshold=0.5)

    assert [(s.text, s.score) for s in chosen] == [("Room | Floor | Seats", 0.95), ("Birch | 3 | 12", 0.95)]


def test_a_table_is_answered_by_its_row_quoted_under_its_header(make_service, tmp_path):
    page = ("<html><body><h1>Service owners</h1><p>Each service has one owner.</p><table>"
            "<tr><th>Service</th><th>Owner</th><th>On call</th></tr>"
            "<tr><td>Billing</td><td>Priya Nair</td><td>weekdays</td></tr>"
            "<tr><td>Search</td><td>Tom Berg</td><td>weekends</td></tr></table></body></html>")
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", {"owners.html": page}))

    answer = service.ask("Who is on call for search?")

    assert [c.quote for c in answer.citations] == ["Service | Owner | On call", "Search | Tom Berg | weekends"]
    assert answer.answer == "Service | Owner | On call [1]\nSearch | Tom Berg | weekends [2]"


def test_a_sentence_leading_into_a_list_of_short_items_takes_them_in():
    text = ("Visitors can choose between three tours:\nBottling line\nBarrel cellar\nTasting room\n"
            "Each tour lasts an hour.\nThe shop sells:\nWine glasses\nGift boxes with two bottles inside\nCorkscrews\n"
            "The bar serves: wine and bread.")
    hit = _hit(text)

    sentences = candidate_sentences([hit])

    assert [s.text for s in sentences] == [
        "Visitors can choose between three tours:\nBottling line\nBarrel cellar\nTasting room",
        "Each tour lasts an hour.",
        # An item long enough to be a sentence ends the list: it and what follows stand alone.
        "The shop sells:\nWine glasses",
        "Gift boxes with two bottles inside",
        "The bar serves: wine and bread.",
    ]
    assert all(text[s.start : s.end] == s.text for s in sentences)
    # Markdown's bullets, after a blank line, are items too.
    markdown = "The shop sells three things:\n\n- Wine glasses\n- Gift boxes\n- Corkscrews\n\nIt closes at six today."
    assert [s.text for s in candidate_sentences([_hit(markdown)])] == [
        "The shop sells three things:\n\n- Wine glasses\n- Gift boxes\n- Corkscrews", "It closes at six today.",
    ]


def test_a_neighbouring_sentence_rated_nearly_as_high_joins_the_quote():
    hit = _hit("Leave is generous. Staff get thirty days. They may carry five over. Lunch is at noon.")
    best, neighbour, far = (_sentence(hit, t, p) for t, p in
                            [("Staff get thirty days.", 0.9), ("They may carry five over.", 0.85), ("Leave is generous.", 0.2)])

    chosen, differing = select("How much leave do staff get?", [best, neighbour, far], threshold=0.5)

    assert [s.text for s in chosen] == ["Staff get thirty days.", "They may carry five over."] and not differing


def test_another_documents_figure_joins_the_quote_only_when_of_the_kind_asked_for():
    time_a, time_b, users = (_hit(t, chunk=c, document=c) for t, c in [
        ("Users spend 76 minutes a day in the app.", "a"),
        ("The average session adds up to 58 minutes a day.", "b"),
        ("The app had 225 million monthly users.", "c"),
    ])
    best = _sentence(time_a, time_a.text, 0.95)
    other_time, count = _sentence(time_b, time_b.text, 0.9), _sentence(users, users.text, 0.96)

    chosen, differing = select("How much time does the average user spend on the app?", [count, best, other_time], 0.5)

    assert differing and {s.text for s in chosen} == {time_a.text, time_b.text}
    # Asked for a count, a count from another document is of the kind asked for.
    count_a = _sentence(_hit("The app had 310 million monthly users.", chunk="a", document="a"),
                        "The app had 310 million monthly users.", 0.95)
    chosen, differing = select("How many monthly users does the app have?", [count_a, count], 0.5)
    assert differing and len(chosen) == 2


def test_the_kind_of_figure_asked_for_is_read_from_the_question():
    assert figure_kind("How much time do users spend?").search("about 76.4 minutes")
    assert not figure_kind("How long is a session?").search("225 million users")
    assert figure_kind("By how much did users grow year on year?").search("up 30.5%")
    assert not figure_kind("What share of users are women?").search("women aged 18 to 35")
    assert figure_kind("How much did Lemon8 spend on ads?").search("$8.75 million")
    assert figure_kind("How many users does it have?") is None


def test_a_sentence_far_from_the_best_one_does_not_join_the_quote_however_high():
    hit = _hit("Staff get thirty days. Lunch is at noon. They may carry five over.")
    best, far = _sentence(hit, "Staff get thirty days.", 0.9), _sentence(hit, "They may carry five over.", 0.88)

    chosen, _ = select("How much leave do staff get?", [best, far], threshold=0.5)

    assert [s.text for s in chosen] == ["Staff get thirty days."]


def test_the_quote_starts_from_the_accepted_sentence_holding_the_questions_words():
    hit = _hit("Ann Lee and Bo Chen founded the firm in 2013. Who founded it is told in the firm's history. "
               "The firm grew fast in its first years.")
    subject, founders, echo = (_sentence(hit, t, p) for t, p in [
        ("The firm grew fast in its first years.", 0.85),
        ("Ann Lee and Bo Chen founded the firm in 2013.", 0.75),
        ("Who founded it is told in the firm's history.", 0.3),
    ])

    chosen, _ = select("Who founded the firm?", [subject, founders, echo], threshold=0.5)
    # Rated a little lower, it holds "founded" and "firm" both; the subject sentence only "firm".
    # The sentence below the threshold is never quoted, however many words it shares.
    assert [s.text for s in chosen] == ["Ann Lee and Bo Chen founded the firm in 2013."]
    assert [s.text for s in quote_order("Who founded the firm?", [subject, founders, echo], 0.5)] == [
        "Ann Lee and Bo Chen founded the firm in 2013.", "The firm grew fast in its first years."]
    # With nothing accepted, the reader's best one stands first (compose declines before quoting).
    assert quote_order("Who founded the firm?", [subject, founders, echo], 0.9) == [subject]


def test_passages_are_reranked_by_the_reader_and_retrieval_together():
    first = _hit("The garage has forty spaces.", chunk="a", score=0.9)
    second = _hit("Visitors park in the garage for free.", chunk="b", score=0.8)
    scored = [_sentence(second, second.text, 0.95), _sentence(first, first.text, 0.05)]

    assert [h.chunk_id for h in rerank("Where do visitors park?", [first, second], scored)] == ["b", "a"]
    # A passage the reader did not read keeps its place by retrieval score alone.
    unread = _hit("Nothing here.", chunk="c", score=0.1)
    assert [h.chunk_id for h in rerank("Where do visitors park?", [first, second, unread], scored)] == ["b", "a", "c"]
    # Rated alike by the reader and by retrieval, the passage whose sentence holds the question's words leads.
    level = [_hit(first.text, chunk="a", score=0.8), _hit(second.text, chunk="b", score=0.8)]
    alike = [_sentence(level[0], first.text, 0.6), _sentence(level[1], second.text, 0.5)]
    assert [h.chunk_id for h in rerank("Where do visitors park?", level, alike)] == ["b", "a"]


def test_passages_without_a_sentence_to_quote_decline_even_with_abstention_off(make_service, tmp_path):
    service = make_service(abstain_below=0.0)
    service.ingest(write_files(tmp_path / "docs", {"list.md": "# Parking\n\n- bay one\n- bay two\n"}))

    answer = service.ask("Which parking bays are there?")

    assert not answer.answered and answer.passages
