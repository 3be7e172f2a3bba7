"""Issue 13: the page reads only what was uploaded to it, other sites change nothing, every version is kept,
bodies are bounded and no file stops an ingest. Over HTTP against the real app (page mounted), with the fake model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.routing import Mount

from ingest import loaders
from retrieval.settings import Settings
from tests.helpers import write_files
from ui.api import AskResponse, DeleteResponse, ErrorResponse, FeedbackResponse, UploadResponse
from ui.guard import RequestGuard, UPLOAD_TOKEN_COOKIE
from ui.server import create_app
from ui.web import received_uploads

DOCS = {
    "travel.txt": "Travel\nBook flights through the travel desk at least two weeks ahead.\n",
    "security.md": "# Security\n\nReport phishing emails to the security team with the report button.\n",
}
SECRET = "HUSH-4471-vault"
OWN = "http://testserver"
FOREIGN = "http://localhost:8999"
TOKEN = "s3cret-page-token"


@pytest.fixture
def settings(tmp_path) -> Settings:
    # Only the defaults: nothing here depends on how answers are scored.
    return Settings(index_dir=tmp_path / "index")


@pytest.fixture
def uploads(tmp_path, monkeypatch) -> Path:
    """Gradio's upload folder, inside the test's own directory."""
    folder = tmp_path / "gradio-uploads"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    return folder


@pytest.fixture
def secret_file(tmp_path) -> Path:
    """A file on the server outside the corpus, as /etc/shadow or a private key would be."""
    path = tmp_path / "private" / "vault.txt"
    path.parent.mkdir()
    path.write_text(f"Vault\nThe vault code is {SECRET}, known to the night shift only.\n")
    return path


@pytest.fixture
def service(make_service, tmp_path):
    service = make_service(corpus_dir=tmp_path / "corpus")
    service.ingest(write_files(tmp_path / "corpus", DOCS))
    return service


def without_guard(app):
    """The app with RequestGuard taken out, to show the layers behind it hold on their own."""
    app.user_middleware = [m for m in app.user_middleware if m.cls is not RequestGuard]
    return app


def event_index(app, name: str) -> int:
    """The fn_index of the page's event handled by the function called `name`."""
    mount = next(route for route in app.routes if isinstance(route, Mount))
    return next(index for index, fn in mount.app.get_blocks().fns.items() if fn.name == name)


def file_data(path: str | Path) -> dict:
    return {"path": str(path), "meta": {"_type": "gradio.FileData"}}


def run_event(client: TestClient, fn_index: int, data: list, session: str = "s1") -> tuple[int, str]:
    """Join the page's queue with an event as the browser would; return the join's status and the queue's stream."""
    joined = client.post("/gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session})
    if joined.status_code != 200:
        return joined.status_code, joined.text
    with client.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
        return joined.status_code, "".join(stream.iter_text())


def library_text(client: TestClient) -> str:
    """Everything the API serves about the library: the list and every document's text."""
    listed = client.get("/api/documents").json()
    texts = [client.get(f"/api/documents/{document['id']}").json()["text"] for document in listed]
    return json.dumps(listed) + "".join(texts)


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()} \
        if folder.exists() else {}


def assert_nowhere(secret: str, client: TestClient, *, uploads: Path, corpus: Path, answer: str) -> None:
    assert secret not in library_text(client)
    assert all(secret.encode() not in data for data in files_under(uploads).values()), files_under(uploads)
    assert all(secret.encode() not in data for data in files_under(corpus).values())
    assert secret not in answer


# --- 1. the page reads only files uploaded to it ------------------------------------------------
def test_a_page_event_naming_a_server_file_is_refused_before_gradio_reads_it(service, uploads, secret_file, tmp_path):
    app = create_app(service)
    with TestClient(app) as client:
        before = library_text(client)
        status, answer = run_event(client, event_index(app, "upload"), [[file_data(secret_file)], ""])

        assert status == 403
        refusal = ErrorResponse.model_validate_json(answer)
        assert refusal.error == "the page only reads files uploaded to it"
        assert refusal.detail == [f"file {str(secret_file)!r} was not uploaded to this page"]
        assert library_text(client) == before
        assert_nowhere(SECRET, client, uploads=uploads, corpus=tmp_path / "corpus", answer=answer)


