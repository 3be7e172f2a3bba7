"""The records retrieval passes around: what the keyword index holds, hits, citations and answers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ingest.records import Page, page_at


@dataclass(frozen=True, slots=True)
class KeywordPassage:
    """What the keyword index holds of a passage."""

    rowid: int
    text: str
    source: str


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved passage and where it stands in its source."""

    chunk_id: str
    document_id: str
    source: str
    title: str
    heading: str | None
    page: int | None
    line_start: int
    line_end: int
    start: int
    end: int
    text: str
    score: float
    # The pages the passage runs over (paginated sources); the JSON gives `page`, where it starts.
    pages: tuple[Page, ...] = ()

    def to_dict(self) -> dict:
        """Return the JSON shape shared by the CLI and the HTTP API."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "pages"}

    def page_at(self, offset: int) -> int | None:
        """Return the page holding document offset `offset` of this passage (paginated sources)."""
        return page_at(self.pages, offset) if self.pages else self.page

    def line_at(self, offset: int) -> int:
        """Return the 1-based document line holding document offset `offset` of this passage."""
        return self.line_start + self.text.count("\n", 0, max(0, offset - self.start))


@dataclass(frozen=True, slots=True)
class Citation:
    """A verbatim quote and the exact place in a document it was taken from."""

    n: int
    chunk_id: str
    document_id: str
    source: str
    title: str
    heading: str | None
    page: int | None
    line_start: int
    line_end: int
    start: int
    end: int
    quote: str
    score: float

    def to_dict(self) -> dict:
        """Return the JSON shape shared by the CLI and the HTTP API."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Answer:
    """Quoted sentences with [n] markers, or an abstention with passages to see instead."""

    question: str
    answered: bool
    answer: str
    citations: tuple[Citation, ...] = ()
    passages: tuple[Hit, ...] = field(default=())
    # The reader's probability for the best sentence, compared with the abstention threshold
    # (not in the JSON: each citation's score is its sentence's probability).
    evidence: float = 0.0

    def to_dict(self) -> dict:
        """Return the JSON shape shared by the CLI and the HTTP API."""
        return {
            "question": self.question,
            "answered": self.answered,
            "answer": self.answer,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [p.to_dict() for p in self.passages],
        }


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A document as the store lists it."""

    id: str
    source: str
    title: str
    size: int
    chunks: int
    updated: float
    content_hash: str
