"""Incremental ingest: only new or changed text reaches the model; bad files are skipped, not fatal."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from app.pipeline import find_files
from app.service import Sourcebook
from tests.fakes import FakeEmbedder
from tests.helpers import write_files

ONBOARDING = {
    "handbook/setup.md": "# Setup\n\nInstall the toolchain with the bootstrap script.\n\n"
    "## Access\n\nAsk the platform team for a VPN certificate on your first day.\n",
    "handbook/holidays.txt": "Holidays\nEach employee has twenty-five days of paid leave per calendar year.\n",
    "notes.txt": "The cafeteria serves lunch between noon and two o'clock.\n",
}


def test_first_ingest_adds_every_document(make_service, tmp_path):
    service = make_service()
    report = service.ingest(write_files(tmp_path / "docs", ONBOARDING))

    assert sorted(report.added) == ["docs/handbook/holidays.txt", "docs/handbook/setup.md", "docs/notes.txt"]
    assert report.summary() == {"added": 3, "updated": 0, "removed": 0, "unchanged": 0, "failed": 0}
    assert service.counts()[0] == 3
    assert np.array_equal(service.library.index.ids(), service.library.store.vector_ids())


def test_reingesting_an_unchanged_corpus_embeds_nothing(make_service, embedder, tmp_path):
    folder = write_files(tmp_path / "docs", ONBOARDING)
    make_service().ingest(folder)
    embedder.encoded.clear()

    report = make_service().ingest(folder)

    assert embedder.encoded == []
    assert report.summary()["unchanged"] == 3
    assert report.added == report.updated == report.removed == []


def test_a_changed_file_is_re_embedded_and_the_others_are_not(make_service, embedder, tmp_path):
    folder = write_files(tmp_path / "docs", ONBOARDING)
    service = make_service()
    service.ingest(folder)
    embedder.encoded.clear()

    (folder / "notes.txt").write_text("The cafeteria now serves breakfast from eight o'clock.\n")
    report = service.ingest(folder)

    assert report.updated == ["docs/notes.txt"]
    assert embedder.encoded == ["The cafeteria now serves breakfast from eight o'clock."]
    top = service.search("when is breakfast served", k=1).hits[0]
    assert top.source == "docs/notes.txt" and "breakfast" in top.text
    assert all("lunch" not in hit.text for hit in service.search("lunch cafeteria", k=5).hits)


def test_a_deleted_file_loses_its_chunks(make_service, tmp_path):
    folder = write_files(tmp_path / "docs", ONBOARDING)
    service = make_service()
    service.ingest(folder)

    os.remove(folder / "notes.txt")
    report = service.ingest(folder)

    assert report.removed == ["docs/notes.txt"]
    assert [d.source for d in service.documents()] == ["docs/handbook/holidays.txt", "docs/handbook/setup.md"]
    assert all(hit.source != "docs/notes.txt" for hit in service.search("cafeteria lunch", k=5).hits)
    assert np.array_equal(service.library.index.ids(), service.library.store.vector_ids())


def test_bad_files_are_reported_and_skipped_while_the_rest_is_ingested(make_service, tmp_path):
    folder = write_files(
        tmp_path / "docs",
        {
            **ONBOARDING,
            "broken.pdf": b"%PDF-1.7\n" + os.urandom(2000),
            "binary.txt": bytes(range(256)) * 8,
            "empty.md": "",
            "program.exe": b"MZ\x90\x00",
        },
    )
    service = make_service()
    report = service.ingest(folder)

    failed = dict(report.failed)
    assert sorted(failed) == ["docs/binary.txt", "docs/broken.pdf", "docs/empty.md", "docs/program.exe"]
    assert all(reason for reason in failed.values())
    assert len(report.added) == 3
    assert service.search("VPN certificate", k=1).hits[0].source == "docs/handbook/setup.md"


def test_a_file_that_turns_bad_keeps_its_earlier_version(make_service, tmp_path):
    folder = write_files(tmp_path / "docs", ONBOARDING)
    service = make_service()
    service.ingest(folder)

    (folder / "notes.txt").write_bytes(b"\x00\x01\x02" * 100)
    report = service.ingest(folder)

    assert [source for source, _ in report.failed] == ["docs/notes.txt"]
    assert report.removed == []
    assert service.search("cafeteria lunch", k=1).hits[0].source == "docs/notes.txt"


def test_files_over_the_size_limit_are_skipped(make_service, tmp_path):
    folder = write_files(tmp_path / "docs", {"big.txt": "word " * 1000, "small.txt": "A short note about parking."})
    report = make_service(max_file_bytes=1000).ingest(folder)

    assert [source for source, _ in report.failed] == ["docs/big.txt"]
    assert "limit" in dict(report.failed)["docs/big.txt"]
    assert report.added == ["docs/small.txt"]


def test_ignore_file_and_hidden_files_are_not_ingested(tmp_path):
    folder = write_files(
        tmp_path / "docs",
        {".sourcebookignore": "# not documents\nqa.jsonl\nREADME.md\n", "qa.jsonl": "{}", "README.md": "# About",
         ".hidden.txt": "secret", "guide.txt": "A guide."},
    )
    assert [p.name for p in find_files(folder)] == ["guide.txt"]


def test_editors_and_downloads_temporary_files_are_not_ingested(tmp_path):
    folder = write_files(
        tmp_path / "docs",
        {"guide.txt": "A guide.", "guide.txt~": "A guide, before.", "#guide.txt#": "A gui", "report.pdf.crdownload": "%PDF",
         "notes.md.tmp": "# No", "notes.swp": "x"},
    )
    assert [p.name for p in find_files(folder)] == ["guide.txt"]


def test_identical_passages_share_one_embedding(make_service, embedder, tmp_path):
    text = "Security training is mandatory for every new hire in the first week."
    folder = write_files(tmp_path / "docs", {"a.txt": text, "b.txt": text})
    report = make_service().ingest(folder)

    assert report.windows_embedded == 1 and report.windows_reused == 1
    assert embedder.encoded == [text]


class BatchRecorder(FakeEmbedder):
    """The fake model with a stated batch size, keeping each call's texts apart."""

    def __init__(self, batch_size: int) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.calls: list[list[str]] = []

    def encode(self, texts):
        self.calls.append(list(texts))
        return super().encode(texts)


