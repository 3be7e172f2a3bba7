"""Writes are not starved by reads: an upload's model runs go first, and nothing waits on its model work."""

from __future__ import annotations

import threading
import time

from retrieval.embedder import ModelTurns, writer_first
from tests.fakes import FakeEmbedder
from tests.helpers import write_files


def in_thread(work) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_a_waiting_writer_run_goes_before_queries_that_came_first_and_holds_them_while_it_runs():
    turns = ModelTurns(2)
    turns.take(writer=False)
    turns.take(writer=False)  # both runs busy with queries
    order: list[str] = []

    def run(name: str, *, writer: bool, seconds: float = 0.0) -> None:
        turns.take(writer=writer)
        order.append(name)
        time.sleep(seconds)
        turns.give(writer=writer)

    queued = [in_thread(lambda n=n: run(f"query {n}", writer=False)) for n in range(3)]
    time.sleep(0.05)
    writer = in_thread(lambda: run("writer", writer=True, seconds=0.1))
    time.sleep(0.05)
    assert order == []  # everyone waits while both runs are busy

    turns.give(writer=False)  # one query run ends: the writer, last to come, takes it
    writer.join(timeout=5)
    turns.give(writer=False)
    for thread in queued:
        thread.join(timeout=5)
    assert order[0] == "writer"
    assert sorted(order[1:]) == ["query 0", "query 1", "query 2"]


def test_queries_wait_while_a_writer_runs_even_with_a_run_free():
    turns = ModelTurns(4)
    with writer_first():
        with turns:
            assert turns.writing
            query = in_thread(lambda: (turns.take(writer=False), turns.give(writer=False)))
            query.join(timeout=0.2)
            assert query.is_alive(), "a query ran beside the writer"
    query.join(timeout=5)
    assert not query.is_alive() and not turns.writing


class HeldEmbedder(FakeEmbedder):
    """Blocks in encode until released, once `hold` is set, like a model busy with a long upload."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.inside = threading.Event()
        self.release = threading.Event()

    def encode(self, texts):
        if self.hold:
            self.inside.set()
            assert self.release.wait(timeout=30)
        return super().encode(texts)


def test_a_delete_does_not_wait_for_an_uploads_model_work(settings, tmp_path):
    from app.service import Sourcebook

    corpus = write_files(tmp_path / "corpus", {"old.txt": "Old\nThe old memo is about the boiler.\n"})
    embedder = HeldEmbedder()
    service = Sourcebook(settings.model_copy(update={"corpus_dir": corpus}), embedder=embedder)
    service.reconcile()
    [old] = service.documents()

    embedder.hold = True
    upload = in_thread(lambda: service.upload([("new.txt", b"New\nThe new memo is about the garden.\n")]))
    assert embedder.inside.wait(timeout=10)  # the upload is in its model work
    started = time.monotonic()
    assert service.delete(old.id) >= 1
    deleted_in = time.monotonic() - started
    embedder.release.set()
    upload.join(timeout=30)

    assert deleted_in < 2.0, f"the delete waited {deleted_in:.1f} s for the upload"
    assert [d.source for d in service.documents()] == ["corpus/new.txt"]
