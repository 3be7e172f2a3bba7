"""The page as a tool, in a real Chromium: copy quotes with their citations, keep and export a conversation,
read it in the viewer (wide and narrow), and the page's own fonts, focus rings and phone layout.

The server runs in this process with the fake model and the page mounted, as `sourcebook serve`
builds it, on a loopback port.
"""

from __future__ import annotations

import hashlib
import json

import playwright.sync_api as playwright_api
import pytest

from app.export import conversation_markdown
from tests.browser import ask, cited_mark_in_view, open_page
from tests.helpers import write_files
from tests.servers import serving
from ui.server import create_app

expect = playwright_api.expect
# The machine may be busy (a model training beside the tests): a page load can take seconds.
expect.set_options(timeout=30_000)

# A browser is what this test costs; it runs with the browser tests.
pytestmark = pytest.mark.browser

ANSWER = "The storm of 1911 tore the lantern from the gallery roof."
LOG = (
    "Lighthouse log\n\n"
    + "".join(f"Entry {n}: the keeper wound the clock and trimmed the wick.\n" for n in range(1, 160))
    + f"\n{ANSWER}\n\n"
    + "".join(f"Entry {n}: the keeper painted the railing.\n" for n in range(160, 200))
)
HANDBOOK = (
    "# Harbour handbook\n\n"
    "## Canteen\n\nLunch is served in the canteen from noon until two.\n\n"
    "## Boats\n\nThe pilot boat leaves the north quay at six every morning.\n\n"
    "## Keys\n\nSpare keys to the boathouse hang in the harbour master's office.\n"
)
VISITS = "Visits\n\nVisitors can choose between three guided tours:\nBottling line\nBarrel cellar\nTasting room\n"
DOCS = {"lighthouse.txt": LOG, "handbook.md": HANDBOOK, "visits.txt": VISITS}
QUESTION = "What tore the lantern from the gallery roof in 1911?"


@pytest.fixture
def site(make_service, tmp_path):
    """The page over a small library, on a loopback port."""
    corpus = write_files(tmp_path / "corpus", DOCS)
    service = make_service(corpus_dir=corpus)
    service.reconcile()
    with serving(create_app(service)) as url:
        yield url, service


