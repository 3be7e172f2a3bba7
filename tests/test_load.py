"""A short, bounded load test on loopback: 32 clients at once get answers, never a 5xx."""

from __future__ import annotations

import os
import socket
import statistics
import threading
import time
from collections import Counter

import httpx
import pytest
import uvicorn

from tests.conftest import write_files
from ui.server import create_app

CLIENTS = 32
SECONDS = 8
QUESTIONS = [
    "How far ahead should I book flights through the travel desk?",
    "Where do I report phishing emails?",
    "When is lunch served in the canteen?",
    "Who approves expenses?",
]


def resident_mb() -> float:
    """This process's resident memory, from /proc."""
    with open(f"/proc/{os.getpid()}/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(make_service, tmp_path):
    service = make_service(corpus_dir=tmp_path / "corpus")
    service.ingest(
        write_files(
            tmp_path / "corpus",
            {
                "travel.txt": "Travel\nBook flights through the travel desk at least two weeks ahead.\n",
                "security.txt": "Security\nReport phishing emails to the security team.\n",
                "canteen.txt": "Canteen\nLunch is served in the canteen from noon until two.\n",
                "expenses.txt": "Expenses\nYour manager approves expenses under five hundred euros.\n",
            },
        )
    )
    port = free_port()
    config = uvicorn.Config(create_app(service, with_page=False), host="127.0.0.1", port=port, log_level="error")
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not runner.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    runner.should_exit = True
    thread.join(timeout=10)


def hammer(base_url: str, client_number: int, stop_at: float, statuses: Counter, latencies: list, errors: list) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        n = client_number
        while time.monotonic() < stop_at:
            question = QUESTIONS[n % len(QUESTIONS)]
            path, body = ("/api/ask", {"question": question}) if n % 2 else ("/api/search", {"query": question})
            started = time.perf_counter()
            try:
                response = client.post(path, json=body)
            except httpx.HTTPError as error:  # a dropped request: the test fails on any
                errors.append(repr(error))
            else:
                statuses[response.status_code] += 1
                latencies.append(time.perf_counter() - started)
            n += 1


def test_32_clients_at_once_get_answers_and_never_a_server_error(server):
    statuses: Counter = Counter()
    latencies: list[float] = []
    errors: list[str] = []
    memory_before = resident_mb()
    stop_at = time.monotonic() + SECONDS
    clients = [
        threading.Thread(target=hammer, args=(server, n, stop_at, statuses, latencies, errors)) for n in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=SECONDS + 60)
    memory_after = resident_mb()

    quantiles = statistics.quantiles(latencies, n=100)
    print(f"\n{len(latencies)} requests from {CLIENTS} clients in {SECONDS} s: "
          f"p50 {quantiles[49] * 1000:.0f} ms, p95 {quantiles[94] * 1000:.0f} ms, p99 {quantiles[98] * 1000:.0f} ms; "
          f"resident memory {memory_before:.0f} -> {memory_after:.0f} MB")
    assert errors == []
    assert set(statuses) == {200}
    assert sum(statuses.values()) >= CLIENTS * 2
    assert memory_after - memory_before < 100
