"""Crashes and contention: a killed ingest leaves a usable, consistent index; writers take turns."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from app.service import Sourcebook
from tests.fakes import FakeEmbedder
from tests.helpers import REPO, write_files
from ui.api import ErrorResponse

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


@pytest.mark.slow
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
        assert service.search("on-call rota Monday", k=1).hits[0].source == "docs/earlier/oncall.txt"
        counts.append(service.counts()[0])
    # The kills landed at different stages, and each run went further.
    assert counts == sorted(counts) and counts[0] < 26

    run_slow_ingest(settings.index_dir, folder, kill_after=None)
    service = open_library(settings)
    assert_consistent(service)
    assert service.counts()[0] == 26
    assert service.search("decision 161 topic 23", k=1).hits[0].source == "docs/new/note-23.txt"
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
            for hit in service.search("meeting note decision topic", k=10).hits:
                # Every passage seen belongs to a whole stored document, at its stated place.
                document = service.document(hit.document_id)
                assert document.text[hit.start : hit.end] == hit.text
                seen.add(hit.source)
            assert service.search("on-call rota Monday", k=1).hits[0].source == "docs/earlier/oncall.txt"
        except Exception as error:  # noqa: BLE001 - any failure while the ingest runs is the finding
            failures.append(repr(error))
    writer.join()

    assert failures == []
    assert len(seen) > 1  # the searches really ran while documents were arriving
    assert_consistent(service)


# --- the corpus folder and the store agree after any crash (issue 13, item 4) --------------
def versions(number: int, label: str) -> bytes:
    return f"{label.title()} {number}\nThe {label} file number {number} holds version text {label}-{number}.\n".encode()


def file_hashes_under(corpus: Path) -> dict[str, str]:
    """{source: sha256} of the documents a crash-free ingest of the corpus folder would store."""
    return {
        f"corpus/{path.relative_to(corpus).as_posix()}": hashlib.sha256(path.read_bytes()).hexdigest()
        for path in corpus.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(corpus).parts)
    }


def kept_bytes(corpus: Path) -> list[bytes]:
    return [path.read_bytes() for path in corpus.rglob("*") if path.is_file()]


def assert_folder_store_and_indexes_agree(root: Path) -> None:
    """The store holds exactly the corpus folder's files, and both indexes were saved for the store as it is."""
    from retrieval.index import VectorIndex
    from retrieval.keyword import KeywordIndex
    from retrieval.library import KEYWORD_DIR, STORE_FILE, VECTORS_FILE
    from retrieval.store import Store

    corpus, index_dir = root / "corpus", root / "index"
    store = Store(index_dir / STORE_FILE)
    try:
        assert store.file_hashes() == file_hashes_under(corpus)
        vectors = VectorIndex.load(index_dir / VECTORS_FILE, dim=FakeEmbedder().dim, generation=store.generation)
        keywords = KeywordIndex.load(index_dir / KEYWORD_DIR, generation=store.generation)
        assert vectors is not None and keywords is not None, "an index was left behind the store"
        assert np.array_equal(vectors.ids(), store.vector_ids())
        assert keywords.count == len(store.chunk_rowids())
    finally:
        store.close()
    assert not [path.name for path in corpus.rglob("*.part")], "a temporary file was left in the corpus"


class CrashingServer:
    """`sourcebook serve` (fake model) over root/corpus and root/index, dying at one point of a write."""

    def __init__(self, root: Path, point: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.crashing_server", point, "serve", "--port", str(self.port),
             "--index", str(root / "index"), "--corpus", str(root / "corpus")],
            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stdout.read()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.process.kill()
        raise AssertionError(f"the server did not come up: {self.process.communicate()[0][-2000:]}")

    def document_id(self, source: str) -> str:
        documents = httpx.get(f"{self.url}/api/documents", timeout=10).json()
        return next(d["id"] for d in documents if d["source"] == source)

    def killed_by(self, request: Callable[[], httpx.Response]) -> None:
        """Send a write that reaches the crash point: no answer comes, and the process died of SIGKILL."""
        try:
            response = request()
        except httpx.HTTPError:
            response = None
        assert response is None, f"the write was answered ({response.status_code}) instead of crashing"
        assert self.process.wait(timeout=30) == -signal.SIGKILL

    def stop(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=30)


