"""The one service every front end calls: ingest and upload, search and ask, list, delete and restore documents,
ratings of answers, and the gaps (questions the documents did not answer)."""

from __future__ import annotations

import glob
import hashlib
import hmac
import itertools
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from pydantic import SecretStr

from app.conversation import contextualise
from app.deleted import DELETED_FOLDER, KeptFile, kept_files
from app.feedback import RATINGS, citation_record
from app.gaps import Declined, Gap, gap_of, group_by_meaning, reading_order
from app.pipeline import (
    EMBED_GROUP, Chunking, IngestReport, Progress, embed_by_length, embed_parsed, files_to_consider, ingest_documents,
    ingest_path, over_file_limit, source_for, store_embedded, vanished,
)
from app.progress import AT_START, BY_COMMAND, BY_UPLOAD, IngestProgress, ProgressFile, read_progress
from app.suggestions import answers_about, candidate_questions
from app.uploads import NoSupportedFile, Upload, UploadResult, of_supported_type, safe_filename
from ingest.errors import IngestError
from ingest.loaders import parse
from ingest.records import Document
from retrieval.answer import compose
from retrieval.embedder import Embedder, is_bundled, load_embedder, writer_first
from retrieval.errors import AnswerNotKnown, DocumentNotFound, KeptFileNotFound, NameTaken, UploadTooLarge
from retrieval.files import PART_PREFIX, PART_SUFFIX, part_of, write_atomically, write_synced
from retrieval.library import MODEL_KEY, Library
from retrieval.reader import Reader
from retrieval.reading import Scorer, names_in
from retrieval.records import Answer, Found, Hit, StoredDocument
from retrieval.search import Fusion, Searcher, check_k
from retrieval.settings import Settings

# Answers given lately, by id, so a rating may name an answer by its id alone (the HTTP API).
RECENT_ANSWERS = 1000
# Nearest passages whose documents a declined question's log keeps.
GAP_NEAREST = 3
# Gaps asked again per listing after a change, most asked first, so a listing costs a few
# seconds however many gaps there are; the rest are asked at the next listings.
GAP_RECHECKS = 20
# Windows embedded per step when a library is embedded again with another model: an ingest's pool,
# so each model batch holds windows alike in token count.
EMBED_AGAIN_BATCH = EMBED_GROUP
# Where, in the index directory, the bundled model that groups the gaps' questions is exported.
QUESTION_MODEL_EXPORT = "question-model-onnx"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Deletion:
    """What deleting a document did: its passages gone, its file kept (where, relative to the corpus folder)."""

    document_id: str
    title: str
    source: str
    chunks_removed: int
    # None when the document had no file in the corpus folder (a benchmark's, or one already gone).
    kept_as: str | None


@dataclass(frozen=True, slots=True)
class Restoration:
    """What restoring a deleted document did: its file back in the corpus folder and indexed again."""

    document_id: str
    title: str
    source: str
    name: str  # its place in the corpus folder, relative to it
    restored_from: str  # where it was kept, relative to the corpus folder
    chunks: int


