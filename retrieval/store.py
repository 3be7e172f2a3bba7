"""The durable store: documents, chunks and their vectors, in SQLite.

The only module that speaks SQL. Every change is one transaction, so a crash leaves
either the old state or the new one. The FAISS index and the keyword index are derived from
what is kept here and can always be rebuilt from it without re-embedding.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.health import DocumentHealth
from ingest.records import Chunk, Document, Page, Section, content_hash, pages_over
from retrieval.records import KeywordPassage, StoredDocument

SCHEMA_VERSION = "2"

# Each passage has up to this many window vectors; vector id = passage rowid * WINDOW_SLOTS + window.
# Part of the on-disk layout (stored vector ids depend on it), so the store owns it; chunking's
# MAX_WINDOWS must stay within it (put() refuses more, and a test checks the two).
WINDOW_SLOTS = 64

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- A document's health is what the loader read and the warnings it earned (ingest/health.py), as
-- JSON; NULL for documents stored before it was kept, until an ingest reads them again.
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    file_hash TEXT NOT NULL,
    text TEXT NOT NULL,
    structure TEXT NOT NULL,
    size INTEGER NOT NULL,
    updated REAL NOT NULL,
    health TEXT
);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    heading TEXT,
    page INTEGER,
    line_start INTEGER NOT NULL,
    line_end INTEGER NOT NULL,
    text TEXT NOT NULL,
    pages TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS windows (
    id INTEGER PRIMARY KEY,
    chunk_rowid INTEGER NOT NULL REFERENCES chunks(rowid) ON DELETE CASCADE,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    text_hash TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS windows_chunk ON windows(chunk_rowid);
CREATE INDEX IF NOT EXISTS windows_text_hash ON windows(text_hash);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment TEXT NOT NULL
);
-- Questions the documents did not answer (the gaps): the text searched, its vector (empty until the
-- gaps are listed), the nearest passages' documents as JSON, and the generation at which a later
-- answer was found (or NULL).
CREATE TABLE IF NOT EXISTS declined (
    id INTEGER PRIMARY KEY,
    asked REAL NOT NULL,
    question TEXT NOT NULL,
    vector BLOB NOT NULL,
    nearest TEXT NOT NULL,
    checked INTEGER NOT NULL,
    answered INTEGER
);
-- Window vectors made by another model, set aside until every window has one and then swapped
-- in at once (a library embedded again); empty otherwise.
CREATE TABLE IF NOT EXISTS staged_vectors (id INTEGER PRIMARY KEY, vector BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document_id);
-- Keyword search moved to its own index (retrieval/keyword.py); stores made before drop FTS5's.
DROP TRIGGER IF EXISTS chunks_ai;
DROP TRIGGER IF EXISTS chunks_ad;
DROP TABLE IF EXISTS chunks_fts;
"""

def _pages_json(pages: Sequence[Page]) -> str:
    return json.dumps([[p.number, p.start, p.end] for p in pages])


def _pages_from_json(text: str) -> tuple[Page, ...]:
    return tuple(Page(*p) for p in json.loads(text)) if text != "[]" else ()


def _add_document_health(db: sqlite3.Connection) -> None:
    """Give a store made before documents kept their health the column (NULL until an ingest reads them again)."""
    if not any(column[1] == "health" for column in db.execute("PRAGMA table_info(documents)")):
        db.execute("ALTER TABLE documents ADD COLUMN health TEXT")


def _health_from_json(text: str | None) -> DocumentHealth | None:
    return DocumentHealth.from_dict(json.loads(text)) if text else None


def _add_passage_pages(db: sqlite3.Connection) -> None:
    """Give a store made before passages kept their pages the column, filled from each document's pages."""
    if any(column[1] == "pages" for column in db.execute("PRAGMA table_info(chunks)")):
        return
    db.execute("ALTER TABLE chunks ADD COLUMN pages TEXT NOT NULL DEFAULT '[]'")
    for document_id, structure in db.execute("SELECT id, structure FROM documents").fetchall():
        pages = tuple(Page(*p) for p in json.loads(structure)["pages"])
        if not pages:
            continue
        passages = db.execute("SELECT rowid, start, end FROM chunks WHERE document_id=?", (document_id,)).fetchall()
        db.executemany(
            "UPDATE chunks SET pages=? WHERE rowid=?",
            [(_pages_json(pages_over(pages, start, end)), rowid) for rowid, start, end in passages],
        )