@pytest.fixture
def tab(browser, site):
    """A reader's own browser (a context: own cookies and storage) that may read and write the clipboard."""
    url, _ = site
    context = browser.new_context(
        viewport={"width": 1400, "height": 900}, permissions=["clipboard-read", "clipboard-write"], accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    open_page(page, url)
    expect(page.locator(".sb-start .corpus-counts")).to_be_visible()
    yield page
    context.close()


def clipboard(page) -> str:
    return page.evaluate("navigator.clipboard.readText()")


def copied(page, button) -> str:
    """Click a copy button and return what it put on the clipboard."""
    page.evaluate("navigator.clipboard.writeText('(nothing copied yet)')")
    button.click()
    expect(button).to_have_text("Copied")
    return clipboard(page)


def test_a_citation_card_copies_its_quote_with_the_citation_as_text_and_as_markdown(site, tab):
    url, service = site
    citation = service.ask(QUESTION).citations[0]
    card = ask(tab, QUESTION).locator(".citation-card").first

    plain = copied(tab, card.get_by_role("button", name="Copy quote [1] with its citation"))

    assert plain == f'"{ANSWER}" (Lighthouse log, line {citation.place.line_start}, corpus/lighthouse.txt)'
    assert plain == citation.cite()

    markdown = copied(tab, card.get_by_role("button", name="Copy quote [1] as Markdown"))

    # The link is absolute, so it works pasted into a file away from the page.
    digest = hashlib.sha256(ANSWER.encode()).hexdigest()[:8]
    link = f"{url}/?doc={citation.document_id}&start={citation.start}&end={citation.end}&h={digest}"
    assert markdown == f'"{ANSWER}" ([Lighthouse log]({link}), line {citation.place.line_start}, corpus/lighthouse.txt)'
    # The card shows the same link to its passage.
    expect(card.locator("a.card-link")).to_have_attribute("href", citation.url)


def test_an_answer_copies_its_quotes_each_followed_by_its_citation(site, tab):
    _, service = site
    answer = service.ask(QUESTION)
    turn = ask(tab, QUESTION)

    plain = copied(tab, turn.get_by_role("button", name="Copy the answer's quotes with their citations"))

    assert plain == "\n".join(citation.cite() for citation in answer.citations)
    assert plain.startswith(f'"{ANSWER}" (Lighthouse log, line ')
    markdown = copied(tab, turn.get_by_role("button", name="Copy the answer's quotes as Markdown"))
    assert markdown.startswith(f'"{ANSWER}" ([Lighthouse log](http://127.0.0.1:')


def test_an_answer_quoting_a_list_shows_its_items_on_their_own_lines(site, tab):
    _, service = site
    question = "Which guided tours can visitors choose?"
    citation = service.ask(question).citations[0]
    assert citation.quote == "Visitors can choose between three guided tours:\nBottling line\nBarrel cellar\nTasting room"
    turn = ask(tab, question)

    assert "tours:\nBottling line\nBarrel cellar\nTasting room [1]" in turn.locator(".answer-text").inner_text()
    assert copied(tab, turn.get_by_role("button", name="Copy the answer's quotes with their citations")) == citation.cite()


def test_a_plain_click_on_a_passage_link_reads_it_in_the_viewer_without_leaving_the_page(tab):
    card = ask(tab, QUESTION).locator(".citation-card").first
    before = tab.url

    card.locator("a.card-link").click()

    expect(tab.locator("#sb-viewer mark#cited")).to_have_text(ANSWER)
    assert tab.url == before
    expect(tab.locator("#sb-conversation .turn")).to_have_count(1)


SECOND = "Where does the pilot boat leave from every morning?"


def test_a_conversation_survives_a_reload_until_a_new_one_is_started(tab):
    ask(tab, QUESTION)
    ask(tab, SECOND)

    tab.reload()

    turns = tab.locator("#sb-conversation .turn")
    expect(turns).to_have_count(2)
    expect(turns.nth(0).locator(".question")).to_have_text(QUESTION)
    expect(turns.nth(1).locator(".question")).to_have_text(SECOND)
    expect(turns.nth(0).locator(".citation-card mark").first).to_have_text(ANSWER)
    expect(tab.locator("#sb-start")).to_be_hidden()
    # The kept conversation goes on: a third question is added after the two.
    ask(tab, "When is lunch served in the canteen?")
    expect(turns).to_have_count(3)

    tab.locator("#sb-new").click()
    expect(turns).to_have_count(0)
    tab.reload()
    expect(tab.locator(".sb-start .corpus-counts")).to_be_visible()
    expect(turns).to_have_count(0)


def test_a_conversation_is_the_readers_own(browser, site, tab):
    url, _ = site
    ask(tab, QUESTION)

    other = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = other.new_page()
        open_page(page, url)
        expect(page.locator(".sb-start .corpus-counts")).to_be_visible()
        expect(page.locator("#sb-conversation .turn")).to_have_count(0)
    finally:
        other.close()


def test_the_conversation_exports_as_markdown_with_quotes_citations_and_links(site, tab):
    url, service = site
    ask(tab, QUESTION)
    ask(tab, SECOND)
    first = service.ask(QUESTION)
    second = service.ask(SECOND, history=[QUESTION])

    with tab.expect_download() as download:
        tab.locator("#sb-export").click()

    assert download.value.suggested_filename == "sourcebook-conversation.md"
    exported = open(download.value.path(), encoding="utf-8").read()
    assert exported == conversation_markdown([first, second], base=url)
    assert f"## {QUESTION}\n\n" in exported
    link = f"{url}/?doc={first.citations[0].document_id}&start={first.citations[0].start}"
    digest = hashlib.sha256(ANSWER.encode()).hexdigest()[:8]
    assert f'1. "{ANSWER}" ([Lighthouse log]({link}&end={first.citations[0].end}&h={digest}), line ' in exported


def test_asking_sends_the_server_the_question_not_the_saved_conversation(tab):
    sent = {}

    def note(request):
        if request.method == "POST" and "/gradio_api/queue/join" in request.url:
            data = json.loads(request.post_data)["data"]
            if data and isinstance(data[0], str) and data[0]:
                sent.setdefault(data[0], []).append(len(request.post_data_buffer))

    tab.on("request", note)
    questions = [f"{question} (asked {n + 1})" for n, question in enumerate(QUESTIONS * 4)][:20]
    for question in questions:
        ask(tab, question)

    sizes = [sent[question][0] for question in questions]
    # What the server needs of the earlier turns is the question before (follow-ups are read with
    # it), so the 20th ask sends about what the 2nd did, not the 19 turns before it with their passages.
    assert max(sizes) < 1_000, sizes
    assert sizes[-1] - sizes[1] < 100, sizes
    # The browser keeps the whole conversation all the same.
    turns = tab.locator("#sb-conversation .turn")
    expect(turns).to_have_count(20)
    tab.reload()
    expect(turns).to_have_count(20)
    expect(turns.nth(19).locator(".question")).to_have_text(questions[19])
    expect(turns.nth(0).locator(".citation-card mark").first).to_have_text(ANSWER)


def rate(turn, thumb: str, state: str) -> None:
    """Click a turn's thumb and wait until the page says what was stored."""
    turn.get_by_role("button", name=thumb, exact=True).click()
    expect(turn.locator(".rating-state")).to_have_text(state)


def test_rating_sends_the_server_that_answer_not_the_saved_conversation(site, tab):
    _, service = site
    sent = []

    def note(request):
        if request.method == "POST" and "/gradio_api/queue/join" in request.url:
            event = json.loads(request.post_data).get("event_data")
            if isinstance(event, dict) and "rating" in event:
                sent.append(len(request.post_data_buffer))

    tab.on("request", note)
    questions = [f"{question} (asked {n + 1})" for n, question in enumerate(QUESTIONS * 4)][:20]
    turns = tab.locator("#sb-conversation .turn")
    comment = "It was the storm of 1911."
    ask(tab, questions[0]).get_by_label("Comment on this answer (optional)").fill(comment)
    rate(turns.first, "Not helpful", "You rated this answer not helpful, with a comment.")
    for question in questions[1:]:
        ask(tab, question)

    rate(turns.first, "Helpful", "You rated this answer helpful, with a comment.")
    rate(turns.nth(19), "Not helpful", "You rated this answer not helpful.")

    # A rating needs the one answer rated, so rating the first answer of 20 sends what it did
    # when it was the only one, not the 19 turns after it with their passages.
    assert len(sent) == 3, sent
    assert max(sent) < 3_000, sent
    assert abs(sent[1] - sent[0]) < 50, sent
    # One record an answer, the last rating standing, with the answer's question and citations.
    records = {record["question"]: record for record in service.feedback()}
    assert sorted(records) == sorted([questions[0], questions[19]])
    first = records[questions[0]]
    assert (first["rating"], first["comment"]) == ("up", comment)
    assert [citation["quote"] for citation in first["citations"]] == [ANSWER]
    assert records[questions[19]]["rating"] == "down"
    # Only the rated answers changed on the page, and they stay rated across a reload.
    expect(turns.locator(".rating-state")).to_have_text(
        ["You rated this answer helpful, with a comment.", *["Not rated yet."] * 18, "You rated this answer not helpful."]
    )
    tab.reload()
    expect(turns).to_have_count(20)
    expect(turns.first.get_by_role("button", name="Helpful", exact=True)).to_have_attribute("aria-pressed", "true")
    expect(turns.first.get_by_label("Comment on this answer (optional)")).to_have_value(comment)
    expect(turns.nth(19).get_by_role("button", name="Not helpful")).to_have_attribute("aria-pressed", "true")


QUESTIONS = [
    QUESTION,
    SECOND,
    "When is lunch served in the canteen?",
    "Where do the spare keys to the boathouse hang?",
    "What did the keeper paint?",
    QUESTION,
]


def on_screen(page, locator) -> dict:
    """The element's box and whether all of it is inside the window."""
    return locator.evaluate(
        """(el) => { const r = el.getBoundingClientRect();
                     return {top: r.top, bottom: r.bottom, left: r.left, right: r.right,
                             visible: r.top >= 0 && r.bottom <= window.innerHeight && r.left >= 0
                                      && r.right <= window.innerWidth && r.height > 0}; }"""
    )


def test_a_citation_in_a_late_answer_opens_beside_it_without_moving_it(tab):
    for question in QUESTIONS:
        turn = ask(tab, question)
    assert tab.evaluate("document.documentElement.scrollHeight") > 2 * 900
    card = turn.locator(".citation-card").first
    card.scroll_into_view_if_needed()
    before = tab.evaluate("window.scrollY")
    assert before > 900

    card.locator(".card-open").click()

    expect(tab.locator("#sb-viewer mark#cited")).to_have_text(ANSWER)
    geometry = cited_mark_in_view(tab)
    assert geometry["scrollTop"] > 0, geometry
    assert on_screen(tab, card)["visible"], on_screen(tab, card)
    assert on_screen(tab, tab.locator("#sb-viewer .viewer-title"))["visible"]
    assert abs(tab.evaluate("window.scrollY") - before) < 5


def test_on_a_wide_screen_the_viewer_closes_and_a_citation_opens_it_again(tab):
    turn = ask(tab, QUESTION)
    column = tab.locator("#sb-viewer-column")
    close = column.get_by_role("button", name="Close the document viewer")
    # Before a passage is opened, the viewer shows its hint and nothing to close.
    expect(column.locator(".viewer-empty")).to_be_visible()
    expect(close).to_have_count(0)
    card = turn.locator(".citation-card .card-open").first
    card.click()
    expect(column.locator("mark#cited")).to_have_text(ANSWER)
    # Beside the conversation there is Close, not the phone's Back.
    expect(column.get_by_role("button", name="Back to the answer")).to_be_hidden()
    beside = turn.bounding_box()["width"]

    close.click()

    expect(column).to_be_hidden()
    expect(card).to_be_focused()
    # The conversation takes the room the viewer had.
    assert turn.bounding_box()["width"] > 1.4 * beside, (turn.bounding_box(), beside)
    turn.locator(".cite-marker").first.click()
    expect(column.locator("mark#cited")).to_have_text(ANSWER)
    expect(close).to_be_visible()
    assert turn.bounding_box()["width"] == pytest.approx(beside, abs=2)


def test_on_a_narrow_screen_a_citation_opens_over_the_answer_and_back_returns_to_it(browser, site):
    url, _ = site
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        open_page(page, url)
        expect(page.locator(".sb-start .corpus-counts")).to_be_visible()
        for question in QUESTIONS[:3]:
            turn = ask(page, question)
        card = turn.locator(".citation-card").first
        opener = card.locator(".card-open")
        opener.scroll_into_view_if_needed()
        before = page.evaluate("window.scrollY")
        assert before > 844
        # Until a passage is opened, the viewer takes no room under the conversation.
        expect(page.locator("#sb-viewer-column")).to_be_hidden()

        opener.tap()

        sheet = page.locator("#sb-viewer-column")
        expect(sheet.locator("mark#cited")).to_be_visible()
        assert cited_mark_in_view(page)["visible"]
        assert on_screen(page, sheet.locator(".viewer-title"))["visible"]
        back = sheet.get_by_role("button", name="Back to the answer")
        expect(back).to_be_focused()
        assert on_screen(page, back)["visible"]
        expect(sheet.get_by_role("button", name="Close the document viewer")).to_be_hidden()

        back.tap()

        expect(sheet).to_be_hidden()
        expect(opener).to_be_focused()
        assert on_screen(page, opener)["visible"], on_screen(page, opener)
        assert abs(page.evaluate("window.scrollY") - before) < 5
        # The [n] marker opens it again, and Escape also goes back.
        turn.locator(".cite-marker").first.tap()
        expect(sheet.locator("mark#cited")).to_be_visible()
        page.keyboard.press("Escape")
        expect(sheet).to_be_hidden()
    finally:
        context.close()


def test_a_card_shows_its_quote_in_a_little_context_and_the_whole_passage_on_request(tab):
    card = ask(tab, QUESTION).locator(".citation-card").first
    excerpt = card.locator(".card-open .card-text")
    expect(excerpt.locator("mark")).to_have_text(ANSWER)
    shown = excerpt.inner_text()
    # A little of the passage around the quote, cut at words, not the whole log.
    assert shown.endswith("…") and len(shown) < len(ANSWER) + 2 * 110, shown
    assert "Entry 160: the keeper painted" in shown
    whole = card.locator(".card-whole")
    expect(whole).to_be_hidden()

    card.get_by_text("Show the whole passage").click()

    expect(whole).to_be_visible()
    expect(whole.locator("mark")).to_have_text(ANSWER)
    assert len(whole.inner_text()) > 5 * len(shown)
    expect(excerpt).to_be_hidden()
    card.get_by_text("Show less").click()
    expect(excerpt).to_be_visible()
    # Opening the whole passage opened no document: the viewer still shows its hint.
    expect(tab.locator("#sb-viewer mark#cited")).to_have_count(0)


# --- how the page looks ---------------------------------------------------------------------
def test_the_page_uses_the_systems_fonts_and_asks_nothing_of_another_server(browser, site):
    url, _ = site
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        requests = []
        page.on("request", lambda request: requests.append(request.url))
        open_page(page, url)
        expect(page.locator(".sb-start .corpus-counts")).to_be_visible()
        ask(page, QUESTION)

        assert [u for u in requests if not u.startswith(url)] == []
        assert [u for u in requests if u.endswith((".woff2", ".woff", ".ttf", ".otf"))] == []
        # No web font at all: bold and regular text are drawn from the same system typeface.
        assert page.evaluate("document.fonts.size") == 0
        for selector in (".sb-header h1", "#sb-ask", ".sb-conversation .answer-text"):
            family = page.locator(selector).first.evaluate("el => getComputedStyle(el).fontFamily")
            assert family.startswith('"Segoe UI", Roboto'), (selector, family)
    finally:
        context.close()


FOCUS_RING = """() => { const el = document.activeElement; const s = getComputedStyle(el);
    return {name: (el.getAttribute('aria-label') || el.innerText || el.placeholder || el.tagName).trim().slice(0, 80),
            style: s.outlineStyle, width: parseFloat(s.outlineWidth), color: s.outlineColor}; }"""


def test_every_tab_stop_shows_where_the_keyboard_is(tab):
    ask(tab, QUESTION)
    tab.locator(".sb-header h1").click()
    stops = []
    # Gradio draws the tab buttons twice (a measuring copy is focusable too): three tabs take six stops.
    for _ in range(16):
        tab.keyboard.press("Tab")
        stops.append(tab.evaluate(FOCUS_RING))

    names = [stop["name"] for stop in stops]
    assert names[:2] == ["Chat", "Sources"], names
    assert "Copy the answer's quotes with their citations" in names and "Link to this passage" in names, names
    for stop in stops:
        assert stop["style"] == "solid" and stop["width"] >= 3, stop
        assert stop["color"] not in ("rgba(0, 0, 0, 0)", "transparent"), stop


def test_the_sources_table_is_readable_on_a_phone(browser, site):
    url, _ = site
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        open_page(page, url)
        expect(page.locator(".sb-start .corpus-counts")).to_be_visible()
        page.get_by_role("tab", name="Sources").click()
        title = page.locator("#sb-documents .body-cell", has_text="Lighthouse log").first
        expect(title).to_be_visible()

        # The title is on one line, not a few letters a line, and the table scrolls sideways, not the page.
        box = title.bounding_box()
        assert box["width"] >= 150 and box["height"] < 60, box
        header = page.locator("#sb-documents th", has_text="passages")
        assert header.bounding_box()["width"] >= 70
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.locator("#sb-documents .virtual-table-viewport").evaluate("el => el.scrollWidth > el.clientWidth")
    finally:
        context.close()
