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

from app.progress import AT_START, BY_COMMAND, PROGRESS_FILE, STALE_SECONDS, IngestProgress, read_progress
from app.service import Sourcebook
from app.watch import CorpusWatcher
from retrieval.settings import Settings
from tests.fakes import FakeReader
from tests.helpers import REPO, write_files
from tests.slow_ingest import SlowEmbedder
from ui.web import PageEvents, render_ingest_status

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