# Columns a rating gained when ratings became one per answer; a store made before gets them
# (NULL or empty for its old ratings, which stay as they were).
_FEEDBACK_COLUMNS = {
    "answer_id": "TEXT",
    "answered": "INTEGER",
    "citations": "TEXT NOT NULL DEFAULT '[]'",
    "updated": "REAL",
}
_FEEDBACK_KEYS = ("id", "created", "updated", "answer_id", "question", "answer", "answered", "citations", "rating",
                  "comment")


def _add_feedback_answers(db: sqlite3.Connection) -> None:
    """Give the feedback table its per-answer columns and the index that keeps one rating per answer."""
    present = {column[1] for column in db.execute("PRAGMA table_info(feedback)")}
    for name, kind in _FEEDBACK_COLUMNS.items():
        if name not in present:
            db.execute(f"ALTER TABLE feedback ADD COLUMN {name} {kind}")
    # Old ratings have no answer id (NULL), and SQLite counts NULLs as distinct.
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS feedback_answer ON feedback(answer_id)")


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk row joined with its document's source and title."""

    rowid: int
    chunk: Chunk
    source: str
    title: str


class Store:
    """SQLite-backed documents, chunks and vectors."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        # (generation, (documents, chunks)): counting a million chunks takes tens of milliseconds
        # warm and most of a second cold, so the counts are taken once per generation.
        self._counts: tuple[int, tuple[int, int]] | None = None
        # executescript commits on its own, so the schema goes in before the transaction.
        self._db.executescript(SCHEMA)
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
            _add_passage_pages(db)
            _add_document_health(db)
            _add_feedback_answers(db)

    # One connection per thread: SQLite connections must not be shared across threads,
    # and WAL lets readers go on while a writer commits.
    @property
    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # --- metadata -------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        """Return every metadata key and value."""
        return dict(self._db.execute("SELECT key, value FROM meta"))

    def set_meta(self, values: dict[str, str]) -> None:
        """Record metadata (model, vector size, chunking) that the index depends on."""
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(values.items()))

    @property
    def generation(self) -> int:
        """A counter bumped by every change, so a saved vector index can tell it is stale."""
        return int(self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])

    @staticmethod
    def _bump(db: sqlite3.Connection) -> None:
        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")

    # --- writes ---------------------------------------------------------------------
    def put(
        self,
        document: Document,
        chunks: Sequence[Chunk],
        windows: Sequence[Sequence[tuple[int, int]]],
        vectors: np.ndarray,
        *,
        file_hash: str | None = None,
        health: DocumentHealth | None = None,
    ) -> tuple[list[int], list[int], list[int]]:
        """Store a document with its chunks and their window vectors, replacing any earlier version.

        `windows[i]` are spans of `chunks[i].text`; `vectors` holds one row per window, in order.
        `health` is what the loader read and the warnings it earned, kept beside the document.
        Returns (removed vector ids, added vector ids, the rowids given to `chunks`, in order) so
        the vector and keyword indexes can follow.
        """
        if len(chunks) != len(windows) or sum(len(w) for w in windows) != len(vectors):
            raise ValueError(
                f"got {len(chunks)} chunks, {len(windows)} window lists and {len(vectors)} vectors; they must match"
            )
        if any(len(spans) > WINDOW_SLOTS for spans in windows):
            most = max(len(spans) for spans in windows)
            raise ValueError(f"a passage may have at most {WINDOW_SLOTS} windows, got {most}")
        structure = json.dumps(
            {
                "sections": [[s.heading, s.start, s.end, s.level] for s in document.sections],
                "pages": [[p.number, p.start, p.end] for p in document.pages],
            }
        )
        vectors = np.asarray(vectors, dtype=np.float32)
        with self._transaction() as db:
            removed = self._vector_ids_of(db, document.id)
            db.execute("DELETE FROM windows WHERE chunk_rowid IN (SELECT rowid FROM chunks WHERE document_id=?)",
                        (document.id,))
            db.execute("DELETE FROM chunks WHERE document_id=?", (document.id,))
            db.execute(
                "INSERT OR REPLACE INTO documents"
                " (id, source, title, content_hash, file_hash, text, structure, size, updated, health)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    document.id,
                    document.source,
                    document.title,
                    document.content_hash,
                    file_hash or document.content_hash,
                    document.text,
                    structure,
                    len(document.text.encode("utf-8")) if document.size is None else document.size,
                    time.time(),
                    None if health is None else json.dumps(health.to_dict(), ensure_ascii=False),
                ),
            )
            added = []
            rowids = []
            row = 0
            for chunk, spans in zip(chunks, windows):
                cursor = db.execute(
                    "INSERT INTO chunks (id, document_id, start, end, heading, page, line_start, line_end, text, pages)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (chunk.id, chunk.document_id, chunk.start, chunk.end, chunk.heading, chunk.page,
                     chunk.line_start, chunk.line_end, chunk.text, _pages_json(chunk.pages)),
                )
                rowids.append(cursor.lastrowid)
                for slot, (start, end) in enumerate(spans):
                    vector_id = cursor.lastrowid * WINDOW_SLOTS + slot
                    db.execute(
                        "INSERT INTO windows (id, chunk_rowid, start, end, text_hash, vector) VALUES (?, ?, ?, ?, ?, ?)",
                        (vector_id, cursor.lastrowid, start, end, content_hash(chunk.text[start:end]),
                         vectors[row].tobytes()),
                    )
                    added.append(vector_id)
                    row += 1
            self._bump(db)
        return removed, added, rowids

    @staticmethod
    def _vector_ids_of(db: sqlite3.Connection, document_id: str) -> list[int]:
        return [
            vector_id
            for (vector_id,) in db.execute(
                "SELECT w.id FROM windows w JOIN chunks c ON c.rowid = w.chunk_rowid WHERE c.document_id=?",
                (document_id,),
            )
        ]

    def remove(self, document_id: str) -> list[int]:
        """Delete a document, its chunks and their vectors; return the removed vector ids."""
        with self._transaction() as db:
            removed = self._vector_ids_of(db, document_id)
            db.execute("DELETE FROM windows WHERE chunk_rowid IN (SELECT rowid FROM chunks WHERE document_id=?)",
                       (document_id,))
            db.execute("DELETE FROM chunks WHERE document_id=?", (document_id,))
            db.execute("DELETE FROM documents WHERE id=?", (document_id,))
            self._bump(db)
        return removed

    def rate_answer(
        self,
        answer_id: str,
        *,
        question: str,
        answer: str,
        answered: bool | None,
        citations: Sequence[dict],
        rating: str,
        comment: str | None,
    ) -> int:
        """Store or change the one rating of an answer (the last one stands); return the rating's id.

        A `comment` of None keeps the comment the answer has (a second click changes the rating only).
        """
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO feedback (created, updated, answer_id, question, answer, answered, citations, rating, comment)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(answer_id) DO UPDATE SET updated=excluded.updated, rating=excluded.rating,"
                " comment=CASE WHEN ? IS NULL THEN feedback.comment ELSE excluded.comment END",
                (now, now, answer_id, question, answer, None if answered is None else int(answered),
                 json.dumps(list(citations), ensure_ascii=False), rating, comment or "", comment),
            )
            (rating_id,) = db.execute("SELECT id FROM feedback WHERE answer_id=?", (answer_id,)).fetchone()
        return int(rating_id)

    def feedback(self, answer_id: str | None = None) -> list[dict]:
        """Return every stored rating, oldest first (or the one of `answer_id`, if rated)."""
        where, arguments = ("WHERE answer_id=?", (answer_id,)) if answer_id is not None else ("", ())
        rows = self._db.execute(f"SELECT {', '.join(_FEEDBACK_KEYS)} FROM feedback {where} ORDER BY id", arguments)
        records = []
        for row in rows:
            record = dict(zip(_FEEDBACK_KEYS, row))
            record["updated"] = record["updated"] if record["updated"] is not None else record["created"]
            record["answered"] = None if record["answered"] is None else bool(record["answered"])
            record["citations"] = json.loads(record["citations"])
            records.append(record)
        return records

    def forget_library(self) -> None:
        """Drop every document, passage and vector and what they were made with (a rebuild), keeping
        what people left: ratings, and the declined questions (embedded again when next listed)."""
        with self._transaction() as db:
            db.execute("DELETE FROM windows")
            db.execute("DELETE FROM chunks")
            db.execute("DELETE FROM documents")
            db.execute("DELETE FROM meta WHERE key NOT IN ('schema', 'generation')")
            db.execute("UPDATE declined SET vector = x''")
            self._bump(db)

    # --- re-embedding with another model ---------------------------------------------------
    def window_texts(self, *, after: int = -1, limit: int) -> list[tuple[int, str]]:
        """Up to `limit` windows' (id, text) in id order, from the first id past `after`."""
        rows = self._db.execute(
            "SELECT w.id, w.start, w.end, c.text FROM windows w JOIN chunks c ON c.rowid = w.chunk_rowid"
            " WHERE w.id > ? ORDER BY w.id LIMIT ?",
            (after, limit),
        )
        return [(window_id, text[start:end]) for window_id, start, end, text in rows]

    def stage_vectors(self, vectors: dict[int, np.ndarray], *, first: bool = False) -> None:
        """Set window vectors aside, {id: vector}, until `swap_staged_vectors`; `first` drops any set aside before."""
        with self._transaction() as db:
            if first:
                db.execute("DELETE FROM staged_vectors")
            db.executemany("INSERT OR REPLACE INTO staged_vectors VALUES (?, ?)",
                           [(i, np.asarray(v, dtype=np.float32).tobytes()) for i, v in vectors.items()])

    def swap_staged_vectors(self, meta: dict[str, str]) -> None:
        """Put the staged vectors in place of every window's and record `meta` (the model that made them), at once."""
        with self._transaction() as db:
            missing = db.execute("SELECT count(*) FROM windows WHERE id NOT IN (SELECT id FROM staged_vectors)")
            if (count := missing.fetchone()[0]) > 0:
                raise RuntimeError(f"{count} windows have no staged vector; nothing was changed")
            db.execute("UPDATE windows SET vector = (SELECT vector FROM staged_vectors s WHERE s.id = windows.id)")
            db.execute("DELETE FROM staged_vectors")
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(meta.items()))
            self._bump(db)

    # --- declined questions (gaps) --------------------------------------------------------
    def add_declined(self, question: str, nearest: Sequence[dict]) -> int:
        """Log a question the documents did not answer, with the nearest passages' documents (its vector comes later)."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO declined (asked, question, vector, nearest, checked, answered)"
                " VALUES (?, ?, ?, ?, (SELECT CAST(value AS INTEGER) FROM meta WHERE key='generation'), NULL)",
                (time.time(), question, b"", json.dumps(list(nearest), ensure_ascii=False)),
            )
        return int(cursor.lastrowid)

    def set_declined_vectors(self, vectors: dict[int, np.ndarray]) -> None:
        """Keep the vectors declined questions were grouped by, {id: vector}."""
        with self._transaction() as db:
            db.executemany("UPDATE declined SET vector=? WHERE id=?",
                           [(np.asarray(vector, dtype=np.float32).tobytes(), i) for i, vector in vectors.items()])

    def declined(self) -> list[dict]:
        """Return the logged declined questions not answered since, oldest first, vectors as float32 arrays."""
        rows = self._db.execute(
            "SELECT id, asked, question, vector, nearest, checked FROM declined WHERE answered IS NULL ORDER BY id"
        )
        return [
            {"id": row[0], "asked": row[1], "question": row[2], "vector": np.frombuffer(row[3], dtype=np.float32),
             "nearest": json.loads(row[4]), "checked": row[5]}
            for row in rows
        ]

    def mark_declined(self, ids: Sequence[int], *, generation: int, answered: bool) -> None:
        """Record that these declined questions were asked again at `generation`: answered now, or still not."""
        column = "answered" if answered else "checked"
        with self._transaction() as db:
            db.executemany(f"UPDATE declined SET {column}=? WHERE id=?", [(generation, i) for i in ids])

    # --- reads ----------------------------------------------------------------------
    def file_hashes(self) -> dict[str, str]:
        """Return {source: hash of the file's bytes} of every stored document."""
        return dict(self._db.execute("SELECT source, file_hash FROM documents"))

    def vectors_for_texts(self, text_hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Return stored vectors of windows with these text hashes, to skip re-embedding them."""
        found: dict[str, np.ndarray] = {}
        wanted = list(dict.fromkeys(text_hashes))
        for i in range(0, len(wanted), 500):
            batch = wanted[i : i + 500]
            marks = ",".join("?" * len(batch))
            for text_hash, blob in self._db.execute(
                f"SELECT text_hash, vector FROM windows WHERE text_hash IN ({marks})", batch
            ):
                found[text_hash] = np.frombuffer(blob, dtype=np.float32)
        return found

    def iter_vectors(self, batch: int = 10_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (vector ids, vectors) of every window in batches, for rebuilding the index."""
        cursor = self._db.execute("SELECT id, vector FROM windows ORDER BY id")
        while rows := cursor.fetchmany(batch):
            ids = np.fromiter((r for r, _ in rows), dtype=np.int64, count=len(rows))
            vectors = np.vstack([np.frombuffer(v, dtype=np.float32) for _, v in rows])
            yield ids, vectors

    def vector_ids(self) -> np.ndarray:
        """Return the ids of every stored vector, sorted."""
        return np.fromiter((i for (i,) in self._db.execute("SELECT id FROM windows ORDER BY id")), dtype=np.int64)

    def iter_passages(self, batch: int = 10_000) -> Iterator[KeywordPassage]:
        """Yield every passage's rowid, text and source, for building the keyword index."""
        last = 0
        while True:
            rows = self._db.execute(
                "SELECT c.rowid, c.text, d.source FROM chunks c"
                " JOIN documents d ON d.id = c.document_id WHERE c.rowid > ? ORDER BY c.rowid LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield KeywordPassage(*row)
            last = rows[-1][0]

    def chunk_rowids(self) -> np.ndarray:
        """Return the rowids of every stored chunk, sorted."""
        return np.fromiter((r for (r,) in self._db.execute("SELECT rowid FROM chunks ORDER BY rowid")), dtype=np.int64)

    def chunks(self, rowids: Sequence[int]) -> dict[int, StoredChunk]:
        """Return the chunks with these rowids, with their document's source and title."""
        found: dict[int, StoredChunk] = {}
        wanted = [int(r) for r in rowids]
        for i in range(0, len(wanted), 500):
            batch = wanted[i : i + 500]
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(
                "SELECT c.rowid, c.id, c.document_id, c.text, c.start, c.end, c.heading, c.page,"
                " c.line_start, c.line_end, d.source, d.title, c.pages"
                f" FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.rowid IN ({marks})",
                batch,
            )
            for row in rows:
                chunk = Chunk(
                    document_id=row[2], text=row[3], start=row[4], end=row[5], heading=row[6],
                    page=row[7], line_start=row[8], line_end=row[9], pages=_pages_from_json(row[12]), id=row[1],
                )
                found[row[0]] = StoredChunk(row[0], chunk, source=row[10], title=row[11])
        return found

    def documents(self) -> list[StoredDocument]:
        """Return every stored document with its chunk count and health, by source."""
        rows = self._db.execute(
            "SELECT d.id, d.source, d.title, d.size, count(c.rowid), d.updated, d.content_hash, d.health"
            " FROM documents d LEFT JOIN chunks c ON c.document_id = d.id GROUP BY d.id ORDER BY d.source"
        )
        return [StoredDocument(*row[:7], health=_health_from_json(row[7])) for row in rows]

    def document(self, document_id: str) -> Document | None:
        """Return the full document with its structure, or None."""
        row = self._db.execute(
            "SELECT source, title, text, structure, content_hash FROM documents WHERE id=?", (document_id,)
        ).fetchone()
        if row is None:
            return None
        structure = json.loads(row[3])
        return Document(
            source=row[0],
            title=row[1],
            text=row[2],
            sections=tuple(Section(*s) for s in structure["sections"]),
            pages=tuple(Page(*p) for p in structure["pages"]),
            id=document_id,
            content_hash=row[4],
        )

    def text_between(self, document_id: str, start: int, end: int) -> str:
        """Return the document's text from offset `start` to `end` ("" for a document not stored)."""
        start = max(0, start)
        row = self._db.execute(
            "SELECT substr(text, ?, ?) FROM documents WHERE id=?", (start + 1, max(0, end - start), document_id)
        ).fetchone()
        return row[0] if row else ""

    def document_id_for_source(self, source: str) -> str | None:
        """Return the id of the document stored from `source`, if any."""
        row = self._db.execute("SELECT id FROM documents WHERE source=?", (source,)).fetchone()
        return row[0] if row else None

    def chunk_count(self, document_id: str) -> int:
        """Return how many passages a document has."""
        return self._db.execute("SELECT count(*) FROM chunks WHERE document_id=?", (document_id,)).fetchone()[0]

    def chunk_sources(self) -> dict[int, str]:
        """Return {chunk rowid: document source} for every chunk (document-level evaluation)."""
        return dict(self._db.execute("SELECT c.rowid, d.source FROM chunks c JOIN documents d ON d.id = c.document_id"))

    def counts(self) -> tuple[int, int]:
        """Return (documents, chunks), counted again only after a change."""
        # The generation is read first: a change committed between it and the counts leaves
        # newer counts under an older generation, which the next call counts again.
        generation = self.generation
        cached = self._counts
        if cached is not None and cached[0] == generation:
            return cached[1]
        documents = self._db.execute("SELECT count(*) FROM documents").fetchone()[0]
        chunks = self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        self._counts = (generation, (documents, chunks))
        return documents, chunks

    def is_empty(self) -> bool:
        """Whether no document is stored (without counting them all)."""
        return self._db.execute("SELECT NOT EXISTS (SELECT 1 FROM documents)").fetchone()[0] == 1
