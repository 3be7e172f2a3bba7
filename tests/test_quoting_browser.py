"""Quoting from the page in a real Chromium: copy a quote or an answer with its citation, keep and export a conversation.

The server runs in this process with the fake model and the page mounted, as `sourcebook serve`
builds it, on a loopback port.
"""

from __future__ import annotations

import pytest

from app.export import conversation_markdown
from tests.browser import launch
from tests.helpers import write_files
from tests.servers import serving
from ui.server import create_app

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

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
DOCS = {"lighthouse.txt": LOG, "handbook.md": HANDBOOK}
QUESTION = "What tore the lantern from the gallery roof in 1911?"


@pytest.fixture
def site(make_service, tmp_path):
    """The page over a small library, on a loopback port."""
    corpus = write_files(tmp_path / "corpus", DOCS)
    service = make_service(corpus_dir=corpus)
    service.reconcile()
    with serving(create_app(service)) as url:
        yield url, service


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def tab(browser, site):
    """A reader's own browser (a context: own cookies and storage) that may read and write the clipboard."""
    url, _ = site
    context = browser.new_context(
        viewport={"width": 1400, "height": 900}, permissions=["clipboard-read", "clipboard-write"], accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    expect(page.locator(".sb-start .corpus-counts")).to_be_visible()
    yield page
    context.close()


def settled(page, elem_id: str) -> None:
    """Wait until Gradio has finished updating a component (no pending state, fade-in done)."""
    page.wait_for_function(
        """(id) => { const c = document.querySelector(`#${id} .html-container`);
                     return c && !c.classList.contains('pending') && getComputedStyle(c).opacity === '1'; }""",
        arg=elem_id,
    )


def ask(page, question: str):
    """Type a question, press Enter, and return the new conversation turn once it is shown."""
    turns = page.locator("#sb-conversation .turn")
    before = turns.count()
    box = page.locator("#sb-question textarea")
    box.fill(question)
    box.press("Enter")
    expect(turns).to_have_count(before + 1)
    settled(page, "sb-conversation")
    return turns.last


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

    assert plain == f'"{ANSWER}" (Lighthouse log, line {citation.line_start}, corpus/lighthouse.txt)'
    assert plain == citation.cite()

    markdown = copied(tab, card.get_by_role("button", name="Copy quote [1] as Markdown"))

    # The link is absolute, so it works pasted into a file away from the page.
    link = f"{url}/?doc={citation.document_id}&start={citation.start}&end={citation.end}"
    assert markdown == f'"{ANSWER}" ([Lighthouse log]({link}), line {citation.line_start}, corpus/lighthouse.txt)'
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
        page.goto(url)
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
    assert f'1. "{ANSWER}" ([Lighthouse log]({link}&end={first.citations[0].end}), line ' in exported