# (operation, crash point): every point an upload, a replace and a delete pass through.
CRASHES = [
    ("upload", "rename"), ("upload", "store"), ("upload", "save"),
    ("replace", "link"), ("replace", "rename"), ("replace", "store"), ("replace", "save"),
    ("delete", "link"), ("delete", "remove"), ("delete", "save"),
]


@pytest.mark.slow
def test_a_server_killed_at_any_point_of_a_write_agrees_with_its_folder_after_restart_and_loses_nothing(tmp_path):
    corpus = tmp_path / "corpus"
    base = {f"base-{n}.txt": versions(n, "base") for n in range(4)}
    doomed = {f"doomed-{n}.txt": versions(n, "doomed") for n in range(3)}
    write_files(corpus, {**base, **doomed})
    every_version = set(base.values()) | set(doomed.values())
    # What each crash must leave once the next start has reconciled: {source: bytes, or None for gone}.
    expected: dict[str, bytes | None] = {}
    replaced, deleted = iter(base), iter(doomed)

    for number, (operation, point) in enumerate(CRASHES):
        server = CrashingServer(tmp_path, point)  # its start reconciles what the last crash left
        assert_folder_store_and_indexes_agree(tmp_path)
        for source, content in expected.items():
            assert (corpus / source).read_bytes() == content if content else not (corpus / source).exists(), source
        assert every_version <= set(kept_bytes(corpus)), "a version was lost"
        expected = {}
        if operation == "upload":
            name, content = f"new-{number}.txt", versions(number, "new")
            server.killed_by(lambda: httpx.post(f"{server.url}/api/documents", files={"files": (name, content)}, timeout=30))
            # Cut short before the rename, the upload never happened (it was never answered).
            expected[name] = None if point == "rename" else content
        elif operation == "replace":
            name = next(replaced)
            content = versions(number, "replacement")
            server.killed_by(lambda: httpx.post(f"{server.url}/api/documents", files={"files": (name, content)}, timeout=30))
            expected[name] = base[name] if point in {"link", "rename"} else content
        else:
            name = next(deleted)
            document_id = server.document_id(f"corpus/{name}")
            server.killed_by(lambda: httpx.delete(f"{server.url}/api/documents/{document_id}", timeout=30))
            # Killed between linking the file into .deleted/ and unlinking it, the delete never happened.
            expected[name] = doomed[name] if point == "link" else None
        if expected[name]:
            every_version.add(expected[name])

    server = CrashingServer(tmp_path, "none")
    try:
        assert_folder_store_and_indexes_agree(tmp_path)
        assert every_version <= set(kept_bytes(corpus))
        # The server serves what the folder holds: a replacement finished at start is found by its text.
        hits = httpx.post(f"{server.url}/api/search", json={"query": "replacement 6 version text", "k": 1}, timeout=30).json()
        assert hits["hits"][0]["source"] == "corpus/base-3.txt"
        assert hits["hits"][0]["text"] == versions(6, "replacement").decode().strip()
    finally:
        server.stop()
    assert {path.name for path in corpus.iterdir() if path.is_file()} == {
        "base-0.txt", "base-1.txt", "base-2.txt", "base-3.txt", "doomed-0.txt", "new-1.txt", "new-2.txt",
    }


def test_reconcile_takes_in_what_changed_while_stopped_and_keeps_the_text_of_what_went(make_service, tmp_path):
    corpus = write_files(tmp_path / "corpus", {"stays.txt": "Stays\nThe garden gate is painted green.\n",
                                               "edited.txt": "Edited\nThe lighthouse lamp burns oil.\n",
                                               "gone.txt": "Gone\nThe orchard grows seven kinds of pear.\n"})
    service = make_service(corpus_dir=corpus)
    service.ingest(corpus)
    (corpus / "gone.txt").unlink()
    (corpus / "edited.txt").write_text("Edited\nThe lighthouse lamp is electric now.\n", encoding="utf-8")
    (corpus / "added.txt").write_text("Added\nThe ferry leaves at dawn.\n", encoding="utf-8")
    (corpus / ".late.txt.part").write_bytes(b"half an upl")

    report = make_service(corpus_dir=corpus).reconcile()

    assert (report.added, report.updated, report.removed) == (["corpus/added.txt"], ["corpus/edited.txt"], ["corpus/gone.txt"])
    assert_folder_store_and_indexes_agree(tmp_path)
    recovered = list((corpus / ".deleted").glob("gone.txt.*.txt"))
    assert [path.read_text(encoding="utf-8") for path in recovered] == ["Gone\nThe orchard grows seven kinds of pear.\n"]
    assert make_service(corpus_dir=corpus).search("pear orchard", k=1).hits[0].source != "corpus/gone.txt"
    assert make_service(corpus_dir=corpus).reconcile().summary() == {
        "added": 0, "updated": 0, "removed": 0, "unchanged": 3, "failed": 0,
    }


