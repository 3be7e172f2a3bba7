"""End to end with the real bundled model on the default corpus."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.service import Sourcebook
from retrieval import evaluation
from retrieval.embedder import load_embedder
from retrieval.settings import Settings
from tests.helpers import CORPUS, with_model

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def real_embedder(tmp_path_factory, exported_model):
    return load_embedder(Settings(index_dir=with_model(exported_model, tmp_path_factory.mktemp("model"))))


@pytest.fixture(scope="session")
def library(tmp_path_factory, real_embedder):
    """The default corpus, copied and ingested once for the session."""
    root = tmp_path_factory.mktemp("sourcebook")
    shutil.copytree(CORPUS, root / "corpus")
    service = Sourcebook(Settings(index_dir=root / "index"), embedder=real_embedder)
    report = service.ingest(root / "corpus")
    return root, service, report


def test_the_default_corpus_ingests_whole(library):
    root, service, report = library

    assert report.failed == []
    assert len(report.added) == 5
    assert {Path(d.source).name for d in service.documents()} == {p.name for p in CORPUS.glob("*.txt")}


def test_no_chunk_exceeds_what_the_model_reads(library, real_embedder):
    _, service, _ = library
    store = service.library.store

    for rowid, stored in store.chunks(store.chunk_rowids()).items():
        chunk = stored.chunk
        assert real_embedder.count_tokens(chunk.text) <= real_embedder.max_tokens
        assert service.document(chunk.document_id).text[chunk.start : chunk.end] == chunk.text


def test_quotes_are_exact_substrings_of_the_files_on_disk(library):
    root, service, _ = library
    questions = [
        "Which cloud provider does Xiaohongshu use?",
        "When was the app launched?",
        "How many US users joined in the first days?",
    ]
    for question in questions:
        answer = service.ask(question)
        assert answer.answered, question
        for citation in answer.citations:
            # Sources are cited relative to where the ingest ran; resolve against the copied corpus.
            text = (root / "corpus" / Path(citation.source).name).read_text(encoding="utf-8")
            assert text[citation.start : citation.end] == citation.quote
            assert text.count("\n", 0, citation.start) + 1 == citation.place.line_start


def test_the_cloud_provider_question_is_answered_from_the_right_passage(library):
    _, service, _ = library

    answer = service.ask("Which cloud provider does Xiaohongshu run on?")

    assert "Alibaba Cloud" in answer.answer
    assert answer.citations[0].source.endswith("rednote-after-the-tiktok-refugees.txt")


def test_a_misspelt_question_is_read_as_the_documents_spell_it_and_answered_alike(library):
    _, service, _ = library

    typed = service.ask("Which cloud provdier does Xioohongshu run on?")

    assert [(c.typed, c.read_as) for c in typed.corrections] == [("provdier", "provider"), ("Xioohongshu", "Xiaohongshu")]
    assert "Alibaba Cloud" in typed.answer
    # Not read as "a thing no document mentions", as the misspelt name once made it.
    assert "do not mention" not in typed.answer
    # A name the documents lack, spelt as an English word, is still one they lack.
    assert not service.ask("When is RedNote launching in Brazil?").corrections
    # A name typed as two words is the documents' one word, not two names they never mention.
    apart = service.ask("Which cloud provider does Xiao Hongshu run on?")
    assert [(c.typed, c.read_as) for c in apart.corrections] == [("Xiao Hongshu", "Xiaohongshu")]
    assert "Alibaba Cloud" in apart.answer


def test_disagreeing_figures_for_monthly_users_are_all_shown(library):
    _, service, _ = library

    answer = service.ask("How many monthly active users does Xiaohongshu have?")

    assert answer.answer.startswith("The documents give different figures")
    figures = [figure for figure in ("376 million", "225 million", "300 million") if figure in answer.answer]
    assert len(figures) >= 2
    assert len({c.document_id for c in answer.citations}) == len(answer.citations)


def test_questions_the_documents_do_not_cover_are_declined(library):
    _, service, _ = library

    for question in [
        "When is RedNote launching in Brazil?",
        "How do I request time off on our team?",
        # A near miss: passages speak of shopping on RedNote, not of refunds. (Another, "What
        # salary does a Lemon8 moderator earn?", sits at the shipped threshold: a sentence on
        # Lemon8's advertising spend gets 0.22-0.25, by machine: docs/QUALITY.md.)
        "What is the refund policy for purchases on RedNote?",
    ]:
        answer = service.ask(question)
        assert not answer.answered, question
        assert answer.passages


def test_the_shipped_question_set_meets_its_floor(library):
    """Regression floor for corpus/qa.jsonl (measured figures are in the README)."""
    _, service, _ = library
    items = evaluation.load_qa(CORPUS / "qa.jsonl")

    report, _ = evaluation.evaluate_qa(lambda q: service.ask(q, k=10), items)

    assert report.answerable >= 40 and report.unanswerable >= 8
    # Measured with the embedder tuned for questions and both readers (the second at its stage 6,
    # agreed 0.1 / 0.9, int8 weights stored unsigned, each pair read alone) at their SQuAD-calibrated
    # threshold (README, "Quality"): recall@5 0.977; 0.830, 0.034 and 0.706 (24 of 34) on a VNNI
    # machine; before pairs were read alone, 0.818 / 0.034 / 0.735 on an AVX2 machine. The floors
    # leave a question either way for the float arithmetic that still differs between CPUs.
    assert report.recall_at_5 >= 0.95
    assert report.mrr_at_10 >= 0.85
    assert report.answer_hit_rate >= 0.80
    assert report.declined_answerable <= 0.06
    assert report.declined_unanswerable >= 0.67


def test_search_through_the_source_filter(library):
    _, service, _ = library
    source = next(d.source for d in service.documents() if d.source.endswith("what-is-red-note.txt"))

    hits = service.search("App Store ranking", k=5, source=source).hits

    assert hits and all(hit.source == source for hit in hits)


def _one_document_library(embedder, tmp_path, text: str) -> Sourcebook:
    """A library of one text file, read by the real reader."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "doc.txt").write_text(text)
    service = Sourcebook(Settings(index_dir=tmp_path / "index"), embedder=embedder)
    service.ingest(tmp_path / "docs")
    return service


