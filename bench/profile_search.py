"""A loop of in-process searches over one library, for profiling (not part of `make bench`).

    py-spy record -r 200 --threads --format raw -o out.txt -- \
        .venv/bin/python -m bench.profile_search /tmp/sourcebook-bench/synthetic-100000 --searches 300

Prints the wall and CPU milliseconds per search (k=5, SciFact claims as queries) once the loop is
done; the CPU time counts every thread of the process (the keyword half runs on its own thread).
"""

from __future__ import annotations

import json
import time

from bench.common import library_and_claims, percentiles


def main() -> None:
    """Open the library named on the command line and time `--searches` searches."""
    service, questions = library_and_claims("Time in-process searches over one library.")
    for question in questions[:5]:
        service.search(question, k=5)
    wall, cpu = [], []
    for question in questions:
        c0, t0 = time.process_time(), time.perf_counter()
        service.search(question, k=5)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    print(json.dumps({"wall_ms": percentiles(wall), "cpu_ms": percentiles(cpu)}))


if __name__ == "__main__":
    main()
