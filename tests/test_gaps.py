"""Gaps: declined questions logged, grouped by meaning, most asked first, gone once answered."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import service as service_module
from bench.gap_groups import grouping_figures
from app.gaps import GROUP_AT, group_by_meaning
from app.service import QUESTION_MODEL_EXPORT, Sourcebook
from retrieval.embedder import BUNDLED_NAME
from retrieval.settings import Settings
from tests.fakes import FakeReader
from tests.helpers import with_model, write_files
from ui.api import ErrorResponse, GapModel
from ui.cli import app
from ui.server import create_app

DOCS = {
    "travel.txt": "Travel\nBook flights through the travel desk at least two weeks ahead. "
    "Economy class is the default for flights under six hours.\n",
    "security.md": "# Security\n\nReport phishing emails to the security team with the report button.\n",
}
# Three wordings of one question the documents do not answer (they share most words, which is
# what the fake embedder sees), and one other.
BICYCLE = [
    "What is the fee for parking a bicycle at the office garage?",
    "What is the fee for parking a bicycle in the office garage?",
    "what's the fee for parking my bicycle at the office garage",
]
CEO = "Who is the chief executive of the company?"
ANSWER = "Parking\nThe fee for parking a bicycle at the office garage is two euros a day.\n"


@pytest.fixture
def service(make_service, tmp_path):
    service = make_service(corpus_dir=tmp_path / "corpus")
    service.ingest(write_files(tmp_path / "corpus", DOCS))
    return service


def test_three_wordings_of_one_unanswered_question_are_one_gap_asked_three_times(service):
    for question in [BICYCLE[0], CEO, BICYCLE[1], BICYCLE[2]]:
        assert not service.ask(question).answered

    gaps = service.gaps()

    assert [(gap.question, gap.count) for gap in gaps] == [(BICYCLE[0], 3), (CEO, 1)]
    assert set(gaps[0].questions) == set(BICYCLE)
    assert gaps[0].first_asked <= gaps[0].last_asked
    nearest = {document.source for document in gaps[0].documents}
    assert nearest and nearest <= {"corpus/travel.txt", "corpus/security.md"}
    assert all(document.title and 1 <= document.times <= 3 for document in gaps[0].documents)


def test_a_gap_leaves_the_list_once_a_document_answers_it(service):
    for question in [*BICYCLE, CEO]:
        service.ask(question)
    assert [gap.count for gap in service.gaps()] == [3, 1]

    service.upload([("parking.txt", ANSWER.encode())])
    gaps = service.gaps()

    assert [gap.question for gap in gaps] == [CEO]
    assert service.ask(BICYCLE[1]).answered
    # Gone for good: the next listing does not bring it back, nor ask it again.
    asked = []
    ask = service.ask
    service.ask = lambda question, **options: asked.append(question) or ask(question, **options)
    assert [gap.question for gap in service.gaps()] == [CEO] and asked == []


def test_a_listing_asks_again_at_most_a_few_gaps_most_asked_first(service, monkeypatch):
    monkeypatch.setattr(service_module, "GAP_RECHECKS", 1)
    for question in [CEO, *BICYCLE]:
        service.ask(question)
    service.upload([("parking.txt", ANSWER.encode())])
    asked = []
    ask = service.ask
    service.ask = lambda question, **options: asked.append(question) or ask(question, **options)

    first = service.gaps()
    asked_first = list(asked)
    second = service.gaps()

    assert [gap.question for gap in first] == [CEO] and asked_first == [BICYCLE[0]]
    assert [gap.question for gap in second] == [CEO] and asked == [BICYCLE[0], CEO]


def test_only_readers_questions_are_logged_not_evaluation_or_answered_ones(service):
    service.ask(CEO, log_declined=False)
    service.ask("How far ahead should I book flights through the travel desk?")

    assert service.gaps() == []


def test_a_follow_up_is_logged_with_what_it_follows(service):
    service.ask("and the chief executive?", history=["Who founded the company?"])

    assert [gap.question for gap in service.gaps()] == ["Who founded the company? and the chief executive?"]


def test_declined_questions_are_embedded_when_the_gaps_are_listed_and_only_once(service, embedder):
    for question in BICYCLE:
        asked = len(embedder.encoded)
        service.ask(question)
        assert question not in embedder.encoded[asked:]  # answering embeds the question's words, not the question

    service.gaps()
    embedded = list(embedder.encoded)
    service.ask(CEO)
    gaps = service.gaps()

    assert [text for text in embedded if text in BICYCLE] == BICYCLE
    assert [text for text in embedder.encoded[len(embedded):] if text in [*BICYCLE, CEO]] == [CEO]
    assert [(gap.question, gap.count) for gap in gaps] == [(BICYCLE[0], 3), (CEO, 1)]


def test_grouping_takes_the_nearest_group_and_keeps_far_questions_apart():
    rng = np.random.default_rng(0)
    a, b = (v / np.linalg.norm(v) for v in rng.standard_normal((2, 16)))
    near_a = a + 0.2 * b
    vectors = np.array([a, b, near_a / np.linalg.norm(near_a), a], dtype=np.float32)

    assert group_by_meaning(vectors) == [[0, 2, 3], [1]]
    assert group_by_meaning(vectors, threshold=1.01) == [[0], [1], [2], [3]]


def test_the_grouping_measure_counts_groups_kept_whole_and_groups_mixed():
    a, b = np.eye(2, dtype=np.float32)
    tilted = np.array([0.8, 0.6], dtype=np.float32)  # cosine 0.8 with a, 0.6 with b
    vectors = np.array([a, a, b, tilted])

    # At 0.7 the tilted question of group 1 joins group 0's: group 0 is not whole, and one group is mixed.
    assert grouping_figures(vectors, [0, 0, 1, 1], 0.7, orders=3) == (0.0, 1.0)
    # At 0.9 it stands alone: group 0 is whole, group 1 split, nothing mixed.
    assert grouping_figures(vectors, [0, 0, 1, 1], 0.9, orders=3) == (0.5, 0.0)


def test_the_api_lists_gaps_with_the_token_the_feedback_export_needs(make_service, tmp_path):
    service = make_service(corpus_dir=tmp_path / "corpus", api_token="s3cret-token")
    service.ingest(write_files(tmp_path / "corpus", DOCS))
    with TestClient(create_app(service, with_page=False)) as client:
        for question in BICYCLE:
            client.post("/api/ask", json={"question": question})
        refused = client.get("/api/gaps")
        listed = client.get("/api/gaps", headers={"Authorization": "Bearer s3cret-token"})

    assert refused.status_code == 401 and "API token" in ErrorResponse.model_validate(refused.json()).error
    assert listed.status_code == 200
    gaps = [GapModel.model_validate(gap) for gap in listed.json()]
    assert [(gap.question, gap.count) for gap in gaps] == [(BICYCLE[0], 3)]
    assert gaps[0].documents[0].source.startswith("corpus/")


def test_the_cli_lists_gaps_readably_and_as_json(service, monkeypatch, embedder, reader):
    monkeypatch.setattr(service_module, "load_embedder", lambda settings, **options: embedder)
    monkeypatch.setattr(service_module, "Reader", lambda directory, **options: reader)
    monkeypatch.setenv("SOURCEBOOK_ABSTAIN_BELOW", "0.5")
    for question in [*BICYCLE, CEO]:
        service.ask(question)
    index = str(service.settings.index_dir)

    as_json = CliRunner().invoke(app, ["gaps", "--index", index, "--json"])
    readable = CliRunner().invoke(app, ["gaps", "--index", index])

    assert as_json.exit_code == 0, as_json.output
    assert [(gap["question"], gap["count"]) for gap in json.loads(as_json.stdout)] == [(BICYCLE[0], 3), (CEO, 1)]
    assert readable.exit_code == 0
    assert "1. What is the fee for parking a bicycle at the office garage?" in readable.stdout
    assert "asked 3x" in readable.stdout and "also: " + BICYCLE[1] in readable.stdout


@pytest.mark.integration
def test_the_bundled_model_groups_paraphrases_and_keeps_another_question_apart(exported_model, tmp_path):
    settings = Settings(index_dir=with_model(exported_model, tmp_path / "index"), abstain_below=0.99,
                        corpus_dir=tmp_path / "corpus")
    service = Sourcebook(settings, reader=FakeReader())
    service.ingest(write_files(tmp_path / "corpus", DOCS))
    paraphrases = [
        "How much does it cost to park a bike at the office?",
        "What is the fee for bicycle parking at the office?",
        "What do I pay to leave my bike in the office bike park?",
    ]
    for question in [*paraphrases, "How many days of annual leave do new employees get?"]:
        assert not service.ask(question).answered

    gaps = service.gaps()

    assert [(gap.question, gap.count) for gap in gaps] == [
        (paraphrases[0], 3), ("How many days of annual leave do new employees get?", 1)
    ]
    assert 0.5 < GROUP_AT < 1
    # The library's embedder is the tuned one; the questions were grouped by the bundled model.
    assert service.embedder.name != BUNDLED_NAME and service.question_embedder.name == BUNDLED_NAME
    assert (settings.index_dir / QUESTION_MODEL_EXPORT / "onnx" / "model.onnx").is_file()
