"""The keyword index: BM25 over passages' text, kept in tantivy.

The only module that imports tantivy. Like the vector index it is derived from the store: tagged
with the store's generation when saved, and rebuilt from the stored passages when it is missing,
unreadable or stale, so a crash mid-ingest costs a rebuild, never a wrong answer.

tantivy is an inverted index with skip lists and block-max pruning, so a search costs about a
millisecond at 100k passages and a few at a million, exact BM25 at every size (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import tantivy

from retrieval.files import write_atomically
from retrieval.records import KeywordPassage
from retrieval.text import WORD, keyword_terms

log = logging.getLogger(__name__)

TOKENIZER = "sourcebook"
# The words as written (lower-cased, accents folded, not stemmed), for finding the words near a
# misspelling: a stem is no guide to one ("bsaed" stems to "bsa", "Beijing" to "beij").
WORDS_TOKENIZER = "sourcebook-words"
# Memory the writer may fill before it writes a segment (tantivy's minimum is 15 MB per thread).
WRITER_HEAP_BYTES = 64_000_000
REBUILD_HEAP_BYTES = 256_000_000
SIDECAR = "sourcebook-keyword.json"
# Bumped when the schema or the analyzer changes: an index of another layout is rebuilt on open.
LAYOUT = 2
# A removed passage stays in BM25's statistics (document frequencies, average length) until its
# segment is merged away, so scores would depend on the library's history. Up to this many
# passages a save with removals rebuilds the index instead (about a second at 20k), and beyond
# it once removals reach this share of the passages; the drift below that share is small.
EXACT_STATISTICS_UP_TO = 20_000
REMOVED_SHARE_REBUILT = 0.1


def _analyzer(*, stems: bool = True) -> tantivy.TextAnalyzer:
    # Words split at anything not a letter or digit, lower-cased, accents folded, English stems
    # (or, without `stems`, the words as written).
    builder = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(64))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
    )
    return (builder.filter(tantivy.Filter.stemmer("english")) if stems else builder).build()


def _registered(index: tantivy.Index) -> tantivy.Index:
    index.register_tokenizer(TOKENIZER, _analyzer())
    index.register_tokenizer(WORDS_TOKENIZER, _analyzer(stems=False))
    return index


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("rowid", stored=False, indexed=True, fast=True)
    builder.add_text_field("text", stored=False, tokenizer_name=TOKENIZER)
    builder.add_text_field("words", stored=False, tokenizer_name=WORDS_TOKENIZER, index_option="basic")
    builder.add_text_field("source", stored=False, tokenizer_name="raw", index_option="basic")
    return builder.build()


class KeywordIndex:
    """BM25 search over passages, with add, remove, save and a rebuild from scratch."""

    def __init__(self, directory: Path, index: tantivy.Index, *, removed: int = 0) -> None:
        self.directory = Path(directory)
        # Passages removed since the index was built: they still count in its statistics.
        self._removed = removed
        self._index = index
        self._schema = index.schema
        self._analyzer = _analyzer()
        self._words_analyzer = _analyzer(stems=False)
        self._writer: tantivy.IndexWriter | None = None
        self._lock = threading.Lock()
        self._searcher = index.searcher()

    # --- opening --------------------------------------------------------------------
    @classmethod
    def load(cls, directory: Path, *, generation: int) -> KeywordIndex | None:
        """Open a saved keyword index; None when it is missing, unreadable or stale for this generation."""
        directory = Path(directory)
        try:
            info = json.loads((directory / SIDECAR).read_text())
            if info.get("layout") != LAYOUT:
                log.info("keyword index %s has another layout; it will be rebuilt", directory)
                return None
            if info.get("generation") != generation:
                log.info("keyword index %s is stale (built for generation %s, store is at %s)",
                         directory, info.get("generation"), generation)
                return None
            index = _registered(tantivy.Index.open(str(directory)))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            log.warning("keyword index %s is unreadable (%s); it will be rebuilt", directory, error)
            return None
        keywords = cls(directory, index, removed=int(info.get("removed", 0)))
        if keywords.count != info.get("count"):
            log.warning("keyword index %s does not match its record; it will be rebuilt", directory)
            return None
        return keywords

    @classmethod
    def build(cls, directory: Path, passages: Iterable[KeywordPassage], *, generation: int) -> KeywordIndex:
        """Index every passage afresh in `directory` (replacing what is there) and save it."""
        directory = Path(directory)
        # Each builder has its own folder, so two processes opening a stale library do not collide.
        fresh = directory.with_name(f"{directory.name}.new-{os.getpid()}-{threading.get_ident()}")
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(parents=True)
        try:
            index = _registered(tantivy.Index(_schema(), path=str(fresh)))
            writer = index.writer(heap_size=REBUILD_HEAP_BYTES, num_threads=max(1, min(4, os.cpu_count() or 1)))
            count = 0
            for passage in passages:
                writer.add_document(_document(passage))
                count += 1
            writer.commit()
            writer.wait_merging_threads()
            _write_sidecar(fresh, generation=generation, count=count)
        except BaseException:
            # A full disk (or any failure) leaves no half-built copy behind holding the space.
            shutil.rmtree(fresh, ignore_errors=True)
            raise
        # A crash between these two steps leaves no index at `directory`: it is rebuilt on next open.
        shutil.rmtree(directory, ignore_errors=True)
        try:
            os.replace(fresh, directory)
        except OSError:
            # Another process put its build there first; it was made from the same store.
            shutil.rmtree(fresh, ignore_errors=True)
        if count:
            log.info("built the keyword index over %d passages", count)
        return cls(directory, _registered(tantivy.Index.open(str(directory))))

    # --- writes ---------------------------------------------------------------------
    def add(self, passages: Iterable[KeywordPassage]) -> None:
        """Index passages; they are searchable once saved."""
        with self._lock:
            writer = self._open_writer()
            for passage in passages:
                writer.add_document(_document(passage))

    def remove(self, rowids: Sequence[int]) -> None:
        """Drop passages by rowid; they go from searches once saved."""
        if not len(rowids):
            return
        with self._lock:
            writer = self._open_writer()
            for rowid in rowids:
                writer.delete_documents_by_term("rowid", int(rowid))
            self._removed += len(rowids)

    def save(self, *, generation: int) -> None:
        """Commit what was added and removed, tagged with the store's generation, and let go of the writer."""
        with self._lock:
            if self._writer is not None:
                self._writer.commit()
                self._writer.wait_merging_threads()
                self._writer = None
                self._index.reload()
                self._searcher = self._index.searcher()
            _write_sidecar(self.directory, generation=generation, count=self.count, removed=self._removed)

    @property
    def skewed(self) -> bool:
        """Whether removed passages weigh enough in the BM25 statistics that a rebuild should replace a save."""
        if not self._removed:
            return False
        return self.count <= EXACT_STATISTICS_UP_TO or self._removed >= REMOVED_SHARE_REBUILT * self.count

    def discard(self) -> None:
        """Drop the changes not yet saved and let go of the writer (a rebuild from the store replaces them)."""
        with self._lock:
            if self._writer is not None:
                self._writer.rollback()
                self._writer = None

    def _open_writer(self) -> tantivy.IndexWriter:
        # One writer per index across processes (tantivy locks the directory); the library's write
        # lock already serialises writers, and save() lets go of it.
        if self._writer is None:
            self._writer = self._index.writer(heap_size=WRITER_HEAP_BYTES, num_threads=1)
        return self._writer

    # --- reads ----------------------------------------------------------------------
    @property
    def count(self) -> int:
        """Passages searchable now."""
        return int(self._searcher.num_docs)

    def search(self, query_text: str, k: int, *, source: str | None = None) -> list[tuple[int, float]]:
        """Return up to k (rowid, BM25 score) pairs for the content words of `query_text`, best first."""
        query = self._any_of(keyword_terms(query_text))
        if query is None:
            return []
        if source is not None:
            # The filter decides which passages qualify but adds nothing to their scores.
            only = tantivy.Query.const_score_query(tantivy.Query.term_query(self._schema, "source", source), 0.0)
            query = tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, only)])
        searcher = self._searcher
        found = searcher.search(query, k, count=False).hits
        if not found:
            return []
        rowids = searcher.fast_field_values("rowid", [address for _, address in found])
        ranked = [(int(rowid), float(score)) for (score, _), rowid in zip(found, rowids)]
        # Equal scores go by rowid, so the order does not hang on how the index is split in segments.
        return sorted(ranked, key=lambda pair: (-pair[1], pair[0]))

    def common_word_spans(self, text: str, share: float) -> list[tuple[int, int]]:
        """Return the character spans of the words of `text` that more than `share` of the passages contain."""
        searcher = self._searcher
        most = share * searcher.num_docs
        spans = []
        for match in WORD.finditer(text):
            terms = self._analyzer.analyze(match.group())
            if terms and all(searcher.doc_freq("text", term) > most for term in terms):
                spans.append(match.span())
        return spans

    def missing_words(self, words: Sequence[str]) -> list[str]:
        """Return the words that no passage contains (compared after stemming)."""
        return [word for word in words if (terms := keyword_terms(word)) and not self._holds_all(terms)]

    def written(self, word: str) -> bool:
        """Whether some passage holds the word as written (not only its stem: "employes" is not
        "employ"), case and accents aside."""
        terms = self._words_analyzer.analyze(word)
        return bool(terms) and all(self._searcher.doc_freq("words", term) > 0 for term in terms)

    def same_stem(self, a: str, b: str) -> bool:
        """Whether search reads the two words alike (the same stems: "valuations", "valuation")."""
        return self._analyzer.analyze(a) == self._analyzer.analyze(b)

    def near(self, word: str, edits: int, *, limit: int) -> list[int]:
        """Return the rowids of up to `limit` passages holding a word (as written, not stemmed)
        within `edits` edits of this one (a misspelling's nearest words are in them: retrieval/spelling.py)."""
        terms = self._words_analyzer.analyze(word)
        if not terms:
            return []
        fuzzy = [(tantivy.Occur.Should, tantivy.Query.fuzzy_term_query(self._schema, "words", term, distance=edits))
                 for term in terms]
        searcher = self._searcher
        found = searcher.search(tantivy.Query.boolean_query(fuzzy), limit, count=False).hits
        return [int(rowid) for rowid in searcher.fast_field_values("rowid", [address for _, address in found])]

    def share_holding(self, word: str, source: str) -> float:
        """Return the share of the source's passages that contain the word (all its terms, after stemming)."""
        terms = self._terms([word])
        if not terms:
            return 0.0
        only = tantivy.Query.term_query(self._schema, "source", source)
        holding = tantivy.Query.boolean_query([(tantivy.Occur.Must, query) for query in (only, *map(self._term, terms))])
        total = self._searcher.search(only, 1, count=True).count
        return self._searcher.search(holding, 1, count=True).count / total if total else 0.0

    def _holds_all(self, words: Sequence[str]) -> bool:
        terms = self._terms(words)
        if not terms:
            return False
        query = tantivy.Query.boolean_query([(tantivy.Occur.Must, self._term(term)) for term in terms])
        return bool(self._searcher.search(query, 1, count=False).hits)

    def _terms(self, words: Sequence[str]) -> list[str]:
        terms: dict[str, None] = {}
        for word in words:
            for term in self._analyzer.analyze(word):
                terms[term] = None
        return list(terms)

    def _term(self, term: str) -> tantivy.Query:
        return tantivy.Query.term_query(self._schema, "text", term)

    def _any_of(self, words: Sequence[str]) -> tantivy.Query | None:
        terms = self._terms(words)
        if not terms:
            return None
        # Headings are left out: weighted in at 0.2 or 0.5 they matched or lowered recall@5 on
        # corpus/qa.jsonl and nDCG@10 on SciFact (docs/BENCHMARKS.md); the text often repeats them.
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, self._term(term)) for term in terms])


def _document(passage: KeywordPassage) -> tantivy.Document:
    document = tantivy.Document()
    document.add_integer("rowid", passage.rowid)
    document.add_text("text", passage.text)
    document.add_text("words", passage.text)
    document.add_text("source", passage.source)
    return document


def _write_sidecar(directory: Path, *, generation: int, count: int, removed: int = 0) -> None:
    sidecar = {"layout": LAYOUT, "generation": generation, "count": count, "removed": removed}
    write_atomically(directory / SIDECAR, json.dumps(sidecar))
