"""The incremental ingest as a Ray Data pipeline: files are read and cut up in Ray tasks,
embedded in a pool of actors (one model load each), and stored by the driver.

    files (driver) -> map: read, hash, parse, chunk, window (tasks)
                   -> map_batches: embed the windows (actor pool)
                   -> library.put, one transaction per document (driver)

The rules are those of `app.pipeline.ingest_path`, whose pure parts it shares: a file whose
bytes hash to the stored hash is reported unchanged and never parsed or sent to the model; a bad
file is reported and skipped; documents whose files vanished are removed. What differs: vectors
already stored for a window text are not looked up (the store is on the driver's disk, not
reachable from the workers), so a changed file has all its windows embedded, not only the new
ones; within one embedding call, a window text that occurs several times is embedded once.

Workers read the files by absolute path, so on a cluster of several machines the folder must be
at the same path on every node (a shared or synchronised file system), and every node needs
sourcebook installed with the `ray` extra (docs/SCALING.md).
"""

from __future__ import annotations

import logging
import math
import pickle
import socket
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

try:
    import ray
    import ray.data
    from ray.data import ActorPoolStrategy
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError("distributed ingest needs Ray: pip install 'sourcebook[ray]'") from error

from app.pipeline import (
    Chunking,
    IngestReport,
    Prepared,
    Progress,
    embed_by_length,
    files_to_consider,
    prepare,
    read_changed,
    remove_vanished,
    store_prepared,
)
from ingest.errors import IngestError
from retrieval.embedder import Embedder, load_embedder, token_counter
from retrieval.library import Library
from retrieval.settings import Settings

log = logging.getLogger(__name__)

# A local runtime stays small: the machine is shared, and embedding is the cost, not the object store.
LOCAL_CPUS = 2
LOCAL_OBJECT_STORE_BYTES = 500 * 2**20
# Files per input block: each block is one preparing task, so small blocks keep the actors fed early.
FILES_PER_BLOCK = 4
# Documents per embedding call; an actor sends their windows to the model in batches of like
# token count (`embed_by_length`), as a local ingest does with its larger pool.
EMBED_BATCH_DOCUMENTS = 16
# CPUs each preparing task asks for; an embedding actor asks for `actor_cpus` (default one).
PREPARE_CPUS = 0.5
# How long to wait for a cluster's head to answer before giving up.
CONNECT_TIMEOUT_S = 10
# A killed or crashed embedding actor is restarted, and its unfinished batch retried, this often.
ACTOR_RESTARTS = 3

# Row statuses coming out of the preparing stage.
PREPARED, UNCHANGED, FAILED = "prepared", "unchanged", "failed"


@dataclass(frozen=True)
class ModelRecipe:
    """How a Ray worker builds what it needs of the model; picklable, since it travels to every worker.

    `embedder` is called once per embedding actor; `token_counter` once per preparing worker
    process, and may be much lighter than the model (a tokenizer alone), but must count exactly
    as the embedder's `count_tokens` does, or the chunks would differ from a local ingest.
    """

    embedder: Callable[[], Embedder]
    token_counter: Callable[[], Callable[[str], int]]

    @classmethod
    def for_settings(cls, settings: Settings) -> ModelRecipe:
        """The model the settings name: loaded by `load_embedder` in each actor, its tokens counted by `token_counter`."""
        # Workers may run in another directory: relative paths must not move the ONNX cache.
        settings = settings.model_copy(
            update={
                "index_dir": Path(settings.index_dir).resolve(),
                "model_path": Path(settings.model_path).resolve() if settings.model_path else None,
            }
        )
        return cls(embedder=partial(load_embedder, settings), token_counter=partial(token_counter, settings))


