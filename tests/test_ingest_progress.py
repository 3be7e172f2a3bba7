"""Progress of any ingest, whatever started it: told as it goes, kept in the index folder, shown on the Sources view."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.progress import AT_START, BY_COMMAND, BY_UPLOAD, BY_WATCHER, PROGRESS_FILE, STALE_SECONDS, IngestProgress, read_progress
from app.service import Sourcebook
from app.uploads import UploadResult
from app.watch import CorpusWatcher
from retrieval.settings import Settings
from tests.fakes import FakeReader
from tests.helpers import REPO, write_files
from tests.slow_ingest import SlowEmbedder
from ui.web import PageEvents, render_ingest_status, render_upload_progress

TOPICS = ["rowing", "chess", "choir", "budget", "garden", "archive", "canteen", "parking", "library", "darkroom"]
# Bounds on waiting for another process or the watcher; each is far longer than the work takes.
WAIT_SECONDS = 60.0
RUNNING = re.compile(r"Indexing, started by the folder watcher: (\d+) of 5 files done")


def note(topic: str) -> str:
    return f"{topic.title()} notes\n\nThe {topic} team meets on Mondays in the room of the {topic} club.\n"


def notes(topics: list[str]) -> dict[str, str]:
    return {f"{topic}.txt": note(topic) for topic in topics}


def eventually(condition, *, seconds: float = WAIT_SECONDS, every: float = 0.05):
    """Poll `condition` until it returns something true, for at most `seconds`; return that, or fail."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(every)
    pytest.fail(f"not within {seconds} s: {condition.__doc__ or condition}")


# --- reported as it goes -------------------------------------------------------------------------
def test_reconcile_names_each_file_as_it_is_read_and_counts_to_the_end(make_service, tmp_path):
    names = sorted(notes(TOPICS[:5]))
    corpus = write_files(tmp_path / "corpus", notes(TOPICS[:5]))
    service = make_service(corpus_dir=corpus)
    seen: list[tuple[int, int, str | None]] = []

    report = service.reconcile(progress=lambda done, total, current=None: seen.append((done, total, current)))

    assert sorted(Path(source).name for source in report.added) == names
    assert {total for _, total, _ in seen} == {5}
    assert [Path(current).name for *_, current in seen if current] == names
    done = [d for d, _, _ in seen]
    assert done == sorted(done) and seen[-1] == (5, 5, None)
    # The same record is in the index folder, for a page to read: how the catch-up ended.
    record = service.ingest_progress()
    assert (record.origin, record.running, record.done, record.total, record.current) == (AT_START, False, 5, 5, None)
    assert record.outcome == {"added": 5, "updated": 0, "removed": 0, "unchanged": 0, "failed": 0}
    assert record.pid == os.getpid() and record.error is None


def test_an_ingest_that_fails_is_kept_as_stopped_with_its_reason_not_as_running(make_service, embedder, tmp_path):
    folder = write_files(tmp_path / "docs", notes(TOPICS[:2]))
    service = make_service()

    def broken(texts):
        raise RuntimeError("the model went away")

    embedder.encode = broken
    with pytest.raises(RuntimeError, match="went away"):
        service.ingest(folder)

    record = service.ingest_progress()
    assert (record.origin, record.running, record.outcome) == (BY_COMMAND, False, None)
    assert record.error == "RuntimeError: the model went away"


# --- an upload, from the page or the HTTP API ------------------------------------------------------
def test_an_upload_names_each_file_as_it_is_indexed_and_counts_to_the_end(make_service, embedder):
    service = make_service()
    files = [("rowing.txt", note("rowing").encode()), ("minutes.xyz", b"not a kind of file read"),
             ("chess.txt", note("chess").encode())]
    seen: list[tuple] = []
    encode = embedder.encode

    def watched(texts):
        def told():
            """the progress record names the file whose text is being embedded"""
            record = read_progress(service.library.directory)
            return record and record.current and any(Path(record.current).stem in text for text in texts) and record

        # The record is written by a thread every quarter of a second: read it once it names this file.
        record = eventually(told)
        entry = (record.origin, record.running, record.done, record.total, record.current)
        if entry not in seen:
            seen.append(entry)
        return encode(texts)

    embedder.encode = watched
    results = service.upload(files)

    assert [result.status for result in results] == ["added", "failed", "added"]
    # Read by any Sources view while it went: the upload's files done of all three, the file indexed.
    assert seen == [(BY_UPLOAD, True, 0, 3, "rowing.txt"), (BY_UPLOAD, True, 2, 3, "chess.txt")]
    record = service.ingest_progress()
    assert (record.origin, record.running, record.done, record.total, record.current) == (BY_UPLOAD, False, 3, 3, None)
    assert record.outcome == {"added": 2, "updated": 0, "removed": 0, "unchanged": 0, "failed": 1}
    assert record.pid == os.getpid() and record.error is None
    status, *_ = PageEvents(service).ingest_status(None)
    assert "The last ingest, started by an upload, finished" in status
    assert "2 added, 0 updated, 0 removed, 0 unchanged, 1 failed." in status


