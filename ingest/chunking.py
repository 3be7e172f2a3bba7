"""Cut a document into passages that fit the embedding model, at paragraph and sentence boundaries."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass

from ingest.records import Chunk, Document, pages_over

MIN_MAX_TOKENS = 8

# Line breaks as str.splitlines() sees them; a trimmed line runs from a line's first to last non-space.
_TRIMMED_LINE = re.compile(r"\S(?:[^\n\r\v\f\x1c-\x1e\x85\u2028\u2029]*\S)?")
_LINE_BREAK = re.compile(r"[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
_WORD = re.compile(r"\S+")
_CLOSERS = "\"'”’»)]}"
_OPENERS = "\"'“‘«([{¿¡"
# Latin marks end a sentence only before whitespace ("3.5", "example.com" stay whole);
# CJK full stops are followed directly by the next sentence.
_SENTENCE_END = re.compile(r"[.!?…‽]+[\"'”’»)\]}]*(?=\s)|[。！？]+[」』\"'”’)）]*")
_NEXT_WORD = re.compile(r"\s*[\"'“‘«(\[{¿¡]*(\S{0,16})")
_LEADING_LETTERS = re.compile(r"[^\W\d_]+")
# "U.S", "e.g", "Ph.D": the text before the final dot of a dotted abbreviation.
_INITIALISM = re.compile(r"(?:[^\W\d_]{1,2}\.)+[^\W\d_]{1,2}")
# Abbreviations are short; a longer "word" before a dot is an ordinary sentence end.
_ABBREVIATION_MAX_CHARS = 12
_PARAGRAPH_END_MARKS = frozenset(".!?…‽:;。！？")
_HEADING_STOPS = frozenset(".,;:…")

# A dot after these never ends a sentence: a name or an example always follows.
_NEVER_FINAL = frozenset(
    "mr mrs ms mx dr prof rev hon st mt gen col capt lt sgt cmdr adm gov sen rep pres supt messrs "
    "mme mlle e.g i.e cf viz vs approx ca esp incl univ assn ave blvd".split()
)
# Before a number these are labels ("No. 5", "p. 12", "Jan. 14"), not sentence ends.
_NUMBER_LABELS = frozenset(
    "no nos nr p pp para fig figs vol vols ch chap sec art op eq ed "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
# These may end a sentence ("... Apple Inc. The company"), but usually do not ("Inc. Shares").
_MAYBE_FINAL = frozenset("etc inc ltd co corp llc plc bros jr sr al dept".split())
# After an ambiguous abbreviation, one of these words is taken to open a new sentence.
_SENTENCE_STARTERS = frozenset(
    "a an the this that these those there then it its he she we i you they his her our their my "
    "in on at but and or so yet as if when while after before since however meanwhile also for "
    "with what why how who today yesterday some many most all one each both not to".split()
)


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
    for start, end in sentence_spans(text) or [_strip(text, 0, len(text))]:
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


def paragraph_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Return the (start, end) spans of the lines of text[start:end], wrapped lines rejoined, trimmed."""
    start, end = _checked_range(text, start, end)
    paragraphs: list[tuple[int, int]] = []
    for match in _TRIMMED_LINE.finditer(text, start, end):
        line_start, line_end = match.span()
        if paragraphs and _continues(text, paragraphs[-1], line_start):
            paragraphs[-1] = (paragraphs[-1][0], line_end)
        else:
            paragraphs.append((line_start, line_end))
    return paragraphs


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Return the (start, end) spans of the sentences of text[start:end], whitespace excluded."""
    spans: list[tuple[int, int]] = []
    for paragraph_start, paragraph_end in paragraph_spans(text, start, end):
        spans.extend(_paragraph_sentences(text, paragraph_start, paragraph_end))
    return spans


def _checked_range(text: str, start: int, end: int | None) -> tuple[int, int]:
    end = len(text) if end is None else end
    if not 0 <= start <= end <= len(text):
        raise ValueError(f"span must satisfy 0 <= start <= end <= {len(text)}, got start={start} end={end}")
    return start, end


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _continues(text: str, previous: tuple[int, int], line_start: int) -> bool:
    """Tell whether a line is the hard-wrapped rest of the paragraph before it."""
    # A lowercase start after an unfinished line is a wrapped sentence, as in Markdown or e-mail;
    # anything else (capital, digit, bullet, blank line between) is a new paragraph.
    if not text[line_start].islower():
        return False
    gap = text[previous[1] : line_start].replace("\r\n", "\n")
    if len(_LINE_BREAK.findall(gap)) != 1:
        return False
    end = previous[1]
    while end > previous[0] and text[end - 1] in _CLOSERS:
        end -= 1
    return end > previous[0] and text[end - 1] not in _PARAGRAPH_END_MARKS


def _paragraph_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Return the sentence spans of a trimmed paragraph."""
    spans: list[tuple[int, int]] = []
    sentence_start = start
    for mark in _SENTENCE_END.finditer(text, start, end):
        if _ends_sentence(text, mark, start, end):
            _append_stripped(spans, text, sentence_start, mark.end())
            sentence_start = mark.end()
    if sentence_start == start:
        return [(start, end)]  # the common one-sentence line, already trimmed
    _append_stripped(spans, text, sentence_start, end)
    return spans


def _append_stripped(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    start, end = _strip(text, start, end)
    if start < end:
        spans.append((start, end))


def _ends_sentence(text: str, mark: re.Match[str], paragraph_start: int, paragraph_end: int) -> bool:
    """Decide whether a terminal mark ends its sentence or sits inside an abbreviation, initial or label."""
    if mark.group()[0] in "。！？":
        return True
    following = _NEXT_WORD.match(text, mark.end(), paragraph_end).group(1)
    if not following:
        return True
    # "e.g. the", "U.S. market", "wait... what": a lowercase word continues the sentence.
    if following[0].islower():
        return False
    if mark.group().rstrip(_CLOSERS) != ".":
        return True
    word = _word_before(text, mark.start(), paragraph_start)
    if word is None:
        return True
    lowered = word.casefold()
    if lowered in _NEVER_FINAL:
        return False
    if following[0].isdigit() and lowered in _NUMBER_LABELS:
        return False
    # "1. Install" opening a paragraph is a numbered list item, not a one-word sentence.
    if word.isdigit() and not text[paragraph_start : mark.start() - len(word)].strip():
        return False
    if lowered in _MAYBE_FINAL or _INITIALISM.fullmatch(word) or (len(word) == 1 and word.isupper()):
        letters = _LEADING_LETTERS.match(following)
        return letters is not None and letters.group().casefold() in _SENTENCE_STARTERS
    return True


def _word_before(text: str, position: int, floor: int) -> str | None:
    """Return the short word ending at position (opening quotes dropped), or None if it is long."""
    start = position
    limit = max(floor, position - _ABBREVIATION_MAX_CHARS - 1)
    while start > limit and not text[start - 1].isspace():
        start -= 1
    if start == limit and start > floor and not text[start - 1].isspace():
        return None
    return text[start:position].lstrip(_OPENERS)


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
        for start, end in _paragraph_sentences(text, paragraph_start, paragraph_end):
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
            _append_stripped(parts, text, part_start, part_end)
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
