"""The store and the vector index stay in step, survive bad index files and refuse other settings."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from app import service as service_module
from app.service import Sourcebook
from retrieval.embedder import TokenVectors
from retrieval.errors import IndexMismatch
from retrieval.library import STORE_FILE, VECTORS_FILE
from retrieval.store import Store
from tests.fakes import FakeEmbedder
from tests.helpers import write_files

DOCS = {
    "a.txt": "Backups\nThe database is backed up every night at two o'clock.\n",
    "b.txt": "On call\nThe on-call engineer answers pages within fifteen minutes.\n",
}


def ingested(make_service, tmp_path):
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", DOCS))
    return service


def test_a_reopened_index_holds_the_same_vector_ids_as_the_store(make_service, tmp_path):
    ingested(make_service, tmp_path)

    reopened = make_service()

    assert np.array_equal(reopened.library.index.ids(), reopened.library.store.vector_ids())
    assert reopened.search("backed up every night", k=1).hits[0].source == "docs/a.txt"


def test_a_corrupt_index_file_is_rebuilt_from_stored_vectors(make_service, embedder, tmp_path, caplog):
    service = ingested(make_service, tmp_path)
    path = service.library.directory / VECTORS_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    embedder.encoded.clear()

    with caplog.at_level(logging.INFO):
        reopened = make_service()

    assert embedder.encoded == []  # rebuilt without re-embedding
    assert np.array_equal(reopened.library.index.ids(), reopened.library.store.vector_ids())
    assert any("rebuilt" in record.message or "unreadable" in record.message for record in caplog.records)
    assert reopened.search("on-call pages", k=1).hits[0].source == "docs/b.txt"


def test_an_index_left_behind_by_a_crash_is_rebuilt(make_service, tmp_path):
    service = ingested(make_service, tmp_path)
    stale = (service.library.directory / VECTORS_FILE).read_bytes()
    # A later ingest that stored its chunks but died before saving the index.
    write_files(tmp_path / "docs", {"c.txt": "Holidays\nThe office closes between Christmas and New Year.\n"})
    service.ingest(tmp_path / "docs")
    (service.library.directory / VECTORS_FILE).write_bytes(stale)

    reopened = make_service()

    assert np.array_equal(reopened.library.index.ids(), reopened.library.store.vector_ids())
    assert reopened.search("office closes Christmas", k=1).hits[0].source == "docs/c.txt"


def test_opening_with_other_chunk_settings_says_how_to_fix_it(make_service, tmp_path):
    ingested(make_service, tmp_path)

    with pytest.raises(IndexMismatch, match=r"chunk_tokens.*--rebuild"):
        make_service(chunk_tokens=100)


def test_opening_with_another_model_is_refused(settings, make_service, tmp_path):
    ingested(make_service, tmp_path)
    other = FakeEmbedder(dim=32)
    other.name = "another-model"

    with pytest.raises(IndexMismatch, match="another-model"):
        Sourcebook(settings, embedder=other)


class _MirroredEmbedder(FakeEmbedder):
    """Another model of the same size: the fake's vectors with their dimensions reversed."""

    name = "mirrored-fake"

    def __init__(self, *, fail_after: int | None = None) -> None:
        super().__init__()
        self.fail_after = fail_after  # encode calls allowed before one fails (a crash part way)

    def encode(self, texts):
        if self.fail_after is not None:
            if self.fail_after == 0:
                raise MemoryError("the machine ran out of memory")
            self.fail_after -= 1
        return super().encode(texts)[:, ::-1].copy()

    def token_vectors(self, texts):
        return [TokenVectors(tokens.spans, tokens.vectors[:, ::-1].copy()) for tokens in super().token_vectors(texts)]


def test_a_library_another_model_embedded_is_refused_by_a_server_and_embedded_again_by_ingest(
    settings, make_service, tmp_path, monkeypatch
):
    service = ingested(make_service, tmp_path)
    service.rate(service.ask("How often is the database backed up?"), "up")
    monkeypatch.setattr(service_module, "EMBED_AGAIN_BATCH", 1)  # one window a step, as a large library goes

    with pytest.raises(IndexMismatch, match="embedded with another model.*`sourcebook ingest PATH"):
        Sourcebook(settings, embedder=_MirroredEmbedder())
    mirrored = _MirroredEmbedder()
    again = Sourcebook(settings, embedder=mirrored, embed_again=True)

    store = again.library.store
    texts = dict(store.window_texts(limit=1000))
    assert len(texts) == 2 and again.counts() == service.counts()
    for window_id, vector in zip(*next(store.iter_vectors()), strict=True):
        assert np.allclose(vector, mirrored.encode([texts[int(window_id)]])[0])
    assert store.meta()["model"] == "mirrored-fake" and len(again.feedback()) == 1
    assert again.search("database backed up", k=1).hits[0].source == "docs/a.txt"
    assert Sourcebook(settings, embedder=_MirroredEmbedder()).counts() == service.counts()  # opens as any library
    # A server still running with the old model does not take up the new vectors its queries would miss.
    loaded = service.library.index
    service.library._checked_at = 0.0
    service.library.refresh()
    assert service.library.index is loaded


