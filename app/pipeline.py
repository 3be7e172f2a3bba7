"""The indexing that writes the library: files in (read and cut up by `ingest`), embedded and stored passages out.

Incremental by content hash; `app/distributed.py` runs the same steps on Ray.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np

from app.progress import Progress
from ingest.chunking import counted_once, sized_windows, split
from ingest.errors import IngestError
from ingest.loaders import parse
from ingest.records import Chunk, Document, content_hash
from retrieval.embedder import Embedder
from retrieval.library import Library

log = logging.getLogger(__name__)

IGNORE_FILE = ".sourcebookignore"
# Windows gathered from many documents before any goes to the model, so that each model batch
# holds texts of nearly the same token count: the padding in a pool of 4,096 SciFact windows is
# 3% over the tokens themselves, against 16% in pools of 512 (docs/BENCHMARKS.md). A crash loses
# at most one pool's embedding; every document stored before it stays.
EMBED_GROUP = 4096


@dataclass(frozen=True, slots=True)
class Chunking:
    """How documents are cut: passage size and overlap, and the size of the windows that are embedded."""

    max_tokens: int
    overlap_tokens: int
    window_tokens: int


@dataclass(slots=True)
class IngestReport:
    """What an ingest run did, file by file."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    # Window texts (a passage has a few) sent to the model, and ones whose stored vector was reused.
    windows_embedded: int = 0
    windows_reused: int = 0

    def summary(self) -> dict[str, int]:
        """Return the counts shown at the end of a run."""
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "removed": len(self.removed),
            "unchanged": len(self.unchanged),
            "failed": len(self.failed),
        }


# One file's outcome once read: its document to store (with its file's hash and whether a
# version of it was stored before), or None when there is nothing to store (unchanged or failed).
Entry = tuple[Document, str, bool] | None


def source_for(path: Path) -> str:
    """Return the name a file is cited by: its path relative to the working directory when inside it."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


# Names editors and downloads give files they are still writing or keep aside (a hidden name,
# like vim's `.notes.txt.swp`, an upload's `.notes.txt.1a2b.part` or `.deleted/`, is skipped anyway).
TEMPORARY_SUFFIXES = ("~", ".swp", ".swo", ".swx", ".part", ".crdownload", ".tmp")


def is_temporary(name: str) -> bool:
    """Whether a file name is an editor's or a download's temporary file (Emacs writes `#notes.txt#`)."""
    return name.endswith(TEMPORARY_SUFFIXES) or (name.startswith("#") and name.endswith("#"))


def find_files(root: Path) -> list[Path]:
    """Return the files under `root` to consider, skipping hidden ones, editors' temporary files and those in .sourcebookignore."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"no such file or folder: {root}")
    patterns = _ignore_patterns(root)
    found = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        for name in sorted(files):
            path = Path(directory, name)
            relative = path.relative_to(root).as_posix()
            if name.startswith(".") or is_temporary(name) or any(fnmatch.fnmatch(relative, p) for p in patterns):
                continue
            found.append(path)
    return found


