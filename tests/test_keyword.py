"""The keyword index ranks by BM25, follows changes once saved, and is rebuilt when stale."""

from __future__ import annotations

import json
import shutil

import pytest

from retrieval.keyword import SIDECAR, KeywordIndex
from retrieval.library import KEYWORD_DIR
from retrieval.records import KeywordPassage
from tests.helpers import write_files

PASSAGES = [
    KeywordPassage(1, "The kinase phosphorylates its target in dividing cells.", "lab/kinase.txt"),
    KeywordPassage(2, "The cell culture grew and the protein level rose.", "lab/culture.txt"),
    KeywordPassage(3, "Badges are collected at the front desk on Monday.", "office/badges.txt"),
    KeywordPassage(4, "Lost items go to the front desk.", "office/desk.txt"),
    KeywordPassage(5, "The protein assay is run every week.", "lab/assay.txt"),
]


@pytest.fixture
def keywords(tmp_path):
    return KeywordIndex.build(tmp_path / "keyword", PASSAGES, generation=7)


def rowids(ranked):
    return [rowid for rowid, _ in ranked]


def test_words_match_across_inflections_and_rarer_words_weigh_more(keywords):
    assert rowids(keywords.search("Which enzyme phosphorylated targets?", 5)) == [1]
    # "desk" is in two passages and "badges" in one: the passage with both ranks first.
    assert rowids(keywords.search("badge desk", 5))[0] == 3
    assert set(rowids(keywords.search("badge desk", 5))) == {3, 4}


def test_a_source_filter_keeps_to_that_source_without_changing_scores(keywords):
    everywhere = dict(keywords.search("protein cells", 5))
    filtered = keywords.search("protein cells", 5, source="lab/culture.txt")
    assert rowids(filtered) == [2]
    assert filtered[0][1] == pytest.approx(everywhere[2])


def test_stopwords_only_and_query_syntax_find_nothing_or_words(keywords):
    assert keywords.search("what is the", 5) == []
    assert rowids(keywords.search('badges" OR NEAR(desk AND * -', 5))[0] == 3


def test_changes_are_searchable_once_saved(keywords):
    keywords.remove([1])
    keywords.add([KeywordPassage(6, "A new kinase inhibitor was tested.", "lab/inhibitor.txt")])
    assert rowids(keywords.search("kinase", 5)) == [1]  # not yet saved

    keywords.save(generation=8)

    assert rowids(keywords.search("kinase", 5)) == [6]
    assert keywords.count == 5


def test_a_saved_index_opens_for_its_generation_only(keywords, tmp_path):
    keywords.save(generation=8)

    assert KeywordIndex.load(tmp_path / "keyword", generation=7) is None
    reopened = KeywordIndex.load(tmp_path / "keyword", generation=8)
    assert rowids(reopened.search("badge", 5)) == [3]
    assert KeywordIndex.load(tmp_path / "missing", generation=8) is None


def test_missing_words_are_those_no_passage_holds(keywords):
    assert keywords.missing_words(["Kinase", "Zanzibar", "front desk", "front Zanzibar"]) == ["Zanzibar", "front Zanzibar"]


def test_a_words_share_of_a_sources_passages_counts_that_source_only(tmp_path):
    passages = [
        KeywordPassage(1, "Acme makes tools.", "about.txt"), KeywordPassage(2, "Acme's smiths sell them.", "about.txt"),
        KeywordPassage(3, "The company opened in Berlin.", "about.txt"), KeywordPassage(4, "Staff get lunch.", "about.txt"),
        KeywordPassage(5, "Acme, Acme and Acme.", "news.txt"),
    ]
    index = KeywordIndex.build(tmp_path / "keyword", passages, generation=1)

    assert index.share_holding("Acme", "about.txt") == 0.5
    assert index.share_holding("acme", "news.txt") == 1.0
    assert index.share_holding("Berlin", "news.txt") == 0.0
    assert index.share_holding("Acme", "missing.txt") == 0.0


