"""The ingest on Ray: the same store as a local ingest, incremental, and a killed worker is retried."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import ray  # the `ray` extra, which `make install` installs

from app import distributed
from app import service as service_module
from app.distributed import ModelRecipe, ingest_path_ray
from app.pipeline import Chunking, prepare
from app.service import Sourcebook
from ingest.records import Document
from ingest.sentences import sentence_spans
from retrieval.embedder import load_embedder, token_counter
from retrieval.settings import Settings
from tests.fakes import FakeEmbedder
from tests.helpers import CORPUS, REPO, with_model, write_files

# The tests that start a Ray runtime (or a driver process) are marked slow; the embedding actor's
# own work on a batch runs in this process in milliseconds, in the fast tier.


def paragraph(topic: str, n: int) -> str:
    return (
        f"The {topic} team meets every {['Monday', 'Tuesday', 'Friday'][n % 3]} at {9 + n % 4} o'clock. "
        f"Decision {n} about {topic} was recorded by the {topic} lead in week {n + 2}. "
        f"Questions about {topic} go to the {topic} channel before the review."
    )


HANDBOOK = {
    "guide/setup.md": "# Setup\n\nInstall the toolchain with the bootstrap script.\n\n"
    "## Access\n\nAsk the platform team for a VPN certificate on your first day.\n",
    "guide/holidays.txt": "Holidays\nEach employee has twenty-five days of paid leave per calendar year.\n",
    "guide/travel.html": "<html><head><title>Travel</title></head><body><h1>Travel</h1>"
    "<p>Book flights through the travel desk at least two weeks ahead.</p>"
    "<h2>Hotels</h2><p>Hotels near the office get a corporate rate of 120 euros a night.</p></body></html>",
    # Long enough for several passages and many windows each.
    **{
        f"teams/{topic}.txt": f"{topic.title()}\n\n" + "\n\n".join(paragraph(topic, n) for n in range(14)) + "\n"
        for topic in ("billing", "search", "mobile", "security", "data")
    },
    "teams/copy-of-billing.txt": "Billing\n\n" + "\n\n".join(paragraph("billing", n) for n in range(14)) + "\n",
    ".sourcebookignore": "drafts/*\n",
    "drafts/unfinished.txt": "Not a document yet.\n",
    "bad/binary.txt": bytes(range(256)) * 8,
    "bad/empty.md": "",
    "bad/program.exe": b"MZ\x90\x00",
}

QUERIES = ["VPN certificate first day", "paid leave per year", "hotel corporate rate", "decision 7 about search",
           "mobile team meets Friday"]


# --- the model the Ray workers build ---------------------------------------------------------


class RecordingEmbedder(FakeEmbedder):
    """The fake model, writing each load and each call to a log file the test can read.

    It lives in Ray worker processes, so the test sees it only through that file.
    """

    def __init__(self, *, log: str, delay: float = 0.0, batch_size: int = 32) -> None:
        super().__init__(batch_size=batch_size)
        self.log, self.delay = Path(log), delay
        self._write("load", [])

    def encode(self, texts):
        self._write("start", texts)
        time.sleep(self.delay)
        vectors = super().encode(texts)
        self._write("done", texts)
        return vectors

    def _write(self, event: str, texts) -> None:
        digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:12]
        with open(self.log, "a") as handle:
            handle.write(json.dumps({"pid": os.getpid(), "event": event, "batch": digest, "texts": list(texts)}) + "\n")


def fake_token_counter():
    return FakeEmbedder().count_tokens


def recording_model(log: Path, *, delay: float = 0.0, batch_size: int = 32) -> ModelRecipe:
    return ModelRecipe(
        embedder=partial(RecordingEmbedder, log=str(log), delay=delay, batch_size=batch_size),
        token_counter=fake_token_counter,
    )


def events(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def _ray_module():
    yield
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def local_ray(_ray_module):
    """A small local Ray runtime shared by this module's tests (started once, stopped at the end)."""
    if not ray.is_initialized():
        # Every worker of the runtime, whichever driver it works for, imports the fakes from
        # this checkout: the runtime's processes inherit this environment.
        before = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = str(REPO)
        try:
            ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=500 * 2**20,
                     logging_level="warning")
        finally:
            if before is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = before
    return ray


def fake_service(index_dir: Path) -> Sourcebook:
    return Sourcebook(Settings(index_dir=index_dir), embedder=FakeEmbedder())


