"""How far an ingest is, whatever started it: one small record in the index folder, written as the ingest goes.

Every ingest of files (`sourcebook ingest`, the server's catch-up at its start, the folder watcher,
an upload from the page or the HTTP API) writes its progress there whole, through the one
atomic-write helper; the page's Sources view reads it, so an ingest run in another process shows
as well as one run by the server. Ingests of a folder hold the library's write lock, one at a
time; an upload embeds outside it, so its record may be written beside another ingest's: each
writer has a temporary file of its own, and the latest write is the one read.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Protocol

from retrieval.files import write_atomically

PROGRESS_FILE = "ingest-progress.json"
# Who started an ingest, in the words the page shows ("started by ...").
BY_COMMAND = "sourcebook ingest"
AT_START = "the server's catch-up at its start"
BY_WATCHER = "the folder watcher"
BY_UPLOAD = "an upload"
# Progress is written at most this often (each write is synced to disk); the first report and the
# end are always written.
WRITE_EVERY = 0.25
# A running ingest's record not updated for this long is stale even if a process of its id lives
# (the id may have been reused). One file read takes a few minutes at most (OCR reads at most 200
# pages of one, a second or two each), and the model reports every batch.
STALE_SECONDS = 15 * 60
# Numbers each progress file of this process a temporary name, as two may write at once (uploads).
_writers = itertools.count()

log = logging.getLogger(__name__)


class Progress(Protocol):
    """What an ingest tells as it goes: files settled of the total, and the file being read (None while embedding)."""

    def __call__(self, done: int, total: int, current: str | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class IngestProgress:
    """One ingest's progress as its file holds it: who runs it, files done of the total, the file being read, the end."""

    origin: str
    pid: int
    host: str
    started: float
    updated: float
    done: int = 0
    total: int = 0
    current: str | None = None
    finished: float | None = None
    # The report's counts (added, updated, removed, unchanged, failed) once it finished.
    outcome: dict[str, int] | None = None
    # Why it stopped, when it failed.
    error: str | None = None

    @property
    def running(self) -> bool:
        """Whether the ingest has not finished (or failed) yet."""
        return self.finished is None

    def seconds_left(self) -> float | None:
        """An estimate of the time left at the pace so far, or None before the first file is done."""
        if not self.running or self.done <= 0 or self.total <= self.done:
            return None
        return (self.updated - self.started) / self.done * (self.total - self.done)

    def to_json(self) -> str:
        """The record as the progress file holds it."""
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> IngestProgress:
        """Read a record back; raise ValueError, naming what is wrong, when the text is not one."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"not JSON: {error}") from error
        if not isinstance(data, dict):
            raise ValueError(f"expected an object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{key: value for key, value in data.items() if key in known})
        except TypeError as error:
            raise ValueError(str(error)) from error


def process_alive(pid: int) -> bool:
    """Whether a process of this id runs on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # Another user's process: it exists.
        return True
    return True


def read_progress(
    directory: Path, *, now: float | None = None, alive: Callable[[int], bool] = process_alive
) -> IngestProgress | None:
    """The latest ingest's progress in index folder `directory`: running or finished, or None.

    A running ingest whose process is gone (it crashed or was killed) is stale and ignored, and so
    is one not updated for STALE_SECONDS; an unreadable file is ignored too.
    """
    path = Path(directory) / PROGRESS_FILE
    try:
        record = IngestProgress.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        log.warning("ignoring the ingest progress in %s: %s", path, error)
        return None
    if not record.running:
        return record
    now = time.time() if now is None else now
    if now - record.updated > STALE_SECONDS:
        return None
    # A process id means something only on the machine that wrote it (an index on a shared disk).
    if record.host == socket.gethostname() and not alive(record.pid):
        return None
    return record


class ProgressFile:
    """Writes one ingest's progress to the index folder as it goes, and passes each report on to `forward`.

    Use as a context manager around the ingest, and call `finish(report summary)` at its end; an
    ingest that raises is written as failed. Reports come faster than files are worth writing
    (each write is synced), so a thread writes the latest one every `every` seconds while they
    change: a reader sees the file being read within that time, however long it takes. A write
    that fails (a full disk) is logged, never raised: progress is not worth an ingest.

    With `keep_if_idle`, a run that ends having changed nothing (every file unchanged) puts back
    the record it found: the watcher's pass over a file an upload has just indexed, or a start-up
    catch-up with nothing to catch up, does not hide how the last real ingest went.
    """

    def __init__(
        self,
        directory: Path,
        origin: str,
        *,
        forward: Progress | None = None,
        clock: Callable[[], float] = time.time,
        every: float = WRITE_EVERY,
        keep_if_idle: bool = False,
    ) -> None:
        self.path = Path(directory) / PROGRESS_FILE
        self._found: str | None = None
        if keep_if_idle:
            try:
                self._found = self.path.read_text(encoding="utf-8")
            except OSError:
                pass  # none yet (or unreadable): an idle run's own record is then the one to show
        self.forward = forward
        self.clock = clock
        self.every = every
        now = clock()
        self.record = IngestProgress(origin=origin, pid=os.getpid(), host=socket.gethostname(), started=now, updated=now)
        self._owner = f"{self.record.pid}.{next(_writers)}"
        self._lock = threading.Lock()
        self._changed = False
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._write_failed = False

    def __enter__(self) -> ProgressFile:
        self._write()
        self._writer = threading.Thread(target=self._write_while_running, name="ingest-progress", daemon=True)
        self._writer.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: object) -> None:
        self._stop.set()
        if self._writer is not None:
            self._writer.join()
        if self.record.running:
            reason = f"{kind.__name__}: {error}" if kind is not None else "it ended without a report"
            self._end(error=reason)

    def __call__(self, done: int, total: int, current: str | None = None) -> None:
        """Take one report: files settled of the total, the file being read (None while embedding)."""
        with self._lock:
            self.record = replace(self.record, done=done, total=total, current=current, updated=self.clock())
            self._changed = True
        if self.forward is not None:
            self.forward(done, total, current)

    def finish(self, outcome: dict[str, int]) -> None:
        """Write the end: the ingest's counts (added, updated, removed, unchanged, failed)."""
        idle = not any(count for name, count in outcome.items() if name != "unchanged")
        if idle and self._found is not None:
            with self._lock:
                self.record = replace(self.record, current=None, finished=self.clock(), outcome=outcome)
                self._changed = False
                try:
                    write_atomically(self.path, self._found, owner=self._owner)
                except OSError as error:
                    log.warning("cannot put back the ingest progress in %s: %s", self.path, error)
            return
        self._end(outcome=outcome)

    def stop(self, reason: str) -> None:
        """Write the end of an ingest cut short without an exception of its own (an upload its caller gave up on)."""
        self._end(error=reason)

    def _end(self, *, outcome: dict[str, int] | None = None, error: str | None = None) -> None:
        with self._lock:
            now = self.clock()
            self.record = replace(self.record, current=None, updated=now, finished=now, outcome=outcome, error=error)
            self._changed = True
        self._write()

    def _write_while_running(self) -> None:
        while not self._stop.wait(self.every):
            self._write()

    def _write(self) -> None:
        # Under the lock: the thread and the ingest's own end never write the file at once.
        with self._lock:
            if self._writer is not None and not self._changed:
                return
            self._changed = False
            try:
                write_atomically(self.path, self.record.to_json(), owner=self._owner)
            except OSError as error:
                if not self._write_failed:
                    log.warning("cannot write the ingest progress to %s: %s", self.path, error)
                self._write_failed = True
