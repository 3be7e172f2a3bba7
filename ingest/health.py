"""A document's health: what its loader read (text per page of a PDF) and what a keeper should look at."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from ingest.ocr import INSTALL_HINT
from ingest.records import Document

# A page under this many characters of text, where the document's median page holds ten times
# more, is "almost empty": a scan with a caption, or a picture of a table.
LITTLE_TEXT_CHARS = 50
# A line counts towards boilerplate when it appears this often and has a few letters to it (a
# header, a footer, a cookie notice), so short list markers and table rules never count.
BOILERPLATE_REPEATS = 3
BOILERPLATE_MIN_CHARS = 10
# Boilerplate is reported when repeated lines hold at least this share of the text's characters.
BOILERPLATE_SHARE = 0.5


class Concern(StrEnum):
    """What a warning is about."""

    NO_TEXT = "no_text"  # PDF pages with no text at all
    LITTLE_TEXT = "little_text"  # PDF pages with almost none
    EMPTY_SECTION = "empty_section"  # a heading with nothing under it
    BOILERPLATE = "boilerplate"  # text that is mostly the same lines again and again
    OCR = "ocr"  # PDF pages without a text layer, read by OCR


@dataclass(frozen=True, slots=True)
class HealthWarning:
    """One thing a keeper should look at, said for people, with the pages or sections it is about."""

    concern: Concern
    message: str
    pages: tuple[int, ...] = ()
    sections: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DocumentHealth:
    """What the loader read of a document and the warnings it earns."""

    # Characters of text on each page, page 1 first (PDFs); empty for sources without pages.
    page_chars: tuple[int, ...] = ()
    warnings: tuple[HealthWarning, ...] = ()

    def pages_line(self, *, most: int = 20) -> str | None:
        """Return "2 pages; characters of text per page: 1,840, 0" (the first `most` pages), or None without pages."""
        if not self.page_chars:
            return None
        shown = ", ".join(f"{chars:,}" for chars in self.page_chars[:most])
        more = ", …" if len(self.page_chars) > most else ""
        return f"{len(self.page_chars)} pages; characters of text per page: {shown}{more}"

    def to_dict(self) -> dict:
        """Return the JSON shape kept in the store and given by `docs --json` and the API."""
        return {
            "page_chars": list(self.page_chars),
            "warnings": [
                {"concern": w.concern.value, "message": w.message, "pages": list(w.pages), "sections": list(w.sections)}
                for w in self.warnings
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> DocumentHealth:
        """Rebuild health from its JSON shape."""
        return cls(
            page_chars=tuple(data.get("page_chars", ())),
            warnings=tuple(
                HealthWarning(Concern(w["concern"]), w["message"], tuple(w.get("pages", ())), tuple(w.get("sections", ())))
                for w in data.get("warnings", ())
            ),
        )


def assess(document: Document) -> DocumentHealth:
    """Return a document's health: its text per page (PDFs) and warnings about pages, sections and boilerplate."""
    page_chars = _page_chars(document)
    warnings = [
        *_page_warnings(page_chars, ocr_ran=document.ocr_ran, ocr_skipped=document.ocr_skipped), *_ocr_read(document.ocr_pages),
        *_empty_sections(document), *_boilerplate(document.text),
    ]
    return DocumentHealth(page_chars=page_chars, warnings=tuple(warnings))


def _page_chars(document: Document) -> tuple[int, ...]:
    if not document.page_count:
        return ()
    chars = [0] * document.page_count
    for page in document.pages:
        if 1 <= page.number <= document.page_count:
            chars[page.number - 1] += len(document.text[page.start : page.end].strip())
    return tuple(chars)


def _page_warnings(
    page_chars: tuple[int, ...], *, ocr_ran: bool, ocr_skipped: tuple[int, ...]
) -> Iterable[HealthWarning]:
    empty = tuple(n for n, chars in enumerate(page_chars, start=1) if chars == 0 and n not in ocr_skipped)
    if ocr_skipped:
        subject = _pages_have(ocr_skipped)
        yield HealthWarning(
            Concern.NO_TEXT,
            f"{subject} no text and {'was' if len(ocr_skipped) == 1 else 'were'} not read by OCR:"
            " past the most pages it reads in one document",
            pages=ocr_skipped,
        )
    if empty:
        subject = _pages_have(empty)
        if ocr_ran:
            message = f"{subject} no text, and OCR (Tesseract) found no words either: a blank page or a picture?"
        else:
            message = f"{subject} no text: a scan? {INSTALL_HINT}"
        yield HealthWarning(Concern.NO_TEXT, message, pages=empty)
    median = statistics.median(page_chars) if page_chars else 0
    little = tuple(
        number for number, chars in enumerate(page_chars, start=1)
        if 0 < chars < LITTLE_TEXT_CHARS and chars * 10 <= median
    )
    if little:
        subject = _pages_have(little)
        yield HealthWarning(
            Concern.LITTLE_TEXT,
            f"{subject} almost no text (under {LITTLE_TEXT_CHARS} characters, where the median page holds"
            f" {median:,.0f}): mostly an image?",
            pages=little,
        )


def _pages_have(pages: tuple[int, ...]) -> str:
    """The subject of a warning about pages: "page 3 has" or "pages 2-4 and 7 have"."""
    return f"page {pages[0]} has" if len(pages) == 1 else f"pages {_numbers(pages)} have"


def _ocr_read(pages: tuple[int, ...]) -> Iterable[HealthWarning]:
    if pages:
        subject = _pages_have(pages)
        yield HealthWarning(
            Concern.OCR,
            f"{subject} no text layer and {'was' if len(pages) == 1 else 'were'} read by OCR (Tesseract):"
            " check quotes from it against the page",
            pages=pages,
        )


def _empty_sections(document: Document) -> Iterable[HealthWarning]:
    sections = document.sections
    empty = []
    for index, section in enumerate(sections):
        following = sections[index + 1] if index + 1 < len(sections) else None
        if following is not None and following.level > section.level:
            continue  # its subsections are what it holds
        # The heading's own line(s) open the section; a Markdown setext heading is underlined.
        lines = document.text[section.start : section.end].split("\n")[1:]
        if not any(line.strip() and line.strip().strip("=-") for line in lines):
            empty.append(section.heading)
    if empty:
        named = ", ".join(f"“{heading}”" for heading in empty)
        subject = f"section {named} has" if len(empty) == 1 else f"sections {named} have"
        yield HealthWarning(Concern.EMPTY_SECTION, f"{subject} nothing under the heading", sections=tuple(empty))


def _boilerplate(text: str) -> Iterable[HealthWarning]:
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    total = sum(len(line) for line in lines)
    counts = Counter(line for line in lines if len(line) >= BOILERPLATE_MIN_CHARS and any(c.isalpha() for c in line))
    repeated = {line: count for line, count in counts.items() if count >= BOILERPLATE_REPEATS}
    share = sum(len(line) * count for line, count in repeated.items()) / total if total else 0.0
    if repeated and share >= BOILERPLATE_SHARE:
        example = max(repeated, key=lambda line: len(line) * repeated[line])
        shown = example if len(example) <= 60 else example[:59] + "…"
        yield HealthWarning(
            Concern.BOILERPLATE,
            f"{share:.0%} of the text is lines repeated {BOILERPLATE_REPEATS} or more times (such as “{shown}”,"
            f" {repeated[example]} times): boilerplate rather than content?",
        )


def _numbers(numbers: tuple[int, ...]) -> str:
    """Return page numbers as people write them: "2, 5–7, 9"."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ", ".join(str(run[0]) if len(run) == 1 else f"{run[0]}–{run[-1]}" for run in runs)
