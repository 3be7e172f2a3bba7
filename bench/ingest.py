"""Ingest speed: the whole pipeline against plain SentenceTransformer.encode of the same chunks.

Pipeline and plain encode run alternately, block by block, in one process, so that whatever
else the shared machine is doing weighs on both alike. Also: the arithmetic ceiling (model
FLOPs per chunk against the cores' measured matmul rate) and re-ingest with nothing or one
document changed.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from app.service import Sourcebook
from bench.common import CORPUS, SCIFACT, cores, say
from retrieval import evaluation
from retrieval.settings import Settings

# Documents per alternation block on SciFact (about 1,100 chunks).
BLOCK = 500
# all-MiniLM-L6-v2's shape.
LAYERS, HIDDEN, FFN = 6, 384, 1536


class RecordingEmbedder:
    """Wraps the real embedder and records every text the pipeline asks it to encode."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name, self.dim, self.max_tokens = inner.name, inner.dim, inner.max_tokens
        # The pipeline sends one model batch per call, of the embedder's batch size.
        self.batch_size = inner.batch_size
        self.texts: list[str] = []
        self.calls: list[int] = []  # texts per model call, in order

    def encode(self, texts):
        self.texts.extend(texts)
        self.calls.append(len(texts))
        return self.inner.encode(texts)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def take(self) -> list[str]:
        """The texts encoded since the last call."""
        texts, self.texts = self.texts, []
        return texts


def plain_encoders(onnx_dir: Path):
    """Plain sentence-transformers models: the ONNX export at the pipeline's session options and at the defaults, PyTorch.

    The like-for-like baseline is `SentenceTransformer` running the very export the pipeline's
    embedder runs, with the same ONNX Runtime session options (threads, spinning), so the ratio
    measures the pipeline alone; the export loaded the documented way, with ONNX Runtime's
    default session options, and PyTorch (the default a script would use) run on one block each.
    """
    from sentence_transformers import SentenceTransformer

    from retrieval.embedder import bundled_model_path, onnx_session_options

    onnx = SentenceTransformer(str(onnx_dir), backend="onnx", device="cpu",
                               model_kwargs={"session_options": onnx_session_options()})
    onnx_default = SentenceTransformer(str(onnx_dir), backend="onnx", device="cpu")
    torch_model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    return onnx, onnx_default, torch_model


def encode_plain(model, texts: list[str]) -> float:
    """Seconds for model.encode of the texts, batch 32, normalised (what the pipeline asks for)."""
    started = time.perf_counter()
    model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return time.perf_counter() - started


def ingest_default_corpus(embedder, onnx, torch_model, scratch: Path, repeats: int = 3) -> dict:
    """The default corpus, ingested afresh `repeats` times, alternating with plain encodes of what it embedded."""
    recorder = RecordingEmbedder(embedder)
    pipeline_s = onnx_s = torch_s = 0.0
    chunks = texts = 0
    for repeat in range(repeats):
        directory = scratch / f"corpus-{repeat}"
        service = Sourcebook(Settings(index_dir=directory), embedder=recorder)
        started = time.perf_counter()
        service.ingest(CORPUS)
        pipeline_s += time.perf_counter() - started
        embedded = recorder.take()
        onnx_s += encode_plain(onnx, embedded)
        torch_s += encode_plain(torch_model, embedded)
        chunks, texts = service.counts()[1], len(embedded)
        service.library.store.close()
        shutil.rmtree(directory, ignore_errors=True)
    return _speeds("default corpus (5 articles)", documents=5, chunks=chunks, texts=texts, repeats=repeats,
                   pipeline_s=pipeline_s, onnx_s=onnx_s, torch_s=torch_s, torch_texts=texts)


def _speeds(name: str, *, documents: int, chunks: int, texts: int, repeats: int, pipeline_s: float, onnx_s: float,
            torch_s: float, torch_texts: int) -> dict:
    return {
        "corpus": name,
        "documents": documents,
        "chunks": chunks,
        # The pipeline embeds each distinct text once; with windows, several texts per chunk.
        "texts_embedded": texts,
        "repeats": repeats,
        "pipeline_s": round(pipeline_s, 2),
        "plain_onnx_s": round(onnx_s, 2),
        "pipeline_chunks_per_s": round(chunks * repeats / pipeline_s, 2),
        "plain_onnx_chunks_per_s": round(chunks * repeats / onnx_s, 2),
        "pipeline_vs_plain_onnx": round(onnx_s / pipeline_s, 3),
        # PyTorch encodes a part of the same texts; its speed is scaled per chunk like the others.
        "plain_torch_chunks_per_s": round(chunks * repeats * (torch_texts / (texts * repeats)) / torch_s, 2)
        if torch_s else None,
        "plain_torch_texts": torch_texts,
    }


