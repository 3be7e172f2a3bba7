"""Where sentences and paragraphs begin and end in a text: the splitter chunking and answers share.

Spans are (start, end) character offsets into the text given, whitespace excluded, so a quote cut
at them is verbatim and can be found again.
"""

from __future__ import annotations

import re

# Line breaks as str.splitlines() sees them; a trimmed line runs from a line's first to last non-space.
_TRIMMED_LINE = re.compile(r"\S(?:[^\n\r\v\f\x1c-\x1e\x85\u2028\u2029]*\S)?")
_LINE_BREAK = re.compile(r"[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
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
        spans.extend(paragraph_sentences(text, paragraph_start, paragraph_end))
    return spans


def _checked_range(text: str, start: int, end: int | None) -> tuple[int, int]:
    end = len(text) if end is None else end
    if not 0 <= start <= end <= len(text):
        raise ValueError(f"span must satisfy 0 <= start <= end <= {len(text)}, got start={start} end={end}")
    return start, end


def strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Return (start, end) narrowed past the whitespace at either end."""
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


def paragraph_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Return the sentence spans of a trimmed paragraph; a table row is one, whatever its cells say."""
    if "|" in text[start:end] and _is_table_row(text[start:end]):
        return [(start, end)]
    spans: list[tuple[int, int]] = []
    sentence_start = start
    for mark in _SENTENCE_END.finditer(text, start, end):
        if _ends_sentence(text, mark, start, end):
            append_stripped(spans, text, sentence_start, mark.end())
            sentence_start = mark.end()
    if sentence_start == start:
        return [(start, end)]  # the common one-sentence line, already trimmed
    append_stripped(spans, text, sentence_start, end)
    return spans


# Cells of a row as the HTML and Word loaders write it ("Vase | c. 1475 | Perth") are short; a
# longer run between " | " is prose that happens to hold one.
_ROW_CELL_MAX_WORDS = 6


def _is_table_row(line: str) -> bool:
    """Tell whether a trimmed line is a table row: Markdown's (between "|" at both ends), or two or
    more short cells between " | " as the loaders write one (a key and its value, "Notes | Closed.
    Reopens Monday", is a row too). A dot inside a cell ("c. 1475",
    "Closed. Reopens Monday") then does not cut the row in two."""
    if "\n" in line or "\r" in line:
        return False
    if line.startswith("|") and line.endswith("|") and len(line) > 1:
        return True
    cells = line.split(" | ")
    return len(cells) >= 2 and all(len(cell.split()) <= _ROW_CELL_MAX_WORDS for cell in cells)


def append_stripped(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    """Append text[start:end] to `spans` with its surrounding whitespace trimmed, unless nothing is left."""
    start, end = strip_span(text, start, end)
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
