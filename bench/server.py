"""A server for the benchmarks: the real app (HTTP API, no page) over an index, on 127.0.0.1.

Run as `python -m bench.server --index DIR --port PORT`; prints one JSON line with the
start-up breakdown once the app is built, then serves until killed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> None:
    """Build the service and the app, say how long each step took, and serve."""
    started = time.perf_counter()
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()

    import uvicorn

    from app.service import Sourcebook
    from retrieval.settings import Settings
    from ui.server import create_app

    imported = time.perf_counter()
    service = Sourcebook(Settings(index_dir=args.index))
    service.load_readers()  # at start, as `sourcebook serve` does
    opened = time.perf_counter()
    app = create_app(service, with_page=False)
    built = time.perf_counter()
    print(json.dumps({
        "imports_s": round(imported - started, 3),
        "service_s": round(opened - imported, 3),
        "app_s": round(built - opened, 3),
        "index_kind": service.library.index.kind,
        "chunks": service.library.index.count,
    }), flush=True)
    sys.stdout.flush()
    uvicorn.run(app, host="127.0.0.1", port=args.port, workers=1, log_level="warning")


if __name__ == "__main__":
    main()