def ingest_scifact(embedder, onnx, onnx_default, torch_model, directory: Path, documents) -> tuple[dict, list[str]]:
    """SciFact ingested block by block into `directory`, each block followed by plain encodes of what it embedded."""
    recorder = RecordingEmbedder(embedder)
    service = Sourcebook(Settings(index_dir=directory), embedder=recorder)
    pipeline_s = onnx_s = torch_s = 0.0
    torch_texts = 0
    default_onnx: dict = {}
    everything: list[str] = []
    blocks = []
    plain_calls = []
    for number, first in enumerate(range(0, len(documents), BLOCK)):
        block = documents[first : first + BLOCK]
        started = time.perf_counter()
        service.ingest_documents(block)
        spent = time.perf_counter() - started
        texts = recorder.take()
        encoded = encode_plain(onnx, texts)
        pipeline_s += spent
        onnx_s += encoded
        everything.extend(texts)
        plain_calls.append(len(texts))
        blocks.append(round(encoded / spent, 3))
        # PyTorch is the plain default; one block is enough to show where it stands.
        if number == 0:
            torch_s, torch_texts = encode_plain(torch_model, texts), len(texts)
            default_s = encode_plain(onnx_default, texts)
            default_onnx = {"texts": len(texts), "seconds": round(default_s, 2),
                            "same_session_seconds": round(encoded, 2)}
        say(f"  SciFact block {number + 1}: {len(texts)} texts embedded, pipeline {spent:.1f} s, "
            f"plain ONNX {encoded:.1f} s")
    chunks = service.counts()[1]
    service.library.store.close()
    row = _speeds(f"SciFact ({len(documents):,} of 5,183 abstracts)", documents=len(documents), chunks=chunks,
                  texts=len(everything), repeats=1, pipeline_s=pipeline_s, onnx_s=onnx_s, torch_s=torch_s,
                  torch_texts=torch_texts)
    row["ratio_per_block"] = blocks
    row["model_calls"] = recorder.calls
    row["plain_calls"] = plain_calls
    # The export at ONNX Runtime's default session options, against the pipeline's session, on block 1.
    row["plain_onnx_default_session"] = default_onnx
    return row, everything


