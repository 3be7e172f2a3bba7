"""The store, the vector index and the keyword index, kept in step and checked against the settings."""

from __future__ import annotations

import fcntl
import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ingest.health import assess
from ingest.loaders import LOADER_VERSION
from ingest.records import Chunk, Document
from retrieval.errors import IndexMismatch
from retrieval.records import KeywordPassage
from retrieval.index import VectorIndex
from retrieval.keyword import KeywordIndex
from retrieval.store import WINDOW_SLOTS, Store

log = logging.getLogger(__name__)

STORE_FILE = "store.sqlite"
VECTORS_FILE = "vectors.faiss"
KEYWORD_DIR = "keyword"
LOCK_FILE = "write.lock"
# While the store is ahead of the loaded indexes, look for newly saved ones at most this often.
REFRESH_SECONDS = 1.0
# The store's note of the loaders' version that read its documents.
LOADER_KEY = "loader"
# The fingerprint's key naming the model that made the vectors.
MODEL_KEY = "model"


class Library:
    """Documents, chunks and vectors on disk (SQLite) with their FAISS and keyword indexes."""

    def __init__(
        self, directory: Path, *, fingerprint: dict[str, str], dim: int, rebuild: bool = False,
        other_model_ok: bool = False,
    ) -> None:
        """`other_model_ok`: a library whose vectors another model (of the same size) made opens, with
        `other_model` naming it, for the caller to embed it again (`take_staged_vectors`); else it is refused."""
        self.directory = Path(directory)
        self.model = fingerprint[MODEL_KEY]  # the model whose vectors this process searches
        self.other_model: str | None = None
        if rebuild:
            self._start_afresh()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.dim = dim
        self._thread_lock = threading.Lock()
        self.store = Store(self.directory / STORE_FILE)
        self._check(fingerprint, other_model_ok=other_model_ok)
        self.index = self._open_index()
        self.keywords = self._open_keywords()
        self._generation = self.store.generation
        self._checked_at = 0.0  # when refresh() last looked for indexes saved by another process
        self._warmed = False

    def _start_afresh(self) -> None:
        """Drop the documents, passages, vectors and indexes (a rebuild), keeping people's ratings and
        declined questions; a store SQLite cannot read goes whole."""
        for name in (VECTORS_FILE, f"{VECTORS_FILE}.json"):
            (self.directory / name).unlink(missing_ok=True)
        shutil.rmtree(self.directory / KEYWORD_DIR, ignore_errors=True)
        if not (self.directory / STORE_FILE).exists():
            return
        try:
            store = Store(self.directory / STORE_FILE)
            store.forget_library()
            store.close()
        except sqlite3.DatabaseError as error:
            log.warning("the store in %s is not readable (%s); starting it afresh", self.directory, error)
            for name in (STORE_FILE, f"{STORE_FILE}-wal", f"{STORE_FILE}-shm"):
                (self.directory / name).unlink(missing_ok=True)

    def _check(self, fingerprint: dict[str, str], *, other_model_ok: bool) -> None:
        recorded = {key: value for key, value in self.store.meta().items() if key in fingerprint}
        if self.store.is_empty():
            self.store.set_meta({**fingerprint, LOADER_KEY: LOADER_VERSION})
            return
        differing = {key: (recorded.get(key), value) for key, value in fingerprint.items() if recorded.get(key) != value}
        if differing.keys() == {MODEL_KEY}:
            if other_model_ok:
                self.other_model = recorded.get(MODEL_KEY)
                return
            raise IndexMismatch(
                f"the index in {self.directory} was embedded with another model (index has "
                f"{recorded.get(MODEL_KEY)!r}, settings ask for {fingerprint[MODEL_KEY]!r}). "
                f"`sourcebook ingest PATH --index {self.directory}` embeds it again with this one, keeping "
                "everything in it; or point --index at another directory."
            )
        if differing:
            detail = "; ".join(f"{key}: index has {old!r}, settings ask for {new!r}" for key, (old, new) in differing.items())
            raise IndexMismatch(
                f"the index in {self.directory} was built with other settings ({detail}). "
                f"Rebuild it with `sourcebook ingest PATH --index {self.directory} --rebuild`, "
                "or point --index at another directory."
            )

    def take_staged_vectors(self, model: str) -> None:
        """Swap in the vectors staged for every window (`Store.stage_vectors`), made by `model`, and
        rebuild the indexes from them."""
        self.store.swap_staged_vectors({MODEL_KEY: model})
        self.rebuild_index()
        self.rebuild_keywords()
        self._generation = self.store.generation
        self.other_model = None

    def read_by_older_loaders(self) -> bool:
        """Whether the stored documents were read by an earlier version of the loaders (titles and sizes may differ)."""
        return self.store.meta().get(LOADER_KEY) != LOADER_VERSION

    def note_current_loaders(self) -> None:
        """Note that the stored documents were read by the current loaders."""
        self.store.set_meta({LOADER_KEY: LOADER_VERSION})

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the write lock: one writer at a time, across threads and processes.

        A writer that finds the store changed by another process since this index was loaded
        reloads the index first, so it never writes on top of a stale one.
        """
        with self._thread_lock, open(self.directory / LOCK_FILE, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                if self.store.generation != self._generation:
                    log.info("the index changed on disk since it was loaded; reloading it")
                    self.index = self._open_index()
                    self.keywords = self._open_keywords()
                    self._generation = self.store.generation
                yield
            finally:
                self._generation = self.store.generation
                fcntl.flock(handle, fcntl.LOCK_UN)

    def refresh(self) -> None:
        """Take up the indexes another process saved since these were loaded (an ingest beside a server).

        Only indexes saved for the store's current generation are taken: while the other process
        is still writing, or if it died before saving, the ones loaded go on serving, and nothing
        is rebuilt here. Skipped while this process is writing.
        """
        generation = self.store.generation
        if generation == self._generation or time.monotonic() - self._checked_at < REFRESH_SECONDS:
            return
        if not self._thread_lock.acquire(blocking=False):
            return
        try:
            self._checked_at = time.monotonic()
            if (model := self.store.meta().get(MODEL_KEY)) != self.model:
                # Another process embedded the library again with another model: this one's queries
                # would not match those vectors, so it goes on serving what it loaded.
                log.warning("the library was embedded again with %s; restart to serve it (this process has %s)",
                            model, self.model)
                return
            index = VectorIndex.load(self.directory / VECTORS_FILE, dim=self.dim, generation=generation)
            keywords = KeywordIndex.load(self.directory / KEYWORD_DIR, generation=generation)
            if index is None or keywords is None:
                return
            log.info("taking up the indexes saved by another process (generation %d)", generation)
            if self._warmed:
                index.warm()
            self.index, self.keywords, self._generation = index, keywords, generation
        finally:
            self._thread_lock.release()

    def _open_index(self) -> VectorIndex:
        path = self.directory / VECTORS_FILE
        index = VectorIndex.load(path, dim=self.dim, generation=self.store.generation)
        if index is None:
            index = self.rebuild_index()
        return index

    def _open_keywords(self) -> KeywordIndex:
        keywords = KeywordIndex.load(self.directory / KEYWORD_DIR, generation=self.store.generation)
        if keywords is None:
            keywords = self.rebuild_keywords()
        return keywords

    def rebuild_keywords(self) -> KeywordIndex:
        """Rebuild the keyword index from the stored passages and save it."""
        self.keywords = KeywordIndex.build(
            self.directory / KEYWORD_DIR, self.store.iter_passages(), generation=self.store.generation
        )
        return self.keywords

    def warm(self) -> None:
        """Read the memory-mapped vector index into memory in the background (a server, once it is up)."""
        self._warmed = True
        self.index.warm()

    def rebuild_index(self) -> VectorIndex:
        """Rebuild the vector index from the stored vectors (no re-embedding) and save it."""
        index = VectorIndex(self.dim)
        for ids, vectors in self.store.iter_vectors():
            index.add(ids, vectors)
        if index.count:
            log.info("rebuilt the vector index from %d stored vectors", index.count)
        self.index = index
        index.save(self.directory / VECTORS_FILE, generation=self.store.generation)
        return index

    def put(
        self,
        document: Document,
        chunks: Sequence[Chunk],
        windows: Sequence[Sequence[tuple[int, int]]],
        vectors: np.ndarray,
        *,
        file_hash: str | None = None,
    ) -> None:
        """Store a document's chunks and window vectors and index them, replacing an earlier version."""
        removed, added, rowids = self.store.put(
            document, chunks, windows, vectors, file_hash=file_hash, health=assess(document)
        )
        self.index.remove(np.asarray(removed, dtype=np.int64))
        self.index.add(np.asarray(added, dtype=np.int64), vectors)
        self.keywords.remove(_passage_rowids(removed))
        self.keywords.add(KeywordPassage(rowid, chunk.text, document.source) for rowid, chunk in zip(rowids, chunks))

    def remove(self, document_id: str) -> int:
        """Remove a document and its vectors; return how many vectors went."""
        removed = self.store.remove(document_id)
        self.index.remove(np.asarray(removed, dtype=np.int64))
        self.keywords.remove(_passage_rowids(removed))
        return len(removed)

    def save(self) -> None:
        """Persist the vector and keyword indexes atomically, tagged with the store's generation."""
        self.index.save(self.directory / VECTORS_FILE, generation=self.store.generation)
        if self.keywords.skewed:
            # Removed passages would go on counting in the keyword statistics; start afresh instead.
            self.keywords.discard()
            self.rebuild_keywords()
        else:
            self.keywords.save(generation=self.store.generation)


def _passage_rowids(vector_ids: Sequence[int]) -> list[int]:
    return sorted({int(vector_id) // WINDOW_SLOTS for vector_id in vector_ids})
