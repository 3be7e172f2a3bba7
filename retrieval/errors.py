"""The project's own exceptions; the HTTP layer maps them to status codes in one place."""

from __future__ import annotations


class DocumentNotFound(LookupError):
    """No document has the requested id."""

    def __init__(self, document_id: str) -> None:
        super().__init__(f"no document with id {document_id!r}")
        self.document_id = document_id


class IndexMismatch(RuntimeError):
    """The index on disk was built with other settings than the ones in force."""


class UploadTooLarge(ValueError):
    """An upload is over a size limit; it is refused as a whole, before anything is written."""

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class KeptFileNotFound(DocumentNotFound):
    """No deleted document (no file kept in the corpus folder's `.deleted/`) has the requested id."""

    def __init__(self, kept_id: str) -> None:
        LookupError.__init__(self, f"no deleted document with id {kept_id!r} (`sourcebook deleted` lists them)")
        self.document_id = kept_id


class NameTaken(Exception):
    """A file is to go where one is already: a restore never replaces a file in the corpus folder."""


class AnswerNotKnown(LookupError):
    """A rating names an answer id this server did not give (recently): send the answer with it."""