def test_a_path_that_climbs_out_of_the_upload_folder_or_a_url_is_refused(service, uploads, secret_file):
    app = create_app(service)
    climbing = uploads / ".." / secret_file.relative_to(uploads.parent)
    with TestClient(app) as client:
        for path in (climbing, "http://127.0.0.1:9/vault.txt", "vault.txt"):
            status, answer = run_event(client, event_index(app, "upload"), [[file_data(path)], ""])

            assert status == 403, answer
            assert "was not uploaded to this page" in ErrorResponse.model_validate_json(answer).detail[0]


def test_gradio_itself_refuses_a_server_file_in_the_mounted_page(service, uploads, secret_file, tmp_path):
    # Behind the guard: Gradio's own check, which a mounted app skipped until has_launched was set.
    app = without_guard(create_app(service))
    with TestClient(app) as client:
        before = library_text(client)
        status, answer = run_event(client, event_index(app, "upload"), [[file_data(secret_file)], ""])

        assert status == 200
        assert "it was not uploaded by a user" in answer and '"success":false' in answer
        assert library_text(client) == before
        assert_nowhere(SECRET, client, uploads=uploads, corpus=tmp_path / "corpus", answer=answer)


def test_the_upload_handler_takes_only_files_gradio_received_as_uploads(service, uploads, tmp_path):
    # A file in Gradio's folder that its upload route did not put there (another app's, say)
    # passes Gradio's check; the page's handler still refuses it.
    planted = uploads / "planted" / "vault.txt"
    planted.parent.mkdir(parents=True)
    planted.write_text(f"Vault\nThe vault code is {SECRET}.\n")
    app = without_guard(create_app(service))
    with TestClient(app) as client:
        before = library_text(client)
        status, answer = run_event(client, event_index(app, "upload"), [[file_data(planted)], ""])

        assert status == 200
        assert "Nothing was added: &#x27;vault.txt&#x27; was not uploaded to this page." in answer
        assert SECRET not in answer
        assert library_text(client) == before


def test_a_file_uploaded_to_the_page_is_added_and_its_temporary_copy_removed(service, uploads, tmp_path):
    app = create_app(service)
    with TestClient(app) as client:
        stored = client.post("/gradio_api/upload", files=[("files", ("parking.txt", b"Parking\nVisitors park in garage B.\n"))])
        assert stored.status_code == 200, stored.text
        [path] = stored.json()
        assert Path(path).resolve().is_relative_to(uploads.resolve())

        status, answer = run_event(client, event_index(app, "upload"), [[file_data(path)], ""])

        assert status == 200
        assert "parking.txt</span> <span class=\\\"status status-added\\\"" in answer, answer
        assert (tmp_path / "corpus" / "parking.txt").read_bytes() == b"Parking\nVisitors park in garage B.\n"
        assert not Path(path).exists()
        # The same path named again is no longer an upload of this page.
        status, again = run_event(client, event_index(app, "upload"), [[file_data(path)], ""], session="s2")
        assert "was not uploaded to this page" in again


def test_received_uploads_refuses_any_path_not_uploaded(tmp_path):
    folder = tmp_path / "uploads"
    uploaded = folder / "a1" / "notes.txt"
    uploaded.parent.mkdir(parents=True)
    uploaded.write_text("notes")
    outside = tmp_path / "notes.txt"
    outside.write_text("notes")

    assert received_uploads([str(uploaded)], {str(uploaded)}, folder) == [uploaded.resolve()]
    for path, known in ((outside, {str(outside)}), (folder / "a1" / ".." / "a1" / "other.txt", {str(uploaded)}),
                        (uploaded, set())):
        with pytest.raises(ValueError, match="was not uploaded to this page"):
            received_uploads([str(path)], known, folder)


