"""Misspelt words of a question are read as the library's nearest words; everything else as typed."""

from __future__ import annotations

import pytest

from retrieval import spelling
from retrieval.keyword import KeywordIndex
from retrieval.records import Answer, Correction, KeywordPassage

LIBRARY = ("Xiaohongshu employees advertising spend grew in 2024. Xiaohongshu's founders launched it. "
           "The advertisers pay for reach. Paris hosts no office.")
WORDS = spelling.words_of(LIBRARY)


def _corrections(question: str):
    known = {w.casefold() for w in WORDS}
    return spelling.corrections(
        question,
        known=lambda word: word.casefold() in known,
        english=spelling.is_english,
        library_words_near=lambda word, edits: WORDS,
    )


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("employes", "employees", 1), ("advertiing", "advertising", 1), ("Xioohongshu".casefold(), "xiaohongshu", 1),
     ("form", "from", 1), ("xaiohongshu", "xiaohongshu", 1), ("founded", "fonuded", 1), ("abc", "abc", 0),
     ("monetisation", "monetization", 1), ("kitten", "sitting", 3)],
)
def test_edit_distance_counts_a_swap_of_neighbours_as_one_edit(a, b, distance):
    assert spelling.edit_distance(a, b, limit=5) == distance
    # Past the limit it stops counting.
    assert spelling.edit_distance(a, b, limit=0) == min(distance, 1)


def test_a_misspelt_word_is_read_as_the_nearest_library_word():
    assert _corrections("How many employes does Xioohongshu have?") == (
        Correction("employes", "employees"), Correction("Xioohongshu", "Xiaohongshu"),
    )
    # Two edits for a long word; one only for a short one ("adverts" is 3 from "advertisers").
    assert _corrections("What did the advertsers pay?") == (Correction("advertsers", "advertisers"),)
    assert _corrections("Who pays for the adverts?") == ()


def test_library_words_english_words_short_words_and_figures_are_read_as_typed():
    # "Paris" is an English word the library happens to hold; "weather" one it does not: a question
    # may ask what the documents lack, and "pairs" is not what "Paris" meant.
    assert _corrections("What is the weather in Paris for the founders?") == ()
    assert _corrections("Is the ofc in Lemn8 or 2O24?") == ()  # short; with digits
    # No library word is near enough: left as typed.
    assert _corrections("Who is the Xylophonist?") == ()


def test_another_form_of_a_library_word_is_not_a_slip():
    known = {w.casefold() for w in WORDS}
    stem = lambda word: word.casefold().removesuffix("s")  # noqa: E731 (a stand-in for the index's stemmer)

    found = spelling.corrections("Which employes and advertiser?", known=lambda word: word.casefold() in known,
                                 english=lambda word: False, library_words_near=lambda word, edits: WORDS,
                                 same_stem=lambda a, b: stem(a) == stem(b))

    # "advertiser" is "advertisers" less its s; "employes" is a slip for "employees".
    assert found == (Correction("employes", "employees"),)


def test_a_question_with_many_unknown_words_is_not_taken_for_misspelt_english():
    assert _corrections("Xioohongshu employes advertsers founderz?") == ()
    assert len(_corrections("Xioohongshu employes advertsers?")) == 3


def test_of_equally_near_words_the_more_frequent_wins_and_the_first_letter_must_match():
    words = ["founded", "found", "found", "pound", "pound", "pound"]
    assert spelling.nearest("foundd", words) == "found"
    # "pounds" is as near to "founds" as "found", but starts with another letter.
    assert spelling.nearest("founds", words) == "found"


def test_a_first_letter_left_out_or_swapped_is_a_slip_but_one_changed_is_another_name():
    assert spelling.nearest("ikTok", ["TikTok"]) == "TikTok"
    assert spelling.nearest("mAerican", ["American"]) == "American"
    assert spelling.nearest("Tanya", ["Sanya", "Sanya"]) is None
    # As near, the word with the typed first letter wins over a more frequent one.
    assert spelling.nearest("arge", ["large"] * 5 + ["argue"]) == "argue"


def test_a_word_the_english_list_holds_at_all_is_no_first_letter_slip():
    words = ["Packets", "travel", "asynchronously"]
    ask = lambda listed: spelling.corrections(  # noqa: E731
        "How do packets travel synchronously?", known=lambda word: word.casefold() in {"packets", "travel"},
        english=lambda word: False, library_words_near=lambda word, edits: words, listed=listed)

    # "synchronously" is in the list's rare words: not "asynchronously" with its "a" left out.
    assert ask(lambda word: word == "synchronously") == ()
    assert ask(lambda word: False) == (Correction("synchronously", "asynchronously"),)
    assert spelling.is_listed("synchronously") and not spelling.is_english("synchronously")
    assert not spelling.is_listed("xiaohongshu")


