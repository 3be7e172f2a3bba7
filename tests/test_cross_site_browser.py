"""A page from another origin on loopback tries to upload, replace, delete and rate in a real Chromium: nothing changes.

The server runs in this process with the fake model and the page mounted, as `sourcebook serve`
builds it; the other site is a plain HTTP server on another loopback port.
"""

from __future__ import annotations

import http.server
import json
import threading

import playwright.sync_api as playwright_api
import pytest

from tests.browser import launch
from tests.helpers import write_files
from tests.servers import serving
from ui.server import create_app


# A browser is what this test costs; it runs with the browser tests.
pytestmark = pytest.mark.browser

DOCS = {
    "travel.txt": "Travel\nBook flights through the travel desk at least two weeks ahead.\n",
    "canteen.txt": "Canteen\nLunch is served in the canteen from noon until two.\n",
}
FEEDBACK = {"question": "Who approves expenses?", "answer": "planted", "rating": "down", "comment": "planted"}

# Every kind of request a page on another site can make: fetch that needs no preflight (a
# multipart upload, a text/plain "JSON" body), fetch that does (DELETE, application/json), and
# plain form posts into a hidden frame, one of them a file upload.
ATTACK_PAGE = """<!doctype html>
<html><body>
<iframe name="sink" style="display:none"></iframe>
<form id="upload" target="sink" method="POST" enctype="multipart/form-data" action="{target}/api/documents">
  <input type="file" name="files">
</form>
<form id="feedback" target="sink" method="POST" enctype="text/plain" action="{target}/api/feedback">
  <input name='{{"question": "Who approves expenses?", "answer": "planted", "rating": "up", "x": "' value='"}}'>
</form>
<script>
const target = "{target}";
async function attempt(run) {{ try {{ await run(); }} catch (error) {{ /* a refusal is the point */ }} }}
window.attack = async function () {{
  for (const name of ["planted.txt", "travel.txt"]) {{
    const form = new FormData();
    form.append("files", new Blob(["Planted\\nA planted note overwrites the travel desk rules.\\n"], {{type: "text/plain"}}), name);
    await attempt(() => fetch(target + "/api/documents", {{method: "POST", body: form, mode: "no-cors"}}));
  }}
  await attempt(() => fetch(target + "/api/documents/{document_id}", {{method: "DELETE"}}));
  await attempt(() => fetch(target + "/api/documents/{document_id}", {{method: "DELETE", credentials: "include"}}));
  const feedback = JSON.stringify({feedback});
  await attempt(() => fetch(target + "/api/feedback", {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}}, body: feedback}}));
  await attempt(() => fetch(target + "/api/feedback", {{method: "POST", headers: {{"Content-Type": "application/json"}}, body: feedback}}));
  return "tried";
}};
</script>
</body></html>"""


class RequestLog:
    """ASGI middleware outside everything: each request's method, path, Origin and answer status."""

    def __init__(self, app) -> None:
        self.app = app
        self.seen: list[tuple[str, str, str, int]] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = dict(scope["headers"]).get(b"origin", b"").decode()

        async def noted(message) -> None:
            if message["type"] == "http.response.start":
                self.seen.append((scope["method"], scope["path"], origin, message["status"]))
            await send(message)

        await self.app(scope, receive, noted)


@pytest.fixture
def target(make_service, tmp_path):
    """The server under attack, on its own loopback port, with its request log."""
    corpus = write_files(tmp_path / "corpus", DOCS)
    service = make_service(corpus_dir=corpus)
    service.reconcile()
    log = RequestLog(create_app(service))
    with serving(log) as url:
        yield url, service, log


@pytest.fixture
def other_site(target, tmp_path):
    """A page on another loopback port aimed at the target, served until the test ends."""
    url, service, _ = target
    travel = next(d.id for d in service.documents() if d.source == "corpus/travel.txt")
    page = ATTACK_PAGE.format(target=url, document_id=travel, feedback=json.dumps(FEEDBACK)).encode()

    class Attack(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Attack)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_page_from_another_origin_cannot_upload_replace_delete_or_rate(target, other_site, tmp_path):
    url, service, log = target
    corpus = tmp_path / "corpus"
    before = ({d.id: d.source for d in service.documents()}, {p.name: p.read_bytes() for p in corpus.iterdir()})
    planted = tmp_path / "travel.txt"
    planted.write_text("Planted\nA planted note overwrites the travel desk rules.\n", encoding="utf-8")

    with playwright_api.sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page()
            page.goto(other_site)
            assert page.evaluate("window.attack()") == "tried"
            page.set_input_files("#upload input[type=file]", str(planted))
            for form in ("#upload", "#feedback"):
                with page.expect_response(lambda response: response.url.startswith(url)):
                    page.eval_on_selector(form, "form => form.submit()")
        finally:
            browser.close()

    after = ({d.id: d.source for d in service.documents()}, {p.name: p.read_bytes() for p in corpus.iterdir()})
    assert after == before
    assert service.feedback() == []
    assert service.search("planted note", k=1).hits[0].source != "corpus/planted.txt"
    # Every attempt reached the server from the other origin and was refused. The DELETEs and
    # the application/json feedback need a preflight; refused, the browser never sent them.
    travel = next(id_ for id_, source in before[0].items() if source == "corpus/travel.txt")
    attempts = [(method, path, status) for method, path, origin, status in log.seen if origin == other_site]
    assert sorted(attempts) == sorted([
        ("POST", "/api/documents", 403), ("POST", "/api/documents", 403),  # new file and replacement, by fetch
        ("POST", "/api/documents", 403),  # the form's file upload
        ("OPTIONS", f"/api/documents/{travel}", 403), ("OPTIONS", f"/api/documents/{travel}", 403),
        ("POST", "/api/feedback", 403),  # text/plain by fetch
        ("OPTIONS", "/api/feedback", 403),  # application/json, preflighted
        ("POST", "/api/feedback", 403),  # the text/plain form
    ])
