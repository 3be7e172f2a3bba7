"""Files that arrive over the network: safe names, and what became of each."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_NAME_CHARS = 120
_UNSAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class UploadResult:
    """The outcome for one uploaded file."""

    filename: str
    status: str  # "added", "updated", "unchanged" or "failed"
    document_id: str | None = None
    reason: str | None = None


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