def test_a_question_answered_by_a_list_quotes_the_list_and_cites_its_lines(real_embedder, tmp_path):
    """A list's short items are read with the sentence leading into them, not dropped as fragments."""
    text = ("Visiting the plant\nThe plant is open to visitors on weekdays from nine to five.\n"
            "Visitors can choose between three guided tours:\nBottling line\nBarrel cellar\nTasting room\n"
            "Each tour lasts about an hour and costs ten euros.\n")
    answer = _one_document_library(real_embedder, tmp_path, text).ask("Which guided tours can visitors choose?")

    assert answer.answered
    citation = answer.citations[0]
    assert citation.quote == "Visitors can choose between three guided tours:\nBottling line\nBarrel cellar\nTasting room"
    assert (citation.place.line_start, citation.place.line_end) == (3, 6)


def test_a_question_naming_the_company_is_answered_by_a_sentence_that_says_the_company(real_embedder, tmp_path):
    """The reader alone declines a sentence that does not repeat the question's name (docs/QUALITY.md)."""
    text = ("About us\nAcme makes hand tools for carpenters. Acme was started by two smiths in Leeds. "
            "Its workshop has forty benches and a forge. The company opened an office in Berlin in March 2019.\n")
    answer = _one_document_library(real_embedder, tmp_path, text).ask("When did Acme open its Berlin office?")

    assert answer.answered
    assert answer.citations[0].quote == "The company opened an office in Berlin in March 2019."


def test_a_table_is_answered_by_the_row_that_holds_the_answer_under_its_header(real_embedder, tmp_path):
    """Read as they stand, the readers take "Cedar | 5 | 20" for nothing; labelled, for the answer (docs/QUALITY.md)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "rooms.html").write_text(
        "<html><body><h1>Office rooms</h1><p>The rooms below can be booked in the calendar.</p><table>"
        "<tr><th>Room</th><th>Floor</th><th>Seats</th></tr><tr><td>Amber</td><td>2</td><td>8</td></tr>"
        "<tr><td>Birch</td><td>3</td><td>12</td></tr><tr><td>Cedar</td><td>5</td><td>20</td></tr></table>"
        "<p>Rooms with more than ten seats have a projector.</p></body></html>")
    (docs / "setup.md").write_text(
        "# Developer setup\n\n## Ports\n\n| service | port |\n|---|---|\n| web page | 7860 |\n| database | 5432 |\n\n"
        "The web page listens on port 7860 unless you set `PORT`.\n")
    service = Sourcebook(Settings(index_dir=tmp_path / "index"), embedder=real_embedder)
    service.ingest(docs)

    for question, quotes in [("How many seats does Cedar have?", ["Room | Floor | Seats", "Cedar | 5 | 20"]),
                             ("Which floor is Birch on?", ["Room | Floor | Seats", "Birch | 3 | 12"]),
                             ("What port does the database use?", ["| service | port |", "| database | 5432 |"])]:
        answer = service.ask(question)
        assert answer.answered and [c.quote for c in answer.citations] == quotes, (question, answer.answer)
