"""How well a model groups the gaps' questions: paraphrase groups, some of them near one another, in shuffled orders.

python -m bench.gap_groups [MODEL_FOLDER ...]   # default: the bundled model and models/embedder

For each grouping threshold: the share of paraphrase groups kept whole (all three wordings in one
group of their own) and the mixed groups a run makes (questions of different groups put together).
The groups were written for this measurement (2026-12-06); the last four are near others on purpose
(vacation against sick days, a laptop against a VPN password, ...). Figures: app/gaps.py, GROUP_AT.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.gaps import group_by_meaning

GROUPS = [
    ["How do I reset my VPN password?", "What's the way to change the password for the VPN?",
     "I forgot my VPN password, how can I get a new one?"],
    ["When is the expense report due each month?", "What is the monthly deadline for submitting expenses?",
     "By which day do expense claims have to be in?"],
    ["Can I bring my dog to the office?", "Are pets allowed at work?", "Is it okay to have my dog with me in the building?"],
    ["Who approves travel requests?", "Which manager signs off on business trips?",
     "Whose approval do I need to travel for work?"],
    ["How many sick days do we get per year?", "What is the annual allowance of sick leave?",
     "How much paid sick time is there each year?"],
    ["Where can I print in colour?", "Which printer does colour prints?", "Is there a colour printer somewhere in the office?"],
    ["What time does the cafeteria close?", "Until when is the canteen open?", "When does the lunch room stop serving food?"],
    ["How do I book a meeting room?", "What is the process for reserving a conference room?",
     "Where do I go to reserve a room for a meeting?"],
    ["How many vacation days do we get per year?", "What is the annual holiday allowance?",
     "How much paid time off for holidays is there each year?"],
    ["How do I cancel a meeting room booking?", "What is the way to release a conference room I reserved?",
     "I no longer need the room I booked, how do I free it?"],
    ["How do I reset my laptop password?", "What's the way to change my computer login password?",
     "I forgot my laptop password, how can I get a new one?"],
    ["When is the timesheet due each week?", "What is the weekly deadline for submitting hours?",
     "By which day do timesheets have to be in?"],
]
THRESHOLDS = (0.65, 0.7, 0.72, 0.74, 0.75, 0.76, 0.78, 0.8)
ORDERS = 10


def grouping_figures(vectors: np.ndarray, labels: list[int], threshold: float, *,
                     orders: int = ORDERS) -> tuple[float, float]:
    """(share of groups kept whole, mixed groups per run) over `orders` shuffled orders of the questions."""
    whole = mixed = 0
    groups_asked = len(set(labels))
    for seed in range(orders):
        order = list(range(len(labels)))
        random.Random(seed).shuffle(order)
        made = [[labels[order[row]] for row in group] for group in group_by_meaning(vectors[order], threshold=threshold)]
        whole += sum(1 for label in set(labels) if [label] * labels.count(label) in made)
        mixed += sum(1 for group in made if len(set(group)) > 1)
    return whole / (orders * groups_asked), mixed / orders


def main(argv: Sequence[str] | None = None) -> None:
    """Print each model's figures by threshold."""
    from sentence_transformers import SentenceTransformer

    from retrieval.embedder import bundled_model_path
    from retrieval.settings import EMBEDDER_DIR

    folders = [Path(arg) for arg in (sys.argv[1:] if argv is None else argv)] or [bundled_model_path(), EMBEDDER_DIR]
    questions = [question for group in GROUPS for question in group]
    labels = [number for number, group in enumerate(GROUPS) for _ in group]
    for folder in folders:
        vectors = SentenceTransformer(str(folder), device="cpu").encode(questions, normalize_embeddings=True)
        for threshold in THRESHOLDS:
            whole, mixed = grouping_figures(vectors, labels, threshold)
            print(f"{folder}  threshold {threshold:.2f}  groups kept whole {whole:.2f}  mixed groups a run {mixed:.1f}")


if __name__ == "__main__":
    main()
