"""A citation's link opens the chat page at its quote, in a real Chromium; a stale link says why it cannot.

The server runs in this process with the fake model and the page mounted, as `sourcebook serve`
builds it, on a loopback port.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request

import playwright.sync_api as playwright_api
import pytest

from tests.browser import cited_mark_in_view, open_page
from tests.helpers import write_files
from tests.servers import serving
from ui.api import AskResponse
from ui.server import create_app

expect = playwright_api.expect

# A browser is what this test costs; it runs with the browser tests.
pytestmark = pytest.mark.browser


# The answer sits far down a long log, so the viewer has to scroll to show it.
ANSWER = "The storm of 1911 tore the lantern from the gallery roof."
LOG = (
    "Lighthouse log\n\n"
    + "".join(f"Entry {n}: the keeper wound the clock and trimmed the wick.\n" for n in range(1, 160))
    + f"\n{ANSWER}\n\n"
    + "".join(f"Entry {n}: the keeper painted the railing.\n" for n in range(160, 200))
)
DOCS = {
    "lighthouse.txt": LOG,
    "canteen.txt": "Canteen\nLunch is served in the canteen from noon until two.\n",
}
QUESTION = "What tore the lantern from the gallery roof in 1911?"


@pytest.fixture
def site(make_service, tmp_path):
    """The page and the API over a small library, on a loopback port."""
    corpus = write_files(tmp_path / "corpus", DOCS)
    service = make_service(corpus_dir=corpus)
    service.reconcile()
    with serving(create_app(service)) as url:
        yield url, service


@pytest.fixture
def opened(browser):
    """Open a URL in a fresh browser context (a reader following a link) and return the page."""
    contexts = []

    def open_url(url: str):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        open_page(page, url)
        return page

    yield open_url
    for context in contexts:
        context.close()


def asked(url: str, question: str) -> AskResponse:
    """Ask over the HTTP API, as a script would."""
    request = urllib.request.Request(
        f"{url}/api/ask", data=json.dumps({"question": question}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return AskResponse.model_validate(json.load(response))


def test_a_citation_link_opens_the_page_with_the_quote_highlighted_and_in_view(site, opened):
    url, service = site
    citation = asked(url, QUESTION).citations[0]
    assert citation.quote == ANSWER
    digest = hashlib.sha256(ANSWER.encode()).hexdigest()[:8]
    assert citation.url == f"/?doc={citation.document_id}&start={citation.start}&end={citation.end}&h={digest}"

    page = opened(url + citation.url)

    viewer = page.locator("#sb-viewer")
    expect(viewer.locator("mark#cited")).to_have_text(ANSWER)
    expect(viewer.locator(".viewer-title")).to_have_text(citation.title)
    expect(viewer.locator(".viewer-place")).to_contain_text(f"line {citation.line_start} · corpus/lighthouse.txt")
    # The whole document is shown, scrolled down to the quote.
    expect(viewer.locator(".viewer-text")).to_contain_text("Entry 1: the keeper")
    assert cited_mark_in_view(page)["scrollTop"] > 0
    expect(viewer.locator(".viewer-changed")).to_have_count(0)


def test_a_link_whose_passage_changed_opens_the_document_and_says_so(site, opened, tmp_path):
    url, service = site
    citation = asked(url, QUESTION).citations[0]
    # The year is corrected: the log keeps its length, so the link's span now holds other text.
    corrected = ANSWER.replace("1911", "1912")
    (tmp_path / "corpus" / "lighthouse.txt").write_text(LOG.replace(ANSWER, corrected), encoding="utf-8")
    service.reconcile()

    page = opened(url + citation.url)

    viewer = page.locator("#sb-viewer")
    expect(viewer.locator(".viewer-changed")).to_have_text(
        "This passage has changed since the link was made: the text marked below is what “Lighthouse log” "
        "holds at its place now, not the text the link was made for."
    )
    expect(viewer.locator(".viewer-title")).to_have_text("Lighthouse log")
    expect(viewer.locator("mark#cited")).to_have_text(corrected)
    cited_mark_in_view(page)
    # A link made before links carried the hash opens the span as it did, with nothing to say.
    unhashed = opened(f"{url}/?doc={citation.document_id}&start={citation.start}&end={citation.end}")
    expect(unhashed.locator("#sb-viewer mark#cited")).to_have_text(corrected)
    expect(unhashed.locator("#sb-viewer .viewer-changed")).to_have_count(0)


def test_a_link_to_a_deleted_document_says_it_is_gone(site, opened):
    url, service = site
    citation = asked(url, QUESTION).citations[0]
    service.delete(citation.document_id)

    page = opened(url + citation.url)

    expect(page.locator("#sb-viewer .viewer-empty")).to_have_text(
        "That document is no longer in the library: it may have been deleted."
    )
    expect(page.locator("#sb-viewer mark")).to_have_count(0)


def test_a_link_past_the_end_of_its_document_says_the_passage_is_gone(site, opened):
    url, service = site
    canteen = next(d for d in service.documents() if d.source == "corpus/canteen.txt")
    length = len(service.document(canteen.id).text)

    page = opened(f"{url}/?doc={canteen.id}&start={length + 5}&end={length + 60}")

    expect(page.locator("#sb-viewer .viewer-empty")).to_have_text(
        f"The passage at characters {length + 5:,}–{length + 60:,} is no longer in “Canteen”, which now has "
        f"{length:,} characters: the document has changed since the link was made."
    )


def test_a_link_naming_a_file_path_or_a_bad_span_opens_nothing(site, opened, tmp_path):
    url, _ = site

    by_path = opened(f"{url}/?doc=corpus/canteen.txt&start=0&end=20")
    expect(by_path.locator("#sb-viewer .viewer-empty")).to_contain_text("no longer in the library")
    expect(by_path.locator("#sb-viewer")).not_to_contain_text("Lunch is served")
    absolute = opened(f"{url}/?doc={tmp_path / 'corpus' / 'canteen.txt'}&start=0&end=20")
    expect(absolute.locator("#sb-viewer .viewer-empty")).to_contain_text("no longer in the library")

    bad_span = opened(f"{url}/?doc=0123456789abcdef&start=ten&end=20")
    expect(bad_span.locator("#sb-viewer .viewer-empty")).to_have_text(
        "That link to a passage cannot be opened: its start must be a whole number of characters, got 'ten'."
    )
