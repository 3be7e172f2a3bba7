"""The chat page's HTML: quotes highlighted in place, markers and cards that open sources, untrusted text escaped."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from html import unescape

import gradio as gr
import pytest
from pydantic import SecretStr

from app.gaps import Gap, NearDocument
from app.service import Deletion, token_accepted
from app.uploads import UploadResult
from ingest.health import DocumentHealth, HealthWarning
from ingest.records import Document, Page, Section
from retrieval.records import Answer, Citation, Correction, Hit, StoredDocument
from ui import web

SCRIPT = "<script>window.__pwned = 1</script>"
IMG = '<img src=x onerror="window.__pwned = 2">'

PASSAGE_TEXT = "Servers run in Hangzhou. Xiaohongshu relies on Alibaba Cloud. Storage is local."
QUOTE = "Xiaohongshu relies on Alibaba Cloud."


def hit(text: str = PASSAGE_TEXT, *, start: int = 100, chunk_id: str = "c1", **overrides) -> Hit:
    fields = dict(
        chunk_id=chunk_id, document_id="d1", source="corpus/cloud.txt", title="Cloud notes", heading="Hosting",
        page=None, line_start=4, line_end=6, start=start, end=start + len(text), text=text, score=0.9,
    )
    return Hit.from_dict({**fields, **overrides})


def citation(passage: Hit, quote: str = QUOTE, *, n: int = 1, **overrides) -> Citation:
    start = passage.start + passage.text.index(quote)
    fields = dict(
        n=n, chunk_id=passage.chunk_id, document_id=passage.document_id, source=passage.source, title=passage.title,
        heading=passage.place.heading, page=passage.place.page, line_start=5, line_end=5, start=start,
        end=start + len(quote), quote=quote, score=0.8,
    )
    return Citation.from_dict({**fields, **overrides})


def visible_text(markup: str) -> str:
    """What a reader sees: tags dropped, entities decoded."""
    return unescape(re.sub(r"<[^>]+>", "", markup))


def tags(markup: str) -> list[str]:
    return re.findall(r"<\s*([a-zA-Z][a-zA-Z0-9]*)", markup)


def test_highlight_marks_exactly_the_span_and_escapes_each_part():
    text = f"before {SCRIPT} <quote & more> after {IMG}"
    start = text.index("<quote")
    end = start + len("<quote & more>")

    markup = web.highlight(text, start, end, mark_id="cited")

    assert re.search(r'<mark id="cited">([^<]*)</mark>', markup).group(1) == "&lt;quote &amp; more&gt;"
    assert visible_text(markup) == text
    assert set(tags(markup)) == {"mark"}


def test_highlight_clamps_a_span_outside_the_text():
    assert web.highlight("abc", -5, 99) == "<mark>abc</mark>"
    assert web.highlight("abc", 2, 1) == "ab<mark></mark>c"


def test_a_citation_card_highlights_the_quote_inside_its_passage():
    passage = hit()
    cited = citation(passage)

    card = web.citation_card(cited, [hit(chunk_id="other"), passage])

    assert re.search(r"<mark>([^<]*)</mark>", card).group(1) == QUOTE
    text = visible_text(card)
    assert "[1]" in text and "Cloud notes" in text and "§ Hosting" in text and "line 5" in text
    assert "corpus/cloud.txt" in text
    assert "Servers run in Hangzhou." in text and "Storage is local." in text
    # Clicking the card opens the document at the quote.
    assert f'data-document="d1" data-start="{cited.start}" data-end="{cited.end}"' in card


def test_a_citation_card_without_its_passage_shows_the_quote_alone():
    cited = citation(hit())

    card = web.citation_card(cited, [hit(chunk_id="unrelated", text="Something else entirely.")])

    assert re.search(r"<mark>([^<]*)</mark>", card).group(1) == QUOTE
    assert "Servers run in Hangzhou" not in card


def test_a_card_names_the_section_page_and_lines_of_its_passage():
    card = visible_text(web.hit_card(hit(page=3)))
    assert "Cloud notes · § Hosting · p. 3 · lines 4–6" in card
    assert "Cloud notes · lines 4–6" in visible_text(web.hit_card(hit(heading=None)))
    assert "Cloud notes · line 4" in visible_text(web.hit_card(hit(heading=None, line_end=4)))


def test_answer_markers_become_buttons_that_open_their_citation():
    first, second = hit(), hit("Payments go through Alipay.", chunk_id="c2", start=500)
    one, two = citation(first), citation(second, "Payments go through Alipay.", n=2)
    answer = Answer("q", True, f"{QUOTE} [1] Payments go through Alipay. [2]", (one, two), (first, second))

    markup = web.answer_text(answer)

    markers = re.findall(r'<button[^>]*data-start="(\d+)"[^>]*>\[(\d)\]</button>', markup)
    assert markers == [(str(one.start), "1"), (str(two.start), "2")]
    assert visible_text(markup) == answer.answer


def test_a_bracketed_number_inside_a_quote_is_not_taken_for_its_marker():
    quote = "Revenue grew [1] in 2024."
    passage = hit(quote)
    cited = citation(passage, quote)
    answer = Answer("q", True, f"{quote} [1]", (cited,), (passage,))

    markup = web.answer_text(answer)

    assert markup.startswith("Revenue grew [1] in 2024. <button")
    assert markup.count("<button") == 1


def test_an_answer_turn_shows_question_quotes_and_cards():
    passage = hit()
    answer = Answer("Which cloud?", True, f"{QUOTE} [1]", (citation(passage),), (passage,))

    markup = web.render_turn(answer)

    assert 'class="answer answered"' in markup and "not-found" not in markup
    assert markup.count('class="sb-card citation-card"') == 1
    assert "Which cloud?" in visible_text(markup)


def test_a_turn_says_how_a_misspelt_question_was_read_and_its_markdown_too():
    passage = hit()
    answer = Answer("Which clowd?", True, f"{QUOTE} [1]", (citation(passage),), (passage,),
                    corrections=(Correction("clowd", "cloud"),))

    markup = web.render_turn(answer, before="And the \"biggest\" one?")

    assert "Which clowd?" in visible_text(markup)
    assert "Read “clowd” as “cloud”." in visible_text(markup)
    markdown = unescape(re.search(r'data-markdown="([^"]*)"', markup).group(1))
    assert "Read “clowd” as “cloud”." in markdown and "Ask as typed" not in markdown
    # Beside the reading, a button asks the question again as typed, after the one it followed.
    button = re.search(r'<button type="button" class="sb-as-typed" data-question="([^"]*)" data-before="([^"]*)"', markup)
    assert [unescape(v) for v in button.groups()] == ["Which clowd?", 'And the "biggest" one?']
    plain = web.render_turn(replace(answer, corrections=()))
    assert "Read " not in visible_text(plain) and "sb-as-typed" not in plain
    # Drawn again from the kept conversation, the question it followed is the turn before.
    drawn = web.render_conversation([replace(answer, question="Which cloud?", corrections=()), answer])
    assert unescape(re.search(r'class="sb-as-typed"[^>]* data-before="([^"]*)"', drawn).group(1)) == "Which cloud?"


def test_a_declined_answer_is_a_distinct_box_with_see_also_passages():
    passages = (hit(), hit("Another passage.", chunk_id="c2", start=900))
    answer = Answer("How do I request leave?", False, "The documents do not say.", (), passages)

    markup = web.render_turn(answer)

    assert 'class="answer not-found"' in markup and "answered" not in markup
    assert "See also" in markup
    assert markup.count('class="sb-card passage-card"') == 2
    assert "citation-card" not in markup and "<mark" not in markup
    # A see-also card opens its whole passage.
    assert 'data-document="d1" data-start="900" data-end="916"' in markup
    # A short passage is shown whole, with nothing more to open.
    assert "Another passage." in visible_text(markup) and "Show the whole passage" not in markup


def copied_text(card: str, button: str) -> str:
    """What the copy button with this accessible name puts on the clipboard."""
    return unescape(re.search(rf'data-copy="([^"]*)" aria-label="{re.escape(button)}"', card).group(1))


def test_a_see_also_card_shows_the_opening_of_its_passage_and_copies_it_with_its_citation():
    text = " ".join(f"Leave request rule {n}: ask your manager a week ahead." for n in range(1, 9))
    passage = hit(text, start=900, page=2)
    declined = Answer("How do I request leave?", False, "The documents do not say.", (), (passage,))

    card = web.render_turn(declined, base="http://docs.example")

    shown = visible_text(re.search(r'<p class="card-text">(.*?)</p>', card).group(1))
    # Its opening, cut at a word, and the rest behind "Show the whole passage".
    assert shown.startswith("Leave request rule 1: ask your manager") and shown.endswith("…"), shown
    assert text.startswith(shown.removesuffix("…")) and len(shown) < len(text) / 2, shown
    assert "Show the whole passage" in visible_text(card)
    assert visible_text(re.search(r'<p class="card-whole">(.*?)</p>', card).group(1)) == text
    # Copy and Copy as Markdown, as on a citation card: the passage with where it is.
    assert copied_text(card, "Copy the passage from Cloud notes with its citation") == (
        f'"{text}" (Cloud notes, § Hosting, p. 2, lines 4–6, corpus/cloud.txt)'
    )
    assert copied_text(card, "Copy the passage from Cloud notes as Markdown") == (
        f'"{text}" ([Cloud notes](http://docs.example{passage.url}), § Hosting, p. 2, lines 4–6, corpus/cloud.txt)'
    )
    assert f'<a class="card-link" href="{passage.url.replace("&", "&amp;")}"' in card


def test_untrusted_text_everywhere_in_a_turn_is_escaped():
    payload = f"{SCRIPT} {IMG}"
    passage = hit(f"Payload test: {payload} end. {QUOTE}", title=f"Title {IMG}", heading=f"Heading {SCRIPT}",
                  source=f"corpus/{IMG}.txt")
    cited = citation(passage)
    answered = Answer(f"Question {IMG}?", True, f"{QUOTE} [1]", (cited,), (passage,))
    declined = Answer(f"Question {SCRIPT}?", False, f"Not found {IMG}", (), (passage,))

    # A stored comment is the reader's own text: escaped too.
    ratings = {answered.id: {"rating": "down", "comment": f"</textarea>{IMG}"}}
    for markup in (web.render_conversation([answered, declined], ratings=ratings), web.hit_card(passage)):
        assert set(tags(markup)) <= {"div", "p", "span", "mark", "button", "h4", "a", "textarea"}, set(tags(markup))
        assert "<script" not in markup and "<img" not in markup
        assert SCRIPT in visible_text(markup) and IMG in visible_text(markup)


def test_a_span_whose_text_changed_since_the_link_opens_with_a_note_saying_so():
    text = "Title\n\nThe storm of 1912 tore the lantern from the gallery roof.\n"
    document = Document("corpus/log.txt", "Lighthouse log", text)
    start = text.index("The storm")
    end = start + len("The storm of 1911 tore the lantern from the gallery roof.")
    linked = hashlib.sha256("The storm of 1911 tore the lantern from the gallery roof.".encode()).hexdigest()[:8]
    now = hashlib.sha256(text[start:end].encode()).hexdigest()[:8]

    changed = web.render_span(document, start, end, opened=3, expected=linked)
    same = web.render_span(document, start, end, opened=3, expected=now)

    note = re.search(r'<div class="viewer-changed" role="status">([^<]*)</div>', changed).group(1)
    assert unescape(note) == (
        "This passage has changed since the link was made: the text marked below is what “Lighthouse log” holds at "
        "its place now, not the text the link was made for."
    )
    # The document is still opened at the span.
    assert re.search(r'<mark id="cited">([^<]*)</mark>', changed).group(1) == text[start:end]
    assert "viewer-changed" not in same and "viewer-changed" not in web.render_span(document, start, end, opened=3)


def test_the_viewer_shows_the_whole_document_with_the_cited_span_marked():
    text = "Title\n\nHosting\nServers run in Hangzhou. Xiaohongshu relies on Alibaba Cloud.\nMore text.\n"
    start = text.index(QUOTE)
    document = Document("corpus/cloud.txt", "Cloud notes", text, sections=(Section("Hosting", 7, len(text)),))

    markup = web.render_viewer(document, start, start + len(QUOTE), opened=7)

    assert re.search(r'<mark id="cited">([^<]*)</mark>', markup).group(1) == QUOTE
    body = re.search(r'<div class="viewer-text">(.*)</div></div></div>$', markup, re.S).group(1)
    assert visible_text(body) == text
    assert "§ Hosting · line 4 · corpus/cloud.txt" in visible_text(markup)
    assert 'data-opened="7"' in markup


def test_the_viewer_names_the_page_of_a_paginated_document():
    text = "Page one text.\fPage two has the quote here.\f"
    start = text.index("the quote")
    document = Document("corpus/report.pdf", "Report", text, pages=(Page(1, 0, 15), Page(2, 15, len(text))))

    markup = web.render_viewer(document, start, start + len("the quote"))

    assert "p. 2 · line 1" in visible_text(markup)


def test_a_link_names_a_document_and_a_span_or_nothing():
    assert web.linked_span({"doc": "d1", "start": "12", "end": "40", "h": "0a1b2c3d"}) == ("d1", 12, 40, "0a1b2c3d")
    # A link made before links carried the hash of their text.
    assert web.linked_span({"doc": "d1", "start": "12", "end": "40"}) == ("d1", 12, 40, None)
    assert web.linked_span({}) is None
    assert web.linked_span({"start": "1", "end": "2"}) is None
    for bad in ({"doc": "d1", "start": "-1", "end": "4"}, {"doc": "d1", "start": "1"}, {"doc": "d1", "start": "1e3", "end": "9"}):
        with pytest.raises(ValueError, match="must be a whole number"):
            web.linked_span(bad)
    with pytest.raises(ValueError, match="its h must be 8 hexadecimal digits, got '<script>'"):
        web.linked_span({"doc": "d1", "start": "12", "end": "40", "h": "<script>"})


def test_a_span_the_document_no_longer_has_is_a_message_not_a_highlight():
    document = Document("corpus/cloud.txt", "Cloud notes", "Servers run in Hangzhou.")

    assert '<mark id="cited">Servers</mark>' in web.render_span(document, 0, 7)
    for start, end in ((10, 99), (30, 40), (5, 5)):
        markup = web.render_span(document, start, end)
        assert "<mark" not in markup
        assert "is no longer in “Cloud notes”, which now has 24 characters" in visible_text(markup)


def test_the_viewer_windows_a_huge_document_around_the_cited_span():
    text = "x" * (web.VIEWER_CHARS * 2) + "NEEDLE" + "y" * web.VIEWER_CHARS
    start = text.index("NEEDLE")

    markup = web.render_viewer(Document("big.txt", "Big", text), start, start + 6)

    assert re.search(r'<mark id="cited">([^<]*)</mark>', markup).group(1) == "NEEDLE"
    assert len(markup) < web.VIEWER_CHARS + 2_000
    assert f"of {len(text):,}" in visible_text(markup)


def test_the_viewer_escapes_document_text_and_title():
    text = f"Payload test: {SCRIPT} and {IMG} end."
    start = text.index(SCRIPT)
    document = Document(f"corpus/{IMG}.txt", f"Title {IMG}", text)

    markup = web.render_viewer(document, start, start + len(SCRIPT))

    assert "<script" not in markup and "<img" not in markup
    assert re.search(r'<mark id="cited">([^<]*)</mark>', markup).group(1) == "&lt;script&gt;window.__pwned = 1&lt;/script&gt;"
    assert text in visible_text(markup)


def stored(title: str, source: str, *, updated: float = 1_700_000_000.0, size: int = 2048) -> StoredDocument:
    return StoredDocument(id=source, source=source, title=title, size=size, chunks=3, updated=updated, content_hash="h")


def test_the_start_screen_counts_documents_and_offers_suggestions_as_buttons():
    documents = [stored("Handbook", "corpus/handbook.md"), stored(f"Odd {IMG}", "corpus/odd.txt")]
    question = 'What is "Handbook" <about>?'

    markup = web.render_start(documents, (2, 41), [question, "Who founded it?"])

    assert "The library holds 2 documents in 41 passages." in visible_text(markup)
    assert re.findall(r'data-question="([^"]*)"', markup)[0] == "What is &quot;Handbook&quot; &lt;about&gt;?"
    assert markup.count('class="suggestion"') == 2
    assert "<img" not in markup and IMG in visible_text(markup)


def test_the_start_screen_for_an_empty_library_points_to_the_sources_tab():
    markup = web.render_start([], (0, 0), [])

    assert "The library is empty" in markup and "Sources" in markup and "suggestion" not in markup


def test_the_start_screen_lists_a_big_library_briefly():
    documents = [stored(f"Doc {i}", f"corpus/{i}.txt") for i in range(web.START_TITLES + 5)]

    markup = web.render_start(documents, (len(documents), 1), [])

    assert markup.count("<li>") == web.START_TITLES
    assert "and 5 more documents" in markup
    assert "1 passage." in visible_text(markup)


def test_upload_results_show_each_file_its_status_and_reason():
    results = [
        UploadResult("notes.md", "added", "d1"),
        UploadResult(f"{IMG}.bin", "failed", None, "'.bin' files are not supported"),
    ]

    markup = web.render_upload_results(results)

    lines = [visible_text(line) for line in re.findall(r'<li class="upload-result">.*?</li>', markup)]
    assert lines == ["notes.md added", f"{IMG}.bin failed: '.bin' files are not supported"]
    assert "<img" not in markup


def test_the_documents_table_lists_newest_first_with_readable_sizes():
    documents = [stored("Old", "corpus/old.txt", updated=1_000.0, size=999), stored("New", "corpus/new.txt", updated=2_000.0, size=1_500_000)]

    rows = web.document_rows(documents)

    assert [row[0] for row in rows] == ["New", "Old"]
    assert rows[0][2] == "1.5 MB" and rows[1][2] == "999 B"
    assert rows[0][3] == 3 and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", rows[0][4])
    # Stored before health was kept: said so, with what fixes it.
    assert rows[0][5] == "not checked yet: run sourcebook ingest"
    assert web.document_choices(documents) == [("New (corpus/new.txt)", "corpus/new.txt"), ("Old (corpus/old.txt)", "corpus/old.txt")]


def test_the_documents_table_says_each_documents_health_in_the_words_of_sourcebook_docs():
    scan = HealthWarning("no_text", "page 2 has no text: a scan?", pages=(2,))
    empty = HealthWarning("empty_section", "section “Budget” is empty", sections=("Budget",))
    documents = [
        replace(stored("Scan", "corpus/scan.pdf", updated=2.0), health=DocumentHealth(page_chars=(900, 0), warnings=(scan, empty))),
        replace(stored("Fine", "corpus/fine.txt", updated=1.0), health=DocumentHealth()),
    ]

    rows = web.document_rows(documents)

    assert [row[5] for row in rows] == ["⚠ page 2 has no text: a scan? ⚠ section “Budget” is empty", "ok"]


def test_the_page_builds_over_a_service_and_wires_citation_clicks_and_suggestions(make_service):
    page = web.build_page(make_service())

    assert isinstance(page, gr.Blocks)
    config = page.get_config_file()
    triggers = {target[1] for dependency in config["dependencies"] for target in dependency["targets"]}
    assert {"click", "submit", "cite", "suggest", "upload", "select", "load"} <= triggers


def test_changes_need_the_token_only_when_one_is_configured():
    assert token_accepted(None, "")
    assert token_accepted(SecretStr("s3cret"), "s3cret")
    assert not token_accepted(SecretStr("s3cret"), "")
    assert not token_accepted(SecretStr("s3cret"), None)
    assert not token_accepted(SecretStr("s3cret"), "s3cre")


def test_copy_buttons_carry_the_citation_text_exactly_and_escaped():
    passage = hit(f"Payload {SCRIPT} here. {QUOTE}", title=f"Notes {IMG}")
    cited = citation(passage)
    answer = Answer("q", True, f"{QUOTE} [1]", (cited,), (passage,))

    markup = web.render_turn(answer, base="http://docs.example:7860")

    copies = [unescape(text) for text in re.findall(r'data-copy="([^"]*)"', markup)]
    assert copies == [
        answer.cite(),
        answer.cite_markdown(base="http://docs.example:7860"),
        cited.cite(),
        cited.cite_markdown(base="http://docs.example:7860"),
    ]
    assert copies[2] == f'"{QUOTE}" (Notes {IMG}, § Hosting, line 5, corpus/cloud.txt)'
    assert "<img" not in markup
    digest = hashlib.sha256(QUOTE.encode()).hexdigest()[:8]
    assert f'href="/?doc=d1&amp;start={cited.start}&amp;end={cited.end}&amp;h={digest}"' in markup


class Headers:
    def __init__(self, origin: str | None) -> None:
        self.headers = {} if origin is None else {"origin": origin}


def test_markdown_links_start_at_the_origin_the_browser_names_or_stay_relative():
    assert web.page_origin(Headers("http://127.0.0.1:7860")) == "http://127.0.0.1:7860"
    assert web.page_origin(Headers("https://docs.example.com")) == "https://docs.example.com"
    assert web.page_origin(Headers("https://[::1]:8443")) == "https://[::1]:8443"
    for odd in (None, "null", "javascript:alert(1)", "http://host/path", 'http://a" onmouseover="x'):
        assert web.page_origin(Headers(odd)) == ""


def test_a_card_quotes_in_a_little_context_cut_at_words_and_keeps_the_whole_passage_folded():
    text = " ".join(f"word{n}" for n in range(100)) + f" {QUOTE} " + " ".join(f"tail{n}" for n in range(100))
    passage = hit(text)
    cited = citation(passage)

    card = web.citation_card(cited, [passage])

    excerpt = visible_text(re.search(r'<p class="card-text">(.*?)</p>', card).group(1))
    assert excerpt.startswith("…word") and excerpt.endswith("…")
    assert QUOTE in excerpt and len(excerpt) < len(QUOTE) + 2 * web.CARD_CONTEXT + 2
    # Whole words only: each word either side is one the passage has.
    assert set(excerpt.strip("…").replace(QUOTE, " ").split()) <= set(text.split())
    whole = visible_text(re.search(r'<p class="card-whole">(.*?)</p>', card).group(1))
    assert whole == text
    assert "<details" in card and "Show the whole passage" in card


def test_a_short_passage_is_shown_whole_with_nothing_to_expand():
    passage = hit()
    card = web.citation_card(citation(passage), [passage])

    assert visible_text(re.search(r'<p class="card-text">(.*?)</p>', card).group(1)) == PASSAGE_TEXT
    assert "<details" not in card


def test_an_opened_passage_or_its_failure_offers_the_way_back_but_the_first_hint_does_not():
    document = Document("corpus/cloud.txt", "Cloud notes", PASSAGE_TEXT)
    opened = web.render_viewer(document, 25, 61, opened=5)
    gone = web.render_viewer_message("That document is no longer in the library.", opened=5)
    hint = web.render_viewer_message("Click a citation.")

    for markup in (opened, gone):
        assert 'data-opened="5"' in markup and "Back to the answer" in markup
    assert "data-opened" not in hint and "Back to the answer" not in hint
    assert re.search(r'<div class="viewer-empty">([^<]*)</div>', gone).group(1) == "That document is no longer in the library."


def test_each_answer_shows_its_own_rating_with_the_thumb_set_and_its_comment():
    passage = hit()
    answered = Answer("Which cloud?", True, f"{QUOTE} [1]", (citation(passage),), (passage,))
    declined = Answer("Who is the chief executive?", False, "Not found", (), (passage,))

    markup = web.render_conversation(
        [answered, declined], ratings={answered.id: {"rating": "down", "comment": "Wrong region"}}
    )

    first, second = re.findall(r'<div class="rating".*?</div>', markup, re.S)
    assert f'data-answer="{answered.id}"' in first and f'data-answer="{declined.id}"' in second
    assert re.search(r'class="sb-rate down"[^>]*aria-pressed="true"', first)
    assert re.search(r'class="sb-rate up"[^>]*aria-pressed="false"', first)
    assert "Wrong region</textarea>" in first
    assert "You rated this answer not helpful, with a comment." in visible_text(first)
    assert 'aria-pressed="true"' not in second and "Not rated yet." in visible_text(second)


def test_gaps_are_listed_most_asked_first_with_every_wording_escaped():
    near = NearDocument("d1", f"Title {IMG}", f"corpus/{IMG}.txt", 2)
    gaps = [
        Gap(f"Fee {SCRIPT}?", 3, (f"Fee {SCRIPT}?", "The fee?", "Fees?"), 1_700_000_000.0, 1_700_000_600.0, (near,)),
        Gap("Who leads?", 1, ("Who leads?",), 1_700_000_100.0, 1_700_000_100.0, ()),
    ]

    markup = web.render_gaps(gaps)

    assert set(tags(markup)) <= {"div", "table", "thead", "tbody", "tr", "th", "td", "span", "ul", "li", "br"}
    assert "<script" not in markup and "<img" not in markup
    rows = re.findall(r'<tr class="gap">.*?</tr>', markup, re.S)
    assert [visible_text(re.search(r'<td class="count">(\d+)</td>', row).group(0)) for row in rows] == ["3", "1"]
    assert f"Fee {SCRIPT}?" in visible_text(rows[0]) and "The fee?" in visible_text(rows[0])
    assert f"Title {IMG} corpus/{IMG}.txt (2 times)" in visible_text(rows[0])
    assert "No gaps" in visible_text(web.render_gaps([]))


def test_a_deletion_says_where_the_file_went_and_offers_undo_with_names_escaped():
    deletion = Deletion("0123456789abcdef", f"Title {IMG}", f"corpus/{IMG}.txt", 3, f".deleted/{IMG}.20250101T000000Z-1a2b3c4d.txt")

    markup = web.render_deletion(deletion)

    assert "<img" not in markup and set(tags(markup)) <= {"div", "span", "code", "button"}
    assert f"Deleted Title {IMG} (3 passages)." in visible_text(markup)
    assert f"kept in the corpus folder as .deleted/{IMG}.2025" in visible_text(markup)
    assert 'class="sb-restore" data-restore="0123456789abcdef"' in markup
    no_file = web.render_deletion(Deletion("0123456789abcdef", "Bench", "bench:1", 1, None))
    assert "sb-restore" not in no_file and "no file in the corpus folder" in visible_text(no_file)


def test_an_upload_in_progress_shows_files_done_of_the_total_and_the_current_file_escaped():
    markup = web.render_upload_progress([UploadResult("a.txt", "added")], 3, f"{IMG}.txt")

    assert "<img" not in markup and '<progress value="1" max="3">' in markup
    assert f"1 of 3 files done; indexing {IMG}.txt…" in visible_text(markup)
    assert "a.txt added" in visible_text(markup)
