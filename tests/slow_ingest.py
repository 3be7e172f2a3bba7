"""Run an ingest with the fake embedder, slowed down, so a test can kill it part-way.

Usage: python -m tests.slow_ingest INDEX_DIR FOLDER [SECONDS_PER_BATCH]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from app import pipeline
from app.service import Sourcebook
from retrieval.settings import Settings
from tests.fakes import FakeEmbedder


class SlowEmbedder(FakeEmbedder):
    """Takes a while per batch, like a real model, leaving time to be killed mid-run."""

    delay = 0.05

    def encode(self, texts):
        time.sleep(self.delay)
        return super().encode(texts)


if __name__ == "__main__":
    index_dir, folder = Path(sys.argv[1]), Path(sys.argv[2])
    if len(sys.argv) > 3:
        SlowEmbedder.delay = float(sys.argv[3])
    # Small groups: many separate commits, so kills land between and inside them.
    pipeline.EMBED_GROUP = 3
    service = Sourcebook(Settings(index_dir=index_dir), embedder=SlowEmbedder())
    print("started", flush=True)
    report = service.ingest(folder)
    print("finished", report.summary(), flush=True)