class Sourcebook:
    """A library of documents with its model: the in-process API of the CLI, HTTP API and chat page."""

    def __init__(
        self, settings: Settings, *, embedder: Embedder | None = None, reader: Scorer | None = None,
        second_reader: Scorer | None = None, rebuild: bool = False, embed_again: bool = False,
    ) -> None:
        """`embedder`, `reader` and `second_reader` stand in for the loaded ones (tests); an `embedder`
        given also groups the gaps' questions, and a `reader` given without a `second_reader` reads alone.
        With `embed_again` (ingest), a library another model of the same size embedded is embedded again
        with this one, keeping everything in it; without, it is refused (IndexMismatch)."""
        self.settings = settings
        self.embedder = embedder or load_embedder(settings)
        self._question_embedder = embedder if embedder is not None or is_bundled(settings.model_path) else None
        self._reader = reader
        self._second_reader = second_reader
        self._second_wanted = settings.second_reads > 0 and (reader is None or second_reader is not None)
        self._loading_lock = threading.Lock()
        self.chunking = Chunking(
            max_tokens=min(settings.chunk_tokens, self.embedder.max_tokens),
            overlap_tokens=settings.chunk_overlap,
            window_tokens=min(settings.window_tokens, self.embedder.max_tokens),
        )
        fingerprint = {
            MODEL_KEY: self.embedder.name,
            "dim": str(self.embedder.dim),
            "chunk_tokens": str(self.chunking.max_tokens),
            "chunk_overlap": str(self.chunking.overlap_tokens),
            "window_tokens": str(self.chunking.window_tokens),
        }
        self.library = Library(settings.index_dir, fingerprint=fingerprint, dim=self.embedder.dim, rebuild=rebuild,
                               other_model_ok=embed_again)
        if self.library.other_model is not None:
            self._embed_again()
        self._suggestions: tuple[int, list[str]] | None = None
        # Content-addressed (an answer's id is a hash of what it says), so shared by every user.
        self._answers: OrderedDict[str, Answer] = OrderedDict()
        self._answers_lock = threading.Lock()
        self.fusion = Fusion(
            method=settings.fusion,
            rrf_k=settings.rrf_k,
            dense_weight=settings.dense_weight,
            keyword_weight=settings.keyword_weight,
        )

    def _embed_again(self) -> None:
        """Embed every stored window again with this service's model (another made the library's vectors).

        The new vectors are set aside until all are made and then swapped in at once, so a crash
        part way leaves the library as it was, still usable with the model that made it.
        """
        store, windows = self.library.store, self.library.index.count
        log.warning("the library in %s was embedded with another model (%s); embedding its %d windows again with %s",
                    self.settings.index_dir, self.library.other_model, windows, self.embedder.name)
        with self.library.writing():
            after, done = -1, 0
            while batch := store.window_texts(after=after, limit=EMBED_AGAIN_BATCH):
                texts = [text for _, text in batch]
                vectors = embed_by_length(self.embedder, texts, [self.embedder.count_tokens(t) for t in texts])
                store.stage_vectors({window_id: vectors[n] for n, (window_id, _) in enumerate(batch)}, first=done == 0)
                after, done = batch[-1][0], done + len(batch)
                log.info("embedded %d of %d windows again", done, windows)
            self.library.take_staged_vectors(self.embedder.name)

    def token_accepted(self, offered: str | None) -> bool:
        """Whether a change to the library (upload, delete, feedback export) may go ahead with this token."""
        return token_accepted(self.settings.api_token, offered)

    @property
    def reader(self) -> Scorer:
        """The reader, loaded at its first use (a service that only ingests never needs it)."""
        if self._reader is None:
            with self._loading_lock:
                if self._reader is None:
                    self._reader = Reader(self.settings.reader_dir, turns=getattr(self.embedder, "turns", None))
        return self._reader

    @property
    def question_embedder(self) -> Embedder:
        """The model the gaps' questions are grouped by: the bundled all-MiniLM-L6-v2, loaded at the
        first listing. The embedder tuned for questions draws questions of one shape together ("How
        many sick days ...?", "How many vacation days ...?"): app/gaps.py, GROUP_AT."""
        if self._question_embedder is None:
            with self._loading_lock:
                if self._question_embedder is None:
                    bundled = self.settings.model_copy(update={"model_path": None})
                    self._question_embedder = load_embedder(bundled, export_name=QUESTION_MODEL_EXPORT)
        return self._question_embedder

    def load_readers(self) -> None:
        """Load the readers now rather than at the first question (a missing one is reported here)."""
        self.reader
        self.second_reader

    @property
    def second_reader(self) -> Scorer | None:
        """The second reader (docs/QUALITY.md), loaded at its first use; None when it is not wanted."""
        if self._second_wanted and self._second_reader is None:
            with self._loading_lock:
                if self._second_reader is None:
                    turns = getattr(self.embedder, "turns", None)
                    self._second_reader = Reader(self.settings.second_reader_dir, turns=turns)
        return self._second_reader if self._second_wanted else None

    @property
    def searcher(self) -> Searcher:
        """A searcher over the current indexes (they change when rebuilt, or saved by another process)."""
        library = self.library
        library.refresh()
        return Searcher(
            library.store, library.index, library.keywords, self.embedder,
            candidates=self.settings.candidates, fusion=self.fusion,
        )

    # --- documents ------------------------------------------------------------------
    def ingest(
        self,
        path: Path,
        *,
        progress: Progress | None = None,
        use_ray: bool = False,
        ray_address: str | None = None,
        ray_actors: int = 1,
        origin: str = BY_COMMAND,
    ) -> IngestReport:
        """Ingest the files under `path`: new and changed ones embedded, vanished ones removed.

        With `use_ray` (or a `ray_address`, which implies it) the files are read, cut up and
        embedded on Ray: a local runtime, or the cluster at `ray_address`, with `ray_actors`
        embedding actors that each load the model the settings name. Needs the `ray` extra.
        Progress goes to `progress` and to the index folder's progress file (`ingest_progress`),
        under `origin`, the words saying who started it.
        """
        with self.library.writing(), ProgressFile(self.library.directory, origin, forward=progress) as tracked:
            if use_ray or ray_address:
                # Imported here: Ray is an optional extra.
                from app.distributed import ingest_path_ray

                report = ingest_path_ray(
                    Path(path),
                    library=self.library,
                    settings=self.settings,
                    chunking=self.chunking,
                    max_file_bytes=self.settings.max_file_bytes,
                    address=ray_address,
                    num_actors=ray_actors,
                    progress=tracked,
                )
            else:
                report = ingest_path(
                    Path(path),
                    library=self.library,
                    embedder=self.embedder,
                    chunking=self.chunking,
                    max_file_bytes=self.settings.max_file_bytes,
                    progress=tracked,
                )
            tracked.finish(report.summary())
        return report

    def ingest_progress(self) -> IngestProgress | None:
        """The latest ingest of files, by this process or another: running, or finished; None if none or stale."""
        return read_progress(self.library.directory)

    def ingest_documents(self, documents: list[Document]) -> IngestReport:
        """Ingest documents that do not come from files (a benchmark corpus)."""
        with self.library.writing():
            return ingest_documents(documents, library=self.library, embedder=self.embedder, chunking=self.chunking)

    def check_upload(
        self, files: Sequence[Upload], *, refuse_large_files: bool = False, refuse_unsupported: bool = False
    ) -> None:
        """Refuse a whole upload when it is too many files or bytes, before any file is read.

        With `refuse_large_files` (the HTTP API), one file over the per-file limit refuses the
        whole upload too; otherwise `upload` reports that file failed and takes the others.
        With `refuse_unsupported` (the HTTP API), an upload with no file of a type sourcebook
        reads is refused (NoSupportedFile) rather than answered with a failure per file.
        `upload` calls it again on what it is given.
        """
        settings = self.settings
        if len(files) > settings.max_upload_files:
            raise ValueError(f"at most {settings.max_upload_files} files per upload, got {len(files)}")
        total = sum(file.size for file in files)
        if total > settings.max_upload_bytes:
            raise UploadTooLarge(
                f"the files of this upload total {total:,} bytes, "
                f"over the {settings.max_upload_bytes:,}-byte limit per upload",
                size=total,
                limit=settings.max_upload_bytes,
            )
        if refuse_large_files:
            for file in files:
                if over_file_limit(file.size, settings.max_file_bytes) is not None:
                    raise UploadTooLarge(
                        f"{file.name}: {file.size:,} bytes, over the {settings.max_file_bytes:,}-byte limit per file",
                        size=file.size,
                        limit=settings.max_file_bytes,
                    )
        if refuse_unsupported and not any(of_supported_type(file.name) for file in files):
            raise NoSupportedFile([file.name for file in files])

    def upload(self, files: Sequence[Upload | tuple[str, bytes]]) -> list[UploadResult]:
        """Check, save into the corpus folder and ingest uploaded files; one result per file.

        Too many files or bytes together refuse the whole upload (`check_upload`) before any is
        read. A file over the per-file limit, or one that cannot be read, is refused before it is
        written, so the corpus folder only ever holds files that were indexed. Each file is read
        and parsed once; parsing and embedding happen outside the write lock. `files` may also be
        (name, bytes) pairs. Its progress goes to the index folder's progress file, as every
        ingest's does, started by BY_UPLOAD.
        """
        return list(self.upload_each(files))

    def upload_each(self, files: Sequence[Upload | tuple[str, bytes]]) -> Iterator[UploadResult]:
        """`upload`, giving each file's result as soon as it is indexed (a page shows how far the upload is).

        The whole upload is checked at the first `next`. One progress record covers the upload:
        files done of the total and the file being indexed, then its counts, or why it stopped
        (an error, or the caller closing this before the last file).
        """
        uploads = [file if isinstance(file, Upload) else Upload.of_bytes(*file) for file in files]
        self.check_upload(uploads)
        if not uploads:
            return
        total = len(uploads)
        # Every count at 0, in the order the Sources view shows an ingest's.
        outcome = IngestReport().summary()
        with ProgressFile(self.library.directory, BY_UPLOAD) as tracked:
            for done, upload in enumerate(uploads, start=1):
                tracked(done - 1, total, upload.name)
                result = self._upload_one(upload)
                outcome[result.status] += 1
                tracked(done, total)
                if done == total:
                    # Before the last result is given: a caller that stops once it has them all ends it well.
                    tracked.finish(outcome)
                try:
                    yield result
                except GeneratorExit:
                    if done < total:
                        tracked.stop(f"the upload was given up after {done} of {total} files")
                    raise

    def _upload_one(self, upload: Upload) -> UploadResult:
        """Check, read, parse, save and index one uploaded file; a file refused or unreadable is a failed result."""
        limit = self.settings.max_file_bytes
        try:
            filename = safe_filename(upload.name)
            # The size the front end gave first, so a big file is never read; then the bytes.
            if (reason := over_file_limit(upload.size, limit)) is not None:
                raise IngestError(filename, reason)
            data = upload.read(limit + 1)
            if (reason := over_file_limit(len(data), limit)) is not None:
                raise IngestError(filename, reason)
            path = self.settings.corpus_dir / filename
            document = parse(data, path.suffix, source=source_for(path))
        except (ValueError, IngestError) as error:
            return UploadResult(upload.name, "failed", reason=getattr(error, "reason", str(error)))
        return self._save_and_ingest(path, data, document)

    def _save_and_ingest(self, path: Path, data: bytes, document: Document) -> UploadResult:
        """Put an upload's bytes at `path` and store its parsed document, in an order no crash can undo.

        Embedded first; then, under the write lock, the earlier version is kept in `.deleted/`,
        the new bytes are written beside and renamed over the old (the file is always one whole
        version), and the document is stored. A crash before the store commits leaves the folder
        ahead of the store; `reconcile` at the next start ingests the file.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        # The model work first, outside the write lock (deletes and other uploads do not wait for
        # it), each model run ahead of the queries waiting for one.
        with writer_first():
            embedded = embed_parsed(
                document, hashlib.sha256(data).hexdigest(),
                library=self.library, embedder=self.embedder, chunking=self.chunking,
            )
        # One writer from keeping the old version to indexing the new: two uploads of one name
        # at once never both set aside the same old file and lose the first new one.
        with self.library.writing():
            if not path.is_file():
                write_atomically(path, data)
            elif not _same_bytes(path, data):
                self._keep_version(path, move=False)
                write_atomically(path, data)
            report = store_embedded(embedded, library=self.library)
        document_id = self.library.store.document_id_for_source(document.source)
        if report.failed:
            return UploadResult(path.name, "failed", document_id, report.failed[0][1])
        status = "added" if report.added else "updated" if report.updated else "unchanged"
        return UploadResult(path.name, status, document_id)

    def reconcile(self, *, origin: str = AT_START, progress: Progress | None = None) -> IngestReport:
        """Bring the store in line with the corpus folder, the source of truth (a server, at start).

        Files not stored, or stored with other bytes, are ingested: an upload or replace cut
        short by a crash is finished. Stored documents whose file is gone are removed, a delete
        cut short is finished, and their text is first written into `.deleted/` unless that
        version of the file is kept there already. Temporary files of uploads never renamed into
        place (the upload was never answered) are removed. Progress is reported as `ingest`'s is.
        """
        folder = self.settings.corpus_dir
        if not folder.is_dir():
            log.info("no corpus folder at %s; nothing to reconcile", folder)
            return IngestReport()
        with self.library.writing():
            for partial in folder.rglob(f"{PART_PREFIX}*{PART_SUFFIX}"):
                if partial.is_file():
                    log.info("removing %s, an upload never finished", partial)
                    partial.unlink()
            stored = self.library.store.file_hashes()
            for source in vanished(folder, stored, files_to_consider(folder)):
                self._keep_text(source, stored[source])
            with ProgressFile(self.library.directory, origin, forward=progress, keep_if_idle=True) as tracked:
                report = ingest_path(
                    folder, library=self.library, embedder=self.embedder, chunking=self.chunking,
                    max_file_bytes=self.settings.max_file_bytes, progress=tracked,
                )
                tracked.finish(report.summary())
            return report

    def _keep_text(self, source: str, file_hash: str) -> None:
        """Write a stored document's text into `.deleted/` unless its file's version is kept there already."""
        corpus = self.settings.corpus_dir.resolve()
        path = Path(source).resolve()
        folder = (corpus / DELETED_FOLDER / path.relative_to(corpus)).parent
        digest = file_hash[:8]
        if any(folder.glob(f"{glob.escape(path.stem)}.*-{digest}*{glob.escape(path.suffix)}")):
            return
        document_id = self.library.store.document_id_for_source(source)
        document = self.library.store.document(document_id) if document_id else None
        if document is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        # Written whole under a temporary name (a crash leaves only that, removed at the next
        # start), then linked to a name no other version has.
        part = part_of(folder / f"{path.name}.txt")
        try:
            write_synced(part, document.text)
            kept = _link_as_version(part, folder, f"{path.name}.", digest, ".txt")
        finally:
            part.unlink(missing_ok=True)
        log.info("%s is gone from the corpus folder; kept its text as %s", source, kept)

    def documents(self) -> list[StoredDocument]:
        """List the stored documents."""
        return self.library.store.documents()

    def document(self, document_id: str) -> Document:
        """Return a document's full text and structure."""
        document = self.library.store.document(document_id)
        if document is None:
            raise DocumentNotFound(document_id)
        return document

    def delete(self, document_id: str) -> int:
        """Delete a document and its passages; return how many passages went (`delete_document` says more)."""
        return self.delete_document(document_id).chunks_removed

    def delete_document(self, document_id: str) -> Deletion:
        """Delete a document and its passages; say where its file was kept.

        A file in the corpus folder is moved aside into its hidden `.deleted/` folder first, so
        nothing is lost (`restore` brings it back) and the next ingest of the folder does not
        bring it back; a crash before the store forgets the document leaves it to `reconcile`.
        """
        with self.library.writing():
            document = self.document(document_id)
            removed = self.library.store.chunk_count(document_id)
            kept = self._set_aside(Path(document.source))
            self.library.remove(document_id)
            self.library.save()
        kept_as = kept.relative_to(self.settings.corpus_dir.resolve()).as_posix() if kept else None
        return Deletion(document_id, document.title, document.source, removed, kept_as)

    def _set_aside(self, path: Path) -> Path | None:
        corpus = self.settings.corpus_dir.resolve()
        path = path.resolve()
        if not path.is_file() or not path.is_relative_to(corpus):
            return None
        return self._keep_version(path, move=True)

    def deleted(self) -> list[KeptFile]:
        """List the files kept in the corpus folder's `.deleted/` (deleted or replaced), most recent first."""
        return kept_files(self.settings.corpus_dir)

    def restore(self, kept_id: str) -> Restoration:
        """Move a kept file back into the corpus folder and index it again.

        `kept_id` is a kept file's id, or a deleted document's id (its most recently kept version).
        A file of that name in the corpus folder, or a stored document from it, refuses the restore
        (NameTaken) and nothing moves; so does a file that cannot be read (IngestError).
        """
        if not isinstance(kept_id, str) or not re.fullmatch(r"[0-9a-f]{16}", kept_id):
            raise ValueError(f"a deleted document's id is 16 hex digits, got {kept_id!r}")
        # Looked up among the files found in `.deleted/`: the id from a request is never a path.
        kept = next((k for k in self.deleted() if kept_id in (k.id, k.document_id)), None)
        if kept is None:
            raise KeptFileNotFound(kept_id)
        target = self.settings.corpus_dir.resolve() / kept.name
        self._refuse_taken(kept, target)
        limit = self.settings.max_file_bytes
        if (reason := over_file_limit(kept.size, limit)) is not None:
            raise IngestError(kept.name, reason)
        data = kept.path.read_bytes()
        document = parse(data, target.suffix, source=source_for(target))
        with writer_first():
            embedded = embed_parsed(
                document, hashlib.sha256(data).hexdigest(),
                library=self.library, embedder=self.embedder, chunking=self.chunking,
            )
        with self.library.writing():
            self._refuse_taken(kept, target)
            target.parent.mkdir(parents=True, exist_ok=True)
            # Linked (or copied in x mode) into place: never over a file that appeared meanwhile.
            # A crash before the store commits leaves the file for `reconcile` to index.
            try:
                _link_or_copy(kept.path, target)
            except FileExistsError as error:
                raise NameTaken(_taken_message(kept)) from error
            report = store_embedded(embedded, library=self.library)
            kept.path.unlink()
        if report.failed:
            raise IngestError(kept.name, report.failed[0][1])
        document_id = self.library.store.document_id_for_source(document.source) or kept.document_id
        log.info("restored %s from %s", kept.name, kept.kept_as)
        return Restoration(document_id, document.title, document.source, kept.name, kept.kept_as,
                           self.library.store.chunk_count(document_id))

    def _refuse_taken(self, kept: KeptFile, target: Path) -> None:
        if target.exists() or target.is_symlink() or self.library.store.document_id_for_source(source_for(target)):
            raise NameTaken(_taken_message(kept))

    def _keep_version(self, path: Path, *, move: bool) -> Path:
        """Keep this version of a corpus file in `.deleted/` under a name no other version has; return it.

        The name adds the time (UTC) and a short hash of the bytes, then a counter if that is
        still taken: `notes.20250101T120000Z-1a2b3c4d.txt`.
        """
        corpus = self.settings.corpus_dir.resolve()
        path = path.resolve()
        folder = (corpus / DELETED_FOLDER / path.relative_to(corpus)).parent
        folder.mkdir(parents=True, exist_ok=True)
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()[:8]
        aside = _link_as_version(path, folder, f"{path.stem}.", digest, path.suffix)
        if move:
            path.unlink()
        log.info("kept %s as %s", path, aside)
        return aside

    def counts(self) -> tuple[int, int]:
        """Return (documents, chunks)."""
        return self.library.store.counts()

    # --- queries --------------------------------------------------------------------
    def search(self, query: str, *, k: int = 5, source: str | None = None, as_typed: bool = False) -> Found:
        """Return the k best passages for `query`, its misspelt words read as the library's nearest
        (as `ask` reads them) unless `as_typed`."""
        query = _clean(query, "query")
        check_k(k)
        read, corrections = (query, ()) if as_typed else self.searcher.read(query)
        return Found(query, tuple(self.searcher.search(read, k=k, source=source)), corrections)

    def ask(
        self, question: str, *, k: int = 5, source: str | None = None, history: Sequence[str] = (),
        log_declined: bool = True, as_typed: bool = False,
    ) -> Answer:
        """Answer `question` with quoted, cited sentences, or abstain with the closest passages.

        `history` holds the earlier questions of the conversation, oldest first, so that a
        follow-up ("and what about March?") is searched for, and read, together with what it follows.
        A declined question is logged for `gaps` (what was searched for, with the nearest
        passages' documents) unless `log_declined` is off (evaluation, starter questions).
        Misspelt words are read as the library's nearest words unless `as_typed` (the asker meant
        a word the library lacks: "Ask as typed" on the page).
        """
        question = _clean(question, "question")
        check_k(k)
        searcher = self.searcher
        # Misspelt words are read as the library's nearest words, and the answer says so.
        read, corrections = (question, ()) if as_typed else searcher.read(question)
        query = contextualise(read, history)
        passages = searcher.search(query, k=max(k, self.settings.answer_passages), source=source)
        unknown = self.library.keywords.missing_words(names_in(read))
        answer = compose(
            query,
            passages[: self.settings.answer_passages],
            reader=self.reader,
            abstain_below=self.settings.abstain_below,
            candidates=self.settings.reader_candidates,
            unknown_names=unknown,
            share_holding=self.library.keywords.share_holding,
            second_reader=self.second_reader,
            second_reads=self.settings.second_reads,
            text_between=self.library.store.text_between,
        )
        # The reader's order of the passages it read, then the rest in retrieval order.
        answer = replace(answer, question=question, corrections=corrections,
                         passages=(*answer.passages, *passages[self.settings.answer_passages :])[:k])
        if not answer.answered and log_declined:
            self._log_declined(query, answer.passages)
        with self._answers_lock:
            self._answers[answer.id] = answer
            self._answers.move_to_end(answer.id)
            while len(self._answers) > RECENT_ANSWERS:
                self._answers.popitem(last=False)
        return answer

    def known_suggestions(self, limit: int = 5) -> list[str]:
        """Return the starter questions already found for the library as it is now, without asking
        any (none when it changed since): what a page can show at once (`suggested_questions` finds them)."""
        found = self._suggestions
        return found[1][:limit] if found is not None and found[0] == self.library.store.generation else []

    def suggested_questions(self, limit: int = 5) -> list[str]:
        """Return up to `limit` starter questions drawn from the indexed documents that it can answer.

        Documents are read a few at a time and at most SUGGESTION_ASKS_PER_QUESTION * limit
        questions are tried, so opening the page costs the same in a library of any size.
        """
        generation = self.library.store.generation
        if self._suggestions is None or self._suggestions[0] != generation:
            stored = self.documents()
            answerable: list[str] = []
            tries = SUGGESTION_ASKS_PER_QUESTION * limit
            for first in range(0, len(stored), SUGGESTION_DOCUMENTS):
                documents = [self.document(d.id) for d in stored[first : first + SUGGESTION_DOCUMENTS]]
                for question in candidate_questions(documents):
                    if len(answerable) == limit or tries == 0:
                        break
                    tries -= 1
                    if question not in answerable and answers_about(question, self.ask(question, log_declined=False)):
                        answerable.append(question)
                if len(answerable) == limit or tries == 0:
                    break
            self._suggestions = (generation, answerable)
        return self._suggestions[1][:limit]

    # --- feedback -------------------------------------------------------------------
    def rate(self, answer: Answer | str, rating: str, *, comment: str | None = None) -> dict:
        """Store or change a reader's rating of an answer: one per answer, the last one stands.

        `answer` is the Answer (the page keeps its own) or its id, for an answer this service gave
        lately. The record keeps the question, the answer, its citations and the time. A comment
        of None keeps the answer's comment, if it has one; "" clears it. Returns the stored record.
        """
        if isinstance(answer, str):
            with self._answers_lock:
                given = self._answers.get(answer)
            if given is None:
                raise AnswerNotKnown(
                    f"answer {answer!r} is not one this server gave lately: send its question, answer and citations"
                )
            answer = given
        if rating not in RATINGS:
            raise ValueError(f"rating must be 'up' or 'down', got {rating!r}")
        store = self.library.store
        store.rate_answer(
            answer.id,
            question=_clean(answer.question, "question"),
            answer=answer.answer,
            answered=answer.answered,
            citations=[citation_record(c) for c in answer.citations],
            rating=rating,
            comment=comment,
        )
        return store.feedback(answer.id)[0]

    def record_feedback(self, question: str, answer: str, rating: str, comment: str = "") -> int:
        """Store a rating of an answer known only by its question and text; return the record's id (see `rate_text`)."""
        return self.rate_text(question, answer, rating, comment=comment)["id"]

    def rate_text(self, question: str, answer: str, rating: str, *, comment: str | None = None) -> dict:
        """Store or change a rating of an answer known only by its question and text (no citations).

        Rated again, the same question and answer keep one record, as with `rate`. Returns the record.
        """
        if rating not in RATINGS:
            raise ValueError(f"rating must be 'up' or 'down', got {rating!r}")
        question = _clean(question, "question")
        answer_id = Answer(question=question, answered=False, answer=answer).id
        store = self.library.store
        store.rate_answer(answer_id, question=question, answer=answer, answered=None, citations=[], rating=rating,
                          comment=comment)
        return store.feedback(answer_id)[0]

    def feedback(self) -> list[dict]:
        """Return every stored rating, oldest first."""
        return self.library.store.feedback()

    def feedback_for(self, answer_id: str) -> dict | None:
        """Return the rating of one answer, if it has one (a page shows which thumb is set)."""
        found = self.library.store.feedback(answer_id)
        return found[0] if found else None

    # --- gaps -------------------------------------------------------------------------
    def _log_declined(self, query: str, passages: Sequence[Hit]) -> None:
        """Log a declined question for `gaps`; a failure to log never fails the answer."""
        nearest = list({
            hit.document_id: {"document_id": hit.document_id, "title": hit.title, "source": hit.source}
            for hit in passages[:GAP_NEAREST]
        }.values())
        try:
            # Embedded for grouping when the gaps are listed (question_embedder), not while answering.
            self.library.store.add_declined(query, nearest)
        except (sqlite3.Error, OSError) as error:
            log.warning("could not log a declined question for the gaps: %s", error)

    def gaps(self) -> list[Gap]:
        """The questions the documents did not answer, grouped by meaning, most asked first.

        Each group's most asked wording is asked again once after each change to the library
        (when gaps are listed; at most GAP_RECHECKS groups a listing, most asked first); answered
        now, the group leaves the list for good.
        """
        store = self.library.store
        rows = store.declined()
        if not rows:
            return []
        declined = [Declined(r["id"], r["asked"], r["question"], tuple(r["nearest"])) for r in rows]
        vectors = self._question_vectors(rows)
        generation = store.generation
        groups = [(gap_of(declined, members), members) for members in group_by_meaning(vectors)]
        groups.sort(key=lambda group: reading_order(group[0]))
        open_gaps, asked = [], 0
        for gap, members in groups:
            if asked < GAP_RECHECKS and min(rows[i]["checked"] for i in members) < generation:
                asked += 1
                answered = self.ask(gap.question, log_declined=False).answered
                store.mark_declined([declined[i].id for i in members], generation=generation, answered=answered)
                if answered:
                    continue
            open_gaps.append(gap)
        return open_gaps

    def _question_vectors(self, rows: list[dict]) -> np.ndarray:
        """The logged questions' vectors by the question embedder; those not embedded yet are, and kept."""
        model = self.question_embedder
        missing = [i for i, row in enumerate(rows) if row["vector"].shape != (model.dim,)]
        if missing:
            fresh = model.encode([rows[i]["question"] for i in missing])
            try:
                self.library.store.set_declined_vectors({rows[i]["id"]: fresh[n] for n, i in enumerate(missing)})
            except sqlite3.Error as error:
                log.warning("could not keep the gaps' question vectors: %s", error)
            for n, i in enumerate(missing):
                rows[i]["vector"] = fresh[n]
        return np.stack([row["vector"] for row in rows]).astype(np.float32, copy=False)