def test_with_a_token_gradios_upload_route_stores_nothing_without_it(make_service, tmp_path, uploads):
    service = make_service(corpus_dir=tmp_path / "corpus", api_token=TOKEN)
    note = [("files", ("note.txt", b"Note\nA small note.\n"))]
    with TestClient(create_app(service)) as client:
        refused = client.post("/gradio_api/upload", files=note)
        client.cookies.set(UPLOAD_TOKEN_COOKIE, "guess")
        wrong = client.post("/gradio_api/upload", files=note)

        assert refused.status_code == 401 and wrong.status_code == 401
        assert "needs the API token" in ErrorResponse.model_validate(refused.json()).error
        assert [p for p in files_under(uploads) if p.endswith("note.txt")] == []

        client.cookies.set(UPLOAD_TOKEN_COOKIE, TOKEN)
        by_cookie = client.post("/gradio_api/upload", files=note)
        client.cookies.clear()
        by_header = client.post("/gradio_api/upload", files=note, headers={"Authorization": f"Bearer {TOKEN}"})

        assert by_cookie.status_code == 200 and by_header.status_code == 200
        assert all(Path(path).read_bytes() == b"Note\nA small note.\n" for path in by_cookie.json() + by_header.json())


# --- 2. no cross-site writes -----------------------------------------------------------------------
def state(client: TestClient, service, tmp_path) -> tuple:
    """What a write could change: the library, the corpus folder (hidden files too) and the ratings."""
    return library_text(client), files_under(tmp_path / "corpus"), service.feedback()


def writes(client: TestClient, headers: dict[str, str]) -> dict[str, int]:
    """An upload, a delete and a rating, with these headers; each one's status."""
    document_id = next(d["id"] for d in client.get("/api/documents").json() if d["source"].endswith("travel.txt"))
    upload = client.post("/api/documents", headers=headers,
                         files=[("files", ("travel.txt", b"Travel\nAll travel is now by rowing boat.\n"))])
    delete = client.delete(f"/api/documents/{document_id}", headers=headers)
    feedback = client.post("/api/feedback", headers=headers,
                           json={"question": "Where do I book flights?", "answer": "nowhere", "rating": "down"})
    return {"upload": upload.status_code, "delete": delete.status_code, "feedback": feedback.status_code}


