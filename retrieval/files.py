"""Files written whole or not at all: written beside their place, synced, then renamed into it.

The one helper for it: the vector and keyword indexes, the model's export recipe, uploads, kept texts.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Hidden, so an ingest of the folder never takes a file still being written for a document.
PART_PREFIX, PART_SUFFIX = ".", ".part"


def part_of(path: Path, *, owner: str = "") -> Path:
    """Return the temporary name a file is written under before it takes `path`'s place.

    `owner` (a process id, say) gives writers that may race for one file a name each.
    """
    tag = f".{owner}" if owner else ""
    return path.with_name(f"{PART_PREFIX}{path.name}{tag}{PART_SUFFIX}")


@contextmanager
def replacing(path: Path, *, owner: str = "") -> Iterator[Path]:
    """Yield a temporary path to write; once written it is synced and renamed to `path`.

    On any failure (a full disk, a crash of the writer) the temporary file is removed, so no
    half-written file is left at `path` or beside it holding the space.
    """
    path = Path(path)
    part = part_of(path, owner=owner)
    try:
        yield part
        with open(part, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def write_atomically(path: Path, data: bytes | str, *, owner: str = "") -> None:
    """Write `data` (text as UTF-8) to `path` whole or not at all."""
    with replacing(path, owner=owner) as part:
        part.write_bytes(_bytes(data))


def write_synced(path: Path, data: bytes | str) -> None:
    """Write `data` (text as UTF-8) to a new or temporary file and sync it to disk before returning."""
    with open(path, "wb") as handle:
        handle.write(_bytes(data))
        handle.flush()
        os.fsync(handle.fileno())


def _bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def disk_full(error: BaseException) -> bool:
    """Whether a failed write failed for want of space: ENOSPC or EDQUOT, or SQLite's "disk is full"."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(error, sqlite3.OperationalError) and "disk is full" in str(error)
