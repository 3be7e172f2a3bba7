"""The vector index: the only module that imports faiss.

Exact inner-product search (IndexFlatIP) while the index holds up to `EXACT_UP_TO` vectors;
beyond that an inverted-file index (IVF with flat codes), chosen automatically as the count
crosses the threshold and retrained as it grows. The thresholds and probe depth come from
`make bench` (docs/BENCHMARKS.md, "Index choice"): exact search of one query costs time in
proportion to the vectors held, and past the threshold it no longer fits the latency budget.

A saved index is memory-mapped at load, so a server over a million passages starts at once;
the first change after loading copies it into memory. A server asks for the mapped file to be
read into memory in the background (`warm`), so its first queries do not fault lists in from disk.
"""

from __future__ import annotations

import json
import logging
import math
import mmap
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

from retrieval.files import replacing, write_atomically

log = logging.getLogger(__name__)

# Measured (docs/BENCHMARKS.md): up to here exact search of one query takes a few milliseconds
# on one core; past it the IVF index answers in a fraction of that with recall@10 >= 0.95.
EXACT_UP_TO = 50_000
# IVF shape: about this many inverted lists per square root of the count, and this many
# lists probed per query (the recall/latency trade-off measured by `make bench`).
IVF_LISTS_PER_ROOT = 1.0
IVF_PROBE = 64
# Retrain once the index has grown this many times past the size it was trained for,
# so that lists stay short; training takes this many sample vectors per list.
RETRAIN_GROWTH = 4
TRAIN_POINTS_PER_LIST = 64
# Calls with fewer queries (or vectors to add) than these run on the calling thread alone: FAISS
# would otherwise spread them over an OpenMP team whose barrier, on a busy two-core machine,
# costs more than the work itself (profiled in docs/BENCHMARKS.md).
SINGLE_THREAD_BELOW = 20
SINGLE_THREAD_ADD_BELOW = 1_000
# `warm` reads a loaded (mapped) index into memory when it takes at most this share of the free
# memory: cold, each query faults its probed lists in from disk (at 1M vectors the first 100
# queries took 96 ms p50 and 1.7 s p95, against 10 and 21 ms once read; BENCHMARKS.md).
WARM_UP_TO_FREE_MEMORY = 0.5