def ray_ingest(service: Sourcebook, folder: Path, model: ModelRecipe, **options):
    with service.library.writing():
        return ingest_path_ray(
            folder, library=service.library, settings=service.settings, chunking=service.chunking,
            max_file_bytes=service.settings.max_file_bytes, model=model, **options,
        )


def snapshot(service: Sourcebook) -> dict:
    """Everything a search reads: documents, chunks with their offsets, and window vectors by id."""
    store = service.library.store
    chunks = {
        rowid: (c.chunk.id, c.chunk.document_id, c.source, c.chunk.start, c.chunk.end, c.chunk.text,
                c.chunk.heading, c.chunk.page, c.chunk.line_start, c.chunk.line_end)
        for rowid, c in store.chunks(store.chunk_rowids()).items()
    }
    parts = list(store.iter_vectors())
    ids = np.concatenate([i for i, _ in parts]) if parts else np.zeros(0, np.int64)
    vectors = np.vstack([v for _, v in parts]) if parts else np.zeros((0, service.library.dim), np.float32)
    documents = [(d.id, d.source, d.title, d.chunks) for d in service.documents()]
    return {"documents": documents, "chunks": chunks, "vector_ids": ids, "vectors": vectors}


def assert_consistent(service: Sourcebook) -> None:
    """No document twice, no chunk twice, and the vector index holds exactly the stored vectors."""
    sources = [d.source for d in service.documents()]
    assert len(sources) == len(set(sources))
    chunk_ids = [c[0] for c in snapshot(service)["chunks"].values()]
    assert len(chunk_ids) == len(set(chunk_ids))
    assert np.array_equal(service.library.index.ids(), service.library.store.vector_ids())


def top_results(service: Sourcebook) -> list[list[tuple[str, float]]]:
    return [[(hit.chunk_id, hit.score) for hit in service.search(query, k=5).hits] for query in QUERIES]


# --- tests -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_ray_ingest_stores_exactly_what_a_local_ingest_stores(local_ray, tmp_path):
    folder = write_files(tmp_path / "docs", HANDBOOK)
    local = fake_service(tmp_path / "local")
    local_report = local.ingest(folder)
    distributed_service = fake_service(tmp_path / "ray")

    # Two actors of half a CPU each leave the 2-CPU runtime room for the preparing tasks.
    report = ray_ingest(distributed_service, folder, recording_model(tmp_path / "model.log"), num_actors=2,
                        actor_cpus=0.5, batch_documents=3)

    assert report.summary() == local_report.summary() == {
        "added": 9, "updated": 0, "removed": 0, "unchanged": 0, "failed": 3}
    assert report.added == local_report.added
    assert report.failed == local_report.failed
    expected, got = snapshot(local), snapshot(distributed_service)
    assert got["documents"] == expected["documents"]
    # Same chunk ids, offsets, texts, headings and lines, stored under the same rowids.
    assert got["chunks"] == expected["chunks"]
    assert np.array_equal(got["vector_ids"], expected["vector_ids"])
    # The fake model is deterministic, so the vectors are identical, not just close.
    assert np.array_equal(got["vectors"], expected["vectors"])
    assert top_results(distributed_service) == top_results(local)
    assert distributed_service.search("VPN certificate first day", k=1).hits[0].source == "docs/guide/setup.md"
    assert_consistent(distributed_service)
    # One model load per actor (each in its own process), and every window embedded or reused.
    loads = [e for e in events(tmp_path / "model.log") if e["event"] == "load"]
    assert 1 <= len(loads) <= 2 and len({e["pid"] for e in loads}) == len(loads)
    assert report.windows_embedded + report.windows_reused == local_report.windows_embedded + local_report.windows_reused