def test_an_upload_that_fails_is_kept_as_stopped_with_its_reason(make_service, embedder):
    service = make_service()

    def broken(texts):
        raise RuntimeError("the model went away")

    embedder.encode = broken
    with pytest.raises(RuntimeError, match="went away"):
        service.upload([("rowing.txt", note("rowing").encode()), ("chess.txt", note("chess").encode())])

    record = service.ingest_progress()
    assert (record.origin, record.running, record.outcome) == (BY_UPLOAD, False, None)
    assert (record.done, record.total) == (0, 2)
    assert record.error == "RuntimeError: the model went away"
    assert service.documents() == []


def test_an_upload_given_up_part_way_is_kept_as_stopped_not_running(make_service):
    service = make_service()
    each = service.upload_each([("rowing.txt", note("rowing").encode()), ("chess.txt", note("chess").encode())])

    assert next(each).status == "added"
    each.close()

    record = service.ingest_progress()
    assert (record.origin, record.running, record.done, record.total) == (BY_UPLOAD, False, 1, 2)
    assert record.error == "the upload was given up after 1 of 2 files"


def test_a_page_upload_shows_its_uploader_each_file_and_is_one_record_for_every_sources_view(
    make_service, tmp_path, monkeypatch
):
    received = tmp_path / "gradio"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(received))
    topics = TOPICS[:3]
    # Gradio keeps each uploaded file in a folder of its own.
    paths = [
        write_files(received / str(n), {f"{topic}.txt": note(topic)}) / f"{topic}.txt" for n, topic in enumerate(topics)
    ]
    events = PageEvents(make_service())
    events.uploaded.update(str(path) for path in paths)

    shown = [markup for markup, *_ in events.upload([str(path) for path in paths], "")]

    # The uploader's page, as before: the file being indexed and those done, one by one, then the results.
    added = [UploadResult(f"{topic}.txt", "added") for topic in topics]
    assert shown[:3] == [render_upload_progress(added[:n], 3, f"{topic}.txt") for n, topic in enumerate(topics)]
    assert len(shown) == 4 and shown[3].count("status-added") == 3
    # One record for the whole upload, which every Sources view reads.
    record = events.service.ingest_progress()
    assert (record.origin, record.running, record.done, record.total) == (BY_UPLOAD, False, 3, 3)
    assert record.outcome == {"added": 3, "updated": 0, "removed": 0, "unchanged": 0, "failed": 0}


# --- read by the server, from another process ------------------------------------------------------
def slow_ingest(index_dir: Path, folder: Path, *, seconds_per_batch: float) -> subprocess.Popen:
    """`Sourcebook.ingest` (as `sourcebook ingest` runs it) in another process, with a slow fake model."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.slow_ingest", str(index_dir), str(folder), str(seconds_per_batch)],
        cwd=folder.parent, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout.readline().strip() == "started"
    return process


@pytest.mark.slow  # starts an ingest process and kills it
def test_an_ingest_in_another_process_is_read_as_it_goes_and_a_killed_one_ignored(settings, tmp_path):
    folder = write_files(tmp_path / "docs", notes(TOPICS))
    index = settings.index_dir

    process = slow_ingest(index, folder, seconds_per_batch=0.4)
    try:
        def part_way():
            """the other process's ingest is read part-way"""
            record = read_progress(index)
            return record and record.running and 0 < record.done < record.total and record

        record = eventually(part_way)
        assert (record.origin, record.pid, record.total) == (BY_COMMAND, process.pid, 10)
        assert record.seconds_left() > 0
        out, err = process.communicate(timeout=WAIT_SECONDS)
        assert process.returncode == 0, err
    finally:
        process.kill()
    record = read_progress(index)
    assert (record.running, record.pid, record.done, record.total) == (False, process.pid, 10, 10)
    assert record.outcome == {"added": 10, "updated": 0, "removed": 0, "unchanged": 0, "failed": 0}

    # A second run, killed part-way (a crash): its record says running, from a process that is gone.
    write_files(folder, {name: text + "Updated.\n" for name, text in notes(TOPICS).items()})
    process = slow_ingest(index, folder, seconds_per_batch=0.4)
    try:
        eventually(lambda: (record := read_progress(index)) and record.running and record.pid == process.pid)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=WAIT_SECONDS)
    left = IngestProgress.from_json((index / PROGRESS_FILE).read_text(encoding="utf-8"))
    assert left.running and left.pid == process.pid

    assert read_progress(index) is None


