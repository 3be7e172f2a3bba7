"""Synthetic libraries of 100k and 1M chunks, derived from a real one without running the model.

Text: each synthetic passage takes a real SciFact passage (its "base", taken in turn so every
real passage is used equally), drops one of its sentences when it has three or more, and adds
one or two sentences of another, random passage. 25 passages make a document, and the
documents are stored through the library's own `put` (store, keyword index, vector index),
so the library has the layout a real ingest gives.

Vectors: the model is not run. Each real sentence is given the vector of the real passage it
came from, and a synthetic passage's vector is the normalised sum of its sentences' vectors plus
a little Gaussian noise (norm 0.3, from a fixed bank of 16,384 draws), renormalised: close to
its base passage's vector, pulled a little towards the other one. That keeps the geometry of
the real corpus at a size the model could not embed here in reasonable time (about 17 chunks/s:
16 hours for 1M). One vector per chunk, over its whole text (one window, where the library takes window spans).
"""

from __future__ import annotations

import inspect
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.service import Sourcebook
from ingest.records import Chunk, Document
from ingest.sentences import sentence_spans
from retrieval import store as store_module
from retrieval.library import STORE_FILE
from retrieval.settings import Settings
from retrieval.store import Store

# Bump when the recipe changes, so cached libraries built by an older one are not reused.
RECIPE = "5"
NOISE = 0.3
PASSAGES_PER_DOCUMENT = 25


@dataclass(frozen=True)
class Seed:
    """The real passages synthetic ones are made from."""

    vectors: np.ndarray  # one unit row per passage (the mean of its vectors when it has several)
    texts: list[list[str]]  # the sentences of each passage
    titles: list[str]
    stored_vectors: int  # vectors held by the real index (more than passages when passages have windows)


