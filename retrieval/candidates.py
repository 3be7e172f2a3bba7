"""The sentences of retrieved passages that a reader may quote, and the cheap first cut of them.

Each candidate is located in its document (offsets, so a citation can point at it); a sentence
leading into a list takes the list's short items in; a table's row is read with its header's
labels; headings, captions, lines that only restate a title or heading (Markdown's "## " and
all) and sentences that ask a question are left out. `first_cut` picks the few the reader reads
(README, "Speed").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ingest.sentences import sentence_spans
from retrieval.records import Hit
from retrieval.text import keyword_terms

# Shorter fragments are headings, list items or captions: they do not answer anything alone.
MIN_SENTENCE_WORDS = 4
# A sentence that opens with one of these words and ends in a question mark asks; it states
# nothing to quote ("When was the app's name changed to REDnote?", an FAQ's own question).
# "If TikTok shuts down, the question arises: where will its users go?" opens otherwise and stays.
_ASKS = re.compile(
    r"(what|when|where|who|whom|whose|which|why|how|is|are|was|were|am|do|does|did|can|could|will|would|"
    r"shall|should|may|might|must|has|have|had|isn't|aren't|wasn't|weren't|don't|doesn't|didn't|can't|"
    r"couldn't|won't|wouldn't|shouldn't|hasn't|haven't|hadn't)\b.*\?$",
    re.IGNORECASE | re.DOTALL,
)
# Markdown's markup around a heading line: "## Parking ##".
_HEADING_MARKUP = re.compile(r"^#{1,6}\s+|\s+#+$")
# What may stand around a sentence without changing what it says: quotes, brackets, emphasis.
_WRAPPING = "\"'“”‘’«»()[]*_ "
# How far above a passage that starts inside a table its header is looked for, in characters:
# the nearest first, further only while every line read is one of the table's rows.
HEADER_LOOKBACKS = (4_000, 32_000, 256_000)
# Between a row's cells: a "|" that Markdown's backslash does not escape ("a \| b" is one cell).
_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")
# The line under a Markdown table's header: "|---|:---:|".
_TABLE_RULE = re.compile(r"\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)+\|?")


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence of a retrieved passage, located in its document, with the reader's score."""

    hit: Hit
    rank: int
    start: int  # offsets in the document
    end: int
    text: str
    previous: str = ""  # the sentence before it in the passage, which may say what "it" is
    score: float = 0.0
    # What the readers read in its place: a table row with its header's labels ("Cedar — Seats
    # 20" for "Cedar | 20" under "Room | Seats"), so they know what each cell is. Empty: the text.
    labelled: str = ""
    header: Sentence | None = None  # a table row's header row, quoted beside it

    @property
    def reads(self) -> str:
        """The text the readers read and the question's words are counted in."""
        return self.labelled or self.text


def candidate_sentences(
    passages: Sequence[Hit], text_between: Callable[[str, int, int], str] | None = None
) -> list[Sentence]:
    """Return every distinct sentence of the passages with its document offsets; a sentence that
    leads into a list of short items (`with_short_items`) takes them in; a table's rows are read
    with their header (`table_rows`), which is no candidate itself. With `text_between(document
    id, start, end)` (the store's), a passage that starts inside a table finds its header above it."""
    seen: set[tuple[str, int, int]] = set()
    sentences = []
    for rank, hit in enumerate(passages):
        spans = with_short_items(hit.text, sentence_spans(hit.text, 0, len(hit.text)))
        # The passage, or with the document's lines above it when it starts inside a table; read
        # in its coordinates, those lines first, then the passage's own spans.
        framed = _with_lines_above(hit, spans, text_between) if text_between else hit
        above = len(framed.text) - len(hit.text)
        lines_above = _line_spans(framed.text[:above])
        own = [(start + above, end + above) for start, end in spans]
        rows = table_rows(framed.text, [*lines_above, *own], starts_document=framed.start == 0)
        headers = {row.header for row in rows.values()}
        previous = ""
        for index, (start, end) in enumerate(own, start=len(lines_above)):
            text = framed.text[start:end]
            key = (hit.document_id, framed.start + start, framed.start + end)
            row = rows.get(index)
            if row is not None and key not in seen:
                seen.add(key)
                header = Sentence(framed, rank, framed.start + row.header[0], framed.start + row.header[1],
                                  framed.text[row.header[0] : row.header[1]])
                sentences.append(Sentence(hit, rank, key[1], key[2], text, row.before, labelled=row.labelled,
                                          header=header))
            elif (key not in seen and (start, end) not in headers and len(text.split()) >= MIN_SENTENCE_WORDS
                    and not _labels(text, hit) and not asks(text)):
                seen.add(key)
                sentences.append(Sentence(hit, rank, key[1], key[2], text, previous))
            previous = text
    return sentences