def sentence(topic: str, words: int) -> str:
    return " ".join([topic, *(f"{topic}{n}" for n in range(words - 1))]) + "."


def test_windows_of_many_documents_share_model_batches_by_length(settings, tmp_path):
    # One window each; long and short documents alternate in file order.
    files = {"a.txt": sentence("alpha", 30), "b.txt": sentence("beta", 3), "c.txt": sentence("gamma", 30),
             "d.txt": sentence("delta", 3), "e.txt": sentence("eps", 12)}
    model = BatchRecorder(batch_size=2)
    service = Sourcebook(settings, embedder=model)

    service.ingest(write_files(tmp_path / "docs", files))

    # One model batch per call, longest first, each holding windows of like length from
    # different documents, so that little of any batch is padding.
    assert model.calls == [[files["a.txt"], files["c.txt"]], [files["e.txt"], files["b.txt"]], [files["d.txt"]]]


def test_each_window_keeps_its_own_vector_when_batches_are_reordered(make_service, tmp_path):
    files = {f"note-{n}.txt": "\n\n".join(sentence(f"t{n}x{k}", 2 + (n * 7 + k * 5) % 40) for k in range(6))
             for n in range(8)}
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", files))

    store = service.library.store
    rows = store._db.execute("SELECT w.start, w.end, c.text, w.vector FROM windows w JOIN chunks c"
                             " ON c.rowid = w.chunk_rowid").fetchall()
    texts = [text[start:end] for start, end, text, _ in rows]
    stored = np.vstack([np.frombuffer(vector, dtype=np.float32) for *_, vector in rows])
    assert len(set(texts)) == len(texts) > 8 * 3  # several windows per document, all different
    assert np.array_equal(stored, FakeEmbedder().encode(texts))


def test_progress_counts_settled_files_and_moves_while_a_pool_is_embedded(settings, tmp_path):
    folder = write_files(tmp_path / "docs", {f"a{n}.txt": sentence(f"old{n}", 5) for n in range(3)})
    Sourcebook(settings, embedder=FakeEmbedder()).ingest(folder)
    write_files(folder, {**{f"b{n}.txt": sentence(f"new{n}", 5) for n in range(4)}, "c.txt": b"\x00\x01\x02" * 50})
    service = Sourcebook(settings, embedder=BatchRecorder(batch_size=1))
    seen: list[tuple[int, int, str | None, int]] = []

    def progress(done, total, current=None):
        seen.append((done, total, current, service.library.store.counts()[0]))

    report = service.ingest(folder, progress=progress)

    assert report.summary() == {"added": 4, "updated": 0, "removed": 0, "unchanged": 3, "failed": 1}
    done = [d for d, *_ in seen]
    assert {total for _, total, *_ in seen} == {8}
    assert done == sorted(done) and done[-1] == 8
    # Each file is named as it is read, in order, with the files settled before it: unchanged and
    # failed ones count once read, the four new ones (one pool) not until they are embedded.
    reading = [(d, Path(current).name) for d, _, current, _ in seen if current]
    names = ["a0.txt", "a1.txt", "a2.txt", "b0.txt", "b1.txt", "b2.txt", "b3.txt", "c.txt"]
    assert reading == list(zip([0, 1, 2, 3, 3, 3, 3, 3], names))
    # The pool (one window each, embedded one per call) counts as its batches go, naming no file,
    # before any of it is stored; the last report comes once all is stored.
    embedding = [(d, stored) for d, _, current, stored in seen if current is None]
    assert embedding == [(5, 3), (6, 3), (7, 3), (8, 3), (8, 7)]
