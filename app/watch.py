"""Watching the corpus folder while serving: files added, changed or removed there are taken up soon after.

Each batch of changes runs the server's own catch-up with the folder (`Sourcebook.reconcile`: the
incremental ingest, plus a removed file's text kept in `.deleted/` as at a server's start). It
compares content hashes, so a file an upload has just stored is unchanged and nothing is embedded
twice, and it takes the library's write lock, so it never runs beside an upload, a delete or a
`sourcebook ingest` in another process. Its progress goes to the index folder's progress file
(`app/progress.py`), which the page's Sources view shows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import watchfiles

from app.pipeline import IGNORE_FILE, IngestReport, is_temporary
from app.progress import BY_WATCHER
from app.service import Sourcebook

# watchfiles gathers changes into one batch until a step passes with no new one, and for at most
# the debounce: an editor's save, a copy of many files or a burst of rewrites is one ingest.
STEP_MS = 200
DEBOUNCE_MS = 1600
# With no change the watching thread wakes this often; its first wake says it is watching.
WAKE_MS = 250
# How long start() waits for the watching thread to be watching.
START_SECONDS = 10.0
# Names a log line lists for a batch; the rest are counted.
NAMES_LOGGED = 5

log = logging.getLogger(__name__)


def counts(path: Path, *, root: Path, ignored: Sequence[Path] = ()) -> bool:
    """Whether a change at `path` matters to the corpus folder `root`: not hidden, temporary or under `ignored`."""
    try:
        relative = path.relative_to(root)
    except ValueError:
        return False
    if any(path == folder or folder in path.parents for folder in ignored):
        return False
    if relative.as_posix() == IGNORE_FILE:
        # The ignore file is hidden, yet a change to it changes which files belong to the corpus.
        return True
    if any(part.startswith(".") for part in relative.parts):
        return False
    return not is_temporary(relative.name)


def describe(changes: Iterable[tuple[watchfiles.Change, str]], root: Path) -> str:
    """One line for people: the names that changed, relative to `root`, a few at most, each with what happened."""
    named = sorted({(_relative(path, root), change.name) for change, path in changes})
    shown = ", ".join(f"{name} ({change})" for name, change in named[:NAMES_LOGGED])
    more = len(named) - NAMES_LOGGED
    return shown + (f" and {more} more" if more > 0 else "")


def _relative(path: str, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path


class CorpusWatcher:
    """A thread that watches the service's corpus folder and ingests each batch of changes, one at a time."""

    def __init__(self, service: Sourcebook, *, step_ms: int = STEP_MS, debounce_ms: int = DEBOUNCE_MS) -> None:
        if step_ms < 1 or debounce_ms < step_ms:
            raise ValueError(f"step_ms must be 1..debounce_ms, got step_ms={step_ms}, debounce_ms={debounce_ms}")
        self.service = service
        self.root = service.settings.corpus_dir.resolve()
        # The index (and the logs kept beside it) may sit inside the corpus folder; its writes are no change.
        self.ignored = (service.settings.index_dir.resolve(),)
        self.step_ms = step_ms
        self.debounce_ms = debounce_ms
        # Ingests run so far, and what the last one did (for tests and a status line).
        self.ingests = 0
        self.last_report: IngestReport | None = None
        self._stop = threading.Event()
        self._watching = threading.Event()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        """Whether the watching thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> CorpusWatcher:
        """Start watching (the corpus folder is made if missing); return once changes are being seen."""
        if self._thread is not None:
            raise RuntimeError("this watcher was started already")
        self.root.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="corpus-watcher", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_SECONDS
        while not self._watching.wait(0.05):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._stop.set()
                raise RuntimeError(f"could not watch {self.root}: {self._failure or 'no answer from the watcher'}")
        return self

    def stop(self, *, timeout: float = 10.0) -> bool:
        """Stop watching; an ingest under way is waited for up to `timeout` seconds. Return whether the thread ended."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            # A daemon thread: the process may still exit, and the next start's catch-up finishes the ingest.
            log.warning("watch: stopped waiting for an ingest of %s after %.0f s", self.root, timeout)
            return False
        return True

    def __enter__(self) -> CorpusWatcher:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            batches = watchfiles.watch(
                self.root,
                watch_filter=lambda change, path: counts(Path(path), root=self.root, ignored=self.ignored),
                debounce=self.debounce_ms,
                step=self.step_ms,
                stop_event=self._stop,
                rust_timeout=WAKE_MS,
                yield_on_timeout=True,
                raise_interrupt=False,
            )
            for changes in batches:
                self._watching.set()
                if changes:
                    self._ingest(changes)
        except Exception as error:  # reported; start() says so when it happens at once
            self._failure = error
            log.exception("watch: stopped watching %s", self.root)

    def _ingest(self, changes: set[tuple[watchfiles.Change, str]]) -> None:
        """Bring the store in line with the folder after `changes`; a failure is logged and watching goes on."""
        what = describe(changes, self.root)
        try:
            report = self.service.reconcile(origin=BY_WATCHER)
        except Exception:  # a bad file is reported by the ingest itself; nothing else may end watching
            log.exception("watch: the ingest after %s failed; watching on", what)
            return
        self.ingests += 1
        self.last_report = report
        summary = ", ".join(f"{count} {outcome}" for outcome, count in report.summary().items())
        log.info("watch: %s in %s; ingest: %s", what, self.root, summary)
