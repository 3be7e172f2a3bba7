"""Load on the HTTP API: many clients at once on loopback, every request accounted for.

`run_load` starts the clients (each `hammer`s the server with questions and searches in turn)
and samples the server's resident memory meanwhile. The short load test (tests/test_load.py)
and the `load` section of `python -m bench` (`run`: 32 clients for 60 s against the real app
over the default corpus, with the real model) both use it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from bench.common import CORPUS, REPO, memory_of, percentiles, say

CLIENTS = 32
SECONDS = 60.0
# Load before the measured run, counted in answers since it is the requests served, not the
# time, that bring the server to its working size: with 32 at once its memory climbs by about
# 1.3 GiB and levels off after some 450 answers (a 330 s run, docs/BENCHMARKS.md).
WARMUP_ANSWERS_PER_CLIENT = 16
WARMUP_MAX_S = 300.0
MEMORY_EVERY_S = 1.0
# Growth of the server's resident memory over the measured run that still counts as flat: about
# 5% of what the loaded server holds. A leak grows with every request and does not level off.
FLAT_MIB = 64

Request = tuple[str, dict]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request: where it went, when it was sent (seconds into the load), and what came back."""

    path: str
    sent_at: float
    seconds: float
    status: int | None  # None: no response (the request was dropped)
    error: str | None = None


@dataclass(frozen=True)
class Load:
    """Everything a load run saw: each request's outcome and the server's memory over time."""

    clients: int
    warmup_answers: int
    warmup_s: float  # when the warm-up ended, in seconds into the load
    seconds: float
    outcomes: tuple[Outcome, ...]
    # (seconds into the load, resident bytes); the first sample is taken before any request.
    memory: tuple[tuple[float, int], ...]

    @property
    def statuses(self) -> Counter:
        """How many responses came back with each status code."""
        return Counter(o.status for o in self.outcomes if o.status is not None)

    @property
    def dropped(self) -> list[str]:
        """The requests sent that got no response, as their errors."""
        return [o.error or "no response" for o in self.outcomes if o.status is None]


def ask_and_search(questions: Sequence[str], *, k: int = 5) -> list[Request]:
    """Each question asked and searched for, in turn: the mix of requests the clients send."""
    requests: list[Request] = []
    for question in questions:
        requests.append(("/api/ask", {"question": question, "k": k}))
        requests.append(("/api/search", {"query": question, "k": k}))
    return requests


class Schedule:
    """When a load stops: `seconds` after its warm-up.

    The warm-up ends once `warmup_answers` responses are in, or `warmup_max_s` into the load,
    whichever comes first.
    """

    def __init__(self, seconds: float, *, warmup_answers: int = 0, warmup_max_s: float = WARMUP_MAX_S) -> None:
        self.began = time.monotonic()
        self.seconds = seconds
        self.warmup_answers = warmup_answers
        self.warmup_end: float | None = self.began if warmup_answers <= 0 else None
        self._warmup_deadline = self.began + warmup_max_s
        self._answers = 0
        self._lock = threading.Lock()

    def answered(self) -> None:
        """Count a response."""
        with self._lock:
            self._answers += 1
            if self.warmup_end is None and self._answers >= self.warmup_answers:
                self.warmup_end = time.monotonic()

    def running(self) -> bool:
        """Whether clients should send another request."""
        now = time.monotonic()
        with self._lock:
            if self.warmup_end is None and now >= self._warmup_deadline:
                self.warmup_end = now
            return self.warmup_end is None or now < self.warmup_end + self.seconds


def hammer(base_url: str, requests: Sequence[Request], *, first: int, schedule: Schedule,
           timeout: float) -> list[Outcome]:
    """One client: send the requests in turn from `first`, one at a time, while the schedule runs."""
    outcomes = []
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        n = first
        while schedule.running():
            path, body = requests[n % len(requests)]
            sent_at = time.monotonic() - schedule.began
            started = time.perf_counter()
            try:
                response = client.post(path, json=body)
            except httpx.HTTPError as error:
                outcomes.append(Outcome(path, sent_at, time.perf_counter() - started, None, repr(error)))
            else:
                outcomes.append(Outcome(path, sent_at, time.perf_counter() - started, response.status_code))
                schedule.answered()
            n += 1
    return outcomes


def run_load(base_url: str, requests: Sequence[Request], *, clients: int, seconds: float, pid: int,
             warmup_answers: int = 0, memory_every_s: float = MEMORY_EVERY_S, timeout: float = 120.0) -> Load:
    """Run `clients` clients at once, `seconds` after a warm-up; sample the resident memory of `pid` (the server)."""
    schedule = Schedule(seconds, warmup_answers=warmup_answers)
    memory = [(0.0, memory_of(pid)["rss"])]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(memory_every_s):
            memory.append((time.monotonic() - schedule.began, memory_of(pid)["rss"]))

    per_client: list[list[Outcome]] = [[] for _ in range(clients)]

    def client(number: int) -> None:
        # Clients start at places spread over the list, so they do not all send the same request.
        first = number * len(requests) // clients
        per_client[number] = hammer(base_url, requests, first=first, schedule=schedule, timeout=timeout)

    sampler = threading.Thread(target=sample, daemon=True)
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    sampler.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    sampler.join()
    memory.append((time.monotonic() - schedule.began, memory_of(pid)["rss"]))
    outcomes = tuple(o for outcomes in per_client for o in outcomes)
    warmup_s = (schedule.warmup_end or schedule.began) - schedule.began
    return Load(clients, warmup_answers, warmup_s, seconds, outcomes, tuple(memory))