def _ignore_patterns(root: Path) -> list[str]:
    ignore = root / IGNORE_FILE
    if not ignore.is_file():
        return []
    lines = (line.strip() for line in ignore.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def ingest_path(
    root: Path,
    *,
    library: Library,
    embedder: Embedder,
    chunking: Chunking,
    max_file_bytes: int,
    progress: Progress | None = None,
) -> IngestReport:
    """Bring the library in line with the files under `root`: embed new and changed ones, drop vanished ones."""
    root = Path(root)
    report = IngestReport()
    stored = library.store.file_hashes()
    sources = files_to_consider(root)
    # Files read by earlier loaders are read again, once, so their titles and sizes follow the
    # loaders; every vector whose text did not change is reused, so the model does little or nothing.
    reread = library.read_by_older_loaders()
    skip_if = {} if reread else stored

    def read(source: str, path: Path) -> Entry:
        try:
            outcome = read_changed(path, source, skip_if.get(source), max_file_bytes)
        except IngestError as error:
            log.warning("skipped %s", error)
            report.failed.append((source, error.reason))
            return None
        if outcome is None:
            report.unchanged.append(source)
            return None
        document, file_hash = outcome
        return document, file_hash, source in stored

    _store_documents(
        ((source, partial(read, source, path)) for source, path in sources.items()), report,
        library=library, embedder=embedder, chunking=chunking, progress=progress, total=len(sources),
    )
    remove_vanished(root, stored, sources, library=library, report=report)
    library.save()
    if reread:
        library.note_current_loaders()
    return report


def files_to_consider(root: Path) -> dict[str, Path]:
    """Return {source: path} of the files under `root` an ingest looks at, in a stable order."""
    return {source_for(path): path for path in find_files(root)}


def vanished(root: Path, stored: dict[str, str], sources: dict[str, Path]) -> list[str]:
    """Return the stored sources under folder `root` that are not among its files `sources`."""
    if not root.is_dir():
        return []
    folder = source_for(root)
    return [source for source in sorted(set(stored) - set(sources)) if _is_under(source, folder)]


def remove_vanished(
    root: Path, stored: dict[str, str], sources: dict[str, Path], *, library: Library, report: IngestReport
) -> None:
    """Remove the stored documents under folder `root` whose files are no longer there."""
    for source in vanished(root, stored, sources):
        document_id = library.store.document_id_for_source(source)
        if document_id:
            library.remove(document_id)
            report.removed.append(source)


@dataclass(frozen=True, slots=True)
class Embedded:
    """One parsed file cut up and embedded, not yet stored: the slow half of storing an upload."""

    prepared: Prepared
    vectors: np.ndarray
    windows_embedded: int
    windows_reused: int


def embed_parsed(
    document: Document, file_hash: str, *, library: Library, embedder: Embedder, chunking: Chunking
) -> Embedded:
    """Cut up and embed one file already read and parsed (an upload), writing nothing.

    Done before the write lock is taken, so a delete or another upload never waits for this
    file's model work; `store_embedded` then stores it in one transaction. `file_hash` is the
    hash of the file's bytes, so a later ingest of the folder sees it unchanged.
    """
    item = prepare(document, file_hash, existed=False, chunking=chunking, count_tokens=embedder.count_tokens)
    report = IngestReport()
    [vectors] = _embed_pool([item], report, library=library, embedder=embedder)
    return Embedded(item, vectors, report.windows_embedded, report.windows_reused)


def store_embedded(item: Embedded, *, library: Library) -> IngestReport:
    """Store an embedded file, replacing an earlier version of its source, and save the indexes (under the write lock)."""
    report = IngestReport(windows_embedded=item.windows_embedded, windows_reused=item.windows_reused)
    source = item.prepared.document.source
    stored = library.store.file_hashes().get(source)
    if stored == item.prepared.file_hash:
        report.unchanged.append(source)
        return report
    store_prepared(replace(item.prepared, existed=stored is not None), item.vectors, library=library, report=report)
    library.save()
    return report


def ingest_documents(
    documents: Iterable[Document], *, library: Library, embedder: Embedder, chunking: Chunking,
) -> IngestReport:
    """Store documents that did not come from files (a benchmark corpus, say), skipping unchanged ones."""
    report = IngestReport()
    stored = library.store.file_hashes()

    def read(document: Document) -> Entry:
        if stored.get(document.source) == document.content_hash:
            report.unchanged.append(document.source)
            return None
        return document, document.content_hash, document.source in stored

    _store_documents(
        ((document.source, partial(read, document)) for document in documents), report,
        library=library, embedder=embedder, chunking=chunking,
    )
    library.save()
    return report


def _is_under(source: str, folder: str) -> bool:
    if folder == ".":
        return not source.startswith("/")
    return source.startswith(folder.rstrip("/") + "/")


def over_file_limit(size: int, max_file_bytes: int) -> str | None:
    """Say why a file of `size` bytes is refused, or None when it is within the per-file limit.

    The one per-file size check: of a folder's files here, of uploads in the service.
    """
    if size > max_file_bytes:
        return f"file is {size:,} bytes, over the {max_file_bytes:,}-byte limit"
    return None


def read_changed(path: Path, source: str, stored_hash: str | None, max_file_bytes: int) -> tuple[Document, str] | None:
    """Parse a file into (document, hash of its bytes), or return None when its bytes are unchanged.

    Raises IngestError, naming the file and the reason, when it is too big, unreadable or bad.
    """
    try:
        size = path.stat().st_size
        if (reason := over_file_limit(size, max_file_bytes)) is not None:
            raise IngestError(source, reason)
        data = path.read_bytes()
    except OSError as error:
        raise IngestError(source, f"cannot read file: {error.strerror or error}") from error
    file_hash = hashlib.sha256(data).hexdigest()
    if file_hash == stored_hash:
        return None
    return parse(data, path.suffix, source=source), file_hash


@dataclass(frozen=True, slots=True)
class Prepared:
    """A new or changed document cut up and ready to embed: its passages and each passage's windows."""

    document: Document
    file_hash: str
    existed: bool
    chunks: list[Chunk]
    # windows[i] are (start, end) spans of chunks[i].text; the windows are what gets embedded.
    windows: list[list[tuple[int, int]]]
    # window_tokens[i][j]: the tokens of window j of chunk i (the sum of its sentences' counts),
    # used only to put windows of the same length into one model batch.
    window_tokens: list[list[int]]

    def window_texts(self) -> list[str]:
        """Return the texts to embed, one per window, in storage order."""
        return [c.text[a:b] for c, spans in zip(self.chunks, self.windows) for a, b in spans]

    def window_sizes(self) -> list[int]:
        """Return the token count of each window, in the order of `window_texts`."""
        return [tokens for sizes in self.window_tokens for tokens in sizes]


def prepare(
    document: Document, file_hash: str, *, existed: bool, chunking: Chunking, count_tokens: Callable[[str], int]
) -> Prepared:
    """Cut a document into passages and each passage into the windows that will be embedded."""
    # The windows' sentences are the passages' sentences again: count each one once.
    count_tokens = counted_once(count_tokens)
    chunks = split(
        document,
        max_tokens=chunking.max_tokens,
        overlap_tokens=chunking.overlap_tokens,
        count_tokens=count_tokens,
    )
    sized = [sized_windows(c.text, max_tokens=chunking.window_tokens, count_tokens=count_tokens) for c in chunks]
    spans = [[(start, end) for start, end, _ in passage] for passage in sized]
    tokens = [[size for _, _, size in passage] for passage in sized]
    return Prepared(document, file_hash, existed, chunks, spans, tokens)


def store_prepared(item: Prepared, vectors: np.ndarray, *, library: Library, report: IngestReport) -> None:
    """Store one prepared document with one vector per window (one transaction) and record it."""
    library.put(item.document, item.chunks, item.windows, vectors, file_hash=item.file_hash)
    (report.updated if item.existed else report.added).append(item.document.source)


def embed_by_length(
    embedder: Embedder,
    texts: Sequence[str],
    tokens: Sequence[int],
    *,
    embedded: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Embed texts one model batch per call, longest first, each batch alike in token count.

    Returns one row per text, in the order given. sentence-transformers orders a call's texts by
    characters, not tokens, and pads each batch to its longest: on SciFact's windows that computes
    half as much again as the tokens need. `tokens` (a close estimate is enough) decides the
    batches here instead. `embedded(n)` is told after each batch how many texts are done.
    """
    vectors = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    batch = embedder.batch_size
    # sorted() is stable, so equal lengths keep their order and a run is reproducible.
    order = sorted(range(len(texts)), key=lambda i: -tokens[i])
    for start in range(0, len(order), batch):
        rows = order[start : start + batch]
        vectors[rows] = embedder.encode([texts[i] for i in rows])
        if embedded:
            embedded(start + len(rows))
    return vectors


def _store_documents(
    documents: Iterable[tuple[str, Callable[[], Entry]]],
    report: IngestReport,
    *,
    library: Library,
    embedder: Embedder,
    chunking: Chunking,
    progress: Progress | None = None,
    total: int = 0,
) -> None:
    """Chunk, embed (reusing stored vectors for unchanged text) and store, pooling many documents.

    `documents` yields each file's source with the function that reads it (into an Entry).
    Progress counts settled files and names the file being read; while a pool is embedded it
    moves with the batches, naming no file (the pool's passages are embedded together).
    """
    pending: list[Prepared] = []
    pending_windows = 0
    settled = 0

    def flush() -> None:
        nonlocal settled, pending, pending_windows
        pool, before = len(pending), settled

        def embedded(done: int, todo: int) -> None:
            if progress:
                progress(before + pool * done // todo, total, None)

        _flush(pending, report, library=library, embedder=embedder, embedded=embedded)
        settled += pool
        pending, pending_windows = [], 0

    for source, read in documents:
        if progress:
            progress(settled, total, source)
        entry = read()
        if entry is None:
            settled += 1
            continue
        document, file_hash, existed = entry
        item = prepare(document, file_hash, existed=existed, chunking=chunking, count_tokens=embedder.count_tokens)
        pending.append(item)
        pending_windows += sum(len(s) for s in item.windows)
        if pending_windows >= EMBED_GROUP:
            flush()
    if pending:
        flush()
    if progress:
        progress(settled, total, None)


def _flush(
    pending: list[Prepared],
    report: IngestReport,
    *,
    library: Library,
    embedder: Embedder,
    embedded: Callable[[int, int], None] | None = None,
) -> None:
    """Embed the pool's new window texts together, then store its documents one transaction each."""
    for item, vectors in zip(pending, _embed_pool(pending, report, library=library, embedder=embedder, embedded=embedded)):
        store_prepared(item, vectors, library=library, report=report)


def _embed_pool(
    pending: list[Prepared],
    report: IngestReport,
    *,
    library: Library,
    embedder: Embedder,
    embedded: Callable[[int, int], None] | None = None,
) -> list[np.ndarray]:
    """Return each prepared document's window vectors: stored ones reused, the pool's new texts embedded together."""
    hashes = [content_hash(t) for item in pending for t in item.window_texts()]
    known = library.store.vectors_for_texts(hashes)
    # Each text new to the store, once, with its size.
    missing: dict[str, int] = {}
    for item in pending:
        for text, tokens in zip(item.window_texts(), item.window_sizes()):
            if content_hash(text) not in known:
                missing.setdefault(text, tokens)
    if missing:
        texts = list(missing)
        batch_done = (lambda done: embedded(done, len(texts))) if embedded else None
        vectors = embed_by_length(embedder, texts, list(missing.values()), embedded=batch_done)
        for text, vector in zip(texts, vectors):
            known[content_hash(text)] = vector
    report.windows_embedded += len(missing)
    report.windows_reused += len(hashes) - len(missing)
    return [
        np.vstack([known[content_hash(t)] for t in item.window_texts()])
        if item.window_texts()
        else np.zeros((0, embedder.dim), np.float32)
        for item in pending
    ]
