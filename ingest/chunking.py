"""Cut a document into passages that fit the embedding model, at paragraph and sentence boundaries."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass

from ingest.records import Chunk, Document, pages_over
from ingest.sentences import append_stripped, paragraph_sentences, paragraph_spans, sentence_spans, strip_span

MIN_MAX_TOKENS = 8

_WORD = re.compile(r"\S+")
_HEADING_STOPS = frozenset(".,;:…")


@dataclass(frozen=True, slots=True)
class _Unit:
    """The smallest span the packer places: a sentence, or a piece of an over-long one."""

    start: int
    end: int
    tokens: int
    group: int  # index of the section-bounded stretch of text it lies in
    heading_offset: int  # where to look up its heading (past a heading line moved into its section)
    whole: bool  # a whole sentence, so it may be repeated as overlap
    paragraph_end: bool
    heading_like: bool  # a short line on its own, so it belongs with what follows


def split(
    document: Document, *, max_tokens: int, overlap_tokens: int, count_tokens: Callable[[str], int]
) -> list[Chunk]:
    """Cut a document into passages of at most max_tokens tokens at paragraph and sentence boundaries, overlapping by about overlap_tokens."""
    if max_tokens < MIN_MAX_TOKENS:
        raise ValueError(f"max_tokens must be >= {MIN_MAX_TOKENS}, got {max_tokens}")
    if not 0 <= overlap_tokens < max_tokens // 2:
        raise ValueError(
            f"overlap_tokens must be >= 0 and < max_tokens // 2 = {max_tokens // 2}, got {overlap_tokens}"
        )
    text = document.text
    cuts, anchors = _section_cuts(document)
    units = _units(text, cuts, anchors, max_tokens=max_tokens, count_tokens=count_tokens)
    spans = _pack_groups(
        text, units, max_tokens=max_tokens, overlap_tokens=overlap_tokens, count_tokens=count_tokens
    )
    # Counting newlines once beats Document.line_at's rescan from 0 for every chunk on big files.
    newlines = [match.start() for match in re.finditer("\n", text)]
    chunks = []
    for first, end, heading_unit in spans:
        start, stop = units[first].start, units[end - 1].end
        chunks.append(
            Chunk(
                document_id=document.id,
                text=text[start:stop],
                start=start,
                end=stop,
                heading=document.heading_at(units[heading_unit].heading_offset),
                page=document.page_at(start),
                line_start=bisect.bisect_left(newlines, start) + 1,
                line_end=bisect.bisect_left(newlines, stop - 1) + 1,
                pages=pages_over(document.pages, start, stop),
            )
        )
    return chunks


MAX_WINDOWS = 64


def windows(text: str, *, max_tokens: int, count_tokens: Callable[[str], int]) -> list[tuple[int, int]]:
    """Group a passage's sentences into consecutive spans of about max_tokens tokens, in order.

    Passages are found by their best window: a short span matches a question more sharply than a
    whole passage does, and the reader still gets the passage. A sentence longer than max_tokens
    is a window of its own; there are never more than MAX_WINDOWS (the last one absorbs the rest).
    """
    return [(start, end) for start, end, _ in sized_windows(text, max_tokens=max_tokens, count_tokens=count_tokens)]


def sized_windows(text: str, *, max_tokens: int, count_tokens: Callable[[str], int]) -> list[tuple[int, int, int]]:
    """Return `windows(text)` as (start, end, tokens), tokens being the sum of the window's sentence counts."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    spans: list[list[int]] = []
    used = 0
    for start, end in sentence_spans(text) or [strip_span(text, 0, len(text))]:
        tokens = count_tokens(text[start:end])
        if spans and used + tokens <= max_tokens:
            spans[-1][1] = end
            spans[-1][2] += tokens
            used += tokens
        elif len(spans) == MAX_WINDOWS:
            spans[-1][1] = end
            spans[-1][2] += tokens
        else:
            spans.append([start, end, tokens])
            used = tokens
    return [(start, end, tokens) for start, end, tokens in spans if end > start]


def counted_once(count_tokens: Callable[[str], int]) -> Callable[[str], int]:
    """Wrap a token counter so that it counts each distinct text once and remembers the count.

    Cutting a document counts each sentence for its passage, and again for the passage's windows;
    the second count is a lookup. Keep one per document: the memory lasts as long as the wrapper.
    """
    counts: dict[str, int] = {}

    def count(text: str) -> int:
        tokens = counts.get(text)
        if tokens is None:
            tokens = counts[text] = count_tokens(text)
        return tokens

    return count


