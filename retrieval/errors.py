"""The project's own exceptions; the HTTP layer maps them to status codes in one place."""

from __future__ import annotations


class DocumentNotFound(LookupError):
    """No document has the requested id."""

    def __init__(self, document_id: str) -> None:
        super().__init__(f"no document with id {document_id!r}")
        self.document_id = document_id


class IndexMismatch(RuntimeError):
    """The index on disk was built with other settings than the ones in force."""
