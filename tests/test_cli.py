"""The command line: readable by default, the shared JSON contract with --json, clear errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from app import service as service_module
from tests.fakes import FakeEmbedder, FakeReader
from tests.helpers import write_files
from ui.cli import app

HIT_KEYS = {"chunk_id", "document_id", "source", "title", "heading", "page", "line_start", "line_end", "start", "end",
            "text", "score"}
CITATION_KEYS = (HIT_KEYS - {"text"}) | {"n", "quote", "url", "cite", "cite_markdown"}

DOCS = {
    "travel.txt": "Travel\nBook flights through the travel desk at least two weeks ahead. "
    "Economy class is the default for flights under six hours.\n",
    "security.txt": "Security\nReport phishing emails to the security team with the report button.\n",
}


@pytest.fixture(autouse=True)
def fake_model(monkeypatch):
    """The CLI loads its models through load_embedder and Reader; tests give it the fake ones."""
    embedder = FakeEmbedder()
    monkeypatch.setattr(service_module, "load_embedder", lambda settings: embedder)
    monkeypatch.setattr(service_module, "Reader", lambda directory, **options: FakeReader())
    # The threshold is calibrated for the real reader (see conftest's settings).
    monkeypatch.setenv("SOURCEBOOK_ABSTAIN_BELOW", "0.5")
    return embedder


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def corpus(tmp_path, runner):
    folder = write_files(tmp_path / "docs", DOCS)
    result = runner.invoke(app, ["ingest", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


def test_ingest_prints_a_summary_and_is_incremental(tmp_path, runner, fake_model):
    folder = write_files(tmp_path / "docs", DOCS)

    first = runner.invoke(app, ["ingest", str(folder), "--json"])
    fake_model.encoded.clear()
    second = runner.invoke(app, ["ingest", str(folder), "--json"])

    assert json.loads(first.output)["added"] == 2
    assert json.loads(second.output) | {"files": None} == {
        "added": 0, "updated": 0, "removed": 0, "unchanged": 2, "failed": 0, "files": None,
        "failures": [], "windows_embedded": 0,
    }
    assert fake_model.encoded == []


def test_ingest_reports_each_bad_file_and_goes_on(tmp_path, runner):
    folder = write_files(tmp_path / "docs", {**DOCS, "broken.pdf": b"%PDF-1.4 garbage", "empty.txt": ""})

    result = runner.invoke(app, ["ingest", str(folder)])

    assert result.exit_code == 0
    assert "docs/broken.pdf" in result.output and "docs/empty.txt" in result.output
    assert "2 added" in result.output and "2 failed" in result.output


def test_search_json_has_the_shared_contract(corpus, runner):
    result = runner.invoke(app, ["search", "phishing emails", "--json", "-k", "2"])

    payload = json.loads(result.output)
    assert set(payload) == {"query", "hits", "corrections"}
    assert payload["query"] == "phishing emails"
    assert set(payload["hits"][0]) == HIT_KEYS
    assert payload["hits"][0]["source"] == "docs/security.txt"
    assert payload["corrections"] == []


def test_search_says_how_a_misspelt_query_was_read(corpus, runner):
    result = runner.invoke(app, ["search", "phising emails", "-k", "1"])

    assert result.exit_code == 0
    assert "Read “phising” as “phishing”." in result.output
    assert "docs/security.txt" in result.output

    typed = runner.invoke(app, ["search", "phising emails", "-k", "1", "--as-typed", "--json"])
    assert typed.exit_code == 0 and json.loads(typed.output)["corrections"] == []


def test_ask_json_has_the_shared_contract(corpus, runner):
    result = runner.invoke(app, ["ask", "How far ahead should flights be booked through the travel desk?", "--json"])

    payload = json.loads(result.output)
    assert set(payload) == {"question", "answer_id", "answered", "answer", "citations", "passages", "corrections"}
    assert payload["corrections"] == []
    assert payload["answered"] is True
    assert set(payload["citations"][0]) == CITATION_KEYS
    assert "two weeks ahead" in payload["citations"][0]["quote"]
    assert set(payload["passages"][0]) == HIT_KEYS
    citation = payload["citations"][0]
    assert citation["cite"] == f'"{citation["quote"]}" (Travel, line 2, docs/travel.txt)'
    assert citation["cite_markdown"] == (
        f'"{citation["quote"]}" ([Travel](/?doc={citation["document_id"]}&start={citation["start"]}'
        f'&end={citation["end"]}&h={citation["url"][-8:]}), line 2, docs/travel.txt)'
    )


def test_ask_says_how_it_read_a_misspelt_question_and_answers_it(corpus, runner):
    result = runner.invoke(app, ["ask", "How far ahead should flihgts be booked through the travel desk?"])

    assert result.exit_code == 0, result.output
    assert "Read “flihgts” as “flights”." in result.output
    assert "two weeks ahead" in result.output


def test_ask_reads_questions_from_stdin_one_json_line_each(corpus, runner, fake_model):
    questions = "Which class is the default for short flights?\n\nWhere do I report phishing emails?\n"

    result = runner.invoke(app, ["ask", "--json", "-"], input=questions)

    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["question"] for line in lines] == [
        "Which class is the default for short flights?", "Where do I report phishing emails?"]
    assert lines[1]["citations"][0]["source"] == "docs/security.txt"


def test_readable_answers_from_stdin_each_follow_their_question(corpus, runner):
    questions = "Which class is the default for short flights?\nWhere do I report phishing emails?\n"

    result = runner.invoke(app, ["ask", "-"], input=questions)

    assert result.exit_code == 0, result.output
    output = result.output
    first, second = output.index("Q: Which class is the default"), output.index("Q: Where do I report phishing")
    assert first < output.index("Economy class is the default") < second < output.index("Report phishing emails to")


def test_ingest_off_a_terminal_logs_plain_progress_lines(tmp_path, runner):
    folder = write_files(tmp_path / "docs", DOCS)

    result = runner.invoke(app, ["ingest", str(folder)])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # The model's load is labelled, then files are counted; the last count is the whole.
    assert lines[0] == "ingest: loading the embedding model (the first run exports it)"
    assert "ingest: 2/2 files" in lines
    assert "0/?" not in result.output


def test_docs_at_80_columns_keeps_whole_paths(tmp_path, runner):
    name = "a-rather-long-file-name-about-travel-and-the-booking-rules.txt"
    folder = write_files(tmp_path / "documents-kept-by-the-office", {name: DOCS["travel.txt"]})
    runner.invoke(app, ["ingest", str(folder)])

    result = runner.invoke(app, ["docs"], env={"COLUMNS": "80"})

    assert result.exit_code == 0, result.output
    rows = [line.split("│") for line in result.output.splitlines() if line.startswith("│")]
    assert all(len(line) <= 80 for line in result.output.splitlines())
    assert "…" not in result.output
    # The source column's cells, read down the table, give the whole path.
    source = "".join(cells[3].strip() for cells in rows)
    assert source == f"documents-kept-by-the-office/{name}"


def test_readable_answer_shows_quote_and_citation(corpus, runner):
    result = runner.invoke(app, ["ask", "Where do I report phishing emails?"])

    assert result.exit_code == 0
    quote = "Report phishing emails to the security team with the report button."
    # The citation as a reader would paste it (the console may wrap it).
    expected = f'[1] "{quote}" (Security, line 2, docs/security.txt)'
    assert expected in " ".join(result.output.split())


def test_docs_lists_the_documents(corpus, runner):
    result = runner.invoke(app, ["docs", "--json"])

    listed = json.loads(result.output)
    assert sorted(d["source"] for d in listed) == ["docs/security.txt", "docs/travel.txt"]
    assert all(d["chunks"] >= 1 and d["size"] > 0 for d in listed)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["search", "x", "-k", "0"], "k must be an integer from 1 to 50, got 0"),
        (["ask", "   "], "question must contain some text"),
        (["ingest", "no-such-folder"], "no such file or folder"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(corpus, runner, arguments, message):
    result = runner.invoke(app, arguments)

    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_eval_reports_the_measures(corpus, runner, tmp_path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        json.dumps({"question": "Where do I report phishing emails?", "answers": ["security team"], "answerable": True})
        + "\n"
        + json.dumps({"question": "What is the Wi-Fi password in Oslo?", "answers": [], "answerable": False})
        + "\n"
    )

    result = runner.invoke(app, ["eval", str(qa), "--json"])

    report = json.loads(result.output)
    assert report["questions"] == 2 and report["recall_at_1"] == 1.0
    assert report["declined_unanswerable"] == 1.0


def test_calibrate_reports_the_configured_threshold_and_the_ones_the_questions_favour(corpus, runner, tmp_path):
    qa = tmp_path / "qa.jsonl"
    lines = [
        {"question": "Where do I report phishing emails?", "answers": ["security team"], "answerable": True},
        {"question": "How far ahead are flights booked through the travel desk?", "answers": ["two weeks"], "answerable": True},
        {"question": "Which class is the default for short flights?", "answers": ["Economy"], "answerable": True},
        {"question": "What is the Wi-Fi password in Oslo?", "answers": [], "answerable": False},
    ]
    qa.write_text("".join(json.dumps(line) + "\n" for line in lines))

    result = runner.invoke(app, ["eval", str(qa), "--calibrate", "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert "configured threshold 0.5" in result.stderr
    # The fake reader gives the Wi-Fi question's best sentence no shared word: any threshold
    # above zero declines it and keeps the three answerable questions answered.
    for fit in ("balanced", "at_most_5pc_wrong"):
        assert report[f"{fit}_threshold"] > 0.0
        assert report[f"{fit}_declined_unanswerable"] == 1.0 and report[f"{fit}_declined_answerable"] == 0.0
    assert report["declined_unanswerable"] == 1.0


def test_eval_squad_builds_a_library_of_the_articles_and_asks_their_questions(runner, tmp_path):
    context = "The garage under building B has forty parking spaces. Visitors park there for free."
    squad = {"version": "v2.0", "data": [{"title": "Parking_rules", "paragraphs": [{"context": context, "qas": [
        {"id": "a", "question": "How many parking spaces does the garage under building B have?", "is_impossible": False,
         "answers": [{"text": "forty", "answer_start": context.index("forty")}]},
        {"id": "u", "question": "Which wizard guards the dragon tower?", "is_impossible": True, "answers": []},
    ]}]}]}
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(squad))

    result = runner.invoke(app, ["eval", "--squad", str(path), "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["articles"] == 1 and report["answerable"] == 1 and report["unanswerable"] == 1
    assert report["answer_hit_rate"] == 1.0 and report["recall_at_1"] == 1.0
    assert report["declined_unanswerable"] == 1.0
    # The library was temporary: nothing was left in the index the command was pointed at.
    assert not (tmp_path / "index").exists() or not any((tmp_path / "index").iterdir())


def test_eval_of_a_squad_v1_file_says_it_has_no_unanswerable_questions_to_decline(runner, tmp_path):
    context = "The garage under building B has forty parking spaces. Visitors park there for free."
    squad = {"version": "1.1", "data": [{"title": "Parking_rules", "paragraphs": [{"context": context, "qas": [
        {"id": "a", "question": "How many parking spaces does the garage under building B have?",
         "answers": [{"text": "forty", "answer_start": context.index("forty")}]},
    ]}]}]}
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(squad))

    result = runner.invoke(app, ["eval", "--squad", str(path)])

    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "declined_unanswerable" in line)
    assert "no such questions" in row
    assert "0.0000" not in row


def test_serve_on_a_busy_port_says_so_before_loading_anything(tmp_path, runner):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["serve", "--port", str(port), "--index", str(tmp_path / "index")])

    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "--port" in result.output
    # Nothing was opened or made: the check comes first.
    assert not (tmp_path / "index").exists()