def ingest_path_ray(
    root: Path,
    *,
    library: Library,
    settings: Settings,
    chunking: Chunking,
    max_file_bytes: int,
    address: str | None = None,
    num_actors: int = 1,
    progress: Progress | None = None,
    model: ModelRecipe | None = None,
    batch_documents: int = EMBED_BATCH_DOCUMENTS,
    actor_cpus: float = 1.0,
    num_cpus: int = LOCAL_CPUS,
) -> IngestReport:
    """Bring the library in line with the files under `root`, preparing and embedding on Ray.

    Without `address` a local Ray runtime with `num_cpus` CPUs is started (and stopped after);
    with one, the driver joins that cluster. A process already connected to Ray uses that
    connection. `num_actors` embedding actors, of `actor_cpus` CPUs each, load the model once
    each; `model` says how (by default, as the settings name it).
    """
    if isinstance(num_actors, bool) or not isinstance(num_actors, int) or num_actors < 1:
        raise ValueError(f"num_actors must be a whole number of at least 1, got {num_actors!r}")
    if batch_documents < 1:
        raise ValueError(f"batch_documents must be at least 1, got {batch_documents!r}")
    if not actor_cpus > 0:
        raise ValueError(f"actor_cpus must be more than 0, got {actor_cpus!r}")
    root = Path(root)
    model = model or ModelRecipe.for_settings(settings)
    report = IngestReport()
    stored = library.store.file_hashes()
    sources = files_to_consider(root)
    if sources:
        with ray_runtime(address, num_cpus=num_cpus):
            _check_room(num_actors, actor_cpus)
            rows = _pipeline(
                sources, stored, model=model, chunking=chunking, max_file_bytes=max_file_bytes,
                num_actors=num_actors, actor_cpus=actor_cpus, batch_documents=batch_documents,
            )
            for done, row in enumerate(rows, start=1):
                _record(row, report, library=library)
                if progress:
                    progress(done, len(sources))
    remove_vanished(root, stored, sources, library=library, report=report)
    library.save()
    return report


@contextmanager
def ray_runtime(address: str | None, *, num_cpus: int = LOCAL_CPUS) -> Iterator[None]:
    """Join the Ray cluster at `address`, or start a small local runtime; disconnect after.

    A process that is already connected keeps its connection (and it stays open after).
    """
    if ray.is_initialized():
        yield
        return
    if address is None:
        # "local": a new runtime of our own, even when another one runs on this machine.
        ray.init(
            address="local",
            num_cpus=num_cpus,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
    else:
        _check_reachable(address)
        ray.init(address=address, logging_level=logging.WARNING)
    try:
        yield
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail at once when nothing listens at a HOST:PORT address (Ray itself retries for minutes)."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return  # "auto", "ray://...": Ray resolves these itself
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise ConnectionError(
            f"no Ray cluster answers at {address} ({error.strerror or error}); "
            "start one with `ray start --head` and pass the address it prints"
        ) from error


def _check_room(num_actors: int, actor_cpus: float) -> None:
    """Refuse a pool that would leave no CPU for preparing files: Ray would wait forever, not fail."""
    total = ray.cluster_resources().get("CPU", 0.0)
    needed = num_actors * actor_cpus + PREPARE_CPUS
    if needed > total:
        raise ValueError(
            f"{num_actors} embedding actors of {actor_cpus:g} CPU each, plus {PREPARE_CPUS:g} for preparing "
            f"files, need {needed:g} CPUs; the Ray cluster has {total:g}. Use fewer actors."
        )


def _pipeline(
    sources: dict[str, Path],
    stored: dict[str, str],
    *,
    model: ModelRecipe,
    chunking: Chunking,
    max_file_bytes: int,
    num_actors: int,
    actor_cpus: float,
    batch_documents: int,
) -> Iterator[dict]:
    """Run the Ray Data pipeline and yield one row per file, in the order of `sources`."""
    items = [
        {"path": str(path.resolve()), "source": source, "stored_hash": stored.get(source, "")}
        for source, path in sources.items()
    ]
    files = ray.data.from_items(items, override_num_blocks=math.ceil(len(items) / FILES_PER_BLOCK))
    # Rows come back in file order, so the store is written in the same order as a local ingest.
    files.context.execution_options.preserve_order = True
    # The CLI draws its own progress bar.
    files.context.enable_progress_bars = False
    run = uuid.uuid4().hex
    prepared = files.map(
        _prepare_row,
        fn_kwargs={"run": run, "model": model, "chunking": chunking, "max_file_bytes": max_file_bytes},
        # Asking for other resources than the actors keeps this stage out of theirs (Ray would
        # otherwise fuse the two), so the next files are read while the actors embed.
        num_cpus=PREPARE_CPUS,
    )
    with warnings.catch_warnings():
        # Ray 2.60 has no named parameters for an actor's restarts yet and warns about passing
        # them this way; its default (restart forever) would retry a batch that kills every
        # actor it meets (out of memory, say) forever instead of ending the run.
        warnings.simplefilter("ignore", DeprecationWarning)
        embedded = prepared.map_batches(
            EmbedWindows,
            fn_constructor_kwargs={"model": model},
            batch_size=batch_documents,
            batch_format="numpy",
            compute=ActorPoolStrategy(size=num_actors),
            num_cpus=actor_cpus,
            max_restarts=ACTOR_RESTARTS,
            max_task_retries=ACTOR_RESTARTS,
        )
    yield from embedded.iter_rows()


# One token counter per worker process, for the current run only (workers are reused across tasks).
_counters: dict[str, Callable[[str], int]] = {}


def _token_counter(run: str, model: ModelRecipe) -> Callable[[str], int]:
    counter = _counters.get(run)
    if counter is None:
        _counters.clear()
        counter = _counters[run] = model.token_counter()
    return counter


def _prepare_row(row: dict, *, run: str, model: ModelRecipe, chunking: Chunking, max_file_bytes: int) -> dict:
    """Read one file; if its bytes changed, parse it and cut it into passages and windows (a Ray task)."""
    source, stored_hash = row["source"], row["stored_hash"] or None
    out = {"source": source, "status": PREPARED, "reason": "", "prepared": b"", "vectors": b"", "embedded": 0}
    try:
        outcome = read_changed(Path(row["path"]), source, stored_hash, max_file_bytes)
    except IngestError as error:
        return {**out, "status": FAILED, "reason": error.reason}
    if outcome is None:
        return {**out, "status": UNCHANGED}
    document, file_hash = outcome
    item = prepare(
        document, file_hash, existed=stored_hash is not None, chunking=chunking,
        count_tokens=_token_counter(run, model),
    )
    return {**out, "prepared": pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)}


