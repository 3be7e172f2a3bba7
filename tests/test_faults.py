"""Crashes and contention: a killed ingest leaves a usable, consistent index; writers take turns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from retrieval.service import Sourcebook
from tests.conftest import REPO, write_files
from tests.fakes import FakeEmbedder

EARLIER = {
    "earlier/handbook.txt": "Handbook\nThe handbook explains how the team plans its releases every quarter.\n",
    "earlier/oncall.txt": "On call\nThe on-call rota changes every Monday at nine in the morning.\n",
}


def new_documents(count: int) -> dict[str, str]:
    return {
        f"new/note-{n:02d}.txt": f"Note {n}\nMeeting note number {n} records decision {n * 7} about topic {n}. "
        f"The follow-up for topic {n} is due in week {n + 1}.\n"
        for n in range(count)
    }


def open_library(settings) -> Sourcebook:
    return Sourcebook(settings, embedder=FakeEmbedder())


def run_slow_ingest(index_dir: Path, folder: Path, *, kill_after: float | None) -> subprocess.CompletedProcess | None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.slow_ingest", str(index_dir), str(folder)],
        cwd=folder.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    if kill_after is None:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        return subprocess.CompletedProcess(process.args, 0, out, err)
    # Wait until the run has really started (imports take a moment), then kill it.
    assert process.stdout.readline().strip() == "started"
    time.sleep(kill_after)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return None


def assert_consistent(service: Sourcebook) -> None:
    store = service.library.store
    assert np.array_equal(service.library.index.ids(), store.vector_ids())
    assert service.library.keywords.count == len(store.chunk_rowids())
    sources = [d.source for d in service.documents()]
    assert len(sources) == len(set(sources))
    assert all(d.chunks >= 1 for d in service.documents())


def test_sigkill_at_many_points_never_loses_or_duplicates_anything(settings, tmp_path):
    folder = write_files(tmp_path / "docs", EARLIER)
    open_library(settings).ingest(folder)
    write_files(folder, new_documents(24))
    earlier = {"docs/earlier/handbook.txt", "docs/earlier/oncall.txt"}

    counts = []
    for kill_after in (0.0, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8):
        run_slow_ingest(settings.index_dir, folder, kill_after=kill_after)
        service = open_library(settings)
        assert_consistent(service)
        assert earlier <= {d.source for d in service.documents()}
        assert service.search("on-call rota Monday", k=1)[0].source == "docs/earlier/oncall.txt"
        counts.append(service.counts()[0])
    # The kills landed at different stages, and each run went further.
    assert counts == sorted(counts) and counts[0] < 26

    run_slow_ingest(settings.index_dir, folder, kill_after=None)
    service = open_library(settings)
    assert_consistent(service)
    assert service.counts()[0] == 26
    assert service.search("decision 161 topic 23", k=1)[0].source == "docs/new/note-23.txt"
    top_keyword = service.library.keywords.search("decision 161", 1)[0][0]
    assert service.library.store.chunks([top_keyword])[top_keyword].source == "docs/new/note-23.txt"


def test_two_ingests_at_once_take_turns(settings, tmp_path):
    folder = write_files(tmp_path / "docs", new_documents(6))
    first, second = open_library(settings), open_library(settings)
    inside, overlaps = [], []
    original = first.library.store.put

    def watched(store_put):
        def put(*args, **kwargs):
            inside.append(1)
            overlaps.append(len(inside) > 1)
            time.sleep(0.01)
            try:
                return store_put(*args, **kwargs)
            finally:
                inside.pop()
        return put

    first.library.store.put = watched(original)
    second.library.store.put = watched(second.library.store.put)
    threads = [threading.Thread(target=s.ingest, args=(folder,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not any(overlaps)
    reopened = open_library(settings)
    assert_consistent(reopened)
    assert reopened.counts()[0] == 6


def test_queries_during_an_ingest_keep_working_and_see_whole_documents(settings, tmp_path):
    from tests.slow_ingest import SlowEmbedder

    folder = write_files(tmp_path / "docs", EARLIER)
    service = Sourcebook(settings, embedder=SlowEmbedder())
    service.ingest(folder)
    write_files(folder, new_documents(16))
    writer = threading.Thread(target=service.ingest, args=(folder,))
    failures, seen = [], set()

    writer.start()
    while writer.is_alive():
        try:
            for hit in service.search("meeting note decision topic", k=10):
                # Every passage seen belongs to a whole stored document, at its stated place.
                document = service.document(hit.document_id)
                assert document.text[hit.start : hit.end] == hit.text
                seen.add(hit.source)
            assert service.search("on-call rota Monday", k=1)[0].source == "docs/earlier/oncall.txt"
        except Exception as error:  # noqa: BLE001 - any failure while the ingest runs is the finding
            failures.append(repr(error))
    writer.join()

    assert failures == []
    assert len(seen) > 1  # the searches really ran while documents were arriving
    assert_consistent(service)
