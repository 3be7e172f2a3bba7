"""The page for the person who keeps the documents, in a real Chromium: rate any answer with a comment,
the Gaps view, and delete with confirmation and undo.

The server runs in this process with the fake model and the page mounted, as `sourcebook serve`
builds it, on a loopback port.
"""

from __future__ import annotations

import re

import playwright.sync_api as playwright_api
import pytest

from tests.browser import ask, open_page, seen_texts, watch_texts
from tests.helpers import write_files
from tests.servers import serving
from ui.server import create_app

expect = playwright_api.expect
# The machine may be busy (a model training beside the tests): a page load can take seconds.
expect.set_options(timeout=30_000)

# A browser is what this test costs; it runs with the browser tests.
pytestmark = pytest.mark.browser

HANDBOOK = (
    "# Harbour handbook\n\n"
    "## Canteen\n\nLunch is served in the canteen from noon until two.\n\n"
    "## Boats\n\nThe pilot boat leaves the north quay at six every morning.\n\n"
    "## Keys\n\nSpare keys to the boathouse hang in the harbour master's office.\n"
)
LOG = "Lighthouse log\n\nThe storm of 1911 tore the lantern from the gallery roof.\n"
DOCS = {"handbook.md": HANDBOOK, "lighthouse.txt": LOG}
LUNCH = "When is lunch served in the canteen?"
BOAT = "Where does the pilot boat leave from every morning?"


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
    """A reader's own browser (a context: own cookies and storage)."""
    url, _ = site
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    open_page(page, url)
    expect(page.locator(".sb-start .corpus-counts")).to_be_visible()
    yield page
    context.close()


# --- rating any answer ------------------------------------------------------------------------
def test_an_earlier_answer_is_rated_with_a_comment_and_its_rating_changed(site, tab):
    _, service = site
    ask(tab, LUNCH)
    ask(tab, BOAT)
    first = service.ask(LUNCH)
    turn = tab.locator("#sb-conversation .turn").first
    up, down = turn.get_by_role("button", name="Helpful", exact=True), turn.get_by_role("button", name="Not helpful")
    expect(up).to_have_attribute("aria-pressed", "false")

    turn.get_by_label("Comment on this answer (optional)").fill("The canteen also serves breakfast.")
    down.click()

    turn = tab.locator("#sb-conversation .turn").first
    expect(turn.get_by_role("button", name="Not helpful")).to_have_attribute("aria-pressed", "true")
    expect(turn.locator(".rating-state")).to_have_text("You rated this answer not helpful, with a comment.")
    assert service.feedback_for(first.id)["rating"] == "down"

    turn.get_by_role("button", name="Helpful", exact=True).click()

    turn = tab.locator("#sb-conversation .turn").first
    expect(turn.get_by_role("button", name="Helpful", exact=True)).to_have_attribute("aria-pressed", "true")
    expect(turn.get_by_role("button", name="Not helpful")).to_have_attribute("aria-pressed", "false")
    expect(turn.locator(".rating-state")).to_have_text("You rated this answer helpful, with a comment.")
    records = service.feedback()
    assert len(records) == 1, records
    assert records[0]["answer_id"] == first.id
    assert (records[0]["question"], records[0]["rating"], records[0]["comment"]) == (
        LUNCH, "up", "The canteen also serves breakfast."
    )
    assert [c["quote"] for c in records[0]["citations"]] == [c.quote for c in first.citations]
    # The second answer was not rated, and a reload shows the first one's thumb still set.
    expect(tab.locator("#sb-conversation .turn").last.locator(".rating-state")).to_have_text("Not rated yet.")
    tab.reload()
    turn = tab.locator("#sb-conversation .turn").first
    expect(turn.get_by_role("button", name="Helpful", exact=True)).to_have_attribute("aria-pressed", "true")
    expect(turn.get_by_label("Comment on this answer (optional)")).to_have_value("The canteen also serves breakfast.")


