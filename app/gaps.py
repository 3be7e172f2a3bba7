"""Gaps: the questions the documents did not answer, grouped by meaning, most asked first."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# A question joins a group when the cosine of its vector and the group's mean vector is at
# least this. Measured with the bundled all-MiniLM-L6-v2 on 8 hand-written groups of 3
# paraphrases (24 questions, 10 orders): 0.65 kept 84% of the groups whole but put two groups'
# questions together 1.4 times a run; 0.75 keeps 68% whole and mixes 0.4 times a run (0.7:
# 72%, 0.9; 0.8: 64%, 0.3). A keeper is misled more by two needs counted as one than by one
# need listed twice, so the stricter value. Again on 12 other groups, four of them near others
# (`python -m bench.gap_groups`): 0.75 keeps 17% whole and mixes 0.2 a run (0.7: 26%, 1.8;
# 0.78: 17%, 0). The embedder tuned for questions groups worse at every value (0.75: 13%, 2.0;
# 0.8: 7%, 0), so questions are grouped by the bundled model (Sourcebook.question_embedder).
GROUP_AT = 0.75
# Documents shown for a gap: those most often among its questions' nearest passages.
NEAREST_DOCUMENTS = 3


@dataclass(frozen=True, slots=True)
class NearDocument:
    """A document whose passages came nearest to a gap's questions."""

    document_id: str
    title: str
    source: str
    # How many of the gap's askings had a passage of it among the nearest.
    times: int


@dataclass(frozen=True, slots=True)
class Gap:
    """Questions of one meaning the documents did not answer."""

    question: str  # the one asked most (the earliest of those)
    count: int  # how many times questions of this group were asked
    questions: tuple[str, ...]  # each wording, most asked first
    first_asked: float
    last_asked: float
    documents: tuple[NearDocument, ...]

    def to_dict(self) -> dict:
        """Return the JSON shape of `sourcebook gaps --json` and `GET /api/gaps`."""
        return {
            "question": self.question,
            "count": self.count,
            "questions": list(self.questions),
            "first_asked": self.first_asked,
            "last_asked": self.last_asked,
            "documents": [
                {"document_id": d.document_id, "title": d.title, "source": d.source, "times": d.times}
                for d in self.documents
            ],
        }


@dataclass(frozen=True, slots=True)
class Declined:
    """One logged asking of a question the documents did not answer."""

    id: int
    asked: float
    question: str
    # The nearest passages' documents at the time: {"document_id", "title", "source"}.
    nearest: tuple[dict, ...]


def group_by_meaning(vectors: np.ndarray, *, threshold: float = GROUP_AT) -> list[list[int]]:
    """Group rows of unit vectors: each joins the group whose mean is nearest, if its cosine reaches `threshold`.

    Rows are taken in order (oldest question first), so a group's meaning is set by its first
    questions and later ones cannot drag it away.
    """
    groups: list[list[int]] = []
    sums = np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 0), dtype=np.float32)
    for row, vector in enumerate(vectors):
        if groups:
            # Inner product equals cosine on normalized vectors; the means are normalized here.
            means = sums / np.linalg.norm(sums, axis=1, keepdims=True).clip(min=1e-12)
            similarity = means @ vector
            best = int(np.argmax(similarity))
            if similarity[best] >= threshold:
                groups[best].append(row)
                sums[best] += vector
                continue
        groups.append([row])
        sums = np.vstack([sums, vector[None, :]])
    return groups


def gap_of(declined: Sequence[Declined], members: Sequence[int]) -> Gap:
    """Describe one group of declined questions (indexes into `declined`) as a gap."""
    rows = [declined[i] for i in members]
    wordings = Counter(row.question for row in rows)
    # Most asked first; ties go to the wording asked first (Counter keeps first-seen order).
    ordered = [wording for wording, _ in wordings.most_common()]
    seen: Counter[str] = Counter()
    about: dict[str, dict] = {}
    for row in rows:
        for document in {d["document_id"]: d for d in row.nearest}.values():
            seen[document["document_id"]] += 1
            about[document["document_id"]] = document
    documents = tuple(
        NearDocument(document_id, about[document_id].get("title", ""), about[document_id].get("source", ""), times)
        for document_id, times in seen.most_common(NEAREST_DOCUMENTS)
    )
    return Gap(
        question=ordered[0],
        count=len(rows),
        questions=tuple(ordered),
        first_asked=min(row.asked for row in rows),
        last_asked=max(row.asked for row in rows),
        documents=documents,
    )


def reading_order(gap: Gap) -> tuple[int, float]:
    """The sort key of gaps as a keeper reads them: most asked first, then most recently asked."""
    return (-gap.count, -gap.last_asked)