@pytest.mark.slow
def test_a_second_ray_run_embeds_nothing_and_a_third_only_the_change(local_ray, tmp_path):
    folder = write_files(tmp_path / "docs", HANDBOOK)
    service = fake_service(tmp_path / "ray")
    log = tmp_path / "model.log"
    ray_ingest(service, folder, recording_model(log))
    log.unlink()

    second = ray_ingest(service, folder, recording_model(log))

    assert second.summary() == {"added": 0, "updated": 0, "removed": 0, "unchanged": 9, "failed": 3}
    assert second.windows_embedded == 0
    # No model call, and not even a model load: unchanged files never reach the actors' model.
    assert events(log) == []

    (folder / "guide/holidays.txt").write_text("Holidays\nEach employee now has thirty days of paid leave.\n")
    (folder / "teams/data.txt").unlink()
    third = ray_ingest(service, folder, recording_model(log))

    assert third.updated == ["docs/guide/holidays.txt"] and third.removed == ["docs/teams/data.txt"]
    embedded = [text for e in events(log) if e["event"] == "done" for text in e["texts"]]
    assert embedded == ["Holidays\nEach employee now has thirty days of paid leave."]
    assert service.search("how many days of paid leave", k=1).hits[0].text.endswith("thirty days of paid leave.")
    local = fake_service(tmp_path / "local")
    local.ingest(folder)
    assert {c[0] for c in snapshot(service)["chunks"].values()} == {c[0] for c in snapshot(local)["chunks"].values()}
    assert top_results(service) == top_results(local)
    assert_consistent(service)


@pytest.mark.slow
def test_an_embedding_worker_killed_mid_batch_is_replaced_and_nothing_is_lost_or_doubled(local_ray, tmp_path):
    folder = write_files(tmp_path / "docs", HANDBOOK)
    log = tmp_path / "model.log"
    killed: list[int] = []

    def kill_the_first_worker_that_starts_a_batch():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            started = [e for e in events(log) if e["event"] == "start"]
            if started:
                os.kill(started[0]["pid"], signal.SIGKILL)
                killed.append(started[0]["pid"])
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_first_worker_that_starts_a_batch)
    killer.start()
    service = fake_service(tmp_path / "ray")
    # Slow batches of two documents: the kill lands inside the first model call.
    report = ray_ingest(service, folder, recording_model(log, delay=1.0), batch_documents=2)
    killer.join()

    assert len(killed) == 1
    log_events = events(log)
    lost = [e for e in log_events if e["pid"] == killed[0] and e["event"] == "start"][0]
    # The killed worker never finished its batch; a new worker process did, and the run completed.
    assert not any(e["pid"] == killed[0] and e["event"] == "done" for e in log_events)
    assert any(e["event"] == "done" and e["batch"] == lost["batch"] and e["pid"] != killed[0] for e in log_events)
    assert report.summary() == {"added": 9, "updated": 0, "removed": 0, "unchanged": 0, "failed": 3}
    assert len(report.added) == len(set(report.added))
    local = fake_service(tmp_path / "local")
    local.ingest(folder)
    expected, got = snapshot(local), snapshot(service)
    assert got["documents"] == expected["documents"]
    assert got["chunks"] == expected["chunks"]
    assert np.array_equal(got["vectors"], expected["vectors"])
    assert_consistent(service)


def prepared_row(source: str, text: str, chunking: Chunking):
    document = Document(source=source, title=source, text=text)
    return prepare(document, "hash", existed=False, chunking=chunking, count_tokens=FakeEmbedder().count_tokens)


def embed_batch(items: list, model: ModelRecipe) -> dict[str, np.ndarray]:
    """Run the embedding actor's work on one Ray Data batch of prepared rows, then one failed row."""
    batch = {
        "source": np.array([item.document.source for item in items] + ["bad.txt"], dtype=object),
        "status": np.array([distributed.PREPARED] * len(items) + [distributed.FAILED], dtype=object),
        "prepared": np.array([pickle.dumps(item) for item in items] + [b""], dtype=object),
    }
    return distributed.EmbedWindows(model)(batch)


def row_vectors(out: dict[str, np.ndarray], row: int) -> np.ndarray:
    return np.frombuffer(out["vectors"][row], np.float32).reshape(-1, FakeEmbedder().dim)


def test_the_embedding_actor_sends_a_repeated_window_text_to_the_model_once(tmp_path):
    log = tmp_path / "model.log"
    chunking = Chunking(max_tokens=40, overlap_tokens=0, window_tokens=12)
    text = "Billing\n\n" + paragraph("billing", 1) + "\n"
    items = [prepared_row(source, text, chunking) for source in ("billing.txt", "copy-of-billing.txt")]

    out = embed_batch(items, recording_model(log))

    texts = items[0].window_texts()
    assert len(texts) > 1
    sent = [t for e in events(log) if e["event"] == "done" for t in e["texts"]]
    assert sorted(sent) == sorted(texts)
    assert out["embedded"].tolist() == [len(texts), 0, 0]
    expected = FakeEmbedder().encode(texts)
    for row in (0, 1):
        assert np.array_equal(row_vectors(out, row), expected)
    assert out["vectors"][2] == b""