@pytest.mark.parametrize(
    "headers",
    [{"Origin": FOREIGN}, {"Origin": "http://testserver:8080"}, {"Origin": "https://testserver"},
     {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": OWN, "Sec-Fetch-Site": "same-site"}],
    ids=["other-port-host", "other-port", "other-scheme", "null", "sec-fetch-cross", "sec-fetch-same-site"],
)
def test_writes_from_another_site_are_refused_and_change_nothing(client, service, tmp_path, headers):
    before = state(client, service, tmp_path)

    assert writes(client, headers) == {"upload": 403, "delete": 403, "feedback": 403}
    refusal = client.post("/api/feedback", headers=headers, json={"question": "q", "answer": "a", "rating": "up"})
    assert ErrorResponse.model_validate(refusal.json()).error == "cross-site requests may not change anything here"
    assert state(client, service, tmp_path) == before


@pytest.mark.parametrize("headers", [{}, {"Origin": OWN, "Sec-Fetch-Site": "same-origin"}], ids=["no-origin", "own-origin"])
def test_writes_from_the_servers_own_page_or_a_script_go_through(client, service, tmp_path, headers):
    assert writes(client, headers) == {"upload": 200, "delete": 200, "feedback": 200}
    assert len(service.feedback()) == 1
    assert len(list((tmp_path / "corpus" / ".deleted").glob("travel.*.txt"))) == 2


def test_the_pages_events_from_another_site_are_refused(service, uploads, tmp_path):
    app = create_app(service)
    with TestClient(app) as client:
        before = state(client, service, tmp_path)
        rate = event_index(app, "rate")
        joined = client.post("/gradio_api/queue/join", headers={"Origin": FOREIGN},
                             json={"data": [[]], "fn_index": rate, "session_hash": "s1"})
        stored = client.post("/gradio_api/upload", headers={"Origin": FOREIGN},
                             files=[("files", ("note.txt", b"Note\nA note.\n"))])

        assert joined.status_code == 403 and stored.status_code == 403
        assert files_under(uploads) == {} or not any(p.endswith("note.txt") for p in files_under(uploads))
        assert state(client, service, tmp_path) == before


@pytest.mark.parametrize("path", ["/api/documents", "/api/feedback", "/gradio_api/queue/join", "/gradio_api/upload"])
def test_preflights_from_another_origin_get_no_cors_allowance(service, uploads, path):
    with TestClient(create_app(service)) as client:
        preflight = client.options(path, headers={"Origin": "http://localhost:8999",
                                                  "Access-Control-Request-Method": "DELETE"})

        assert preflight.status_code == 403
        assert not [name for name in preflight.headers if name.lower().startswith("access-control-allow")]


# --- 3. every version kept -----------------------------------------------------------------------------
def test_replacing_a_document_keeps_every_earlier_version(client, tmp_path):
    versions = [f"Travel\nVersion {n}: book flights {n} weeks ahead.\n".encode() for n in range(1, 5)]
    for version in versions:
        response = client.post("/api/documents", files=[("files", ("travel.txt", version))])
        assert response.status_code == 200, response.text
    # The same bytes again change nothing and keep no copy.
    again = client.post("/api/documents", files=[("files", ("travel.txt", versions[-1]))])
    assert UploadResponse.model_validate(again.json()).results[0].status == "unchanged"

    kept = sorted((tmp_path / "corpus" / ".deleted").glob("travel.*.txt"))
    original = DOCS["travel.txt"].encode()
    assert sorted(path.read_bytes() for path in kept) == sorted([original, *versions[:-1]])
    assert (tmp_path / "corpus" / "travel.txt").read_bytes() == versions[-1]

    document_id = next(d["id"] for d in client.get("/api/documents").json() if d["source"].endswith("travel.txt"))
    DeleteResponse.model_validate(client.delete(f"/api/documents/{document_id}").json())
    kept = sorted((tmp_path / "corpus" / ".deleted").glob("travel.*.txt"))
    assert sorted(path.read_bytes() for path in kept) == sorted([original, *versions])
    # Hidden, so the next ingest of the folder brings none of them back.
    assert not any(d["source"].endswith("travel.txt") for d in client.get("/api/documents").json())


# --- 4. bounded bodies ----------------------------------------------------------------------------------
@pytest.fixture
def small_bodies(make_service, tmp_path):
    service = make_service(corpus_dir=tmp_path / "corpus", max_json_bytes=4096)
    service.ingest(write_files(tmp_path / "corpus", DOCS))
    with TestClient(create_app(service, with_page=False)) as client:
        yield client, service


def test_a_json_body_over_the_limit_is_refused_with_413_naming_it(small_bodies):
    client, service = small_bodies
    padded = {"question": "Where do I book flights?", "answer": "x", "rating": "up", "extra": "y" * 5000}

    declared = client.post("/api/feedback", json=padded)
    # No Content-Length: the body is counted as it arrives.
    streamed = client.post("/api/feedback", content=iter([json.dumps(padded).encode()[i:i + 1000]
                                                           for i in range(0, 6000, 1000)]),
                           headers={"Content-Type": "application/json"})

    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert ErrorResponse.model_validate(response.json()).error == (
            "the request body is over the 4,096-byte limit (SOURCEBOOK_MAX_JSON_BYTES)")
    assert service.feedback() == []
    ok = client.post("/api/feedback", json={"question": "Where do I book flights?", "answer": "x", "rating": "up"})
    assert FeedbackResponse.model_validate(ok.json()).id >= 1


def test_every_text_field_of_ask_is_bounded_history_included(client):
    long_answer = [{"question": "Where do I book flights?", "answer": "a" * 20_001}]
    long_question = [{"question": "q" * 2001}]
    too_many = [{"question": "Where?"}] * 51

    for history in (long_answer, long_question, too_many):
        response = client.post("/api/ask", json={"question": "And trains?", "history": history})
        assert response.status_code == 422, response.text
        assert "history" in ErrorResponse.model_validate(response.json()).error
    fine = client.post("/api/ask", json={"question": "Where do I book flights?", "history": [{"question": "Hi"}]})
    assert AskResponse.model_validate(fine.json()).question == "Where do I book flights?"


def test_the_default_body_limit_refuses_a_200_megabyte_feedback(client):
    response = client.post("/api/feedback", content=b"{", headers={"Content-Type": "application/json",
                                                                   "Content-Length": str(200 * 2**20)})

    assert response.status_code == 413
    assert "1,048,576-byte limit" in ErrorResponse.model_validate(response.json()).error


# --- 5. no file stops an ingest ---------------------------------------------------------------------------
@pytest.mark.parametrize("charset", ["punycode", "undefined", "rot13"])
def test_an_html_file_declaring_an_unusable_charset_is_read_as_utf8(make_service, tmp_path, charset):
    page = f'<html><head><meta charset="{charset}"><title>Canteen</title></head><body><p>The canteen opens at noon.</p></body></html>'
    corpus = write_files(tmp_path / "corpus", {**DOCS, "canteen.html": page})

    report = make_service().ingest(corpus)

    assert report.failed == []
    assert sorted(Path(source).name for source in report.added) == ["canteen.html", "security.md", "travel.txt"]


def test_a_parser_failing_in_any_way_fails_that_file_only(make_service, tmp_path, monkeypatch):
    def broken(markup: str):
        raise KeyError("a bug in the HTML parser")

    monkeypatch.setitem(loaders._TEXT_PARSERS, ".html", broken)
    corpus = write_files(tmp_path / "corpus", {**DOCS, "canteen.html": "<p>The canteen opens at noon.</p>"})

    report = make_service().ingest(corpus)

    assert [(Path(source).name, reason) for source, reason in report.failed] == [
        ("canteen.html", "could not be read (KeyError: 'a bug in the HTML parser')")]
    assert sorted(Path(source).name for source in report.added) == ["security.md", "travel.txt"]


# --- 6. lesser ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("token", ["", "   "])
def test_an_empty_api_token_is_refused_with_a_way_forward(monkeypatch, token):
    monkeypatch.setenv("SOURCEBOOK_API_TOKEN", token)

    with pytest.raises(ValidationError, match="set a token or unset SOURCEBOOK_API_TOKEN"):
        Settings()


def test_serve_over_a_corrupt_store_says_in_one_line_how_to_rebuild_it(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from app import service as service_module
    from tests.fakes import FakeEmbedder
    from ui.cli import app as cli

    monkeypatch.setattr(service_module, "load_embedder", lambda settings: FakeEmbedder())
    index = tmp_path / "index"
    index.mkdir()
    (index / "store.sqlite").write_bytes(b"this is not an SQLite database, only its name " * 100)

    result = CliRunner().invoke(cli, ["serve", "--index", str(index), "--port", "9"])

    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"error: {index / 'store.sqlite'} is not a readable index store")
    assert line.endswith(f"`sourcebook ingest CORPUS --index {index} --rebuild`")


def test_a_page_upload_onto_a_full_disk_says_so_and_adds_nothing(service, uploads, tmp_path, monkeypatch):
    import errno

    def full(files):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(service, "upload_each", full)
    app = create_app(service)
    with TestClient(app) as client:
        [path] = client.post("/gradio_api/upload", files=[("files", ("parking.txt", b"Parking\nGarage B.\n"))]).json()

        status, answer = run_event(client, event_index(app, "upload"), [[file_data(path)], ""])

    assert status == 200
    assert "disk is full: nothing was added" in answer, answer
    assert not (tmp_path / "corpus" / "parking.txt").exists()
    # The temporary copy is removed whatever became of the upload.
    assert not Path(path).exists()
