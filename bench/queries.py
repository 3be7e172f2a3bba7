"""Query latency, memory and start-up: sourcebook in process and over HTTP against the plain way.

The plain way is what a short script would do: PyTorch `SentenceTransformer.encode` of the
query and an exact `faiss.IndexFlatIP` search over every vector held in memory, FAISS left at
its defaults. It returns ids and scores only (no text, no keyword half, no citations), so it
does less work than sourcebook's search; it is the floor a user would compare against.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import faiss
import httpx
import numpy as np

from app.service import Sourcebook
from bench.common import REPO, memory_of, percentiles, say
from retrieval.embedder import RECIPE_FILE
from retrieval.search import dense_search
from retrieval.settings import Settings

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 600.0) -> float:
    """Poll GET /healthz until it answers 200; return when it did (perf_counter)."""
    deadline = time.perf_counter() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with code {process.returncode}")
            try:
                if client.get(url + "/healthz").status_code == 200:
                    return time.perf_counter()
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
    raise TimeoutError(f"{url} did not become healthy in {timeout:.0f} s")


def stop(process: subprocess.Popen) -> None:
    """Stop a server this benchmark started (its own pid only)."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def ensure_model(directory: Path, onnx_dir: Path) -> None:
    """Give an index directory the cached ONNX export and its recipe, as a served index has after its first start."""
    target = directory / "model-onnx"
    if not target.exists():
        shutil.copytree(onnx_dir, target)
    if not (target / RECIPE_FILE).exists() and (onnx_dir / RECIPE_FILE).exists():
        shutil.copy2(onnx_dir / RECIPE_FILE, target / RECIPE_FILE)


def first_search(url: str, question: str) -> float:
    """Search once; return when the answer was in (perf_counter)."""
    with httpx.Client(base_url=url, timeout=120.0) as client:
        client.post("/api/search", json={"query": question, "k": 5}).raise_for_status()
    return time.perf_counter()


def serve_startup(directory: Path, question: str) -> tuple[float, float]:
    """Seconds from launching `sourcebook serve` (page and API) to its first healthy answer, and to its first search answered."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(VENV_BIN / "sourcebook"), "serve", "--index", str(directory), "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
    )
    try:
        ready = wait_healthy(url, process)
        searched = first_search(url, question)
    finally:
        stop(process)
    return round(ready - started, 2), round(searched - started, 2)


def http_figures(directory: Path, questions: list[str], *, searches: int, asks: int) -> dict:
    """Start the API server over `directory`, time search and ask over HTTP, read its memory."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.server", "--index", str(directory), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO, text=True,
    )
    try:
        breakdown = json.loads(process.stdout.readline())
        ready = wait_healthy(url, process)
        searched = first_search(url, questions[-1])
        figures = {"startup_s": round(ready - started, 2), "first_search_s": round(searched - started, 2),
                   "startup_breakdown": breakdown, "memory_after_start": memory_of(process.pid)}
        with httpx.Client(base_url=url, timeout=120.0) as client:
            for question in questions[:5]:
                client.post("/api/search", json={"query": question, "k": 5}).raise_for_status()
                client.post("/api/ask", json={"question": question, "k": 5}).raise_for_status()
            search_ms, ask_ms = [], []
            for question in questions[:searches]:
                began = time.perf_counter()
                client.post("/api/search", json={"query": question, "k": 5}).raise_for_status()
                search_ms.append((time.perf_counter() - began) * 1000)
            for question in questions[:asks]:
                began = time.perf_counter()
                client.post("/api/ask", json={"question": question, "k": 5}).raise_for_status()
                ask_ms.append((time.perf_counter() - began) * 1000)
        figures["search"] = percentiles(search_ms)
        figures["ask"] = percentiles(ask_ms)
        figures["memory_after_queries"] = memory_of(process.pid)
    finally:
        stop(process)
    return figures


def plain_flat(store) -> tuple[faiss.IndexFlatIP, np.ndarray]:
    """An exact IndexFlatIP over every stored vector, in memory, and the id of each position."""
    index = faiss.IndexFlatIP(int(store.meta()["dim"]))
    ids = []
    for batch_ids, vectors in store.iter_vectors(batch=50_000):
        index.add(vectors)
        ids.append(batch_ids)
    return index, np.concatenate(ids)


