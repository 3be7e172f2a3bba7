"""The records that flow from ingest into the store: documents and their chunks."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence
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


def page_at(pages: Sequence[Page], offset: int) -> int | None:
    """Return the number of the page holding character `offset`, given pages in document order.

    An offset past the last page's end counts as on the last page; one before the first page, or
    between two pages that do not touch, is on none.
    """
    index = bisect.bisect_right(pages, offset, key=_page_start) - 1
    if index < 0:
        return None
    page = pages[index]
    return page.number if offset < page.end or index == len(pages) - 1 else None


def pages_over(pages: Sequence[Page], start: int, end: int) -> tuple[Page, ...]:
    """Return the pages, in document order, that the span [start, end) runs over."""
    over = []
    for index in range(max(0, bisect.bisect_right(pages, start, key=_page_start) - 1), len(pages)):
        page = pages[index]
        if page.start >= max(end, start + 1):
            break
        if page.end > start:
            over.append(page)
    return tuple(over)


def _page_start(page: Page) -> int:
    return page.start


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
    # The size in bytes of the file it was read from; None when it came from no file (a benchmark's record).
    size: int | None = None
    # How many pages the file has, text or not (PDFs): `pages` holds only the ones with text.
    page_count: int | None = None
    # Whether Tesseract read the PDF's pages without text (it was installed), and the pages it found text on.
    ocr_ran: bool = False
    ocr_pages: tuple[int, ...] = ()
    # Pages without text OCR left unread: past the most pages it reads in one document.
    ocr_skipped: tuple[int, ...] = ()

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
        return page_at(self.pages, offset)

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
    # The pages the passage runs over (paginated sources), so a quote inside it is placed on its own page.
    pages: tuple[Page, ...] = ()
    id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.id:
            key = f"chunk\0{self.document_id}\0{self.start}\0{self.end}\0{self.text}"
            object.__setattr__(self, "id", content_hash(key)[:16])
