"""Watching the corpus folder: a file dropped in is answerable within seconds, a removed one gone, a burst one ingest."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import watchfiles
from typer.testing import CliRunner

from app import service as service_module
from app.watch import CorpusWatcher, counts, describe
from tests.fakes import FakeEmbedder, FakeReader
from tests.helpers import write_files
from ui.cli import app

DOCS = {
    "travel.txt": "Travel\nBook flights through the travel desk at least two weeks ahead. "
    "Economy class is the default for flights under six hours.\n",
}
PARKING = "Parking\nVisitors park in the north garage; staff badges open the south garage gate.\n"
PARKING_QUESTION = "Where do visitors park?"
# Short steps, so a test waits a fraction of a second for a batch; the wait for an outcome is bounded.
STEP_MS, DEBOUNCE_MS = 50, 500
WAIT_SECONDS = 10.0
# Longer than a batch takes to be seen and ingested when nothing is wrong.
QUIET_SECONDS = 1.0


def eventually(condition, *, seconds: float = WAIT_SECONDS):
    """Poll `condition` until it returns something true, for at most `seconds`; return that, or fail."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    pytest.fail(f"not within {seconds} s: {condition.__doc__ or condition}")


def sources(service) -> set[str]:
    return {Path(d.source).name for d in service.documents()}


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_files(tmp_path / "corpus", DOCS)


@pytest.fixture
def service(make_service, corpus):
    service = make_service(corpus_dir=corpus)
    service.ingest(corpus)
    return service


@pytest.fixture
def watcher(service):
    with CorpusWatcher(service, step_ms=STEP_MS, debounce_ms=DEBOUNCE_MS) as watcher:
        yield watcher


# --- which changes count ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, wanted",
    [
        ("notes.txt", True),
        ("guides/security.md", True),
        (".sourcebookignore", True),
        (".deleted/notes.20250101T120000Z-1a2b3c4d.txt", False),
        (".notes.txt.swp", False),
        (".notes.txt.1a2b.part", False),
        ("notes.txt~", False),
        ("notes.txt.swp", False),
        ("report.pdf.part", False),
        ("report.pdf.crdownload", False),
        ("#notes.txt#", False),
        (".git/HEAD", False),
        ("guides/.hidden/notes.txt", False),
        ("index/store.sqlite", False),
    ],
)
def test_a_change_counts_unless_hidden_temporary_or_in_the_index(tmp_path, name, wanted):
    root = tmp_path / "corpus"
    assert counts(root / name, root=root, ignored=(root / "index",)) is wanted


def test_a_change_outside_the_folder_does_not_count(tmp_path):
    assert not counts(tmp_path / "elsewhere/notes.txt", root=tmp_path / "corpus")


def test_a_batch_is_described_by_name_a_few_at_most(tmp_path):
    changes = {(watchfiles.Change.added, str(tmp_path / f"doc{n}.txt")) for n in range(7)}
    changes.add((watchfiles.Change.deleted, str(tmp_path / "old/gone.md")))

    line = describe(changes, tmp_path)

    assert line == "doc0.txt (added), doc1.txt (added), doc2.txt (added), doc3.txt (added), doc4.txt (added) and 3 more"
    assert describe({(watchfiles.Change.deleted, str(tmp_path / "old/gone.md"))}, tmp_path) == "old/gone.md (deleted)"


def test_step_and_debounce_are_checked(service):
    with pytest.raises(ValueError, match="step_ms must be 1..debounce_ms, got step_ms=900, debounce_ms=100"):
        CorpusWatcher(service, step_ms=900, debounce_ms=100)


