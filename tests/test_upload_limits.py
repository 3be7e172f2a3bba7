"""The total size of one upload is limited: over it, the whole upload is refused and nothing changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.uploads import Upload
from ingest.errors import UnsupportedFormat
from retrieval.errors import UploadTooLarge
from tests.helpers import write_files
from ui.api import FORM_FRAMING_BYTES, AskResponse, ErrorResponse, UploadResponse
from ui.server import create_app

DOCS = {
    "travel.txt": "Travel\nBook flights through the travel desk at least two weeks ahead.\n",
    "security.md": "# Security\n\nReport phishing emails to the security team with the report button.\n",
}
PROBE = "Where do I report phishing emails?"
MAX_FILE = 2000
MAX_TOTAL = 3000


def note(topic: str, size: int) -> bytes:
    """A readable text file of exactly `size` bytes about `topic`."""
    text = f"{topic.title()}\nThe {topic} rota is pinned on the kitchen wall. ".encode()
    return (text + b"More about the rota. " * (size // 20 + 1))[:size]


@pytest.fixture
def service(make_service, tmp_path):
    service = make_service(corpus_dir=tmp_path / "corpus", max_file_bytes=MAX_FILE, max_upload_bytes=MAX_TOTAL)
    service.ingest(write_files(tmp_path / "corpus", DOCS))
    return service


def corpus_state(tmp_path) -> dict[str, bytes]:
    """Every file under the corpus folder (hidden ones too) with its bytes."""
    root = tmp_path / "corpus"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def probe(client) -> tuple[bool, list[str], int]:
    """What the probe question gets, and how many documents are listed."""
    answer = AskResponse.model_validate(client.post("/api/ask", json={"question": PROBE}).json())
    return answer.answered, [c.source for c in answer.citations], len(client.get("/api/documents").json())


def refused(response, fragment: str) -> str:
    assert response.status_code == 413, response.text
    error = ErrorResponse.model_validate(response.json()).error
    assert fragment in error, error
    return error


def multipart_stream(name: str, data: bytes, boundary: str = "sourcebook-test") -> Iterator[bytes]:
    """A multipart body sent in pieces with no Content-Length (chunked), as a streaming client would."""
    yield (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
           "Content-Type: text/plain\r\n\r\n").encode()
    for start in range(0, len(data), 8192):
        yield data[start : start + 8192]
    yield f"\r\n--{boundary}--\r\n".encode()


def test_files_each_under_the_file_limit_but_over_the_total_are_refused_whole(client, tmp_path):
    before_files, before_answers = corpus_state(tmp_path), probe(client)
    files = [("files", (f"rota-{n}.txt", note("cleaning", 1600), "text/plain")) for n in range(2)]

    response = client.post("/api/documents", files=files)

    error = refused(response, "3,200 bytes")
    assert "3,000-byte limit per upload" in error
    assert corpus_state(tmp_path) == before_files
    assert probe(client) == before_answers


def test_a_body_declared_over_the_limit_is_refused_before_it_is_read(client, tmp_path):
    before_files, before_answers = corpus_state(tmp_path), probe(client)
    size = MAX_TOTAL + FORM_FRAMING_BYTES + 1000
    files = [("files", ("huge.txt", note("parking", size), "text/plain"))]

    response = client.post("/api/documents", files=files)

    declared = int(response.request.headers["content-length"])
    error = refused(response, f"request body is {declared:,} bytes")
    assert "3,000-byte limit per upload" in error
    assert corpus_state(tmp_path) == before_files
    assert probe(client) == before_answers


def test_a_streamed_body_without_a_length_is_cut_off_at_the_limit(client, tmp_path):
    before_files, before_answers = corpus_state(tmp_path), probe(client)
    data = note("parking", 10 * (MAX_TOTAL + FORM_FRAMING_BYTES))

    response = client.post(
        "/api/documents",
        content=multipart_stream("huge.txt", data),
        headers={"Content-Type": "multipart/form-data; boundary=sourcebook-test"},
    )

    assert "content-length" not in response.request.headers
    refused(response, "request body is at least")
    assert corpus_state(tmp_path) == before_files
    assert probe(client) == before_answers


def test_an_upload_just_within_the_total_is_accepted(client, tmp_path):
    files = [("files", ("rota-a.txt", note("cleaning", 1500), "text/plain")),
             ("files", ("rota-b.txt", note("dishes", 1500), "text/plain"))]

    response = client.post("/api/documents", files=files)

    assert response.status_code == 200, response.text
    results = UploadResponse.model_validate(response.json()).results
    assert [(r.filename, r.status) for r in results] == [("rota-a.txt", "added"), ("rota-b.txt", "added")]
    assert (tmp_path / "corpus" / "rota-b.txt").read_bytes() == note("dishes", 1500)


def test_the_upload_route_documents_413(client):
    responses = client.get("/openapi.json").json()["paths"]["/api/documents"]["post"]["responses"]

    assert responses["413"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}


def test_with_a_token_configured_an_oversized_upload_without_it_is_401(make_service, tmp_path):
    service = make_service(corpus_dir=tmp_path / "corpus", max_upload_bytes=MAX_TOTAL, api_token="s3cret")
    files = [("files", ("huge.txt", note("parking", MAX_TOTAL + FORM_FRAMING_BYTES + 1000), "text/plain"))]

    with TestClient(create_app(service, with_page=False)) as client:
        # The token is checked first: a stranger learns nothing about the limits.
        assert client.post("/api/documents", files=files).status_code == 401
        right = {"Authorization": "Bearer s3cret"}
        assert client.post("/api/documents", files=files, headers=right).status_code == 413


# --- the service, which the page's upload goes through ---------------------------------------
def test_the_service_refuses_an_upload_over_the_total_and_writes_nothing(service, tmp_path):
    before_files, before_counts = corpus_state(tmp_path), service.counts()
    files = [("rota-a.txt", note("cleaning", 1600)), ("rota-b.txt", note("dishes", 1600))]

    with pytest.raises(UploadTooLarge, match=r"3,200 bytes, over the 3,000-byte limit per upload") as refusal:
        service.upload(files)

    assert (refusal.value.size, refusal.value.limit) == (3200, MAX_TOTAL)
    assert corpus_state(tmp_path) == before_files
    assert service.counts() == before_counts
    assert service.search("cleaning rota kitchen wall", k=1).hits[0].source != "corpus/rota-a.txt"


def unread(*sizes: int) -> list[Upload]:
    """Uploads of these sizes that fail the test if they are read."""

    def read(limit: int) -> bytes:
        raise AssertionError("a file was read")

    return [Upload(f"file-{i}.txt", size, read) for i, size in enumerate(sizes)]


def test_the_service_checks_sizes_before_anything_is_read(service):
    service.check_upload(unread(MAX_FILE, MAX_TOTAL - MAX_FILE))
    with pytest.raises(UploadTooLarge, match="3,001 bytes"):
        service.check_upload(unread(1000, 1000, 1001))
    with pytest.raises(ValueError, match="at most 20 files per upload, got 21"):
        service.check_upload(unread(*[1] * 21))
    with pytest.raises(UploadTooLarge, match="file-0.txt: 2,001 bytes, over the 2,000-byte limit per file"):
        service.check_upload(unread(MAX_FILE + 1), refuse_large_files=True)
    [result] = service.upload(unread(MAX_FILE + 1))
    assert (result.status, result.reason) == ("failed", "file is 2,001 bytes, over the 2,000-byte limit")


def test_the_service_refuses_an_upload_with_no_file_it_can_read_before_anything_is_read(service):
    [never_read] = {upload.read for upload in unread(4)}
    binaries = [Upload(name, 4, never_read) for name in ("tool.exe", "README")]
    with pytest.raises(UnsupportedFormat, match=r"^unsupported file type: tool.exe, README \(supported: .docx, "):
        service.check_upload(binaries, refuse_unsupported=True)
    # One readable file among them and the upload goes on, each file answered for itself.
    service.check_upload([*binaries, Upload("notes.TXT", 4, never_read)], refuse_unsupported=True)
    # The page reports each file instead.
    service.check_upload(binaries)


def test_the_total_limit_is_a_setting_with_a_sensible_default(make_service):
    assert make_service().settings.max_upload_bytes == 200 * 2**20
    with pytest.raises(ValueError, match="max_upload_bytes"):
        make_service(max_upload_bytes=0)
