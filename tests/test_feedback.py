"""Ratings that count: any answer by its id, one record per answer, and question-set lines made of them."""

from __future__ import annotations

import json
import sqlite3
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.feedback import REVIEW
from retrieval.evaluation import load_qa
from retrieval.library import STORE_FILE
from tests.helpers import write_files
from ui.api import AskResponse, ErrorResponse, FeedbackRecord, FeedbackResponse
from ui.cli import app
from ui.server import create_app
from ui.web import PageEvents

DOCS = {
    "travel.txt": "Travel\nBook flights through the travel desk at least two weeks ahead. "
    "Economy class is the default for flights under six hours.\n",
    "security.md": "# Security\n\nReport phishing emails to the security team with the report button.\n",
}
TRAVEL = "How far ahead should I book flights through the travel desk?"
PHISHING = "Where do I report phishing emails?"


@pytest.fixture
def service(make_service, tmp_path):
    service = make_service(corpus_dir=tmp_path / "corpus")
    service.ingest(write_files(tmp_path / "corpus", DOCS))
    return service


def to_eval(service, *arguments: str) -> tuple[list[dict], str]:
    """Run `sourcebook feedback to-eval` on the service's index; return its lines and its summary."""
    result = CliRunner().invoke(app, ["feedback", "to-eval", "--index", str(service.settings.index_dir), *arguments])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def test_an_answer_has_a_stable_id_from_what_it_says(service):
    first, again, other = service.ask(TRAVEL), service.ask(TRAVEL), service.ask(PHISHING)

    assert first.id == again.id and first.id != other.id
    assert first.to_dict()["answer_id"] == first.id and len(first.id) == 16


def test_rating_twice_leaves_one_record_with_the_last_rating(service):
    answer = service.ask(TRAVEL)

    service.rate(answer, "down", comment="too vague")
    record = service.rate(answer, "up")

    records = service.feedback()
    assert len(records) == 1 and records[0] == record
    assert (record["rating"], record["answer_id"], record["comment"]) == ("up", answer.id, "too vague")
    assert record["updated"] >= record["created"]
    citation = record["citations"][0]
    assert citation["document_id"] == answer.citations[0].document_id
    assert (citation["start"], citation["end"]) == (answer.citations[0].start, answer.citations[0].end)
    assert "two weeks ahead" in citation["quote"] and citation["cite"] == answer.citations[0].cite()
    assert service.rate(answer, "up", comment="")["comment"] == ""


def test_any_earlier_answer_can_be_rated_not_only_the_last(service):
    earlier, later = service.ask(TRAVEL), service.ask(PHISHING)

    service.rate(earlier, "up")
    service.rate(later, "down", comment="wrong team")

    assert {(r["question"], r["rating"]) for r in service.feedback()} == {(TRAVEL, "up"), (PHISHING, "down")}
    assert service.feedback_for(earlier.id)["rating"] == "up"


def test_a_thumbs_down_with_a_comment_becomes_a_candidate_and_a_thumbs_up_an_item(service, tmp_path):
    good, bad = service.ask(TRAVEL), service.ask(PHISHING)
    service.rate(good, "up")
    service.rate(bad, "down", comment="It should name the report button in Outlook")

    lines, summary = to_eval(service)

    item = next(line for line in lines if line["question"] == TRAVEL)
    assert item["answerable"] is True and any("two weeks ahead" in quote for quote in item["answers"])
    assert item["from_feedback"]["document_ids"] == [good.citations[0].document_id]
    candidate = next(line for line in lines if line["question"] == PHISHING)
    assert "answerable" not in candidate
    assert candidate[REVIEW]["comment"] == "It should name the report button in Outlook"
    assert candidate[REVIEW]["answer_given"] == bad.answer
    assert candidate[REVIEW]["citations"][0]["document_id"] == bad.citations[0].document_id
    assert "1 items, 1 candidates" in summary
    # A candidate is not a test until a person says what the right answer is.
    written = tmp_path / "from-feedback.jsonl"
    written.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    with pytest.raises(ValueError, match="candidate still to review"):
        load_qa(written)
    reviewed = {key: value for key, value in candidate.items() if key != REVIEW}
    written.write_text(json.dumps(item) + "\n" + json.dumps({**reviewed, "answers": ["report button"],
                                                             "answerable": True}) + "\n", encoding="utf-8")
    assert [i.question for i in load_qa(written)] == [TRAVEL, PHISHING]