MAX_QUESTION_CHARS = 2000
# Starter questions: documents read per round of candidates, and questions tried per one wanted.
SUGGESTION_DOCUMENTS = 8
SUGGESTION_ASKS_PER_QUESTION = 4
# Control characters (tab and newline aside) and lone surrogates, which no encoder accepts.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def token_accepted(required: SecretStr | None, offered: str | None) -> bool:
    """Whether a change to the library may go ahead: no token is configured, or the right one is offered.

    The one token check of the HTTP API, its guard and the page.
    """
    if required is None:
        return True
    # Constant-time comparison: the time taken says nothing about how much of a guess was right.
    return hmac.compare_digest((offered or "").encode(), required.get_secret_value().encode())


def _link_as_version(path: Path, folder: Path, prefix: str, digest: str, suffix: str) -> Path:
    """Link (or copy) `path` into `folder` as `{prefix}{UTC time}-{digest}{counter}{suffix}`; return the name.

    Hard-linking, or copying in x mode, never takes a name that exists, so no earlier version is
    ever replaced.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for attempt in itertools.count():
        counter = f"-{attempt}" if attempt else ""
        aside = folder / f"{prefix}{stamp}-{digest}{counter}{suffix}"
        try:
            os.link(path, aside)
        except FileExistsError:
            continue
        except OSError:
            # A file system without hard links: copy, refusing (x mode) a name that exists.
            try:
                with path.open("rb") as source, aside.open("xb") as copy:
                    shutil.copyfileobj(source, copy)
            except FileExistsError:
                continue
        return aside
    raise AssertionError("unreachable")  # itertools.count() never ends


def _link_or_copy(path: Path, target: Path) -> None:
    """Link `path` at `target`, or copy it there; either way never over a file that exists (FileExistsError)."""
    try:
        os.link(path, target)
    except FileExistsError:
        raise
    except OSError:
        with path.open("rb") as source, target.open("xb") as copy:
            shutil.copyfileobj(source, copy)


def _taken_message(kept: KeptFile) -> str:
    return (
        f"{kept.name} is in the corpus folder already: rename or delete that document first; "
        f"the deleted version stays kept as {kept.kept_as}"
    )


def _same_bytes(path: Path, data: bytes) -> bool:
    """Whether the file at `path` holds exactly `data` (sizes compared first, to skip most reads)."""
    return path.stat().st_size == len(data) and path.read_bytes() == data


def _clean(text: str, what: str) -> str:
    """Check a question or query where it enters: some text, not too long, nothing unprintable."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{what} must contain some text, got {text!r}")
    if len(text) > MAX_QUESTION_CHARS:
        raise ValueError(f"{what} must be at most {MAX_QUESTION_CHARS} characters, got {len(text):,}")
    cleaned = _UNPRINTABLE.sub(" ", text).strip()
    if not cleaned:
        raise ValueError(f"{what} must contain some printable text, got {text!r}")
    return cleaned