def test_common_words_are_those_in_more_than_the_share_of_passages(keywords):
    question = "Is the protein at the front desk?"
    # "the" is in 4 of 5 passages; "protein" and "front"/"desk" in 2 each; "is" in 1.
    common = [question[start:end] for start, end in keywords.common_word_spans(question, 0.3)]
    assert common == ["the", "protein", "the", "front", "desk"]
    assert [question[start:end] for start, end in keywords.common_word_spans(question, 0.5)] == ["the", "the"]
    assert keywords.common_word_spans("Proteins", 0.3) == [(0, 8)]  # compared after stemming


def test_a_library_rebuilds_a_missing_or_stale_keyword_index_from_the_store(make_service, tmp_path):
    files = {"a.txt": "Report\nThe kinase phosphorylates its target.\n", "b.txt": "Memo\nThe desk moves on Monday.\n"}
    service = make_service()
    service.ingest(write_files(tmp_path / "docs", files))
    directory = service.library.directory / KEYWORD_DIR
    expected = service.library.keywords.search("kinase monday", 5)

    shutil.rmtree(directory)
    assert make_service().library.keywords.search("kinase monday", 5) == expected

    sidecar = json.loads((directory / SIDECAR).read_text())
    (directory / SIDECAR).write_text(json.dumps({**sidecar, "generation": 0}))  # as if an ingest died before saving it
    assert make_service().library.keywords.search("kinase monday", 5) == expected

    (directory / SIDECAR).write_text(json.dumps({**sidecar, "layout": 0}))  # made by an older sourcebook
    assert make_service().library.keywords.search("kinase monday", 5) == expected


def test_a_library_writer_lets_another_writer_in_after_saving(make_service, tmp_path):
    """Each service is like another process: the index's writer lock is let go at every save."""
    first, second = make_service(), make_service()
    first.ingest(write_files(tmp_path / "one", {"a.txt": "Report\nThe kinase phosphorylates its target.\n"}))
    second.ingest(write_files(tmp_path / "two", {"b.txt": "Memo\nThe desk moves on Monday.\n"}))
    first.ingest(write_files(tmp_path / "one", {"c.txt": "Note\nThe kinase assay runs weekly.\n"}))

    sources = {first.library.store.chunks([r])[r].source for r, _ in first.library.keywords.search("kinase desk", 5)}
    assert sources == {"one/a.txt", "one/c.txt", "two/b.txt"}


def test_after_removals_scores_are_those_of_a_library_built_afresh(make_service, tmp_path):
    """Removed passages leave BM25's statistics, so a library's scores do not depend on its history."""
    files = {f"n{n}.txt": f"Note {n}\nThe kinase assay {n} ran on desk {n}.\n" for n in range(6)}
    folder = write_files(tmp_path / "docs", files)
    changed = make_service(index_dir=tmp_path / "changed")
    changed.ingest(folder)
    (folder / "n0.txt").unlink()
    (folder / "n1.txt").write_text("Note 1\nThe desk moved.\n")
    changed.ingest(folder)

    fresh = make_service(index_dir=tmp_path / "fresh")
    fresh.ingest(folder)

    def scores(service):
        store = service.library.store
        return sorted((store.chunks([r])[r].source, s) for r, s in service.library.keywords.search("kinase desk", 10))

    assert scores(changed) == scores(fresh)
    assert len(scores(fresh)) == 5


def test_a_server_takes_up_what_another_process_saved_and_nothing_half_done(make_service, tmp_path, monkeypatch):
    """A library serving searches picks up another writer's saved indexes, never its unsaved work."""
    from retrieval import library as library_module

    monkeypatch.setattr(library_module, "REFRESH_SECONDS", 0.0)
    serving = make_service()
    serving.ingest(write_files(tmp_path / "one", {"a.txt": "Report\nThe kinase phosphorylates its target.\n"}))
    writer = make_service()  # another process, say a CLI ingest beside the server
    before = serving.library.keywords

    # The writer's store has the document, but it died before saving its indexes.
    save_for_real = writer.library.save
    monkeypatch.setattr(writer.library, "save", lambda: None)
    writer.ingest(write_files(tmp_path / "two", {"b.txt": "Memo\nThe desk moves on Monday.\n"}))
    assert [h.source for h in serving.search("desk Monday", k=5).hits] == ["one/a.txt"]
    assert serving.library.keywords is before  # nothing rebuilt or reloaded

    save_for_real()
    assert serving.search("desk Monday", k=1).hits[0].source == "two/b.txt"
    assert serving.library.keywords is not before