def test_a_short_word_with_a_capital_inside_is_a_code_read_as_typed():
    words = ["The", "FIS", "was", "founded", "OmpA", "binds", "Lemon"]
    ask = lambda question: spelling.corrections(  # noqa: E731
        question, known=lambda word: word in words, english=lambda word: False,
        library_words_near=lambda word, edits: words)

    assert ask("When was the FISS founded?") == ()
    assert ask("What OmpF binds?") == ()
    # A longer name with capitals inside is still read as the library spells it; so is a short word
    # with a capital at its start only.
    assert spelling.nearest("LemonEight", ["LemonLight"]) == "LemonLight"
    assert ask("What binds Lemn?") == (Correction("Lemn", "Lemon"),)
    assert not spelling.is_code("Lemn") and spelling.is_code("dLNs") and spelling.is_code("RUNX")


def test_words_typed_apart_that_the_library_writes_as_one_are_read_as_one():
    words = ["TikTok", "TikTok", "tiktok", "users", "Red", "Note", "RedNote", "Xiaohongshu", "left", "rain"]
    known = {w.casefold() for w in words}
    ask = lambda question: spelling.corrections(  # noqa: E731
        question, known=lambda word: word.casefold() in known, english=spelling.is_english,
        library_words_near=lambda word, edits: words)

    assert ask("Why did Tik Tok's users leave?") == (Correction("Tik Tok", "TikTok"),)
    assert ask("Tik Tok users left Tik Tok") == (Correction("Tik Tok", "TikTok"),)  # once, read everywhere
    assert ask("Why did tik tok users leave?") == (Correction("tik tok", "tiktok"),)
    assert ask("Who runs Xiao Hong Shu?") == (Correction("Xiao Hong Shu", "Xiaohongshu"),)
    # Each a library word: found as they are. Not a library word joined: as typed.
    assert ask("Did users leave Red Note?") == ()
    assert ask("Did rain forest users leave?") == ()
    # A comma between is not one word typed apart.
    assert ask("Tik, Tok users left") == ()


def test_a_word_typed_in_lower_case_stays_in_lower_case_and_a_name_takes_the_librarys_form():
    words = ["Launched", "launched", "Launched", "REDnote", "REDnote"]
    assert spelling.nearest("launchd", words) == "launched"
    assert spelling.nearest("Rednte", words) == "REDnote"


def test_the_question_is_read_with_each_correction_possessives_and_all():
    found = (Correction("Xioohongshu", "Xiaohongshu"), Correction("employes", "employees"))

    read = spelling.corrected("Are Xioohongshu's employes paid? Ask Xioohongshu.", found)

    assert read == "Are Xiaohongshu's employees paid? Ask Xiaohongshu."
    # A word that only contains the typed one is left alone.
    assert spelling.corrected("unemployes", found) == "unemployes"


def test_the_english_list_is_pyspellchecker_s_common_words():
    assert spelling.is_english("weather") and spelling.is_english("paris") and spelling.is_english("disarmed")
    assert not spelling.is_english("goverment") and not spelling.is_english("xiaohongshu")


def test_the_keyword_index_finds_the_passages_holding_a_word_near_a_misspelling(tmp_path):
    passages = [KeywordPassage(1, "Advertising spend grew in 2024.", "a.txt"),
                KeywordPassage(2, "The office is in Shanghai.", "b.txt")]
    keywords = KeywordIndex.build(tmp_path / "keyword", passages, generation=1)

    assert keywords.written("Advertising") and keywords.written("shanghai")
    # Its stem is in the index ("advertis"), the word as written is not.
    assert not keywords.written("advertise") and not keywords.written("advertiing")
    assert keywords.same_stem("valuations", "valuation") and not keywords.same_stem("employes", "employees")
    assert keywords.near("advertiing", 1, limit=5) == [1]
    assert keywords.near("Shangai", 1, limit=5) == [2]
    assert keywords.near("zebra", 2, limit=5) == []


def test_an_answer_says_how_its_question_was_read():
    answer = Answer("How many employes?", False, "The documents do not say.",
                    corrections=(Correction("employes", "employees"),))

    assert answer.reading() == "Read “employes” as “employees”."
    assert Answer.from_dict(answer.to_dict()) == answer
    assert Answer("q", False, "a").reading() == ""
    # An answer kept by a browser before corrections were recorded reads without them.
    kept = {k: v for k, v in answer.to_dict().items() if k != "corrections"}
    assert Answer.from_dict(kept).corrections == ()


def test_the_benchmarks_typos_are_one_slip_each_and_seeded():
    import random

    from bench.typos import slip, with_typo

    rng = random.Random(3)
    for word in ["Xiaohongshu", "employees", "advertising", "founders", "launched"] * 20:
        assert spelling.edit_distance(slip(word, rng).casefold(), word.casefold(), limit=3) == 1
    question = "How many employees does Xiaohongshu have?"
    typed = with_typo(question, random.Random(5))
    assert typed != question and typed == with_typo(question, random.Random(5))
    assert sum(a != b for a, b in zip(typed.split(), question.split(), strict=True)) == 1