class VectorIndex:
    """Inner-product search over unit vectors keyed by chunk rowid: exact when small, IVF when large."""

    def __init__(self, dim: int, *, exact_up_to: int = EXACT_UP_TO, probe: int = IVF_PROBE) -> None:
        if exact_up_to < 1:
            raise ValueError(f"exact_up_to must be at least 1, got {exact_up_to}")
        self.dim = dim
        self.exact_up_to = exact_up_to
        self.probe = probe
        self._index = _exact_index(dim)
        # For an IVF index: the count it was trained for (it is retrained after growing past it).
        self._trained_for = 0
        # A loaded index is a read-only view of its file until the first change copies it.
        self._mapped = False
        # While mapped: its file, and the thread reading it into memory once asked to (see warm).
        self._path: Path | None = None
        self._resident: _Resident | None = None
        # FAISS releases the GIL; a search must not run while an upload changes the index.
        self._lock = threading.RLock()

    def warm(self) -> bool:
        """Start reading a loaded (memory-mapped) index into memory in the background; False if it is not read.

        A server calls this once it is up: cold, every query faults its probed lists in from disk.
        An index built in memory, or too large for the free memory, is left as it is.
        """
        with self._lock:
            if not self._mapped or self._path is None:
                return False
            if self._resident is None:
                if self._path.stat().st_size > WARM_UP_TO_FREE_MEMORY * _free_memory():
                    log.info("vector index %s is large for the free memory; queries will read it as they go", self._path)
                    return False
                self._resident = _Resident(self._index, self._path)
            return True

    def wait_until_warm(self, timeout: float | None = None) -> bool:
        """Wait until a loaded index has been read into memory; False if it is not being read or time ran out."""
        resident = self._resident
        return resident is not None and resident.wait(timeout)

    @property
    def memory_mapped(self) -> bool:
        """Whether the index is still a read-only view of its file (true after load, until a change)."""
        return self._mapped

    @property
    def kind(self) -> str:
        """'exact' (IndexFlatIP) or 'ivf' (inverted lists, approximate)."""
        return "ivf" if faiss.try_extract_index_ivf(self._index) is not None else "exact"

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under the given int64 ids."""
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"vectors must have shape (n, {self.dim}), got {vectors.shape}")
        if len(vectors) != len(ids):
            raise ValueError(f"got {len(ids)} ids but {len(vectors)} vectors")
        with self._lock:
            self._own()
            with _threads(1 if len(ids) < SINGLE_THREAD_ADD_BELOW else None):
                self._index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
            self._fit()

    def remove(self, ids: np.ndarray) -> None:
        """Remove the vectors with these ids; unknown ids are ignored."""
        if len(ids):
            with self._lock:
                self._own()
                self._index.remove_ids(np.asarray(ids, dtype=np.int64))
                self._fit()

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, ids) of the k nearest vectors for each query row; missing slots are id -1."""
        vectors = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        with self._lock:
            if self.count == 0:
                empty = np.full((len(vectors), 1), -1, dtype=np.int64)
                return np.zeros((len(vectors), 1), dtype=np.float32), empty
            with _threads(1 if len(vectors) < SINGLE_THREAD_BELOW else None):
                return self._index.search(vectors, max(1, min(k, self.count)))

    @property
    def count(self) -> int:
        """Number of vectors held."""
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        """Return the held ids, sorted."""
        with self._lock:
            ivf = faiss.try_extract_index_ivf(self._index)
            if ivf is None:
                return np.sort(faiss.vector_to_array(self._index.id_map).astype(np.int64))
            return np.sort(np.concatenate([ids for ids, _ in _lists(ivf)] or [np.zeros(0, np.int64)]))

    def save(self, path: Path, *, generation: int) -> None:
        """Write the index atomically (write, then rename), tagged with the store generation."""
        path = Path(path)
        # A mapped view of the old file stays valid: the rename leaves its inode alive.
        with replacing(path) as part, self._lock:
            faiss.write_index(self._index, str(part))
            info = {"generation": generation, "count": self.count, "dim": self.dim,
                    "kind": self.kind, "trained_for": self._trained_for}
        write_atomically(_sidecar(path), json.dumps(info))

    @classmethod
    def load(
        cls, path: Path, *, dim: int, generation: int, exact_up_to: int = EXACT_UP_TO, probe: int = IVF_PROBE
    ) -> VectorIndex | None:
        """Memory-map a saved index; None when it is missing, unreadable or stale for this store generation."""
        path = Path(path)
        try:
            info = json.loads(_sidecar(path).read_text())
            if info.get("generation") != generation or info.get("dim") != dim:
                log.info("vector index %s is stale (built for generation %s, store is at %s)",
                         path, info.get("generation"), generation)
                return None
            if path.stat().st_size == 0:
                raise ValueError("the file is empty")
            # Maps the vectors in place instead of reading them: start-up does not grow with the index.
            raw = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        except FileNotFoundError:
            return None
        except (OSError, RuntimeError, ValueError) as error:
            log.warning("vector index %s is unreadable (%s); it will be rebuilt", path, error)
            return None
        if raw.d != dim or raw.ntotal != info.get("count"):
            log.warning("vector index %s does not match its record; it will be rebuilt", path)
            return None
        index = cls(dim, exact_up_to=exact_up_to, probe=probe)
        index._index = raw
        index._mapped = True
        index._path = path
        index._trained_for = int(info.get("trained_for") or 0)
        ivf = faiss.try_extract_index_ivf(raw)
        if ivf is not None:
            ivf.nprobe = probe
        return index

    # --- keeping the kind of index right for its size ---------------------------------------
    def _own(self) -> None:
        """Copy a memory-mapped index into memory before it changes (a mapped one is read-only)."""
        if self._mapped:
            self._index = faiss.deserialize_index(faiss.serialize_index(self._index))
            ivf = faiss.try_extract_index_ivf(self._index)
            if ivf is not None:
                ivf.nprobe = self.probe
            self._mapped = False
            if self._resident is not None:
                self._resident.close()
                self._resident = None

    def _fit(self) -> None:
        """Switch between exact and IVF as the count crosses the thresholds."""
        count = self.count
        if self.kind == "exact":
            if count > self.exact_up_to:
                self._rebuild(ivf=True)
        # Back to exact only well below the threshold, so a count near it does not flip back and forth.
        elif count <= self.exact_up_to // 2:
            self._rebuild(ivf=False)
        elif count > RETRAIN_GROWTH * self._trained_for:
            self._rebuild(ivf=True)

    def _rebuild(self, *, ivf: bool) -> None:
        ids, vectors = self._contents()
        if not ivf:
            index = _exact_index(self.dim)
            index.add_with_ids(vectors, ids)
            self._index, self._trained_for = index, 0
            log.info("vector index back to exact search at %d vectors", len(ids))
            return
        lists = ivf_lists(len(ids))
        index = faiss.index_factory(self.dim, f"IVF{lists},Flat", faiss.METRIC_INNER_PRODUCT)
        sample = min(len(ids), TRAIN_POINTS_PER_LIST * lists)
        # A fixed seed keeps a rebuild of the same vectors the same index.
        chosen = np.sort(np.random.default_rng(0).choice(len(ids), size=sample, replace=False))
        index.train(vectors[chosen])
        index.add_with_ids(vectors, ids)
        faiss.extract_index_ivf(index).nprobe = self.probe
        self._index, self._trained_for = index, len(ids)
        log.info("vector index trained as IVF with %d lists for %d vectors", lists, len(ids))

    def _contents(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (ids, vectors) of everything held, copied out of the index."""
        ivf = faiss.try_extract_index_ivf(self._index)
        if ivf is None:
            ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            flat = faiss.downcast_index(self._index.index)
            vectors = faiss.rev_swig_ptr(flat.get_xb(), len(ids) * self.dim).reshape(len(ids), self.dim).copy()
            return ids, vectors
        parts = list(_lists(ivf))
        if not parts:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        ids = np.concatenate([ids for ids, _ in parts])
        vectors = np.concatenate([codes for _, codes in parts]).view(np.float32).reshape(len(ids), self.dim)
        return ids, vectors


def ivf_lists(count: int) -> int:
    """Return the number of inverted lists for an IVF index over `count` vectors."""
    return max(16, min(count // TRAIN_POINTS_PER_LIST, round(IVF_LISTS_PER_ROOT * math.sqrt(count))))


def _exact_index(dim: int):
    # Inner product equals cosine similarity on normalised vectors.
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _lists(ivf) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (ids, raw codes) of every non-empty inverted list, copied."""
    lists = ivf.invlists
    for number in range(ivf.nlist):
        size = lists.list_size(number)
        if size:
            ids = faiss.rev_swig_ptr(lists.get_ids(number), size).astype(np.int64)
            codes = faiss.rev_swig_ptr(lists.get_codes(number), size * lists.code_size).copy()
            yield ids, codes.reshape(size, lists.code_size)


@contextmanager
def _threads(count: int | None) -> Iterator[None]:
    """Run FAISS calls on this thread with `count` OpenMP threads (None: leave as is).

    OpenMP keeps this setting per calling thread, so other threads are not affected.
    """
    if count is None:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


class _Resident:
    """Reads a memory-mapped index into memory on a background thread, through FAISS's own mapping.

    FAISS maps the file but faults in only the pages a query touches, a probed list at a time;
    reading the file in order and then touching every page once is far faster, and pages that a
    mapping holds are the last the kernel reclaims (this machine drops unmapped file pages within
    a minute). No second mapping is made, so resident memory counts the index once.
    """

    READ_BYTES = 8 * 2**20

    def __init__(self, raw, path: Path) -> None:
        self._stop = threading.Event()
        self._done = threading.Event()
        # The thread holds `raw`, so the mapping stays valid while it reads, whatever the index does.
        self._thread = threading.Thread(target=self._read, args=(raw, path), name="sourcebook-index-warm", daemon=True)
        self._thread.start()

    def _read(self, raw, path: Path) -> None:
        try:
            # First read the file in order into the page cache: a plain read releases the GIL while
            # it waits on the disk, where a page fault would hold it and stall the request threads.
            buffer = bytearray(self.READ_BYTES)
            with open(path, "rb", buffering=0) as handle:
                while not self._stop.is_set() and handle.readinto(buffer):
                    pass
            # Then touch one byte per page of each array, mapping the now cached pages.
            for region in _mapped_regions(raw):
                if self._stop.is_set():
                    break
                region[:: mmap.PAGESIZE // region.itemsize].max()
        except (OSError, RuntimeError, ValueError) as error:
            log.warning("could not read the vector index into memory (%s); queries will read it as they go", error)
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the whole index has been read; False if time ran out or reading was stopped."""
        return self._done.wait(timeout) and not self._stop.is_set()

    def close(self) -> None:
        """Stop reading (the index is being copied into memory, so the mapping will go)."""
        self._stop.set()
        self._done.wait()


def _mapped_regions(raw) -> Iterator[np.ndarray]:
    """Views (not copies) of the arrays an index loaded with IO_FLAG_MMAP_IFC reads from its file."""
    ivf = faiss.try_extract_index_ivf(raw)
    if ivf is None:
        flat = faiss.downcast_index(raw.index)
        if flat.ntotal:
            yield faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d)
        return
    lists = ivf.invlists
    for number in range(ivf.nlist):
        size = lists.list_size(number)
        if size:
            codes = lists.get_codes(number)
            ids = lists.get_ids(number)
            try:
                yield faiss.rev_swig_ptr(codes, size * lists.code_size)
                yield faiss.rev_swig_ptr(ids, size)
            finally:
                lists.release_codes(number, codes)
                lists.release_ids(number, ids)


def _free_memory() -> int:
    """Bytes of physical memory not in use (page cache not counted as free)."""
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


