"""The records retrieval passes around: what the keyword index holds, hits, citations and answers."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from urllib.parse import urlencode

from ingest.health import DocumentHealth
from ingest.records import Page, content_hash, page_at

# What Markdown would read as markup: emphasis, code, links, raw HTML.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>])")


@dataclass(frozen=True, slots=True)
class Place:
    """Where a quote or passage sits in its document, as people read it: section, page, lines."""

    heading: str | None
    page: int | None
    line_start: int
    line_end: int

    def labels(self) -> list[str]:
        """Return "§ Section", "p. 2" (paginated sources) and "line 4" or "lines 4–6", as known."""
        labels = [f"§ {self.heading}"] if self.heading else []
        if self.page is not None:
            labels.append(f"p. {self.page}")
        same = self.line_start == self.line_end
        labels.append(f"line {self.line_start}" if same else f"lines {self.line_start}–{self.line_end}")
        return labels

    @classmethod
    def from_dict(cls, data: Mapping) -> Place:
        """Read a place from the flat JSON of the hit or citation that holds it."""
        return cls(**{f.name: data[f.name] for f in fields(cls)})


def _flat(record: Hit | Citation) -> dict:
    """Return a hit's or citation's JSON fields, its place's spelled out flat where the place stands.

    The JSON keeps the shape it had before places were a record of their own, so clients see no change.
    """
    flat: dict = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if f.name == "place":
            flat.update(asdict(value))
        elif f.name != "pages":
            flat[f.name] = value
    return flat


def _unflat(cls: type[Hit] | type[Citation], data: Mapping) -> dict:
    """Return the keyword arguments that rebuild a hit or citation from its flat JSON."""
    return {
        f.name: Place.from_dict(data) if f.name == "place" else data[f.name] for f in fields(cls) if f.name != "pages"
    }


def passage_url(document_id: str, start: int, end: int, text: str) -> str:
    """Return the chat page's link (relative to the server) that opens a document at a span holding `text`.

    The link carries a short hash of the text (`h`), so the page can tell when the document has
    changed there since the link was made.
    """
    return "/?" + urlencode({"doc": document_id, "start": int(start), "end": int(end), "h": span_hash(text)})


def span_hash(text: str) -> str:
    """Return the short hash of a span's text that a link to it carries: 8 hex digits of its SHA-256."""
    return content_hash(text)[:8]


def markdown_text(text: str) -> str:
    """Return `text` with the characters Markdown would read as markup escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def reference(place: Hit | Citation) -> str:
    """Return where a passage or quote is, for people: "Title, § Section, p. 2, lines 4–6, source"."""
    return ", ".join([_one_line(place.title), *place.place.labels(), place.source])


def reference_markdown(place: Hit | Citation, *, base: str = "") -> str:
    """Return where a passage or quote is as Markdown, the title linking to it in the chat page at `base`."""
    where = ", ".join(markdown_text(label) for label in [*place.place.labels(), place.source])
    return f"[{markdown_text(_one_line(place.title))}]({base}{place.url}), {where}"


def quoted(text: str, place: Hit | Citation) -> str:
    """Return `text` in quotes followed by where it is, as plain text to paste: "text" (Title, § Section, lines 4–5, source)."""
    return f'"{_one_line(text)}" ({reference(place)})'


def quoted_markdown(text: str, place: Hit | Citation, *, base: str = "") -> str:
    """Return `text` in quotes followed by where it is, as Markdown, the title linking to it in the chat page at `base`."""
    return f'"{markdown_text(_one_line(text))}" ({reference_markdown(place, base=base)})'


def _one_line(text: str) -> str:
    return " ".join(text.split())


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
    # Section, the page the passage starts on, lines.
    place: Place
    start: int
    end: int
    text: str
    score: float
    # The pages the passage runs over (paginated sources); the JSON gives `page`, where it starts.
    pages: tuple[Page, ...] = ()

    def to_dict(self) -> dict:
        """Return the JSON shape shared by the CLI and the HTTP API."""
        return _flat(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> Hit:
        """Rebuild a passage from its JSON shape (the pages it runs over are not in it)."""
        return cls(**_unflat(cls, data))

    @property
    def url(self) -> str:
        """The chat page's link to the passage in its document."""
        return passage_url(self.document_id, self.start, self.end, self.text)

    def page_at(self, offset: int) -> int | None:
        """Return the page holding document offset `offset` of this passage (paginated sources)."""
        return page_at(self.pages, offset) if self.pages else self.place.page

    def line_at(self, offset: int) -> int:
        """Return the 1-based document line holding document offset `offset` of this passage."""
        return self.place.line_start + self.text.count("\n", 0, max(0, offset - self.start))