# --- a full disk (issue 13, lesser item) ---------------------------------------------------
def disk_full(written: Path) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", str(written))


def files_in(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


@pytest.fixture
def full_disk_client(make_service, tmp_path):
    from fastapi.testclient import TestClient

    from ui.server import create_app

    service = make_service(corpus_dir=tmp_path / "corpus")
    with TestClient(create_app(service, with_page=False), raise_server_exceptions=False) as client:
        yield client, service


def test_an_upload_onto_a_full_disk_is_a_json_507_leaving_no_half_written_file(full_disk_client, tmp_path, monkeypatch):
    client, service = full_disk_client
    write_bytes = Path.write_bytes

    def half_then_full(path: Path, data: bytes) -> int:
        write_bytes(path, data[: len(data) // 2])
        raise disk_full(path)

    monkeypatch.setattr(Path, "write_bytes", half_then_full)
    response = client.post("/api/documents", files={"files": ("notes.txt", b"Notes\nThe boiler is serviced in May.\n")})

    assert response.status_code == 507
    assert "disk is full" in ErrorResponse.model_validate(response.json()).error
    assert files_in(tmp_path / "corpus") == []
    assert service.counts() == (0, 0)


@pytest.mark.parametrize(
    ("failure", "status", "says"),
    [
        (disk_full(Path("/srv/index/store.db")), 507, "the server's disk is full"),
        (sqlite3.OperationalError("database or disk is full"), 507, "the server's disk is full"),
        (PermissionError(errno.EACCES, "Permission denied", "/srv/index/store.db"), 500,
         "the server could not read or write a file (Permission denied)"),
        (sqlite3.OperationalError("unable to open database file /srv/index/store.db"), 500,
         "the document store could not be read or written; see the server's log"),
    ],
    ids=["file-disk-full", "store-disk-full", "file-other", "store-other"],
)
def test_a_file_or_store_failure_is_507_when_the_disk_is_full_and_else_500_naming_no_server_path(
    full_disk_client, monkeypatch, failure, status, says
):
    client, service = full_disk_client

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(service, "search", fail)
    response = client.post("/api/search", json={"query": "boiler"})

    assert response.status_code == status
    error = ErrorResponse.model_validate(response.json()).error
    assert error.startswith(says) and "/srv" not in error


def test_an_index_save_onto_a_full_disk_leaves_no_temporary_file_and_the_next_start_catches_up(
    full_disk_client, make_service, tmp_path, monkeypatch
):
    import faiss

    client, _ = full_disk_client
    write_index = faiss.write_index

    def half_then_full(index, path: str) -> None:
        write_index(index, path)
        with open(path, "r+b") as handle:
            handle.truncate(16)
        raise disk_full(Path(path))

    monkeypatch.setattr(faiss, "write_index", half_then_full)
    response = client.post("/api/documents", files={"files": ("notes.txt", b"Notes\nThe boiler is serviced in May.\n")})

    assert response.status_code == 507
    ErrorResponse.model_validate(response.json())
    index_dir = tmp_path / "index"
    assert not [name for name in files_in(index_dir) if name.endswith((".part", ".tmp"))]
    monkeypatch.undo()
    # The store committed the document before the save failed; the next start rebuilds the index from it.
    reopened = make_service(corpus_dir=tmp_path / "corpus")
    assert_consistent(reopened)
    assert reopened.search("boiler serviced", k=1).hits[0].source == "corpus/notes.txt"
