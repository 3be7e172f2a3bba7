"""In a real Chromium: the Sources view shows an ingest the folder watcher runs, files done of the total, then how it ended.

The server runs in this process with a slowed fake model and the page mounted, as `sourcebook serve
--watch` builds it, on a loopback port.
"""

from __future__ import annotations

import re
import time

import playwright.sync_api as playwright_api
import pytest

from app.service import Sourcebook
from app.watch import CorpusWatcher
from retrieval.settings import Settings
from tests.browser import open_page, seen_texts, watch_texts
from tests.fakes import FakeReader
from tests.helpers import write_files
from tests.servers import serving
from tests.slow_ingest import SlowEmbedder
from ui.server import create_app

expect = playwright_api.expect
# The machine may be busy (a model training beside the tests): a page load can take seconds.
expect.set_options(timeout=30_000)

pytestmark = pytest.mark.browser

FIRST = {"rowing.txt": "Rowing notes\n\nThe rowing team meets on the first Monday of each month.\n"}
LATER = {
    f"{name}.txt": f"{name.title()} notes\n\nThe {name} team meets on the {day} Monday of each month.\n"
    for name, day in (("chess", "second"), ("choir", "third"), ("garden", "fourth"), ("budget", "last"))
}
# Each text the model embeds takes this long while the watcher ingests: four files, a few seconds.
SECONDS_PER_TEXT = 0.8


@pytest.fixture
def site(settings, tmp_path):
    """The page over a watched corpus folder, with a model that can be slowed."""
    corpus = write_files(tmp_path / "corpus", FIRST)
    embedder = SlowEmbedder(batch_size=1)
    embedder.delay = 0.0
    service = Sourcebook(Settings(**{**settings.model_dump(), "corpus_dir": corpus}), embedder=embedder,
                         reader=FakeReader())
    service.reconcile()
    with CorpusWatcher(service, step_ms=50, debounce_ms=300), serving(create_app(service)) as url:
        yield url, service, corpus, embedder


def test_the_sources_view_shows_a_watched_ingest_going_and_ended_while_it_is_open(browser, site):
    url, service, corpus, embedder = site
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    open_page(tab, url)
    expect(tab.locator(".sb-start .corpus-counts")).to_be_visible()
    tab.get_by_role("tab", name="Sources").click()
    status = tab.locator("#sb-ingest-status")
    expect(status).to_contain_text("The last ingest, started by the server's catch-up at its start, finished")
    watch_texts(tab, "#sb-ingest-status", ".ingest-progress, .ingest-done")
    embedder.delay = SECONDS_PER_TEXT

    write_files(corpus, LATER)

    expect(status).to_contain_text(
        "The last ingest, started by the folder watcher, finished", timeout=60_000
    )
    expect(status).to_contain_text("4 added, 0 updated, 0 removed, 1 unchanged, 0 failed.")
    seen = seen_texts(tab)
    going = [re.match(r"Indexing, started by the folder watcher: (\d) of 5 files done; ", text) for text in seen]
    assert any(found and int(found[1]) < 5 for found in going), seen
    # The table is listed again once the ingest has finished, without a reload: it shows what the
    # watcher added. (Gradio 6.17's table draws only its first row after an update that adds rows,
    # as after an upload, so the newest document is what can be read there.)
    added = "|".join(name[:-4].title() for name in LATER)
    expect(tab.locator("#sb-documents")).to_contain_text(re.compile(f"({added}) notes"))

    # On another tab the page stops reading; back on Sources it shows the latest ingest again.
    tab.get_by_role("tab", name="Chat").click()
    embedder.delay = 0.0
    (corpus / "chess.txt").unlink()
    expect(tab.locator("#sb-ingest-status")).to_be_hidden()

    def removed():
        record = service.ingest_progress()
        return record and not record.running and record.outcome["removed"] == 1

    assert_within(removed, seconds=30)
    tab.wait_for_timeout(1500)
    assert "4 added" in tab.evaluate("document.querySelector('#sb-ingest-status').textContent")
    tab.get_by_role("tab", name="Sources").click()
    expect(status).to_contain_text("0 added, 0 updated, 1 removed, 4 unchanged, 0 failed.")
    context.close()


def assert_within(condition, *, seconds: float) -> None:
    """Wait (bounded) for `condition` to hold."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(0.1)
