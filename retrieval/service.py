"""The one service every front end calls: ingest, search, ask, list and delete documents."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from ingest.pipeline import Chunking, IngestReport, Progress, ingest_documents, ingest_path
from ingest.records import Document
from retrieval.answer import compose, names_in
from retrieval.embedder import Embedder, SentenceTransformerEmbedder
from retrieval.errors import DocumentNotFound
from retrieval.library import Library
from retrieval.records import Answer, Hit, StoredDocument
from retrieval.search import Fusion, Searcher, check_k
from retrieval.settings import Settings

log = logging.getLogger(__name__)


def load_embedder(settings: Settings) -> Embedder:
    """Load the embedding model the settings name (once per process)."""
    return SentenceTransformerEmbedder(
        name=settings.model_name,
        model_path=settings.model_path,
        cache_dir=settings.index_dir / "model-onnx",
        backend=settings.backend,
        batch_size=settings.embed_batch_size,
    )


class Sourcebook:
    """A library of documents with its model: the in-process API of the CLI, HTTP API and chat page."""

    def __init__(self, settings: Settings, *, embedder: Embedder | None = None, rebuild: bool = False) -> None:
        self.settings = settings
        self.embedder = embedder or load_embedder(settings)
        self.chunking = Chunking(
            max_tokens=min(settings.chunk_tokens, self.embedder.max_tokens), overlap_tokens=settings.chunk_overlap
        )
        fingerprint = {
            "model": self.embedder.name,
            "dim": str(self.embedder.dim),
            "chunk_tokens": str(self.chunking.max_tokens),
            "chunk_overlap": str(self.chunking.overlap_tokens),
        }
        self.library = Library(settings.index_dir, fingerprint=fingerprint, dim=self.embedder.dim, rebuild=rebuild)
        self.fusion = Fusion(
            method=settings.fusion,
            rrf_k=settings.rrf_k,
            dense_weight=settings.dense_weight,
            keyword_weight=settings.keyword_weight,
        )

    @property
    def searcher(self) -> Searcher:
        """A searcher over the current index (the index object changes when it is rebuilt)."""
        return Searcher(
            self.library.store, self.library.index, self.embedder, candidates=self.settings.candidates, fusion=self.fusion
        )

    # --- documents ------------------------------------------------------------------
    def ingest(self, path: Path, *, progress: Progress | None = None) -> IngestReport:
        """Ingest the files under `path`: new and changed ones embedded, vanished ones removed."""
        return ingest_path(
            Path(path),
            library=self.library,
            embedder=self.embedder,
            chunking=self.chunking,
            max_file_bytes=self.settings.max_file_bytes,
            progress=progress,
        )

    def ingest_documents(self, documents: list[Document]) -> IngestReport:
        """Ingest documents that do not come from files (a benchmark corpus)."""
        return ingest_documents(documents, library=self.library, embedder=self.embedder, chunking=self.chunking)

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
        """Delete a document and its chunks; return how many chunks went."""
        self.document(document_id)
        removed = self.library.remove(document_id)
        self.library.save()
        return removed

    def counts(self) -> tuple[int, int]:
        """Return (documents, chunks)."""
        return self.library.store.counts()

    # --- queries --------------------------------------------------------------------
    def search(self, query: str, *, k: int = 5, source: str | None = None) -> list[Hit]:
        """Return the k best passages for `query`."""
        return self.searcher.search(_clean(query, "query"), k=k, source=source)

    def ask(self, question: str, *, k: int = 5, source: str | None = None) -> Answer:
        """Answer `question` with quoted, cited sentences, or abstain with the closest passages."""
        question = _clean(question, "question")
        check_k(k)
        vector = self.embedder.encode([question])
        passages = self.searcher.search(question, k=max(k, self.settings.answer_passages), source=source, query_vector=vector)
        unknown = self.library.store.missing_words(names_in(question))
        answer = compose(
            question,
            passages[: self.settings.answer_passages],
            question_vector=vector[0],
            encode=self.embedder.encode,
            abstain_below=self.settings.abstain_below,
            unknown_names=unknown,
        )
        return replace(answer, passages=tuple(passages[:k]))


def _clean(text: str, what: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{what} must contain some text, got {text!r}")
    return text.strip()