def test_a_comment_is_changed_without_changing_the_rating(site, tab):
    _, service = site
    turn = ask(tab, LUNCH)
    turn.get_by_role("button", name="Not helpful").click()
    expect(tab.locator("#sb-conversation .turn").first.locator(".rating-state")).to_have_text(
        "You rated this answer not helpful."
    )

    turn = tab.locator("#sb-conversation .turn").first
    turn.get_by_label("Comment on this answer (optional)").fill("Says nothing about weekends.")
    turn.get_by_role("button", name="Save comment").click()

    expect(tab.locator("#sb-conversation .turn").first.locator(".rating-state")).to_have_text(
        "You rated this answer not helpful, with a comment."
    )
    [record] = service.feedback()
    assert (record["rating"], record["comment"]) == ("down", "Says nothing about weekends.")


# --- the gaps ---------------------------------------------------------------------------------
TOKEN = "keeper-token"
# Three wordings of one question the documents do not answer (they share most words, which is
# what the fake embedder sees).
BICYCLE = [
    "What is the fee for parking a bicycle at the office garage?",
    "What is the fee for parking a bicycle in the office garage?",
    "what's the fee for parking my bicycle at the office garage",
]


@pytest.fixture
def guarded(make_service, tmp_path):
    """The page over a small library whose changes, and gaps, need an API token."""
    corpus = write_files(tmp_path / "corpus", DOCS)
    service = make_service(corpus_dir=corpus, api_token=TOKEN)
    service.reconcile()
    with serving(create_app(service)) as url:
        yield url, service


def test_three_wordings_of_an_unanswered_question_are_one_gap_asked_three_times(browser, guarded):
    url, service = guarded
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        open_page(page, url)
        expect(page.locator(".sb-start .corpus-counts")).to_be_visible()
        for question in BICYCLE:
            expect(ask(page, question).locator(".answer.not-found")).to_be_visible()
        ask(page, LUNCH)

        # What people asked is shown only with the token.
        page.get_by_role("tab", name="Gaps").click()
        expect(page.locator("#sb-gaps .locked")).to_contain_text("enter the API token on the Sources tab")
        expect(page.locator("#sb-gaps")).not_to_contain_text("bicycle")
        page.get_by_role("tab", name="Sources").click()
        page.locator("#sb-token input").fill(TOKEN)
        page.get_by_role("tab", name="Gaps").click()

        rows = page.locator("#sb-gaps tr.gap")
        expect(rows).to_have_count(1)
        expect(rows.first.locator("td.count")).to_have_text("3")
        expect(rows.first.locator(".gap-question")).to_have_text(BICYCLE[0])
        expect(rows.first.locator(".wordings li")).to_have_text(BICYCLE[1:])
        nearest = rows.first.locator(".near .near-source").all_inner_texts()
        assert nearest and set(nearest) <= {"corpus/handbook.md", "corpus/lighthouse.txt"}, nearest
        assert [(gap.question, gap.count) for gap in service.gaps()] == [(BICYCLE[0], 3)]
    finally:
        context.close()


# --- delete, with confirmation and undo ---------------------------------------------------------
def open_sources(page) -> None:
    page.get_by_role("tab", name="Sources").click()
    expect(page.locator("#sb-documents")).to_contain_text("Harbour handbook")


def choose_to_delete(page, title: str) -> None:
    page.locator("#sb-delete-choice input").click()
    page.get_by_role("option", name=re.compile(re.escape(title))).click()


