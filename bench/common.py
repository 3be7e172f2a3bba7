"""What every benchmark shares: paths, percentiles, memory readings and the machine's description."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
SCIFACT = REPO.parent / "shared" / "benchmarks" / "scifact-train"
CORPUS = REPO / "corpus"


def cores() -> int:
    """Number of CPU cores this process may run on."""
    return len(os.sched_getaffinity(0))


def machine() -> dict:
    """Describe the machine and the library versions the figures were measured with."""
    import faiss
    import onnxruntime
    import sentence_transformers
    import torch

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    return {
        "cores": cores(),
        "cpu": model,
        "memory_gib": round(memory / 2**30, 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "faiss": faiss.__version__,
        "onnxruntime": onnxruntime.__version__,
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """Return p50, p95, p99 and mean of latency samples in milliseconds."""
    values = np.asarray(samples_ms, dtype=float)
    return {
        "n": int(len(values)),
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p95_ms": round(float(np.percentile(values, 95)), 2),
        "p99_ms": round(float(np.percentile(values, 99)), 2),
        "mean_ms": round(float(values.mean()), 2),
    }


def memory_of(pid: int | None = None) -> dict[str, int]:
    """Return resident memory of a process in bytes: total, anonymous and file-backed (mapped files)."""
    status = Path(f"/proc/{pid or 'self'}/status").read_text().splitlines()
    fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in status
              if line.startswith(("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"))}
    return {"rss": fields.get("VmRSS", 0), "anon": fields.get("RssAnon", 0), "file": fields.get("RssFile", 0),
            "peak": fields.get("VmHWM", 0)}


def say(message: str) -> None:
    """Progress for the person running the benchmark (stderr, so stdout stays the table)."""
    print(message, file=sys.stderr, flush=True)


def library_and_claims(description: str):
    """Parse `LIBRARY [--searches N]`, open that index warm as a server would, and return it with
    the first N SciFact claims (the queries of the in-process search scripts)."""
    import argparse

    from retrieval import evaluation
    from app.service import Sourcebook
    from retrieval.settings import Settings

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("library", type=Path)
    parser.add_argument("--searches", type=int, default=300)
    args = parser.parse_args()
    claims = list(evaluation.load_beir(SCIFACT, "train").queries.values())[: args.searches]
    service = Sourcebook(Settings(index_dir=args.library))
    # As a server does once it is up (ui/server.py).
    service.library.warm()
    service.library.index.wait_until_warm(timeout=600)
    return service, claims
