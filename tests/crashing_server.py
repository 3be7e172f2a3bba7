"""`sourcebook serve` with the fake model, killing itself (SIGKILL) at one named point of a write.

Usage: python -m tests.crashing_server POINT serve --port PORT --index INDEX --corpus CORPUS

The points are armed once the server is up (after its reconcile at start), so the first write
request that reaches POINT kills the process there; POINT "none" serves without a crash.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import uvicorn

from app import service as service_module
from retrieval import files
from retrieval.library import Library
from tests.fakes import FakeEmbedder, FakeReader
from ui.cli import app


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def before(owner: object, name: str, *, when: Callable[..., bool] = lambda *args, **kwargs: True) -> None:
    """Die on entering owner.name (when `when` holds for the call's arguments)."""
    original = getattr(owner, name)

    def wrapped(*args, **kwargs):
        if when(*args, **kwargs):
            die()
        return original(*args, **kwargs)

    setattr(owner, name, wrapped)


def after(owner: object, name: str) -> None:
    """Die as soon as owner.name returns."""
    original = getattr(owner, name)

    def wrapped(*args, **kwargs):
        original(*args, **kwargs)
        die()

    setattr(owner, name, wrapped)


def arm(point: str, corpus: Path) -> None:
    """Install the crash at `point` of an upload, replace or delete."""
    arming = {
        # A version has been linked into .deleted/ (replace: the old one; delete: the one going).
        "link": lambda: after(service_module, "_link_as_version"),
        # The upload's bytes are written in full beside their place, not yet renamed into it.
        "rename": lambda: before(files.os, "replace", when=lambda src, dst: Path(dst).resolve().parent == corpus),
        # The file is in place; the store has not been written.
        "store": lambda: before(Library, "put"),
        # Delete: the file is set aside; the store still holds the document.
        "remove": lambda: before(Library, "remove"),
        # The store is committed; the vector and keyword indexes are not saved.
        "save": lambda: before(Library, "save"),
        "none": lambda: None,
    }
    arming[point]()


if __name__ == "__main__":
    point, arguments = sys.argv[1], sys.argv[2:]
    corpus = Path(arguments[arguments.index("--corpus") + 1]).resolve()
    service_module.load_embedder = lambda settings: FakeEmbedder()
    service_module.Reader = lambda directory, **options: FakeReader()
    serve = uvicorn.run

    def armed_run(*args, **kwargs):
        arm(point, corpus)
        serve(*args, **kwargs)

    uvicorn.run = armed_run
    app(args=arguments)