def test_a_delete_asks_first_says_where_the_file_went_and_is_undone(site, tab):
    url, service = site
    corpus = service.settings.corpus_dir
    open_sources(tab)
    choose_to_delete(tab, "Harbour handbook")
    result = tab.locator("#sb-delete-result")

    # Asked first: Cancel changes nothing.
    tab.locator("#sb-delete").click()
    expect(result).to_contain_text("Delete Harbour handbook (corpus/handbook.md)?")
    tab.locator("#sb-delete-cancel").click()
    expect(tab.locator("#sb-delete-yes")).to_be_hidden()
    assert (corpus / "handbook.md").is_file()
    tab.locator("#sb-delete").click()
    tab.locator("#sb-delete-yes").click()

    expect(result).to_contain_text("Deleted Harbour handbook")
    [kept] = service.deleted()
    expect(result.locator("code")).to_have_text(kept.kept_as)
    assert kept.kept_as.startswith(".deleted/handbook.") and not (corpus / "handbook.md").exists()
    expect(tab.locator("#sb-documents")).not_to_contain_text("Harbour handbook")
    tab.locator("#sb-deleted-section").get_by_text("Deleted documents").click()
    expect(tab.locator("#sb-deleted .kept-name")).to_have_text(["handbook.md"])
    assert not service.ask(LUNCH).answered

    result.get_by_role("button", name="Undo: restore Harbour handbook").click()

    expect(result).to_contain_text("Restored Harbour handbook as handbook.md")
    expect(tab.locator("#sb-documents")).to_contain_text("Harbour handbook")
    expect(tab.locator("#sb-deleted")).to_contain_text("No deleted documents.")
    assert (corpus / "handbook.md").read_text() == HANDBOOK and service.deleted() == []
    # Answerable again, on the page too.
    tab.get_by_role("tab", name="Chat").click()
    expect(ask(tab, LUNCH).locator(".answer.answered")).to_contain_text("noon until two")


def test_a_deleted_document_is_restored_from_the_list_and_a_taken_name_is_refused(site, tab):
    _, service = site
    corpus = service.settings.corpus_dir
    open_sources(tab)
    choose_to_delete(tab, "Lighthouse log")
    tab.locator("#sb-delete").click()
    tab.locator("#sb-delete-yes").click()
    result = tab.locator("#sb-delete-result")
    expect(result).to_contain_text("Deleted Lighthouse log")
    (corpus / "lighthouse.txt").write_text("Another lighthouse\n\nA new file of the old name.\n")
    tab.locator("#sb-deleted-section").get_by_text("Deleted documents").click()
    restore = tab.locator("#sb-deleted").get_by_role("button", name="Restore lighthouse.txt")

    restore.click()

    expect(result).to_contain_text("Nothing was restored: lighthouse.txt is in the corpus folder already")
    assert len(service.deleted()) == 1
    (corpus / "lighthouse.txt").unlink()
    tab.locator("#sb-deleted").get_by_role("button", name="Restore lighthouse.txt").click()
    expect(result).to_contain_text("Restored Lighthouse log as lighthouse.txt")
    expect(tab.locator("#sb-documents")).to_contain_text("Lighthouse log")
    assert (corpus / "lighthouse.txt").read_text() == LOG


# --- an upload's progress -----------------------------------------------------------------------


def test_an_upload_shows_which_file_is_indexed_and_how_many_are_done(site, tab):
    _, service = site
    files = {
        f"{name}.txt": f"{name.title()} notes\n\nThe {name} team meets on the {day} of each month in the library.\n"
        for name, day in (("rowing", "first"), ("chess", "second"), ("choir", "third"))
    }
    open_sources(tab)
    watch_texts(tab, "#sb-upload-results", ".upload-progress")

    tab.set_input_files(
        "#sb-upload input[type=file]",
        files=[{"name": name, "mimeType": "text/plain", "buffer": text.encode()} for name, text in files.items()],
    )

    results = tab.locator("#sb-upload-results .upload-result")
    expect(results).to_have_count(3)
    expect(tab.locator("#sb-upload-results .sb-progress")).to_have_count(0)
    for name in files:
        expect(results.filter(has_text=name)).to_contain_text("added")
    seen = seen_texts(tab)
    assert seen == [
        "0 of 3 files done; indexing rowing.txt…",
        "1 of 3 files done; indexing chess.txt…",
        "2 of 3 files done; indexing choir.txt…",
    ], seen
    assert {d.source for d in service.documents()} >= {f"corpus/{name}" for name in files}
