"""The HTTP API contract: status codes and response models, errors included."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest
from fastapi.testclient import TestClient

from retrieval.records import Place
from tests.helpers import write_files
from ui.api import (
    AskResponse,
    DeleteResponse,
    DocumentDetail,
    DocumentSummary,
    ErrorResponse,
    FeedbackRecord,
    FeedbackResponse,
    Health,
    PlaceModel,
    SearchResponse,
    UploadResponse,
)
from ui.server import create_app

DOCS = {
    "travel.txt": "Travel\nBook flights through the travel desk at least two weeks ahead. "
    "Economy class is the default for flights under six hours.\n",
    "security.md": "# Security\n\nReport phishing emails to the security team with the report button.\n",
    "users.txt": "Usage\nIn January the app had 900 daily users in the US. In March the app had 400 daily users in the US.\n",
}


@pytest.fixture
def service(make_service, tmp_path):
    service = make_service(corpus_dir=tmp_path / "corpus", max_file_bytes=2000, max_upload_files=3)
    service.ingest(write_files(tmp_path / "corpus", DOCS))
    return service


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    return ErrorResponse.model_validate(response.json()).error


def test_health_counts_documents_and_chunks(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    health = Health.model_validate(response.json())
    assert health.documents == 3 and health.chunks >= 3


def test_search_returns_the_cli_contract(client):
    response = client.post("/api/search", json={"query": "phishing emails", "k": 2})

    assert response.status_code == 200
    result = SearchResponse.model_validate(response.json())
    assert result.hits[0].source == "corpus/security.md"
    assert set(response.json()["hits"][0]) == {"chunk_id", "document_id", "source", "title", "heading", "page",
                                               "line_start", "line_end", "start", "end", "text", "score"}
    assert result.corrections == []


def test_a_misspelt_search_says_how_it_was_read(client):
    result = SearchResponse.model_validate(client.post("/api/search", json={"query": "phising emails", "k": 2}).json())

    assert [(c.typed, c.read_as) for c in result.corrections] == [("phising", "phishing")]
    assert result.query == "phising emails"
    assert result.hits[0].source == "corpus/security.md"

    as_typed = {"query": "phising emails", "k": 2, "as_typed": True}
    assert SearchResponse.model_validate(client.post("/api/search", json=as_typed).json()).corrections == []


def test_a_misspelt_question_is_read_as_the_library_spells_it_unless_asked_as_typed(client):
    asked = {"question": "Where do I report phising emails?"}
    read = AskResponse.model_validate(client.post("/api/ask", json=asked).json())
    typed = AskResponse.model_validate(client.post("/api/ask", json={**asked, "as_typed": True}).json())

    assert [(c.typed, c.read_as) for c in read.corrections] == [("phising", "phishing")]
    assert typed.corrections == [] and typed.question == read.question
    assert client.post("/api/ask", json={**asked, "as_typed": "maybe"}).status_code == 422


def test_a_place_in_the_api_is_the_place_record_spelled_flat(client):
    # One record says where a passage or quote sits; the API's model of it must not drift from it.
    assert list(PlaceModel.model_fields) == [f.name for f in fields(Place)]
    cited = AskResponse.model_validate(
        client.post("/api/ask", json={"question": "Where do I report phishing emails?"}).json()
    ).citations[0]
    assert Place.from_dict(cited.model_dump()) == Place("Security", None, 3, 3)


def test_ask_returns_an_answer_with_citations(client):
    response = client.post("/api/ask", json={"question": "How far ahead should I book flights through the travel desk?"})

    assert response.status_code == 200
    answer = AskResponse.model_validate(response.json())
    assert answer.answered and "two weeks ahead" in answer.answer
    assert answer.citations[0].source == "corpus/travel.txt"


def test_a_misspelt_question_is_answered_as_the_library_spells_it_and_says_so(client):
    typed = "How far ahead should I book flihgts through the travle desk?"

    answer = AskResponse.model_validate(client.post("/api/ask", json={"question": typed}).json())

    assert answer.question == typed
    assert [(c.typed, c.read_as) for c in answer.corrections] == [("flihgts", "flights"), ("travle", "travel")]
    assert answer.answered and "two weeks ahead" in answer.answer
    # A question spelt as the library spells it is read as typed.
    clean = client.post("/api/ask", json={"question": "How far ahead should I book flights through the travel desk?"})
    assert clean.json()["corrections"] == []


def test_history_lets_a_follow_up_find_its_subject(client):
    first = "How many daily users did the app have in the US in January?"

    follow_up = AskResponse.model_validate(
        client.post("/api/ask", json={"question": "and what about March?", "history": [{"question": first}]}).json()
    )

    assert follow_up.question == "and what about March?"
    assert follow_up.answered and "400 daily users" in follow_up.answer


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"question": ""}, "question"),
        ({"question": "   "}, "must contain some text"),
        ({"question": "ok?", "k": 0}, "k"),
        ({"question": "ok?", "k": 51}, "k"),
        ({"k": 3}, "question"),
    ],
)
def test_bad_questions_are_400_or_422_with_a_message(client, body, fragment):
    response = client.post("/api/ask", json=body)

    assert response.status_code in (400, 422)
    assert fragment in ErrorResponse.model_validate(response.json()).error


def test_documents_list_and_detail(client):
    listed = [DocumentSummary.model_validate(d) for d in client.get("/api/documents").json()]
    security = next(d for d in listed if d.source == "corpus/security.md")

    response = client.get(f"/api/documents/{security.id}")

    assert response.status_code == 200
    detail = DocumentDetail.model_validate(response.json())
    assert detail.text.startswith("# Security") and detail.sections[0].heading == "Security"
    assert security.chunks >= 1 and security.size == len(DOCS["security.md"].encode())


def test_unknown_document_is_404(client):
    assert "no document" in error_of(client.get("/api/documents/0000000000000000"), 404)
    assert "no document" in error_of(client.delete("/api/documents/0000000000000000"), 404)


def test_upload_then_ask_then_delete(client, service, tmp_path):
    files = [("files", ("parking.txt", b"Parking\nVisitors park in garage B on level minus two.\n", "text/plain"))]

    response = client.post("/api/documents", files=files)

    assert response.status_code == 200
    result = UploadResponse.model_validate(response.json()).results[0]
    assert (result.filename, result.status) == ("parking.txt", "added")
    assert (tmp_path / "corpus" / "parking.txt").exists()
    answer = AskResponse.model_validate(client.post("/api/ask", json={"question": "Where do visitors park?"}).json())
    assert answer.citations[0].source == "corpus/parking.txt"

    deleted = client.delete(f"/api/documents/{result.document_id}")

    assert DeleteResponse.model_validate(deleted.json()).chunks_removed >= 1
    hits = SearchResponse.model_validate(client.post("/api/search", json={"query": "visitors park garage"}).json()).hits
    assert all(hit.source != "corpus/parking.txt" for hit in hits)
    # The file is set aside, not destroyed, and the next ingest of the folder does not revive it.
    assert not (tmp_path / "corpus" / "parking.txt").exists()
    kept = list((tmp_path / "corpus" / ".deleted").glob("parking.*.txt"))
    assert [path.read_bytes() for path in kept] == [files[0][1][1]]
    assert service.ingest(tmp_path / "corpus").added == []


def test_upload_reports_each_file(client):
    files = [
        ("files", ("good.md", b"# Lunch\n\nLunch is served at noon in the canteen.\n", "text/markdown")),
        ("files", ("empty.txt", b"", "text/plain")),
        ("files", ("../../etc/evil.txt", b"Evil\nThis file tried to escape the corpus folder.\n", "text/plain")),
    ]

    results = UploadResponse.model_validate(client.post("/api/documents", files=files).json()).results

    assert [(r.filename, r.status) for r in results] == [("good.md", "added"), ("empty.txt", "failed"),
                                                          ("evil.txt", "added")]
    assert results[1].reason


def test_upload_over_the_size_limit_is_413(client):
    files = [("files", ("big.txt", b"word " * 1000, "text/plain"))]

    assert "limit" in error_of(client.post("/api/documents", files=files), 413)


def test_upload_of_an_unsupported_type_is_415(client):
    files = [("files", ("tool.exe", b"MZ\x90\x00", "application/octet-stream"))]

    assert "tool.exe" in error_of(client.post("/api/documents", files=files), 415)


def test_too_many_files_in_one_upload_is_400(client):
    files = [("files", (f"n{i}.txt", b"Note\nA short note about nothing much.\n", "text/plain")) for i in range(4)]

    assert "at most 3 files" in error_of(client.post("/api/documents", files=files), 400)


def test_feedback_is_stored_and_exported(client, service, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ui.cli import app

    body = {"question": "Where do I report phishing?", "answer": "To the security team [1]", "rating": "up",
            "comment": "spot on"}

    response = client.post("/api/feedback", json=body)

    assert response.status_code == 200
    assert FeedbackResponse.model_validate(response.json()).id >= 1
    assert "rating" in error_of(client.post("/api/feedback", json={**body, "rating": "meh"}), 422)
    exported = CliRunner().invoke(app, ["feedback", "export", "--index", str(service.settings.index_dir)])
    rows = [json.loads(line) for line in exported.output.splitlines()]
    assert [(r["question"], r["rating"], r["comment"]) for r in rows] == [(body["question"], "up", "spot on")]


def test_openapi_documents_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]

    assert {"/healthz", "/api/search", "/api/ask", "/api/documents", "/api/documents/{document_id}",
            "/api/feedback"} <= set(paths)
    assert client.get("/docs").status_code == 200


@pytest.fixture
def guarded(make_service, tmp_path):
    service = make_service(corpus_dir=tmp_path / "corpus", api_token="s3cret-token")
    service.ingest(write_files(tmp_path / "corpus", DOCS))
    with TestClient(create_app(service, with_page=False)) as client:
        yield client


def test_with_a_token_configured_changes_need_it_and_reads_do_not(guarded):
    upload = [("files", ("lunch.txt", b"Lunch\nLunch is at noon.\n", "text/plain"))]
    document_id = guarded.get("/api/documents").json()[0]["id"]

    assert "API token" in error_of(guarded.post("/api/documents", files=upload), 401)
    assert "API token" in error_of(guarded.delete(f"/api/documents/{document_id}"), 401)
    assert "API token" in error_of(guarded.get("/api/feedback"), 401)
    wrong = {"Authorization": "Bearer not-it"}
    assert "API token" in error_of(guarded.post("/api/documents", files=upload, headers=wrong), 401)
    assert guarded.post("/api/search", json={"query": "lunch"}).status_code == 200
    assert guarded.post("/api/feedback", json={"question": "q?", "answer": "a", "rating": "down"}).status_code == 200

    right = {"Authorization": "Bearer s3cret-token"}
    assert guarded.post("/api/documents", files=upload, headers=right).status_code == 200
    assert guarded.delete(f"/api/documents/{document_id}", headers=right).status_code == 200
    exported = [FeedbackRecord.model_validate(row) for row in guarded.get("/api/feedback", headers=right).json()]
    assert [(f.question, f.rating) for f in exported] == [("q?", "down")]


def test_a_new_question_after_another_is_not_taken_for_a_follow_up(client):
    history = [{"question": "How far ahead should I book flights through the travel desk?"}]

    answer = AskResponse.model_validate(
        client.post("/api/ask", json={"question": "Where do I report phishing emails?", "history": history}).json()
    )

    assert answer.citations[0].source == "corpus/security.md"