def _section_cuts(document: Document) -> tuple[list[int], dict[int, int]]:
    """Return the offsets no passage may span, and the heading lines moved into their sections."""
    text = document.text
    size = len(text)
    cuts: set[int] = set()
    moved: dict[int, int] = {}
    for section in document.sections:
        cuts.add(min(max(section.start, 0), size))
        cuts.add(min(max(section.end, 0), size))
    for section in document.sections:
        start = min(max(section.start, 0), size)
        line_start = _heading_line_before(text, start, section.heading)
        if line_start is not None:
            # The section starts after its own heading line: give the line to the section it names.
            cuts.discard(start)
            cuts.add(line_start)
            moved[line_start] = start
    return sorted(cuts), moved


def _heading_line_before(text: str, offset: int, heading: str) -> int | None:
    """Return the start of the line just before offset if that line is this heading, else None."""
    wanted = " ".join(heading.split()).casefold()
    if not wanted or _is_heading_line(text[offset : offset + len(wanted) + 40].split("\n", 1)[0], wanted):
        return None  # the section already starts at its heading line, as loaders usually do
    end = offset
    while end > 0 and text[end - 1].isspace():
        end -= 1
    if end == 0:
        return None
    line_start = max(text.rfind("\n", 0, end), text.rfind("\r", 0, end)) + 1
    return line_start if _is_heading_line(text[line_start:end], wanted) else None


def _is_heading_line(line: str, wanted: str) -> bool:
    line = " ".join(line.split()).casefold()
    # Allow for markup and numbering around the heading: "## 2. Results".
    return wanted in line and len(line) <= len(wanted) + 10


