"""Made-up tables for reader training (training/tables.py): rows read as served, questions labelled right."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from training.tables import DOMAINS, served_rows, table_pairs

pytestmark = pytest.mark.fast


def test_every_made_up_table_reads_back_whole_row_by_row_as_served():
    # table_rows must find every row (a dot in a cell, "c. 1475", once cut rows in two); served_rows
    # raises when it does not. Each row is read with its header's labels.
    pairs = table_pairs(300, random.Random(5))
    rows = [p.context.split(" [SEP] ")[0] for p in pairs]
    assert all(" — " in row for row in rows)
    labelled, before = served_rows("Rooms we book.", ["Room", "Made", "Seats"], [["Cedar", "c. 1475", "20"]])
    assert labelled == ["Cedar — Made c. 1475, Seats 20"] and before == "Rooms we book."


def test_a_question_is_answered_by_the_row_holding_its_cell_and_its_near_misses_by_none():
    pairs = table_pairs(200, random.Random(7))
    groups = defaultdict(list)
    for pair in pairs:
        groups[pair.group].append(pair)
    asked = [g for g in groups if not g.endswith("/swapped")]
    assert len(asked) == 600
    for group in asked:
        positives = [p for p in groups[group] if p.label == 1.0]
        negatives = [p for p in groups[group] if p.label == 0.0]
        # One row answers; the others read are other rows of the same table.
        assert len(positives) == 1 and negatives and all(p.context != positives[0].context for p in negatives)
        for miss in groups.get(f"{group}/swapped", []):
            # A near miss is a changed question, no row answering it, read against the row the
            # question was made from (the ranking loss puts it below that answer).
            assert miss.label == 0.0 and miss.context == positives[0].context
            assert miss.question != positives[0].question
    misses = [g for g in groups if g.endswith("/swapped")]
    assert 0.4 * len(asked) < len(misses) < 0.8 * len(asked)


def test_a_row_asked_for_its_name_holds_the_name_and_the_asked_column():
    # Where a question names its row, the positive row starts with that name; every domain's
    # columns are asked for somewhere.
    rng = random.Random(11)
    pairs = table_pairs(400, rng)
    labels = {column.label for domain in DOMAINS for column in domain.columns}
    asked_labels = set()
    for pair in pairs:
        if pair.label != 1.0:
            continue
        row = pair.context.split(" [SEP] ")[0]
        name, _, cells = row.partition(" — ")
        values = [cell.removeprefix(f"{label} ") for cell in cells.split(", ") for label in labels
                  if cell.startswith(f"{label} ")]
        assert name in pair.question or any(value in pair.question for value in values), (pair.question, row)
        asked_labels |= {label for label in labels if f"{label} " in cells}
    assert asked_labels == labels


def test_the_same_seed_makes_the_same_tables():
    assert table_pairs(20, random.Random(3)) == table_pairs(20, random.Random(3))