def _with_lines_above(
    hit: Hit, spans: Sequence[tuple[int, int]], text_between: Callable[[str, int, int], str]
) -> Hit:
    """The passage with the document's whole lines above it, back to where its table starts (as
    far as `HEADER_LOOKBACKS` goes), when it starts with a table row: its table's header is there.
    Else the passage itself."""
    if hit.start == 0 or not spans or _row_cells(hit.text, *spans[0]) is None:
        return hit
    for lookback in HEADER_LOOKBACKS:
        above = text_between(hit.document_id, hit.start - lookback, hit.start)
        if len(above) < hit.start:
            above = above[above.find("\n") + 1 :] if "\n" in above else ""  # from a whole line
        if lookback >= hit.start or any(_row_cells(above, *line) is None for line in _line_spans(above)):
            break
    if not above:
        return hit
    place = replace(hit.place, line_start=hit.place.line_start - above.count("\n"))
    return replace(hit, place=place, start=hit.start - len(above), text=above + hit.text)


def _line_spans(text: str) -> list[tuple[int, int]]:
    """The non-blank lines of a text, as spans."""
    spans, position = [], 0
    for line in text.split("\n"):
        if line.strip():
            spans.append((position + len(line) - len(line.lstrip()), position + len(line.rstrip())))
        position += len(line) + 1
    return spans


@dataclass(frozen=True, slots=True)
class Row:
    """A table row as the readers read it: its cells labelled by the header's, where the header
    row is (offsets in the text), and the sentence before the table."""

    labelled: str
    header: tuple[int, int]
    before: str


def table_rows(text: str, spans: Sequence[tuple[int, int]], *, starts_document: bool) -> dict[int, Row]:
    """The spans that are rows of a table whose header the text holds, by index, read with its labels.

    Loaders write a table a row a line, its cells between "|" (Markdown as written, HTML and Word
    tables joined so). The header is the row above Markdown's "|---|" line; otherwise the first row
    of a run of rows, if its cells hold no figures and something other than a row comes before it
    (or the text starts the document): a passage may start inside a table, and a row of figures
    heads nothing. A row with another number of cells than its header is read as it stands.
    """
    cells = [_row_cells(text, start, end) for start, end in spans]
    rows: dict[int, Row] = {}
    index = 0
    while index < len(spans):
        header = cells[index]
        if header is None:
            index += 1
            continue
        first = index + 1
        ruled = first < len(spans) and _TABLE_RULE.fullmatch(text[spans[first][0] : spans[first][1]].strip())
        if ruled:
            first += 1
        end = first
        while end < len(spans) and cells[end] is not None:
            end += 1
        follows = starts_document if index == 0 else cells[index - 1] is None
        heads = ruled or (follows and not any(ch.isdigit() for cell in header for ch in cell))
        if end > first and heads:
            before = text[spans[index - 1][0] : spans[index - 1][1]] if index > 0 else ""
            for at in range(first, end):
                if len(cells[at]) == len(header):
                    rows[at] = Row(_labelled(header, cells[at]), spans[index], before)
            index = end
        else:
            # No table starts here; within the run only its last row may head one (above a "|---|").
            index = max(index + 1, end - 1)
    return rows