# --- a real watcher on a folder ---------------------------------------------------------------------
def test_a_dropped_file_is_answerable_and_a_removed_one_gone(service, watcher, corpus):
    assert not service.ask(PARKING_QUESTION).answered

    (corpus / "parking.txt").write_text(PARKING, encoding="utf-8")

    answer = eventually(lambda: (a := service.ask(PARKING_QUESTION)).answered and a)
    assert "north garage" in answer.answer
    assert {Path(c.source).name for c in answer.citations} == {"parking.txt"}
    report = eventually(lambda: watcher.last_report)
    assert (report.added, report.removed, report.failed) == (["corpus/parking.txt"], [], [])

    (corpus / "parking.txt").unlink()

    eventually(lambda: "parking.txt" not in sources(service))
    assert not service.ask(PARKING_QUESTION).answered
    assert all(Path(hit.source).name != "parking.txt" for hit in service.search("visitors park garage").hits)
    # Removed by hand, as at a server's start: its text is kept, so it can be restored.
    assert [kept.name for kept in service.deleted()] == ["parking.txt.txt"]
    assert sources(service) == {"travel.txt"}


def test_a_burst_of_rewrites_leaves_one_document_with_its_final_text(service, watcher, corpus, embedder):
    path = corpus / "parking.txt"
    for version in range(20):
        path.write_text(f"Parking\nRule {version}: visitors park on level {version} of the north garage.\n",
                        encoding="utf-8")

    def final_text_stored():
        """the last rewrite is what the store holds"""
        ids = [d.id for d in service.documents() if d.source.endswith("parking.txt")]
        return ids and "level 19 " in service.document(ids[0]).text and ids

    [document_id] = eventually(final_text_stored)
    time.sleep(QUIET_SECONDS)
    # Debounced: twenty edits, a few ingests at most.
    assert 1 <= watcher.ingests <= 3
    [parking] = [d for d in service.documents() if d.source.endswith("parking.txt")]
    assert parking.id == document_id and sources(service) == {"travel.txt", "parking.txt"}
    hits = service.search("visitors park north garage level", k=20).hits
    parking_hits = [hit for hit in hits if hit.document_id == document_id]
    assert len(parking_hits) == parking.chunks == 1
    assert "level 19 of the north garage" in parking_hits[0].text
    assert len({hit.chunk_id for hit in hits}) == len(hits) == service.counts()[1]


def test_changes_in_deleted_hidden_or_temporary_files_start_no_ingest(service, watcher, corpus):
    write_files(corpus, {
        ".deleted/parking.20250101T120000Z-1a2b3c4d.txt": PARKING,
        ".parking.txt.swp": "swap",
        "parking.txt~": PARKING,
        "parking.txt.part": PARKING,
    })
    time.sleep(QUIET_SECONDS)
    assert watcher.ingests == 0 and sources(service) == {"travel.txt"}

    # The watcher was listening all along: a real file is taken up.
    (corpus / "parking.md").write_text("# " + PARKING, encoding="utf-8")

    eventually(lambda: "parking.md" in sources(service))
    eventually(lambda: watcher.ingests >= 1)
    assert not any(name.startswith(".") or "deleted" in name for name in sources(service))


def test_a_bad_file_is_reported_and_watching_goes_on(service, watcher, corpus):
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7 this is not a PDF at all")

    report = eventually(lambda: watcher.last_report)
    assert [source for source, _ in report.failed] == ["corpus/broken.pdf"]
    assert watcher.alive

    (corpus / "parking.txt").write_text(PARKING, encoding="utf-8")

    eventually(lambda: service.ask(PARKING_QUESTION).answered)
    assert "broken.pdf" not in sources(service)


def test_an_upload_the_service_just_stored_is_not_embedded_again(service, watcher, embedder):
    [result] = service.upload([("parking.txt", PARKING.encode())])
    assert result.status == "added"
    embedder.encoded.clear()

    report = eventually(lambda: watcher.last_report)

    assert sorted(report.unchanged) == ["corpus/parking.txt", "corpus/travel.txt"]
    assert (report.added, report.updated, report.removed, report.failed) == ([], [], [], [])
    assert embedder.encoded == []
    assert sources(service) == {"travel.txt", "parking.txt"}