def summary(load: Load) -> dict:
    """The figures of a load run: per endpoint counts and latency after warm-up, and memory over time."""
    endpoints = {}
    for path in sorted({o.path for o in load.outcomes}):
        outcomes = [o for o in load.outcomes if o.path == path]
        measured = [o for o in outcomes if o.sent_at >= load.warmup_s and o.status is not None]
        statuses = Counter(o.status for o in outcomes if o.status is not None)
        endpoints[path] = {
            "sent": len(outcomes),
            "answered": sum(statuses.values()),
            "dropped": len(outcomes) - sum(statuses.values()),
            "server_errors": sum(n for status, n in statuses.items() if status >= 500),
            "statuses": {str(status): n for status, n in sorted(statuses.items())},
            "per_s": round(len(measured) / load.seconds, 2),
            "latency": percentiles([o.seconds * 1000 for o in measured]),
        }
    # Memory from the end of the warm-up on: its start, end, peak and trend.
    after = [(t, rss) for t, rss in load.memory if t >= load.warmup_s] or list(load.memory[-1:])
    times = np.array([t for t, _ in after])
    mib = np.array([rss for _, rss in after]) / 2**20
    slope = float(np.polyfit(times / 60, mib, 1)[0]) if len(after) >= 3 else float("nan")
    requests_after = sum(1 for o in load.outcomes if o.sent_at >= load.warmup_s)
    growth = float(mib[-1] - mib[0])
    return {
        "clients": load.clients,
        "warmup_answers": load.warmup_answers,
        "warmup_s": round(load.warmup_s, 1),
        "seconds": load.seconds,
        "endpoints": endpoints,
        "sent": len(load.outcomes),
        "dropped": len(load.dropped),
        "dropped_examples": load.dropped[:5],
        "server_errors": sum(e["server_errors"] for e in endpoints.values()),
        "memory": {
            "idle_mib": round(load.memory[0][1] / 2**20, 1),
            "start_mib": round(float(mib[0]), 1),
            "end_mib": round(float(mib[-1]), 1),
            "max_mib": round(max(rss for _, rss in load.memory) / 2**20, 1),
            "growth_mib": round(growth, 1),
            "slope_mib_per_min": round(slope, 2),
            "growth_bytes_per_request": round(growth * 2**20 / max(1, requests_after)),
            "samples": len(load.memory),
            # Every fifth sample, enough to see the shape: (seconds into the load, MiB).
            "series": [[round(t), round(rss / 2**20)] for t, rss in load.memory[::5]],
            "flat_bound_mib": FLAT_MIB,
        },
    }


def default_corpus_library(embedder, directory: Path) -> int:
    """Ingest the default corpus into `directory` (unchanged files are skipped); return its chunks."""
    from app.service import Sourcebook
    from retrieval.settings import Settings

    service = Sourcebook(Settings(index_dir=directory, corpus_dir=CORPUS), embedder=embedder)
    service.ingest(CORPUS)
    chunks = service.counts()[1]
    service.library.store.close()
    return chunks


def questions_of_the_default_corpus() -> list[str]:
    """The questions of corpus/qa.jsonl, answerable and not."""
    lines = (CORPUS / "qa.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def run(embedder, onnx_dir: Path, directory: Path, *, clients: int = CLIENTS, seconds: float = SECONDS,
        warmup_answers: int = WARMUP_ANSWERS_PER_CLIENT * CLIENTS) -> dict:
    """The long load run: the real app (API only, bench.server) over the default corpus, `clients` at once."""
    from bench.queries import ensure_model, free_port, stop, wait_healthy

    chunks = default_corpus_library(embedder, directory)
    ensure_model(directory, onnx_dir)
    questions = questions_of_the_default_corpus()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The server's own account of any 5xx (uvicorn logs each traceback) is kept beside the library.
    log_path = directory / "load-server.log"
    say(f"load: {clients} clients, {warmup_answers} answers of warm-up, then {seconds:.0f} s against {url} "
        f"(default corpus, {chunks} chunks, {len(questions)} questions asked and searched); server log {log_path}")
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.server", "--index", str(directory), "--port", str(port)],
            stdout=subprocess.PIPE, stderr=log, cwd=REPO, text=True,
        )
    try:
        process.stdout.readline()  # the start-up breakdown: the app is built
        wait_healthy(url, process)
        load = run_load(url, ask_and_search(questions), clients=clients, seconds=seconds, pid=process.pid,
                        warmup_answers=warmup_answers)
        still_up = process.poll() is None
    finally:
        stop(process)
    figures = summary(load)
    figures.update({"library": "default corpus", "chunks": chunks, "questions": len(questions),
                    "server_survived": still_up, "server_log": str(log_path)})
    return figures