def _labelled(header: Sequence[str], row: Sequence[str]) -> str:
    """A row as the readers read it: its first cell, then each other cell after its label
    ("Cedar — Floor 5, Seats 20"). Of the forms tried (docs/QUALITY.md, "Tables"), the readers
    told a row that does not hold what is asked from one that does best in this one."""
    rest = ", ".join(f"{label} {cell}".strip() for label, cell in zip(header[1:], row[1:]) if cell)
    return f"{row[0]} — {rest}" if row[0] and rest else row[0] or rest


def _row_cells(text: str, start: int, end: int) -> list[str] | None:
    """The cells of text[start:end] if it is a table row: a whole line (a sentence with a "|" in
    it is none) with cells between "|"."""
    if "|" not in text[start:end]:
        return None
    line_end = text.find("\n", end)
    before, after = text[text.rfind("\n", 0, start) + 1 : start], text[end : len(text) if line_end < 0 else line_end]
    return _cells(text[start:end]) if not before.strip() and not after.strip() else None


def _cells(line: str) -> list[str] | None:
    """The cells of a table row (a line with cells between "|"), or None when the line is not one."""
    if "|" not in line or "\n" in line.strip() or _TABLE_RULE.fullmatch(line.strip()):
        return None
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") else inner
    found = [cell.strip() for cell in _CELL_SEPARATOR.split(inner)]
    return found if len(found) >= 2 and any(found) else None


def with_short_items(text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans, each one ending in a colon joined with the lines after it that are too short to
    be sentences (fewer than `MIN_SENTENCE_WORDS` words, one a line): "content at once:" with
    "Short videos" and "Photo albums" is the sentence that states them. Alone, each item would be
    dropped as a fragment and the lead-in would answer nothing."""
    joined: list[tuple[int, int]] = []
    index = 0
    while index < len(spans):
        start, end = spans[index]
        index += 1
        if text[start:end].endswith(":"):
            while index < len(spans) and _short_line(text, end, *spans[index]):
                end = spans[index][1]
                index += 1
        joined.append((start, end))
    return joined


def _short_line(text: str, after: int, start: int, end: int) -> bool:
    """Whether text[start:end] is a line of its own, right after `after`, too short to be a sentence."""
    own_line = "\n" in text[after:start] and "\n" not in text[start:end]
    return own_line and len(text[start:end].split()) < MIN_SENTENCE_WORDS


def asks(sentence: str) -> bool:
    """Whether the sentence is a question (`_ASKS`): it asks, so it answers nothing."""
    return bool(_ASKS.match(sentence.strip(_WRAPPING).replace("’", "'")))


def _labels(text: str, hit: Hit) -> bool:
    """Whether a line only restates the document's title or its section's heading (in Markdown's
    markup or not): it names a subject, answers nothing."""
    line = " ".join(_HEADING_MARKUP.sub("", text.strip()).split()).casefold()
    return any(label and line == " ".join(label.split()).casefold() for label in (hit.title, hit.place.heading))


def shared_words(question_terms: set[str], sentence: str) -> float:
    """Return the share of the question's content words that the sentence contains (prefix-matched)."""
    if not question_terms:
        return 0.0
    # A shared 5-letter prefix counts: "users" matches "user", "launched" matches "launch".
    stems = {word[:5] for word in keyword_terms(sentence)}
    return sum(1 for term in question_terms if term[:5] in stems) / len(question_terms)


def first_cut(question: str, sentences: Sequence[Sentence], limit: int) -> list[Sentence]:
    """The `limit` sentences the reader should see: those sharing most words with the question,
    then from the best passages. Cheap, so the reader's pass stays short (README, "Speed")."""
    terms = set(keyword_terms(question))
    ranked = sorted(sentences, key=lambda s: (-(shared_words(terms, s.reads) + s.hit.score), s.rank, s.start))
    return ranked[:limit]