def test_a_running_record_not_updated_for_long_is_ignored_though_a_process_of_its_id_lives(tmp_path):
    now = time.time()

    def left_by(*, updated: float, host: str = socket.gethostname(), pid: int = os.getpid()) -> IngestProgress | None:
        record = IngestProgress(origin=BY_COMMAND, pid=pid, host=host, started=now - 60, updated=updated, done=1, total=4)
        (tmp_path / PROGRESS_FILE).write_text(record.to_json(), encoding="utf-8")
        return read_progress(tmp_path, now=now)

    assert left_by(updated=now - 5).done == 1
    # This process lives, but its id may have been taken by another since the record was written.
    assert left_by(updated=now - STALE_SECONDS - 1) is None
    # Written on another machine (an index on a shared disk): its process id says nothing here.
    assert left_by(updated=now - 5, host="elsewhere", pid=2**22 + 1).done == 1
    (tmp_path / PROGRESS_FILE).write_text('{"origin": "sourcebook ingest", "pid": ', encoding="utf-8")
    assert read_progress(tmp_path, now=now) is None


# --- on the page's Sources view --------------------------------------------------------------------
@pytest.fixture
def watched(settings, tmp_path):
    """A service over a small corpus with a model slowed at will, its watcher running."""
    corpus = write_files(tmp_path / "corpus", notes(TOPICS[:1]))
    embedder = SlowEmbedder(batch_size=1)
    embedder.delay = 0.0
    service = Sourcebook(Settings(**{**settings.model_dump(), "corpus_dir": corpus}), embedder=embedder,
                         reader=FakeReader())
    service.reconcile()
    with CorpusWatcher(service, step_ms=50, debounce_ms=300):
        yield service, corpus, embedder


def test_the_sources_view_shows_a_watched_ingest_as_it_goes_and_then_how_it_ended(watched):
    service, corpus, embedder = watched
    events = PageEvents(service)
    status, table, _, seen = events.ingest_status(None)
    assert "The last ingest, started by the server&#x27;s catch-up at its start, finished" in status
    embedder.delay = 0.4

    write_files(corpus, notes(TOPICS[1:5]))

    def running():
        """the view shows the watcher's ingest part-way: n of 5 files"""
        status, table, _, now_seen = events.ingest_status(seen)
        found = RUNNING.search(status)
        return found and int(found[1]) < 5 and (status, table, now_seen)

    status, table, seen = eventually(running, every=0.1)
    assert '<progress value="' in status and "max=\"5\"" in status
    assert not isinstance(table, list) and seen == 0.0  # the table is left as it is while the ingest runs

    def ended():
        """the view says how the watcher's ingest ended"""
        status, table, _, _ = events.ingest_status(seen)
        return "finished" in status and (status, table)

    status, table = eventually(ended, every=0.1)
    assert "The last ingest, started by the folder watcher, finished" in status
    assert "4 added, 0 updated, 0 removed, 1 unchanged, 0 failed." in status
    # Once it has finished the table is listed again, with the new documents.
    assert {row[0] for row in table} == {f"{topic.title()} notes" for topic in TOPICS[:5]}


def test_a_running_ingest_is_drawn_with_its_file_escaped_and_the_time_left_at_its_pace():
    name = 'corpus/<img src=x onerror="alert(1)">.txt'
    record = IngestProgress(origin=BY_COMMAND, pid=1, host="here", started=100.0, updated=130.0, done=3, total=9,
                            current=name)

    markup = render_ingest_status(record, now=140.0)

    assert "<img" not in markup and "&lt;img src=x" in markup
    assert '<progress value="3" max="9">' in markup
    # 3 files in 30 s: 60 s for the other 6 as the record was written, 10 s of which have passed.
    assert "Indexing, started by sourcebook ingest: 3 of 9 files done; reading" in markup
    assert "about 50 s left" in markup
    ended = IngestProgress(origin=BY_COMMAND, pid=1, host="here", started=100.0, updated=160.0, finished=160.0,
                           error="OSError: disk full <b>")
    stopped = render_ingest_status(ended, now=200.0)
    assert "started by sourcebook ingest, stopped at" in stopped and "after 1 min: OSError: disk full &lt;b&gt;" in stopped


def test_a_catch_up_that_changes_nothing_leaves_the_last_real_ingest_shown(make_service, tmp_path):
    corpus = write_files(tmp_path / "corpus", notes(TOPICS[:2]))
    service = make_service(corpus_dir=corpus)
    service.reconcile()
    (corpus / "choir.txt").write_text(note("choir"))
    service.reconcile(origin=BY_WATCHER)
    shown = service.ingest_progress()
    assert (shown.origin, shown.outcome["added"]) == (BY_WATCHER, 1)

    # The watcher's next pass finds every file as stored (the file an upload just indexed, say):
    # the record of the pass that added choir.txt stays, not "0 added, 3 unchanged".
    report = service.reconcile(origin=BY_WATCHER)

    assert report.summary()["unchanged"] == 3
    assert service.ingest_progress() == shown
    # A pass that does change something is shown as ever.
    (corpus / "chess.txt").unlink()
    service.reconcile(origin=BY_WATCHER)
    assert service.ingest_progress().outcome["removed"] == 1