def test_candidates_can_go_to_their_own_file_so_the_items_are_usable_at_once(service, tmp_path):
    service.rate(service.ask(TRAVEL), "up")
    service.rate(service.ask(PHISHING), "down", comment="wrong")
    service.rate(service.ask("Which class is the default for short flights?"), "down")

    lines, summary = to_eval(service, "--candidates", str(tmp_path / "review.jsonl"))

    assert [i.question for i in load_qa_lines(tmp_path, lines)] == [TRAVEL]
    review = [json.loads(line) for line in (tmp_path / "review.jsonl").read_text().splitlines()]
    assert [line["question"] for line in review] == [PHISHING]
    assert "1 thumbs-down without a comment skipped" in summary


def load_qa_lines(folder, lines):
    path = folder / "items.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return load_qa(path)


OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment TEXT NOT NULL
);
"""


def test_a_store_with_ratings_of_the_old_format_still_reads_and_takes_new_ones(make_service, tmp_path):
    index = tmp_path / "index"
    index.mkdir()
    db = sqlite3.connect(index / STORE_FILE)
    db.executescript(OLD_SCHEMA)
    db.executemany("INSERT INTO feedback (created, question, answer, rating, comment) VALUES (?, ?, ?, ?, ?)", [
        (1.0, "Where do I report phishing?", "The documents do not say. The closest passages are below.", "up", ""),
        (2.0, "Who books flights?", "The travel desk. [1]", "down", "it is the office manager"),
        (3.0, "Who books flights?", "The travel desk. [1]", "up", ""),
    ])
    db.commit()
    db.close()

    service = make_service(corpus_dir=tmp_path / "corpus")
    service.ingest(write_files(tmp_path / "corpus", DOCS))
    old = service.feedback()
    service.rate(service.ask(TRAVEL), "up")

    assert [(r["question"], r["rating"], r["answer_id"], r["citations"]) for r in old] == [
        ("Where do I report phishing?", "up", None, []),
        ("Who books flights?", "down", None, []),
        ("Who books flights?", "up", None, []),
    ]
    assert old[0]["updated"] == 1.0 and old[0]["answered"] is None
    assert len(service.feedback()) == 4
    lines, _ = to_eval(service)
    by_question = {line["question"]: line for line in lines}
    # A declined answer rated helpful is a question the documents rightly do not answer.
    assert by_question["Where do I report phishing?"]["answerable"] is False
    # Rated up before citations were kept: the expected answer is for a person to confirm.
    assert REVIEW in by_question["Who books flights?"]
    assert by_question[TRAVEL]["answerable"] is True


def test_an_exported_file_of_the_old_format_still_reads(tmp_path):
    exported = tmp_path / "ratings.jsonl"
    exported.write_text(
        json.dumps({"id": 1, "created": 1.0, "question": "Who books flights?", "answer": "The travel desk. [1]",
                    "rating": "down", "comment": "the office manager does"}) + "\n"
        + json.dumps({"id": 2, "created": 2.0, "question": "What is the VPN?",
                      "answer": "The documents do not say. The closest passages are below.", "rating": "up",
                      "comment": ""}) + "\n",
        encoding="utf-8",
    )

    result = CliRunner().invoke(app, ["feedback", "to-eval", "--from", str(exported)])

    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0] == {"question": "What is the VPN?", "answers": [], "answerable": False,
                        "from_feedback": {"answer_id": None, "rated": 2.0, "document_ids": []}}
    assert lines[1][REVIEW]["comment"] == "the office manager does"


@pytest.fixture
def client(service):
    with TestClient(create_app(service, with_page=False)) as client:
        yield client


def test_the_pages_rating_takes_the_turn_rated_and_gives_back_its_rating_box_alone(service):
    answer, other = service.ask(TRAVEL), service.ask(PHISHING)
    # The turn as the page's RATE_JS sends it: the kept turn without the passages it offered.
    turn = {**answer.to_dict(), "passages": []}
    events = PageEvents(service)

    rated = events.rate(turn, SimpleNamespace(answer_id=answer.id, rating="down", comment=" too vague "))

    assert rated["answer_id"] == answer.id
    box = rated["markup"]
    assert box.count('class="rating"') == 1 and "two weeks ahead" not in box
    assert 'class="sb-rate down" data-rating="down" aria-pressed="true"' in box and ">too vague</textarea>" in box
    [record] = service.feedback()
    assert (record["answer_id"], record["question"], record["answer"], record["rating"], record["comment"]) == (
        answer.id, TRAVEL, answer.answer, "down", "too vague"
    )
    assert [c["quote"] for c in record["citations"]] == [c.quote for c in answer.citations]
    # A turn that does not say what the rated answer said, or another answer's, rates nothing.
    for sent in ({**turn, "answer": "Book flights a day ahead."}, other.to_dict(), None, [turn]):
        assert events.rate(sent, SimpleNamespace(answer_id=answer.id, rating="up", comment=None)) is None
    assert [(r["rating"], r["comment"]) for r in service.feedback()] == [("down", "too vague")]


def test_the_api_rates_an_answer_by_its_id_and_changes_the_rating(client, service):
    asked = AskResponse.model_validate(client.post("/api/ask", json={"question": TRAVEL}).json())

    first = client.post("/api/feedback", json={"answer_id": asked.answer_id, "rating": "down", "comment": "vague"})
    second = client.post("/api/feedback", json={"answer_id": asked.answer_id, "rating": "up"})

    assert first.status_code == 200 and second.status_code == 200
    rated = FeedbackResponse.model_validate(second.json())
    assert (rated.answer_id, rated.rating, rated.comment) == (asked.answer_id, "up", "vague")
    records = [FeedbackRecord.model_validate(r) for r in client.get("/api/feedback").json()]
    assert len(records) == 1 and records[0].citations[0].quote == asked.citations[0].quote


def test_the_api_rates_an_answer_sent_back_whole_after_a_restart(client, service, make_service):
    asked = client.post("/api/ask", json={"question": TRAVEL}).json()
    restarted = make_service(corpus_dir=service.settings.corpus_dir)
    with TestClient(create_app(restarted, with_page=False)) as fresh:
        unknown = fresh.post("/api/feedback", json={"answer_id": asked["answer_id"], "rating": "up"})
        whole = fresh.post("/api/feedback", json={**asked, "rating": "up", "comment": "exactly"})
        forged = fresh.post("/api/feedback", json={**asked, "answer": "Fly whenever.", "rating": "up"})

    assert unknown.status_code == 404 and "not one this server gave" in ErrorResponse.model_validate(unknown.json()).error
    assert whole.status_code == 200 and FeedbackResponse.model_validate(whole.json()).answer_id == asked["answer_id"]
    assert forged.status_code == 400 and "answer_id" in ErrorResponse.model_validate(forged.json()).error
    assert [(r["answer_id"], r["comment"]) for r in restarted.feedback()] == [(asked["answer_id"], "exactly")]


def test_the_api_needs_an_answer_id_or_the_question_and_answer(client):
    response = client.post("/api/feedback", json={"rating": "up"})

    assert response.status_code == 422
    assert "answer_id" in ErrorResponse.model_validate(response.json()).error


def test_a_rating_by_text_alone_is_one_record_too(client, service):
    body = {"question": "Where do I report phishing?", "answer": "To the security team [1]", "rating": "up"}

    client.post("/api/feedback", json=body)
    client.post("/api/feedback", json={**body, "rating": "down", "comment": "no"})

    assert [(r["rating"], r["comment"]) for r in service.feedback()] == [("down", "no")]


def test_the_export_carries_each_rating_with_its_citations(service):
    service.rate(service.ask(TRAVEL), "up")

    result = CliRunner().invoke(app, ["feedback", "export", "--index", str(service.settings.index_dir)])

    row = json.loads(result.stdout)
    assert row["rating"] == "up" and row["citations"][0]["source"].endswith("travel.txt")