@dataclass(frozen=True, slots=True)
class Citation:
    """A verbatim quote and the exact place in a document it was taken from."""

    n: int
    chunk_id: str
    document_id: str
    source: str
    title: str
    # Section, page and lines of the quote itself (not of its passage).
    place: Place
    start: int
    end: int
    quote: str
    score: float

    def to_dict(self) -> dict:
        """Return the JSON shape shared by the CLI and the HTTP API, with the link and the texts to paste."""
        return {**_flat(self), "url": self.url, "cite": self.cite(), "cite_markdown": self.cite_markdown()}

    @classmethod
    def from_dict(cls, data: Mapping) -> Citation:
        """Rebuild a citation from its JSON shape (the link and the texts to paste are derived again)."""
        return cls(**_unflat(cls, data))

    @property
    def url(self) -> str:
        """The chat page's link to the quote in its document."""
        return passage_url(self.document_id, self.start, self.end, self.quote)

    def cite(self) -> str:
        """Return the quote with its citation, as plain text to paste: "quote" (Title, § Section, p. 2, lines 4–5, source)."""
        return quoted(self.quote, self)

    def cite_markdown(self, *, base: str = "") -> str:
        """Return the quote with its citation as Markdown, the title linking to the quote in the chat page.

        `base` ("https://host") makes the link absolute, for a file read away from the page.
        """
        return quoted_markdown(self.quote, self, base=base)


@dataclass(frozen=True, slots=True)
class Correction:
    """A word of the question as typed, and the library word it was read as (retrieval/spelling.py)."""

    typed: str
    read_as: str

    def to_dict(self) -> dict:
        """Return the JSON shape the CLI and the HTTP API share."""
        return {"typed": self.typed, "read_as": self.read_as}


def reading(corrections: Sequence[Correction]) -> str:
    """How a question or query was read, for people: 'Read "employes" as "employees".' ('' when as typed)."""
    if not corrections:
        return ""
    return "Read " + ", ".join(f"“{c.typed}” as “{c.read_as}”" for c in corrections) + "."


@dataclass(frozen=True, slots=True)
class Found:
    """The passages a search found, best first, and how the query's misspelt words were read to find them."""

    query: str
    hits: tuple[Hit, ...]
    corrections: tuple[Correction, ...] = ()

    def to_dict(self) -> dict:
        """Return the JSON shape the CLI and the HTTP API share."""
        return {
            "query": self.query,
            "hits": [h.to_dict() for h in self.hits],
            "corrections": [c.to_dict() for c in self.corrections],
        }

    def reading(self) -> str:
        """How the query was read, for people ('' when as typed)."""
        return reading(self.corrections)


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
    # Misspelt words of the question and how they were read: the answer is to the question so read.
    corrections: tuple[Correction, ...] = ()

    @property
    def id(self) -> str:
        """A stable id from what the answer says: the same question, answer and quoted spans give the same id.

        Readers rate an answer by it (one rating per answer); it needs no record of the answer kept anywhere.
        """
        quoted = [f"{c.document_id}:{c.start}:{c.end}" for c in self.citations]
        return content_hash("\x1f".join(["answer", self.question, self.answer, *quoted]))[:16]

    def to_dict(self) -> dict:
        """Return the JSON shape shared by the CLI and the HTTP API."""
        return {
            "question": self.question,
            "answer_id": self.id,
            "answered": self.answered,
            "answer": self.answer,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [p.to_dict() for p in self.passages],
            "corrections": [c.to_dict() for c in self.corrections],
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Answer:
        """Rebuild an answer from its JSON shape, e.g. a conversation the reader's browser kept."""
        return cls(
            question=data["question"],
            answered=data["answered"],
            answer=data["answer"],
            citations=tuple(Citation.from_dict(c) for c in data["citations"]),
            passages=tuple(Hit.from_dict(p) for p in data["passages"]),
            # Answers kept by a browser before words were corrected have none.
            corrections=tuple(Correction(c["typed"], c["read_as"]) for c in data.get("corrections") or ()),
        )

    def reading(self) -> str:
        """How the question was read, for people: 'Read "employes" as "employees".' ('' when as typed)."""
        return reading(self.corrections)

    def cite(self) -> str:
        """Return the answer as a reader pastes it: each quote followed by its citation, one a line."""
        return "\n".join(citation.cite() for citation in self.citations)

    def cite_markdown(self, *, base: str = "") -> str:
        """Return the answer's quotes with their citations as Markdown, a paragraph each, linked at `base`."""
        return "\n\n".join(citation.cite_markdown(base=base) for citation in self.citations)


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
    # What the loader read and its warnings; None for a document stored before health was kept.
    health: DocumentHealth | None = None