def in_process_figures(directory: Path, embedder, torch_model, questions: list[str], *, searches: int, asks: int,
                       plain: int) -> dict:
    """Time sourcebook's search and ask and their parts in this process; the plain way alternates with the first `plain`."""
    began = time.perf_counter()
    service = Sourcebook(Settings(index_dir=directory), embedder=embedder)
    opened = time.perf_counter() - began
    store, index = service.library.store, service.library.index
    # As the server does once it is up: read the mapped index into memory (not timed).
    service.library.warm()
    index.wait_until_warm(timeout=600)
    say(f"    building the plain baseline (exact IndexFlatIP over {index.count:,} vectors)")
    flat, positions = plain_flat(store)
    searcher = service.searcher
    samples: dict[str, list[float]] = {name: [] for name in
                                       ("search", "encode", "dense", "keyword", "plain", "plain_encode", "plain_flat")}
    for question in questions[:3]:  # warm-up
        service.search(question, k=5)
        flat.search(torch_model.encode([question], normalize_embeddings=True), 5)
    vectors = []
    cpu: list[float] = []
    for number, question in enumerate(questions[:searches]):
        c0 = time.process_time()
        t0 = time.perf_counter()
        service.search(question, k=5)
        t1 = time.perf_counter()
        cpu.append((time.process_time() - c0) * 1000)
        vector = embedder.encode([question])
        t2 = time.perf_counter()
        dense_search(index, vector, searcher.candidates)
        t3 = time.perf_counter()
        searcher.keywords.search(question, searcher.candidates)
        t4 = time.perf_counter()
        vectors.append(vector[0])
        for name, ms in (("search", t1 - t0), ("encode", t2 - t1), ("dense", t3 - t2), ("keyword", t4 - t3)):
            samples[name].append(ms * 1000)
        if number < plain:
            plain_vector = torch_model.encode([question], normalize_embeddings=True, convert_to_numpy=True)
            t5 = time.perf_counter()
            flat.search(plain_vector, 5)
            t6 = time.perf_counter()
            for name, ms in (("plain", t6 - t4), ("plain_encode", t5 - t4), ("plain_flat", t6 - t5)):
                samples[name].append(ms * 1000)
    # Recall@10 of the index in use against exact search, same query vectors (one batch: exact is slow).
    queries = np.vstack(vectors)
    _, exact = flat.search(queries, 10)
    _, found = index.search(queries, 10)
    recall = [len(set(f.tolist()) & set(positions[e].tolist())) / 10 for f, e in zip(found, exact)]
    del flat
    ask_ms = []
    for question in questions[:asks]:
        t0 = time.perf_counter()
        service.ask(question, k=5)
        ask_ms.append((time.perf_counter() - t0) * 1000)
    figures = {name: percentiles(values) for name, values in samples.items()}
    # CPU time the process spent per search (all its threads): what the latency would be with
    # the cores to itself, since the shared machine's other work only adds waiting.
    figures["search_cpu"] = percentiles(cpu)
    figures["ask"] = percentiles(ask_ms)
    figures["open_s"] = round(opened, 2)
    figures["index_kind"] = index.kind
    figures["vectors"] = index.count
    figures["recall_at_10_vs_exact"] = round(float(np.mean(recall)), 4)
    store.close()
    return figures


def run(embedder, onnx_dir: Path, libraries: list[tuple[str, Path, int]], questions: list[str], *,
        searches: int, asks: int) -> list[dict]:
    """Latency, memory and start-up at each library size."""
    from sentence_transformers import SentenceTransformer

    from retrieval.embedder import bundled_model_path

    torch_model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    rows = []
    for name, directory, chunks in libraries:
        ensure_model(directory, onnx_dir)
        say(f"queries: {name} ({chunks:,} chunks)")
        say("    over HTTP (bench.server: the real app, API only)")
        http = http_figures(directory, questions, searches=searches, asks=asks)
        say("    sourcebook serve start-up")
        serve_s, serve_search_s = serve_startup(directory, questions[-2])
        say("    in process, alternating with the plain baseline")
        local = in_process_figures(directory, embedder, torch_model, questions, searches=searches, asks=asks,
                                   plain=min(searches, 100))
        rows.append({"library": name, "chunks": chunks, "http": http, "in_process": local,
                     "serve_startup_s": serve_s, "serve_first_search_s": serve_search_s})
    # Memory per chunk: the server's growth over the first (smallest) library of this run.
    reference = rows[0]
    for row in rows[1:]:
        grown = row["http"]["memory_after_queries"]["rss"] - reference["http"]["memory_after_queries"]["rss"]
        row["bytes_per_chunk"] = round(grown / (row["chunks"] - reference["chunks"]))
        row["bytes_per_chunk_reference"] = reference["library"]
    return rows
