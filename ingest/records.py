"""The records that flow from ingest into the store: documents and their chunks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


def content_hash(text: str) -> str:
    """Return the hex SHA-256 of `text`, the identity of a piece of content."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def document_id_for(source: str) -> str:
    """Return the stable id of the document at `source` (its path inside the corpus)."""
    return content_hash(f"document\0{source}")[:16]


@dataclass(frozen=True, slots=True)
class Section:
    """A heading and the character span of the document text it governs."""

    heading: str
    start: int
    end: int
    level: int = 1


@dataclass(frozen=True, slots=True)
class Page:
    """A page of a paginated source (PDF) and its character span in the document text."""

    number: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Document:
    """A source file reduced to plain text plus the structure a citation needs."""

    source: str
    title: str
    text: str
    sections: tuple[Section, ...] = ()
    pages: tuple[Page, ...] = ()
    id: str = field(default="")
    content_hash: str = field(default="")

    def __post_init__(self) -> None:
        # Ids derive from content, so re-ingesting the same text is a no-op.
        if not self.id:
            object.__setattr__(self, "id", document_id_for(self.source))
        if not self.content_hash:
            object.__setattr__(self, "content_hash", content_hash(self.text))

    def heading_at(self, offset: int) -> str | None:
        """Return the innermost section heading covering character `offset`, if any."""
        best: Section | None = None
        for section in self.sections:
            if section.start <= offset < section.end and (best is None or section.start >= best.start):
                best = section
        return best.heading if best else None

    def page_at(self, offset: int) -> int | None:
        """Return the page number holding character `offset`, for paginated sources."""
        for page in self.pages:
            if page.start <= offset < page.end:
                return page.number
        return self.pages[-1].number if self.pages and offset >= self.pages[-1].start else None

    def line_at(self, offset: int) -> int:
        """Return the 1-based line number of character `offset`."""
        return self.text.count("\n", 0, offset) + 1


@dataclass(frozen=True, slots=True)
class Chunk:
    """A contiguous passage of a document: `document.text[start:end] == text`."""

    document_id: str
    text: str
    start: int
    end: int
    heading: str | None
    page: int | None
    line_start: int
    line_end: int
    id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.id:
            key = f"chunk\0{self.document_id}\0{self.start}\0{self.end}\0{self.text}"
            object.__setattr__(self, "id", content_hash(key)[:16])
