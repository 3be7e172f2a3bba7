"""Files that arrive over the network: what the service is given of each, safe names, and what became of each."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import UnsupportedFormat
from ingest.loaders import SUPPORTED_SUFFIXES

MAX_NAME_CHARS = 120
_UNSAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Upload:
    """One uploaded file as the service takes it: its name, its size, and how to read it.

    Front ends know the sizes before anything is read (the HTTP API's form, the page's files on
    disk), so the service checks every limit first and reads only the files it will keep.
    """

    name: str
    size: int  # bytes, as the front end was told; the bytes read are checked again
    # Returns the file's bytes, at most `limit` of them.
    read: Callable[[int], bytes]

    @classmethod
    def of_bytes(cls, name: str, data: bytes) -> Upload:
        """An upload already held in memory."""
        return cls(name, len(data), lambda limit: data[:limit])

    @classmethod
    def of_path(cls, path: Path, *, name: str | None = None) -> Upload:
        """An upload kept on disk by the front end (the page's), read only when wanted."""

        def read(limit: int) -> bytes:
            with open(path, "rb") as handle:
                return handle.read(limit)

        return cls(name or path.name, path.stat().st_size, read)


@dataclass(frozen=True, slots=True)
class UploadResult:
    """The outcome for one uploaded file."""

    filename: str
    status: str  # "added", "updated", "unchanged" or "failed"
    document_id: str | None = None
    reason: str | None = None


class NoSupportedFile(UnsupportedFormat):
    """Not one file of an upload is of a type sourcebook reads: the upload is refused as a whole."""

    def __init__(self, names: Sequence[str]) -> None:
        listed = ", ".join(names)
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        # Not IngestError's "path: reason": the message names every file of the upload.
        Exception.__init__(self, f"unsupported file type: {listed} (supported: {supported})")
        self.path = listed
        self.reason = f"unsupported file type (supported: {supported})"


def of_supported_type(name: str) -> bool:
    """Whether an uploaded file's name ends in a suffix sourcebook reads (in any case)."""
    suffix = "." + name.rpartition(".")[2].lower() if "." in name else ""
    return suffix in SUPPORTED_SUFFIXES


def safe_filename(name: str) -> str:
    """Reduce an uploaded file's name to a plain name inside the corpus folder, or raise naming it."""
    original = name
    name = unicodedata.normalize("NFC", name or "").replace("\x00", "")
    # Only the last path component counts: no directories, no traversal, either slash style.
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name).strip(" .")
    if len(name) > MAX_NAME_CHARS:
        stem, dot, suffix = name.rpartition(".")
        name = (stem[: MAX_NAME_CHARS - len(suffix) - 1] + dot + suffix) if dot else name[:MAX_NAME_CHARS]
    if not name or name.startswith("."):
        raise ValueError(f"not a usable file name: {original!r}")
    return name