def test_a_delete_and_a_restore_through_the_service_are_taken_up_as_they_are(service, watcher, corpus):
    travel = next(d.id for d in service.documents() if d.source.endswith("travel.txt"))

    deletion = service.delete_document(travel)

    # The watcher's catch-up after the file left finds nothing more to do, and keeps no second copy.
    report = eventually(lambda: watcher.last_report)
    assert (report.added, report.removed, report.failed) == ([], [], [])
    assert [kept.kept_as for kept in service.deleted()] == [deletion.kept_as] and sources(service) == set()

    service.restore(travel)

    report = eventually(lambda: (r := watcher.last_report).unchanged and r)
    assert (report.added, report.unchanged, report.failed) == ([], ["corpus/travel.txt"], [])
    assert sources(service) == {"travel.txt"} and service.deleted() == []


def test_stopping_ends_the_thread_and_later_changes_are_not_taken_up(service, corpus):
    watcher = CorpusWatcher(service, step_ms=STEP_MS, debounce_ms=DEBOUNCE_MS).start()
    assert watcher.alive and "corpus-watcher" in {thread.name for thread in threading.enumerate()}

    assert watcher.stop(timeout=5) is True

    assert not watcher.alive
    assert "corpus-watcher" not in {thread.name for thread in threading.enumerate()}
    (corpus / "parking.txt").write_text(PARKING, encoding="utf-8")
    time.sleep(QUIET_SECONDS)
    assert watcher.ingests == 0 and sources(service) == {"travel.txt"}
    with pytest.raises(RuntimeError, match="started already"):
        watcher.start()


# --- sourcebook serve --watch ------------------------------------------------------------------------
@pytest.fixture
def fake_server(monkeypatch, tmp_path):
    """`serve` with the fake models, and instead of a server a function given the service (no page, no port)."""
    embedder = FakeEmbedder()
    monkeypatch.setattr(service_module, "load_embedder", lambda settings: embedder)
    monkeypatch.setattr(service_module, "Reader", lambda directory, **options: FakeReader())
    monkeypatch.setenv("SOURCEBOOK_ABSTAIN_BELOW", "0.5")
    import uvicorn

    import ui.server

    serving = {}
    monkeypatch.setattr(ui.server, "create_app", lambda service: service)
    monkeypatch.setattr(uvicorn, "run", lambda service, **options: serving["while_serving"](service))
    return serving


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_watch_takes_up_a_dropped_file_and_stops_watching_when_the_server_stops(fake_server, corpus, tmp_path):
    seen = {}

    def while_serving(service):
        seen["watching"] = "corpus-watcher" in {thread.name for thread in threading.enumerate()}
        (corpus / "parking.txt").write_text(PARKING, encoding="utf-8")
        seen["answer"] = eventually(lambda: (a := service.ask(PARKING_QUESTION)).answered and a)

    fake_server["while_serving"] = while_serving

    result = CliRunner().invoke(app, ["serve", "--watch", "--port", str(free_port()), "--index", str(tmp_path / "index"),
                                      "--corpus", str(corpus)])

    assert result.exit_code == 0, result.output
    assert seen["watching"] is True
    assert "north garage" in seen["answer"].answer
    assert "watching" in result.output and str(corpus) in result.output
    assert "corpus-watcher" not in {thread.name for thread in threading.enumerate()}


def test_serve_watches_only_when_asked(fake_server, corpus, tmp_path):
    seen = {}
    fake_server["while_serving"] = lambda service: seen.setdefault(
        "threads", {thread.name for thread in threading.enumerate()})

    result = CliRunner().invoke(app, ["serve", "--port", str(free_port()), "--index", str(tmp_path / "index"),
                                      "--corpus", str(corpus)])

    assert result.exit_code == 0, result.output
    assert "corpus-watcher" not in seen["threads"]
    assert "watching" not in result.output
