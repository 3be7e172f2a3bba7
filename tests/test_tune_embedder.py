"""Tuning the embedder for questions (training/tune_embedder.py): its windows, its hard negatives, a tiny run."""

from __future__ import annotations

import gzip
import hashlib
import json
import random

import numpy as np
import pytest

from retrieval.embedder import bundled_model_path
from training import tune_embedder
from training.tune_embedder import Example, examples, hard_negative, window

WORDS = tuple(f"w{n}" for n in range(100))


def test_a_window_holds_the_answers_word_and_stays_inside_its_paragraph():
    rng = random.Random(0)
    for centre in (0, 5, 50, 97, 99):
        for _ in range(20):
            text = window(WORDS, centre, 36, rng).split()
            assert len(text) == 36
            assert f"w{centre}" in text
    # A paragraph shorter than the window is the window.
    assert window(WORDS[:10], 4, 36, rng) == " ".join(WORDS[:10])


def test_the_hard_negative_comes_from_another_paragraph_sharing_the_questions_words():
    own = tuple("the festival began in 1921 in the old town square".split())
    alike = tuple("tickets for the festival in the town square sell out each spring, says the city".split())
    unlike = tuple("rainfall in the region peaks in november and december most years on record".split())
    example = Example("When did the town square festival begin?", 0, 4, (own, alike, unlike, ("too", "short")))

    for seed in range(10):
        negative = hard_negative(example, 36, random.Random(seed))
        assert negative == " ".join(alike)


def test_every_answered_question_becomes_an_example_at_its_answers_first_word():
    article = {"title": "T", "paragraphs": [
        {"context": "Alpha beta gamma delta.", "qas": [
            {"question": "What comes after beta?", "answers": [{"text": "gamma", "answer_start": 11}]},
            {"question": "Unanswerable?", "answers": [], "is_impossible": True},
        ]},
    ]}

    found = examples([article])

    assert [(e.question, e.paragraph, e.answer_word) for e in found] == [("What comes after beta?", 0, 2)]
    assert found[0].paragraphs[0][found[0].answer_word] == "gamma"


def _article(n: int) -> dict:
    facts = [
        (f"The bridge of town {n} was built in {1800 + n} by the river guild from grey stone blocks.",
         f"When was the bridge of town {n} built?", f"{1800 + n}"),
        (f"Town {n} holds a market every {['Monday', 'Friday'][n % 2]} where farmers sell cheese and apples.",
         f"On which day is the market of town {n}?", ["Monday", "Friday"][n % 2]),
        (f"The mayor of town {n} is elected for {4 + n % 3} years by the residents of all its districts.",
         f"How long does the mayor of town {n} serve?", f"{4 + n % 3} years"),
    ]
    paragraphs = []
    for context, question, answer in facts:
        paragraphs.append({"context": context, "qas": [
            {"question": question, "answers": [{"text": answer, "answer_start": context.index(answer)}]}]})
    return {"title": f"Town {n}", "paragraphs": paragraphs}


@pytest.mark.integration
def test_tuning_on_a_tiny_squad_lowers_the_loss_and_saves_a_model_with_its_card(tmp_path):
    from sentence_transformers import SentenceTransformer

    folder = tmp_path / "squad"
    folder.mkdir()
    with gzip.open(folder / "train-v1.1.json.gz", "wt", encoding="utf-8") as handle:
        json.dump({"version": "1.1", "data": [_article(n) for n in range(2)]}, handle)
    out = tmp_path / "embedder"

    # Six questions, all in each step: what it sees again it must fit better.
    arguments = ["--data", str(folder), "--out", str(out), "--steps", "10", "--batch", "6", "--lr", "1e-4"]
    losses = tune_embedder.main(arguments)

    assert len(losses) == 10
    assert np.mean(losses[-3:]) < losses[0]
    card = (out / "README.md").read_text()
    assert "CC BY-SA 4.0" in card and "--steps 10" in card
    assert hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest() in card
    tuned = SentenceTransformer(str(out), device="cpu")
    base = SentenceTransformer(str(bundled_model_path()), device="cpu")
    # The served limit is the base's, not the short one it trained at.
    assert tuned.max_seq_length == base.max_seq_length
    texts = ["When was the bridge of town 0 built?", "The bridge of town 0 was built in 1800."]
    tuned_vectors, base_vectors = tuned.encode(texts), base.encode(texts)
    assert tuned_vectors.shape == (2, 384)
    assert not np.allclose(tuned_vectors, base_vectors, atol=1e-4)
