"""Follow-up questions: what to search for when a question leans on the one before it."""

from __future__ import annotations

import re
from collections.abc import Sequence

from retrieval.text import keyword_terms

# Openings and words that say a question continues the previous one ("and what about March?").
_CONTINUATION = re.compile(r"^\s*(and|also|what about|how about|and what about|then|same for|so)\b", re.IGNORECASE)
# Pronouns that point back; "this", "that" and "there" are left out, being mostly not ("is there a form?").
_REFERENCE = re.compile(r"\b(it|its|they|them|their|those|these|he|she|his|her)\b", re.IGNORECASE)
# A question of a single content word ("March?") cannot stand on its own.
_SHORT = 1


def contextualise(question: str, history: Sequence[str]) -> str:
    """Return the text to search for: the question, joined to the previous one when it is a follow-up."""
    earlier = [turn.strip() for turn in history if turn and turn.strip()]
    if not earlier:
        return question
    follows_on = (
        _CONTINUATION.search(question) is not None
        or _REFERENCE.search(question) is not None
        or len(keyword_terms(question)) <= _SHORT
    )
    return f"{earlier[-1]} {question}" if follows_on else question