def test_the_embedding_actor_batches_windows_by_token_count_and_returns_them_in_row_order(tmp_path):
    log = tmp_path / "model.log"
    chunking = Chunking(max_tokens=60, overlap_tokens=0, window_tokens=20)
    # Windows of very different lengths, so that sorting by tokens reorders them across rows.
    texts = {
        "short.txt": "Holidays\n\nLeave is short.\n\nAsk early.\n",
        "billing.txt": "Billing\n\n" + "\n\n".join(paragraph("billing", n) for n in range(3)) + "\n",
        "mixed.txt": "Search\n\nOne line.\n\n" + paragraph("search", 4) + "\n\nThe end.\n",
    }
    items = [prepared_row(source, text, chunking) for source, text in texts.items()]
    sizes = {t: n for item in items for t, n in zip(item.window_texts(), item.window_sizes())}
    # In document order, each text once ("Questions about billing ..." ends every billing paragraph).
    document_order = list(dict.fromkeys(t for item in items for t in item.window_texts()))
    assert len(set(sizes.values())) > 3 and len(document_order) > 8

    out = embed_batch(items, recording_model(log, batch_size=4))

    calls = [e["texts"] for e in events(log) if e["event"] == "done"]
    sent = [t for call in calls for t in call]
    # One model batch per call, full but for the last; longest first across the calls, every window once.
    assert [len(call) for call in calls] == [4] * (len(sent) // 4) + ([len(sent) % 4] if len(sent) % 4 else [])
    assert [sizes[t] for t in sent] == sorted((sizes[t] for t in sent), reverse=True)
    assert sorted(sent) == sorted(document_order) and sent != document_order
    assert sent == sorted(document_order, key=lambda t: -sizes[t])
    # Yet each row gets its own windows' vectors, in its windows' order.
    for row, item in enumerate(items):
        assert np.array_equal(row_vectors(out, row), FakeEmbedder().encode(item.window_texts()))
    # Each text counts as embedded for the first row that has it.
    assert out["embedded"].tolist() == [1, 7, 3, 0] and out["embedded"].sum() == len(sent)
    assert out["vectors"][len(items)] == b""


JOINING_DRIVER = """
import json, sys
from pathlib import Path
from app.distributed import ingest_path_ray
from app.service import Sourcebook
from retrieval.settings import Settings
from tests.fakes import FakeEmbedder
from tests.test_ray import recording_model

address, folder, index, log = sys.argv[1:]
service = Sourcebook(Settings(index_dir=Path(index)), embedder=FakeEmbedder())
report = ingest_path_ray(Path(folder), library=service.library, settings=service.settings, chunking=service.chunking,
                         max_file_bytes=service.settings.max_file_bytes, address=address, model=recording_model(Path(log)))
print(json.dumps(report.summary()))
"""


@pytest.mark.slow
def test_a_driver_in_another_process_joins_the_running_cluster_by_address(local_ray, tmp_path):
    folder = write_files(tmp_path / "docs", HANDBOOK)
    address = ray.get_runtime_context().gcs_address
    log = tmp_path / "model.log"

    joined = subprocess.run(
        [sys.executable, "-c", JOINING_DRIVER, address, "docs", str(tmp_path / "ray"), str(log)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300,
    )

    assert joined.returncode == 0, joined.stderr[-3000:]
    assert json.loads(joined.stdout.splitlines()[-1]) == {
        "added": 9, "updated": 0, "removed": 0, "unchanged": 0, "failed": 3}
    # The work ran on this cluster's workers, and the cluster outlives the driver that left it.
    assert {e["pid"] for e in events(log)} and os.getpid() not in {e["pid"] for e in events(log)}
    assert ray.is_initialized() and ray.cluster_resources().get("CPU") == 2
    local = fake_service(tmp_path / "local")
    local.ingest(folder)
    assert snapshot(fake_service(tmp_path / "ray"))["chunks"] == snapshot(local)["chunks"]


@pytest.mark.slow
def test_bad_options_are_refused_naming_the_value(local_ray, tmp_path):
    service = fake_service(tmp_path / "index")
    folder = write_files(tmp_path / "docs", {"a.txt": "A note."})
    model = recording_model(tmp_path / "model.log")
    with pytest.raises(ValueError, match="num_actors must be a whole number of at least 1, got 0"):
        ray_ingest(service, folder, model, num_actors=0)
    with pytest.raises(ValueError, match="batch_documents must be at least 1, got 0"):
        ray_ingest(service, folder, model, batch_documents=0)
    with pytest.raises(ValueError, match="actor_cpus must be more than 0, got 0"):
        ray_ingest(service, folder, model, actor_cpus=0)
    # Two one-CPU actors would leave the preparing tasks no CPU, and Ray would wait forever.
    with pytest.raises(ValueError, match="need 2.5 CPUs; the Ray cluster has 2. Use fewer actors"):
        ray_ingest(service, folder, model, num_actors=2)
    assert service.counts() == (0, 0)
    assert events(tmp_path / "model.log") == []


# --- the real model --------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_ray_ingest_of_the_default_corpus_matches_a_local_one_with_the_real_model(local_ray, tmp_path, exported_model):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    embedder = load_embedder(Settings(index_dir=with_model(exported_model, tmp_path / "local")))
    local = Sourcebook(Settings(index_dir=tmp_path / "local"), embedder=embedder)
    local.ingest(corpus)
    # The actors load the model as `sourcebook ingest --ray` does, from the ONNX export beside the index.
    if (tmp_path / "local" / "model-onnx").exists():
        shutil.copytree(tmp_path / "local" / "model-onnx", tmp_path / "ray" / "model-onnx")
    distributed_service = Sourcebook(Settings(index_dir=tmp_path / "ray"), embedder=embedder)

    report = distributed_service.ingest(corpus, use_ray=True)

    assert len(report.added) == 5 and report.failed == []
    expected, got = snapshot(local), snapshot(distributed_service)
    assert got["chunks"] == expected["chunks"]
    assert np.array_equal(got["vector_ids"], expected["vector_ids"])
    cosines = np.sum(got["vectors"] * expected["vectors"], axis=1)
    assert cosines.min() > 0.999, cosines.min()
    questions = ["How many monthly active users does Xiaohongshu have?", "Which cloud provider does Xiaohongshu use?",
                 "When was the app launched?"]
    for question in questions:
        assert [h.chunk_id for h in distributed_service.search(question, k=5).hits] == \
            [h.chunk_id for h in local.search(question, k=5).hits]
    # The preparing tasks count tokens with the tokenizer alone, exactly as the model does.
    count = token_counter(distributed_service.settings)
    text = (corpus / "what-is-red-note.txt").read_text()
    sentences = [text[a:b] for a, b in sentence_spans(text)]
    assert [count(s) for s in sentences] == [embedder.count_tokens(s) for s in sentences]


# Last: it stops the shared runtime, to see the command start and stop its own.
@pytest.mark.slow
def test_the_cli_ray_flag_starts_and_stops_its_own_runtime(_ray_module, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ui.cli import app

    if ray.is_initialized():
        ray.shutdown()
    # The runtime the command starts hands this to its workers, which import the fakes from here.
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    log = tmp_path / "model.log"
    monkeypatch.setattr(service_module, "load_embedder", lambda settings: FakeEmbedder())
    monkeypatch.setattr(distributed.ModelRecipe, "for_settings", classmethod(lambda cls, settings: recording_model(log)))
    folder = write_files(tmp_path / "docs", HANDBOOK)
    runner = CliRunner()

    result = runner.invoke(app, ["ingest", str(folder), "--ray", "--json"])

    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["added"], payload["failed"], payload["unchanged"]) == (9, 3, 0)
    assert {f["source"] for f in payload["failures"]} == {"docs/bad/binary.txt", "docs/bad/empty.md",
                                                          "docs/bad/program.exe"}
    assert payload["windows_embedded"] > 0 and any(e["event"] == "done" for e in events(log))
    assert not ray.is_initialized()
    service = fake_service(tmp_path / "index")
    assert service.search("hotel corporate rate", k=1).hits[0].source == "docs/guide/travel.html"
    assert_consistent(service)

    wrong = runner.invoke(app, ["ingest", str(folder), "--ray-actors", "2"])
    assert wrong.exit_code == 2 and "--ray-actors 2 needs --ray" in wrong.output
    # Nothing listens on port 1: a plain error at once, not Ray's minutes of retrying.
    nobody = runner.invoke(app, ["ingest", str(folder), "--ray-address", "127.0.0.1:1"])
    assert nobody.exit_code == 1 and "no Ray cluster answers at 127.0.0.1:1" in nobody.output