class EmbedWindows:
    """Embeds the windows of a batch of prepared documents: a Ray actor that loads the model once.

    The model loads at the first batch that has something to embed, so a run over unchanged
    files loads no model at all.
    """

    def __init__(self, model: ModelRecipe) -> None:
        self._recipe = model
        self._embedder: Embedder | None = None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Add each prepared row's window vectors (float32 bytes) and how many texts it sent to the model."""
        items = {
            i: pickle.loads(blob)
            for i, (status, blob) in enumerate(zip(batch["status"], batch["prepared"]))
            if status == PREPARED
        }
        texts = {i: item.window_texts() for i, item in items.items()}
        # Equal window texts (repeated boilerplate) go to the model once per call, with their token counts.
        unique: dict[str, int] = {}
        for i, item in items.items():
            for text, tokens in zip(texts[i], item.window_sizes()):
                unique.setdefault(text, tokens)
        known: dict[str, np.ndarray] = {}
        if unique:
            if self._embedder is None:
                self._embedder = self._recipe.embedder()
            # Batched by token count as a local ingest batches its pool, so batches pad little.
            known = dict(zip(unique, embed_by_length(self._embedder, list(unique), list(unique.values()))))
        vectors = np.empty(len(batch["status"]), dtype=object)
        embedded = np.zeros(len(batch["status"]), dtype=np.int64)
        seen: set[str] = set()
        for i in range(len(vectors)):
            item_texts = texts.get(i, [])
            rows = [known[t] for t in item_texts]
            vectors[i] = np.ascontiguousarray(np.vstack(rows), dtype=np.float32).tobytes() if rows else b""
            fresh = set(item_texts) - seen
            embedded[i] = len(fresh)
            seen |= fresh
        return {**batch, "vectors": vectors, "embedded": embedded}


def _record(row: dict, report: IngestReport, *, library: Library) -> None:
    """Store one file's outcome (on the driver) and note it in the report."""
    source, status = row["source"], row["status"]
    if status == FAILED:
        log.warning("skipped %s: %s", source, row["reason"])
        report.failed.append((source, row["reason"]))
        return
    if status == UNCHANGED:
        report.unchanged.append(source)
        return
    item: Prepared = pickle.loads(row["prepared"])
    count = sum(len(spans) for spans in item.windows)
    vectors = np.frombuffer(row["vectors"], dtype=np.float32)
    if vectors.size != count * library.dim:
        raise ValueError(
            f"{source}: the workers' model returned {vectors.size} numbers for {count} windows; "
            f"the index expects {library.dim} per window (is every node running the same model?)"
        )
    store_prepared(item, vectors.reshape(count, library.dim), library=library, report=report)
    report.windows_embedded += int(row["embedded"])
    report.windows_reused += count - int(row["embedded"])
