"""Deleted documents: the files kept in the corpus folder's hidden `.deleted/`, and what they were."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from app.pipeline import source_for
from ingest.records import content_hash, document_id_for
from retrieval.files import PART_PREFIX, PART_SUFFIX

# Where deleted and replaced corpus files go; hidden, so ingest skips it.
DELETED_FOLDER = ".deleted"
# A kept file's name: the file's stem, the UTC time it was set aside, a short hash of its bytes,
# a counter when that was taken, then the file's suffix ("notes.20250101T120000Z-1a2b3c4d-1.txt").
_KEPT_NAME = re.compile(r"^(?P<stem>.+)\.(?P<stamp>\d{8}T\d{6}Z)-(?P<digest>[0-9a-f]{8})(?:-\d+)?(?P<suffix>\.[^.]+)?$")


@dataclass(frozen=True, slots=True)
class KeptFile:
    """A version of a corpus file kept in `.deleted/`: deleted, replaced by an upload, or gone from the folder."""

    id: str  # this kept file's own id
    document_id: str  # the id the document had (and has again once restored)
    name: str  # where it was in the corpus folder, relative to it
    kept_as: str  # where it is now, relative to the corpus folder
    set_aside: float  # when (Unix time, UTC)
    size: int
    # Whether a file of its name is in the corpus folder now (a restore would be refused).
    name_taken: bool
    path: Path

    def to_dict(self) -> dict:
        """Return the JSON shape of `sourcebook deleted --json` and `GET /api/deleted`."""
        return {
            "id": self.id, "document_id": self.document_id, "name": self.name, "kept_as": self.kept_as,
            "set_aside": self.set_aside, "size": self.size, "name_taken": self.name_taken,
        }


def original_name(kept_name: str) -> tuple[str, float] | None:
    """Return (the file's name before it was set aside, when) for a kept file's name, or None if it is not one."""
    match = _KEPT_NAME.match(kept_name)
    if match is None:
        return None
    when = datetime.strptime(match["stamp"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
    return match["stem"] + (match["suffix"] or ""), when


def kept_files(corpus: Path) -> list[KeptFile]:
    """Return every file kept in `corpus`'s `.deleted/`, most recently set aside first."""
    corpus = Path(corpus).resolve()
    folder = corpus / DELETED_FOLDER
    # A link, of the folder or in it, is not followed: nothing outside the corpus folder is listed or restored.
    if folder.is_symlink() or not folder.is_dir():
        return []
    found = []
    for path in folder.rglob("*"):
        if path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(folder):
            continue
        if path.name.startswith(PART_PREFIX) and path.name.endswith(PART_SUFFIX):
            continue
        parsed = original_name(path.name)
        if parsed is None:
            continue
        name, when = parsed
        relative = path.relative_to(folder).parent / name
        original = corpus / relative
        kept_as = path.relative_to(corpus).as_posix()
        found.append(KeptFile(
            id=content_hash(f"kept\0{kept_as}")[:16],
            document_id=document_id_for(source_for(original)),
            name=relative.as_posix(),
            kept_as=kept_as,
            set_aside=when,
            size=path.stat().st_size,
            name_taken=original.exists(),
            path=path,
        ))
    return sorted(found, key=lambda kept: (-kept.set_aside, kept.kept_as))
