"""The vector index: the only module that imports faiss."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import faiss
import numpy as np

log = logging.getLogger(__name__)


class VectorIndex:
    """Exact inner-product search over unit vectors, keyed by chunk rowid."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        # Inner product equals cosine similarity on normalised vectors.
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        # FAISS releases the GIL; a search must not run while an upload changes the index.
        self._lock = threading.RLock()

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under the given int64 ids."""
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"vectors must have shape (n, {self.dim}), got {vectors.shape}")
        with self._lock:
            self._index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> None:
        """Remove the vectors with these ids; unknown ids are ignored."""
        if len(ids):
            with self._lock:
                self._index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, ids) of the k nearest vectors for each query row; missing slots are id -1."""
        vectors = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        with self._lock:
            if self.count == 0:
                empty = np.full((len(vectors), 1), -1, dtype=np.int64)
                return np.zeros((len(vectors), 1), dtype=np.float32), empty
            return self._index.search(vectors, max(1, min(k, self.count)))

    @property
    def count(self) -> int:
        """Number of vectors held."""
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        """Return the held ids, sorted."""
        return np.sort(faiss.vector_to_array(self._index.id_map).astype(np.int64))

    def save(self, path: Path, *, generation: int) -> None:
        """Write the index atomically (write, then rename), tagged with the store generation."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with self._lock:
            faiss.write_index(self._index, str(tmp))
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _write_json_atomically(_sidecar(path), {"generation": generation, "count": self.count, "dim": self.dim})

    @classmethod
    def load(cls, path: Path, *, dim: int, generation: int) -> VectorIndex | None:
        """Load a saved index; None when it is missing, unreadable or stale for this store generation."""
        path = Path(path)
        try:
            info = json.loads(_sidecar(path).read_text())
            if info.get("generation") != generation or info.get("dim") != dim:
                log.info("vector index %s is stale (built for generation %s, store is at %s)",
                         path, info.get("generation"), generation)
                return None
            raw = faiss.read_index(str(path))
        except FileNotFoundError:
            return None
        except (OSError, RuntimeError, ValueError) as error:
            log.warning("vector index %s is unreadable (%s); it will be rebuilt", path, error)
            return None
        if raw.d != dim or raw.ntotal != info.get("count"):
            log.warning("vector index %s does not match its record; it will be rebuilt", path)
            return None
        index = cls(dim)
        index._index = raw
        return index


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _write_json_atomically(path: Path, value: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)