def matmul_gflops(threads: int | None = None, size: int = 2048, seconds: float = 3.0) -> float:
    """Sustained float32 matmul rate of these cores (numpy/OpenBLAS), best of repeated runs."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((size, size), dtype=np.float32)
    best = 0.0
    with threadpool_limits(limits=threads):
        a @ b
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            a @ b
            best = max(best, 2 * size**3 / (time.perf_counter() - started) / 1e9)
    return best


def model_flops(tokens: int) -> float:
    """Forward-pass floating-point operations of all-MiniLM-L6-v2 for one sequence of `tokens` tokens.

    Per layer: Q, K, V and output projections 8*s*h^2, feed-forward 4*s*h*f, attention
    scores and weighted sum 4*s^2*h (a multiply-add counts as two operations).
    """
    s = tokens
    return LAYERS * (8 * s * HIDDEN**2 + 4 * s * HIDDEN * FFN + 4 * s * s * HIDDEN)


def padded_flops(lengths, characters=None, batch: int = 32) -> float:
    """FLOPs of one encode call, batches of `batch` padded to their longest text, longest first.

    sentence-transformers orders a call's texts by `characters` (their length in characters,
    np.argsort as it does); without them the order is by tokens, the least padding possible.
    """
    lengths = np.asarray(lengths)
    keys = lengths if characters is None else np.asarray(characters)
    ordered = lengths[np.argsort(-keys)]
    return float(sum(model_flops(int(ordered[i : i + batch].max())) * len(ordered[i : i + batch])
                     for i in range(0, len(ordered), batch)))


def flops_ceiling(embedder, texts: list[str], chunks: int, measured: dict) -> dict:
    """How close the encoder comes to what the cores can do, on the texts the pipeline embedded."""
    lengths = np.array([min(embedder.count_tokens(t) + 2, 256) for t in texts])
    characters = np.array([len(t) for t in texts])
    per_text = np.array([model_flops(int(s)) for s in lengths])

    def calls_flops(calls: list[int]) -> float:
        # Each call ordered by characters within itself, as sentence-transformers does.
        bounds = np.cumsum([0, *calls])
        return sum(padded_flops(lengths[a:b], characters[a:b]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a)

    plain_calls = measured.get("plain_calls", [len(texts)])  # one per block
    padded = calls_flops(plain_calls)
    pipeline_calls = measured.get("model_calls", [len(texts)])  # one model batch each
    pipeline_padded = calls_flops(pipeline_calls)
    per_chunk = float(per_text.sum()) / chunks
    all_cores = matmul_gflops()
    one_core = matmul_gflops(threads=1)
    ceiling = all_cores * 1e9 / per_chunk
    return {
        "chunks": chunks,
        "texts": len(texts),
        "mean_tokens_per_text": round(float(lengths.mean()), 1),
        "model_gflop_per_chunk": round(per_chunk / 1e9, 3),
        "padding_overhead": round(padded / float(per_text.sum()) - 1, 4),
        "plain_calls": len(plain_calls),
        # The floor: one call ordered by tokens.
        "token_sorted_padding_overhead": round(padded_flops(lengths) / float(per_text.sum()) - 1, 4),
        "pipeline_padding_overhead": round(pipeline_padded / float(per_text.sum()) - 1, 4),
        "pipeline_model_calls": len(pipeline_calls),
        "matmul_gflops_all_cores": round(all_cores, 1),
        "matmul_gflops_one_core": round(one_core, 1),
        "cores": cores(),
        "ceiling_chunks_per_s": round(ceiling, 1),
        "plain_onnx_chunks_per_s": measured["plain_onnx_chunks_per_s"],
        "plain_onnx_share_of_ceiling": round(measured["plain_onnx_chunks_per_s"] / ceiling, 3),
        "pipeline_chunks_per_s": measured["pipeline_chunks_per_s"],
        "pipeline_share_of_ceiling": round(measured["pipeline_chunks_per_s"] / ceiling, 3),
    }


def reingest(embedder, directory: Path, documents) -> dict:
    """Re-ingest SciFact over its full index: unchanged (no model work), then with one document changed."""
    recorder = RecordingEmbedder(embedder)
    service = Sourcebook(Settings(index_dir=directory), embedder=recorder)
    result = {"documents": len(documents), "chunks": service.counts()[1]}
    started = time.perf_counter()
    report = service.ingest_documents(documents)
    result["unchanged_s"] = round(time.perf_counter() - started, 2)
    result["unchanged_texts_embedded"] = len(recorder.take())
    result["unchanged_documents_skipped"] = len(report.unchanged)

    changed = list(documents)
    first = changed[0]
    changed[0] = replace(first, text=first.text + "\n\nThis sentence was added for the re-ingest benchmark.",
                         content_hash="")
    started = time.perf_counter()
    service.ingest_documents(changed)
    result["one_changed_s"] = round(time.perf_counter() - started, 2)
    result["one_changed_texts_embedded"] = len(recorder.take())
    # Put the original back so the cached library stays SciFact as published.
    service.ingest_documents(documents)
    service.library.store.close()
    return result


def scifact_documents(quick: bool):
    """SciFact's abstracts (all, or the first 1,000 with --quick) and its queries."""
    benchmark = evaluation.load_beir(SCIFACT, "train")
    documents = benchmark.documents[:1000] if quick else benchmark.documents
    return benchmark, documents


def run(embedder, onnx_dir: Path, scifact_dir: Path, *, quick: bool) -> dict:
    """Every ingest figure; leaves a full SciFact library in `scifact_dir` for the query benchmarks."""
    onnx, onnx_default, torch_model = plain_encoders(onnx_dir)
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="sourcebook-bench-") as scratch:
        scratch = Path(scratch)
        say("ingest: default corpus")
        results["default_corpus"] = ingest_default_corpus(embedder, onnx, torch_model, scratch)
        benchmark, documents = scifact_documents(quick)
        say(f"ingest: SciFact, {len(documents)} documents, alternating with plain encodes")
        fresh = scratch / "scifact"
        results["scifact"], texts = ingest_scifact(embedder, onnx, onnx_default, torch_model, fresh, documents)
        results["flops"] = flops_ceiling(embedder, texts, results["scifact"]["chunks"], results["scifact"])
        # A full fresh ingest becomes the cached SciFact library (same content, newer build).
        if not quick:
            shutil.rmtree(scifact_dir, ignore_errors=True)
            shutil.copytree(fresh, scifact_dir)
    ensure_scifact(embedder, scifact_dir, benchmark.documents)
    say("re-ingest: SciFact unchanged, then one document changed")
    results["reingest"] = reingest(embedder, scifact_dir, benchmark.documents)
    return results


def ensure_scifact(embedder, directory: Path, documents) -> None:
    """Build the cached full SciFact library if it is missing (about 11 minutes on 2 cores, once)."""
    from retrieval.errors import IndexMismatch

    try:
        service = Sourcebook(Settings(index_dir=directory), embedder=embedder)
    except IndexMismatch:
        say(f"the cached SciFact library in {directory} was built with other settings; rebuilding it")
        service = Sourcebook(Settings(index_dir=directory), embedder=embedder, rebuild=True)
    if service.counts()[0] < len(documents):
        say(f"building the full SciFact library in {directory} (once; cached for later runs)")
        service.ingest_documents(documents)
    service.library.store.close()
