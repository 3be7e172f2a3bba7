"""Readers' ratings of answers, and the question-set lines they become (`sourcebook feedback to-eval`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from retrieval.answer import NOT_ANSWERED
from retrieval.records import Citation

RATINGS = ("up", "down")
# The field that marks a line of a question set as a candidate a person still has to review;
# retrieval/evaluation.load_qa refuses a file holding one.
REVIEW = "review"


def citation_record(citation: Citation) -> dict:
    """What a rating keeps of a citation: the document, the span, the quote and the text to paste."""
    return {
        "n": citation.n,
        "document_id": citation.document_id,
        "source": citation.source,
        "title": citation.title,
        "heading": citation.place.heading,
        "page": citation.place.page,
        "start": citation.start,
        "end": citation.end,
        "quote": citation.quote,
        "cite": citation.cite(),
    }


@dataclass(frozen=True, slots=True)
class Rating:
    """One stored rating, read from the store or from a `feedback export` file of any version."""

    question: str
    answer: str
    rating: str
    comment: str = ""
    answer_id: str | None = None
    # None for ratings stored before answers were rated by id: whether it was answered is not known.
    answered: bool | None = None
    citations: tuple[dict, ...] = ()
    rated: float | None = None

    @classmethod
    def from_record(cls, record: dict) -> Rating:
        """Read a stored or exported rating; the fields older versions lacked take their defaults."""
        rating = record.get("rating")
        if rating not in RATINGS:
            raise ValueError(f"rating must be 'up' or 'down', got {rating!r}")
        question = record.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"a rating needs its question, got {question!r}")
        answered = record.get("answered")
        return cls(
            question=question,
            answer=str(record.get("answer") or ""),
            rating=rating,
            comment=str(record.get("comment") or ""),
            answer_id=record.get("answer_id"),
            answered=None if answered is None else bool(answered),
            citations=tuple(record.get("citations") or ()),
            rated=record.get("updated", record.get("created")),
        )


@dataclass(slots=True)
class EvalLines:
    """What ratings become: question-set items ready to use, candidates to review, and how many gave neither."""

    items: list[dict] = field(default_factory=list)
    candidates: list[dict] = field(default_factory=list)
    skipped: int = 0


def eval_lines(ratings: Iterable[Rating]) -> EvalLines:
    """Turn ratings into lines of the question-set format `sourcebook eval` reads (corpus/qa.jsonl).

    - thumbs up on an answer with citations: an answerable item, its quotes the expected answers;
    - thumbs up on a "not in the documents": an unanswerable item;
    - thumbs down with a comment, or up on an answer rated before citations were kept: a candidate,
      a line with `review` (the comment, the answer given, its citations) and no `answerable`, for a
      person to fill in `answers` and `answerable` and remove `review`;
    - thumbs down without a comment says nothing to test: skipped.

    The last rating of a question decides its line.
    """
    lines: dict[str, tuple[str, dict]] = {}
    skipped = 0
    for rating in ratings:
        origin = {"answer_id": rating.answer_id, "rated": rating.rated,
                  "document_ids": sorted({c.get("document_id") for c in rating.citations if c.get("document_id")})}
        declined = rating.answered is False or (rating.answered is None and rating.answer.strip() == NOT_ANSWERED)
        quotes = list(dict.fromkeys(c["quote"] for c in rating.citations if c.get("quote")))
        if rating.rating == "up" and declined:
            line = ("item", {"question": rating.question, "answers": [], "answerable": False, "from_feedback": origin})
        elif rating.rating == "up" and quotes:
            line = ("item", {"question": rating.question, "answers": quotes, "answerable": True, "from_feedback": origin})
        elif rating.rating == "down" and not rating.comment.strip():
            skipped += 1
            lines.pop(rating.question, None)
            continue
        else:
            why = rating.comment.strip() if rating.rating == "down" else (
                "rated helpful before ratings kept their citations: copy the expected answer from the answer given"
            )
            line = ("candidate", {
                "question": rating.question,
                "answers": [],
                REVIEW: {
                    "rating": rating.rating,
                    "comment": why,
                    "answer_given": rating.answer,
                    "answered": rating.answered,
                    "citations": [
                        {key: c.get(key) for key in ("document_id", "source", "start", "end", "quote", "cite")}
                        for c in rating.citations
                    ],
                    **origin,
                },
            })
        lines[rating.question] = line
    result = EvalLines(skipped=skipped)
    for kind, line in lines.values():
        (result.items if kind == "item" else result.candidates).append(line)
    return result