def _units(
    text: str,
    cuts: list[int],
    anchors: dict[int, int],
    *,
    max_tokens: int,
    count_tokens: Callable[[str], int],
) -> list[_Unit]:
    """Return the sentences (and pieces of over-long ones) of the text, in order, tagged by section."""
    units: list[_Unit] = []
    heading_max = max(1, max_tokens // 8)
    paragraphs = paragraph_spans(text)
    if cuts:
        paragraphs = _cut_paragraphs(text, paragraphs, cuts)
    for paragraph_start, paragraph_end in paragraphs:
        group = bisect.bisect_right(cuts, paragraph_start)
        anchor = anchors.get(cuts[group - 1], paragraph_start) if group else paragraph_start
        pieces: list[tuple[int, int, int, bool]] = []
        for start, end in paragraph_sentences(text, paragraph_start, paragraph_end):
            tokens = count_tokens(text[start:end])
            if tokens <= max_tokens:
                pieces.append((start, end, tokens, True))
            else:
                long_pieces = _split_long(text, start, end, max_tokens, count_tokens)
                pieces.extend((a, b, n, False) for a, b, n in long_pieces)
        last = len(pieces) - 1
        for index, (start, end, tokens, whole) in enumerate(pieces):
            # A lone short line without closing punctuation reads as a heading.
            heading_like = last == 0 and whole and tokens <= heading_max and text[end - 1] not in _HEADING_STOPS
            # Positional arguments: this runs once per sentence, and keywords cost a third of it.
            unit = _Unit(start, end, tokens, group, max(start, anchor), whole, index == last, heading_like)
            units.append(unit)
    return units


def _cut_paragraphs(text: str, paragraphs: list[tuple[int, int]], cuts: list[int]) -> list[tuple[int, int]]:
    """Split paragraphs at section cuts, so that no passage can straddle a section boundary."""
    parts: list[tuple[int, int]] = []
    for paragraph_start, paragraph_end in paragraphs:
        # A section may begin mid-paragraph (odd loader offsets).
        inner = cuts[bisect.bisect_right(cuts, paragraph_start) : bisect.bisect_left(cuts, paragraph_end)]
        bounds = [paragraph_start, *inner, paragraph_end]
        for part_start, part_end in zip(bounds, bounds[1:]):
            append_stripped(parts, text, part_start, part_end)
    return parts


def _split_long(
    text: str, start: int, end: int, max_tokens: int, count_tokens: Callable[[str], int]
) -> list[tuple[int, int, int]]:
    """Split an over-long sentence at word boundaries, and any over-long word by characters."""
    words = [(match.start(), match.end()) for match in _WORD.finditer(text, start, end)]
    counts = [count_tokens(text[a:b]) for a, b in words]
    pieces: list[tuple[int, int, int]] = []
    index = 0
    while index < len(words):
        if counts[index] > max_tokens:
            pieces.extend(_character_pieces(text, *words[index], max_tokens, count_tokens, counts[index]))
            index += 1
            continue
        stop, total = index, 0
        while stop < len(words) and counts[stop] <= max_tokens and total + counts[stop] <= max_tokens:
            total += counts[stop]
            stop += 1
        # Word counts add up for whitespace-split tokenizers; check the piece itself to be exact.
        tokens = count_tokens(text[words[index][0] : words[stop - 1][1]])
        while tokens > max_tokens and stop - index > 1:
            stop -= 1
            tokens = count_tokens(text[words[index][0] : words[stop - 1][1]])
        pieces.append((words[index][0], words[stop - 1][1], tokens))
        index = stop
    return pieces


def _character_pieces(
    text: str, start: int, end: int, max_tokens: int, count_tokens: Callable[[str], int], total: int
) -> list[tuple[int, int, int]]:
    """Split one over-long word into the longest character runs that fit max_tokens."""
    # A proportional first guess, then galloping and bisection, keep every probe about one piece
    # long: the whole word costs O(n log n) characters of counting, never O(n**2).
    guess = max(1, int(max_tokens * (end - start) / max(total, 1) * 0.9))
    pieces: list[tuple[int, int, int]] = []
    position = start
    while position < end:
        remaining = end - position
        fits, fits_tokens, too_long = 0, 0, remaining + 1
        size = min(guess, remaining)
        while True:
            tokens = count_tokens(text[position : position + size])
            if tokens > max_tokens:
                too_long = size
                break
            fits, fits_tokens = size, tokens
            if size == remaining:
                break
            size = min(size * 2, remaining)
        while too_long - fits > 1 and fits < remaining:
            middle = (fits + too_long) // 2
            tokens = count_tokens(text[position : position + middle])
            if tokens <= max_tokens:
                fits, fits_tokens = middle, tokens
            else:
                too_long = middle
        if fits == 0:
            # Not even one character fits (only a pathological counter does this): keep moving.
            fits, fits_tokens = 1, count_tokens(text[position])
        pieces.append((position, position + fits, fits_tokens))
        position += fits
    return pieces


def _pack_groups(
    text: str,
    units: list[_Unit],
    *,
    max_tokens: int,
    overlap_tokens: int,
    count_tokens: Callable[[str], int],
) -> list[tuple[int, int, int]]:
    """Pack each section's units into chunks; return (first unit, end unit, heading unit) triples."""
    spans: list[tuple[int, int, int]] = []
    tiny = max_tokens // 4
    carried: int | None = None
    low = 0
    while low < len(units):
        high = low
        while high < len(units) and units[high].group == units[low].group:
            high += 1
        first = low if carried is None else carried
        # A section holding only a heading line (or a title before the first section) is a
        # useless passage on its own: it opens the next section's first chunk instead.
        if (
            high < len(units)
            and all(unit.heading_like for unit in units[low:high])
            and sum(unit.tokens for unit in units[first:high]) <= tiny
        ):
            carried = first
            low = high
            continue
        for chunk_first, chunk_end in _pack(
            text,
            units,
            first,
            high,
            max_tokens=max_tokens,
            overlap_tokens=overlap_tokens,
            count_tokens=count_tokens,
        ):
            # Carried heading lines take the heading of the section whose text they introduce.
            spans.append((chunk_first, chunk_end, low if chunk_first < low < chunk_end else chunk_first))
        carried = None
        low = high
    return spans


def _pack(
    text: str,
    units: list[_Unit],
    low: int,
    high: int,
    *,
    max_tokens: int,
    overlap_tokens: int,
    count_tokens: Callable[[str], int],
) -> list[tuple[int, int]]:
    """Pack units[low:high] greedily into overlapping chunks; return (first, end) unit ranges."""
    spans: list[tuple[int, int]] = []
    first = fresh = low  # the chunk's first unit; its first unit not already in the previous chunk
    while fresh < high:
        total = sum(unit.tokens for unit in units[first:fresh])
        end = fresh
        while end < high and total + units[end].tokens <= max_tokens:
            total += units[end].tokens
            end += 1
        if end == fresh:
            # The overlap leaves no room for the next unit: shed overlap, never new text.
            if first < fresh:
                first += 1
                continue
            end = fresh + 1
        end = _preferred_end(units, first, fresh, end, high, total, max_tokens)
        while end - first > 1 and count_tokens(text[units[first].start : units[end - 1].end]) > max_tokens:
            if end - 1 > fresh:
                end -= 1
            else:
                first += 1
        spans.append((first, end))
        chunk_first, fresh, first = first, end, end
        overlap = 0
        while (
            first - 1 > chunk_first
            and units[first - 1].whole
            and overlap + units[first - 1].tokens <= overlap_tokens
        ):
            overlap += units[first - 1].tokens
            first -= 1
    return spans


def _preferred_end(
    units: list[_Unit], first: int, fresh: int, end: int, high: int, total: int, max_tokens: int
) -> int:
    """Move a greedily filled chunk's end back to a paragraph end if the chunk stays half full."""
    if end >= high:
        return end
    candidate = end
    while candidate > fresh and total * 2 >= max_tokens:
        unit = units[candidate - 1]
        if unit.paragraph_end and not unit.heading_like:
            return candidate
        total -= unit.tokens
        candidate -= 1
    # No paragraph end within reach; at least leave a heading line to the text it introduces.
    if units[end - 1].heading_like and end - 1 > fresh:
        return end - 1
    return end
