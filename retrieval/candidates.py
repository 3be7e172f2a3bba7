"""The sentences of retrieved passages that a reader may quote, and the cheap first cut of them.

Each candidate is located in its document (offsets, so a citation can point at it); a sentence
leading into a list takes the list's short items in; headings, captions, lines that only restate
a title or heading (Markdown's "## " and all) and sentences that ask a question are left out.
`first_cut` picks the few the reader reads (README, "Speed").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

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


def candidate_sentences(passages: Sequence[Hit]) -> list[Sentence]:
    """Return every distinct sentence of the passages with its document offsets; a sentence that
    leads into a list of short items (`with_short_items`) takes them in."""
    seen: set[tuple[str, int, int]] = set()
    sentences = []
    for rank, hit in enumerate(passages):
        previous = ""
        for local_start, local_end in with_short_items(hit.text, sentence_spans(hit.text, 0, len(hit.text))):
            text = hit.text[local_start:local_end]
            key = (hit.document_id, hit.start + local_start, hit.start + local_end)
            if (key not in seen and len(text.split()) >= MIN_SENTENCE_WORDS and not _labels(text, hit)
                    and not asks(text)):
                seen.add(key)
                sentences.append(Sentence(hit, rank, key[1], key[2], text, previous))
            previous = text
    return sentences


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
    ranked = sorted(sentences, key=lambda s: (-(shared_words(terms, s.text) + s.hit.score), s.rank, s.start))
    return ranked[:limit]