def test_a_crash_while_embedding_again_leaves_the_library_as_the_old_model_made_it(settings, make_service, tmp_path,
                                                                                      monkeypatch):
    service = ingested(make_service, tmp_path)
    before = next(service.library.store.iter_vectors())[1].copy()
    monkeypatch.setattr(service_module, "EMBED_AGAIN_BATCH", 1)

    with pytest.raises(MemoryError):
        Sourcebook(settings, embedder=_MirroredEmbedder(fail_after=1), embed_again=True)

    reopened = make_service()
    assert np.array_equal(next(reopened.library.store.iter_vectors())[1], before)
    assert reopened.search("database backed up", k=1).hits[0].source == "docs/a.txt"
    again = Sourcebook(settings, embedder=_MirroredEmbedder(), embed_again=True)
    assert again.library.store.meta()["model"] == "mirrored-fake"


def test_rebuild_starts_afresh_with_the_new_settings_keeping_ratings_and_declined_questions(
    settings, make_service, tmp_path
):
    service = ingested(make_service, tmp_path)
    answered = service.ask("How often is the database backed up?")
    service.rate(answered, "up", comment="clear")
    assert not service.ask("Who is the chief executive of the company?").answered

    fresh = Sourcebook(settings.model_copy(update={"chunk_tokens": 100}), embedder=FakeEmbedder(), rebuild=True)

    assert fresh.counts() == (0, 0)
    assert [(row["rating"], row["comment"]) for row in fresh.feedback()] == [("up", "clear")]
    assert [gap.question for gap in fresh.gaps()] == ["Who is the chief executive of the company?"]
    fresh.ingest(tmp_path / "docs")
    assert fresh.counts()[0] == 2
    assert fresh.search("database backed up", k=1).hits[0].source == "docs/a.txt"


def test_rebuild_replaces_a_store_sqlite_cannot_read(settings, tmp_path):
    settings.index_dir.mkdir(parents=True)
    (settings.index_dir / STORE_FILE).write_bytes(b"not an SQLite database " * 100)

    fresh = Sourcebook(settings, embedder=FakeEmbedder(), rebuild=True)
    fresh.ingest(write_files(tmp_path / "docs", DOCS))

    assert fresh.counts()[0] == 2


def test_deleting_a_document_removes_it_from_search_and_disk(make_service, tmp_path):
    service = ingested(make_service, tmp_path)
    target = next(d for d in service.documents() if d.source == "docs/a.txt")

    service.delete(target.id)

    assert [d.source for d in make_service().documents()] == ["docs/b.txt"]
    assert all(hit.source != "docs/a.txt" for hit in make_service().search("database backed up", k=5).hits)


def test_counts_follow_changes_made_through_another_connection(make_service, tmp_path):
    """Counts are kept between calls, but a change by another process (here another store) is seen."""
    service = ingested(make_service, tmp_path)
    assert service.counts() == (2, 2)
    other = Store(service.library.directory / STORE_FILE)
    document = next(d for d in other.documents() if d.source == "docs/a.txt")

    other.remove(document.id)

    assert service.counts() == (1, 1)
    assert not service.library.store.is_empty()
    other.remove(next(iter(other.documents())).id)
    assert service.library.store.is_empty()
    assert service.counts() == (0, 0)


def test_chunking_never_cuts_more_windows_than_the_store_has_vector_slots(tmp_path):
    from ingest.chunking import MAX_WINDOWS
    from ingest.records import Chunk, Document
    from retrieval.store import WINDOW_SLOTS

    assert MAX_WINDOWS <= WINDOW_SLOTS
    store = Store(tmp_path / STORE_FILE)
    document = Document(source="a.txt", title="A", text="word " * (WINDOW_SLOTS + 1))
    chunk = Chunk(document.id, document.text, 0, len(document.text), None, None, 1, 1)
    windows = [[(i * 5, i * 5 + 4) for i in range(WINDOW_SLOTS + 1)]]
    with pytest.raises(ValueError, match=f"at most {WINDOW_SLOTS} windows, got {WINDOW_SLOTS + 1}"):
        store.put(document, [chunk], windows, np.zeros((WINDOW_SLOTS + 1, 4), dtype=np.float32))


def test_the_store_gives_a_documents_text_between_two_offsets(make_service, tmp_path):
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", {"fees.txt": "Fees\nA seat costs €480 — or £410 — a day.\n"}))
    store = service.library.store
    document = store.document(store.document_id_for_source("docs/fees.txt"))

    # Offsets count characters, as Python's do, not the bytes "€" and "—" take.
    start = document.text.index("€")
    assert store.text_between(document.id, start, start + 4) == "€480"
    assert store.text_between(document.id, -10, 4) == "Fees"
    assert store.text_between(document.id, start, 10_000) == document.text[start:]
    assert store.text_between("no such document", 0, 4) == ""