def load_seed(directory: Path) -> Seed:
    """Read every passage, its vector(s) and its document's title from a library directory."""
    store = Store(Path(directory) / STORE_FILE)
    # Vector ids are chunk rowids, or rowid * slots + window where passages have several windows.
    slots = int(getattr(store_module, "WINDOW_SLOTS", 1))
    sums: dict[int, np.ndarray] = {}
    stored = 0
    for ids, batch in store.iter_vectors():
        stored += len(ids)
        for vector_id, vector in zip(ids.tolist(), batch):
            rowid = vector_id // slots
            sums[rowid] = sums[rowid] + vector if rowid in sums else vector.copy()
    order = sorted(sums)
    chunks = store.chunks(order)
    texts, titles = [], []
    for rowid in order:
        text = chunks[rowid].chunk.text
        texts.append([text[a:b].replace("\n", " ") for a, b in sentence_spans(text)] or [text.replace("\n", " ")])
        titles.append(chunks[rowid].title)
    store.close()
    vectors = np.vstack([sums[r] for r in order]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return Seed(vectors, texts, titles, stored)


class NoModel:
    """Stands in for the embedder when a library is opened for writing synthetic vectors: it never embeds."""

    def __init__(self, real) -> None:
        self.name, self.dim, self.max_tokens = real.name, real.dim, real.max_tokens
        self.count_tokens = real.count_tokens

    def encode(self, texts) -> np.ndarray:
        """Never called: synthetic vectors come from `_Vectors`."""
        raise RuntimeError("the synthetic build does not run the model")


def synthetic_passages(seed: Seed, document: int) -> list[tuple[str, list[tuple[int, int, int]]]]:
    """The passages of synthetic document `document`: (text, [(start, end, seed passage) per sentence])."""
    n = len(seed.texts)
    rng = np.random.default_rng([7, document])
    passages = []
    for slot in range(PASSAGES_PER_DOCUMENT):
        base = (document * PASSAGES_PER_DOCUMENT + slot) % n
        owned = [(sentence, base) for sentence in seed.texts[base]]
        if len(owned) >= 3:
            del owned[int(rng.integers(len(owned)))]
        other = int(rng.integers(n))
        owned.extend((sentence, other) for sentence in seed.texts[other][: 1 + int(rng.integers(2))])
        text, spans = "", []
        for sentence, owner in owned:
            if text:
                text += " "
            spans.append((len(text), len(text) + len(sentence), owner))
            text += sentence
        passages.append((text, spans))
    return passages


def synthetic_document(seed: Seed, number: int) -> tuple[Document, list[Chunk], list[list[tuple[int, int, int]]]]:
    """A synthetic document whose passages are its chunks (one paragraph each), with their sentences' owners."""
    passages = synthetic_passages(seed, number)
    title = seed.titles[(number * PASSAGES_PER_DOCUMENT) % len(seed.titles)]
    document = Document(source=f"synthetic/{number:07d}", title=f"{title} (synthetic {number})",
                        text="\n\n".join(text for text, _ in passages))
    chunks, offset = [], 0
    for line, (passage, _) in enumerate(passages):
        chunks.append(Chunk(document_id=document.id, text=passage, start=offset, end=offset + len(passage),
                            heading=None, page=None, line_start=2 * line + 1, line_end=2 * line + 1))
        offset += len(passage) + 2
    return document, chunks, [owners for _, owners in passages]


class _Vectors:
    """Vectors for spans of synthetic passages: the sum of the seed vectors of the sentences inside, plus noise."""

    def __init__(self, seed: Seed) -> None:
        self.seed_vectors = seed.vectors
        rng = np.random.default_rng(11)
        bank = rng.standard_normal((16_384, seed.vectors.shape[1])).astype(np.float32)
        self.noise = NOISE * bank / np.linalg.norm(bank, axis=1, keepdims=True)
        self.drawn = 0

    def of(self, owners: list[tuple[int, int, int]], spans: list[tuple[int, int]]) -> np.ndarray:
        rows = np.zeros((len(spans), self.seed_vectors.shape[1]), dtype=np.float32)
        for row, (start, end) in zip(rows, spans):
            inside = [owner for a, b, owner in owners if start <= (a + b) // 2 < end]
            if inside:
                row += self.seed_vectors[inside].sum(axis=0)
                row /= np.linalg.norm(row)
        rows += self.noise[(self.drawn + np.arange(len(spans)) * 7919) % len(self.noise)]
        self.drawn += len(spans)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        return rows


def build_library(seed: Seed, real_embedder, directory: Path, chunks: int, *, report=print) -> dict:
    """Write a synthetic library of `chunks` chunks into `directory`, through the library's own put.

    Chunking is skipped: each synthetic passage is one chunk, as the chunker would cut it, with one
    vector over its whole text.
    """
    started = time.perf_counter()
    staging = directory.with_name(directory.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    service = Sourcebook(Settings(index_dir=staging), embedder=NoModel(real_embedder))
    library = service.library
    # One vector per chunk, over its whole text; where the library takes window spans, that is one window.
    takes_windows = "windows" in inspect.signature(library.put).parameters
    vectors = _Vectors(seed)
    documents = -(-chunks // PASSAGES_PER_DOCUMENT)
    for number in range(documents):
        document, parts, owners = synthetic_document(seed, number)
        parts = parts[: chunks - number * PASSAGES_PER_DOCUMENT]
        rows = np.vstack([vectors.of(o, [(0, len(c.text))]) for c, o in zip(parts, owners)])
        if takes_windows:
            library.put(document, parts, [[(0, len(c.text))] for c in parts], rows)
        else:
            library.put(document, parts, rows)
        if (number + 1) % 4_000 == 0:
            report(f"  synthetic {chunks:,}: {(number + 1) * PASSAGES_PER_DOCUMENT:,} chunks "
                   f"({time.perf_counter() - started:.0f} s)")
    library.save()
    info = {"recipe": RECIPE, "schema": store_module.SCHEMA_VERSION, "target": chunks, "chunks": service.counts()[1], "documents": documents,
            "vectors": library.index.count, "index": library.index.kind,
            "seed_passages": len(seed.texts), "build_seconds": round(time.perf_counter() - started, 1)}
    library.store.close()
    (staging / "synthetic.json").write_text(json.dumps(info))
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    return info


def cached_library(seed: Seed, real_embedder, directory: Path, chunks: int, *, report=print) -> dict:
    """The synthetic library of about `chunks` chunks in `directory`, built only when missing or outdated."""
    info_path = directory / "synthetic.json"
    if info_path.exists():
        info = json.loads(info_path.read_text())
        if (info.get("recipe"), info.get("schema"), info.get("target"), info.get("seed_passages")) == (
            RECIPE, store_module.SCHEMA_VERSION, chunks, len(seed.texts)
        ):
            # Opening it brings its derived indexes up to date (a keyword index it lacks is built
            # from the store), so nothing timed later pays for that.
            Sourcebook(Settings(index_dir=directory), embedder=NoModel(real_embedder)).library.store.close()
            return info
    report(f"building a synthetic library of {chunks:,} chunks in {directory} (once; cached for later runs)")
    return build_library(seed, real_embedder, directory, chunks, report=report)


def stored_vectors(directory: Path, limit: int | None = None) -> np.ndarray:
    """The vectors a library holds, in id order, up to `limit` of them."""
    store = Store(Path(directory) / STORE_FILE)
    parts, held = [], 0
    for _, batch in store.iter_vectors(batch=50_000):
        parts.append(batch)
        held += len(batch)
        if limit is not None and held >= limit:
            break
    store.close()
    vectors = np.vstack(parts)
    return vectors[:limit] if limit is not None else vectors
