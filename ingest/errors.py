"""Why a file could not be ingested. Each names the file and the reason."""

from __future__ import annotations


class IngestError(Exception):
    """A file that cannot be ingested; it is reported and skipped, never fatal to a run."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class UnsupportedFormat(IngestError):
    """The file's type is not one sourcebook reads."""


class UnreadableDocument(IngestError):
    """The file claims a supported type but cannot be parsed (corrupt, encrypted, binary)."""


class EmptyDocument(IngestError):
    """The file parsed but holds no text to index."""


class DocumentTooLarge(IngestError):
    """The file holds more text or parts (paragraphs, rows, lines, pages) than one document may."""
