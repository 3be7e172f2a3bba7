"""A short, bounded load test on loopback: 32 clients at once get answers, never a 5xx."""

from __future__ import annotations

import os

import pytest

from bench.load import ask_and_search, run_load, summary
from tests.helpers import write_files
from tests.servers import serving
from ui.server import create_app

pytestmark = pytest.mark.slow

CLIENTS = 32
SECONDS = 8
QUESTIONS = [
    "How far ahead should I book flights through the travel desk?",
    "Where do I report phishing emails?",
    "When is lunch served in the canteen?",
    "Who approves expenses?",
]


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
    with serving(create_app(service, with_page=False)) as url:
        yield url


def test_32_clients_at_once_get_answers_and_never_a_server_error(server):
    # The server runs in this process (a thread), so this process's memory is the server's.
    load = run_load(server, ask_and_search(QUESTIONS), clients=CLIENTS, seconds=SECONDS, pid=os.getpid())

    figures = summary(load)
    memory = figures["memory"]
    print(f"\n{figures['sent']} requests from {CLIENTS} clients in {SECONDS} s: "
          + "; ".join(f"{path} p50 {e['latency']['p50_ms']:.0f} ms, p95 {e['latency']['p95_ms']:.0f} ms, "
                      f"p99 {e['latency']['p99_ms']:.0f} ms" for path, e in figures["endpoints"].items())
          + f"; resident memory {memory['idle_mib']:.0f} -> {memory['end_mib']:.0f} MiB")
    assert load.dropped == []
    assert set(load.statuses) == {200}
    assert {path: e["answered"] for path, e in figures["endpoints"].items()} == {
        path: e["sent"] for path, e in figures["endpoints"].items()
    }
    assert min(e["answered"] for e in figures["endpoints"].values()) >= CLIENTS
    assert memory["end_mib"] - memory["idle_mib"] < 100
