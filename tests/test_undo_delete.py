"""Undo a delete: it says where the file went, deleted documents are listed and can be restored."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import service as service_module
from app.deleted import original_name
from ingest.records import document_id_for
from retrieval.errors import KeptFileNotFound, NameTaken
from tests.helpers import write_files
from ui.api import DeletedModel, DeleteResponse, ErrorResponse, RestoreResponse
from ui.cli import app
from ui.server import create_app

DOCS = {
    "travel.txt": "Travel\nBook flights through the travel desk at least two weeks ahead. "
    "Economy class is the default for flights under six hours.\n",
    "guides/security.md": "# Security\n\nReport phishing emails to the security team with the report button.\n",
}
PHISHING = "Where do I report phishing emails?"
TOKEN = {"Authorization": "Bearer s3cret-token"}


@pytest.fixture
def service(make_service, tmp_path):
    service = make_service(corpus_dir=tmp_path / "corpus", api_token="s3cret-token")
    service.ingest(write_files(tmp_path / "corpus", DOCS))
    return service


def security_id(service) -> str:
    return next(d.id for d in service.documents() if d.source.endswith("security.md"))


def test_delete_list_restore_and_the_document_answers_again(service, tmp_path):
    document_id = security_id(service)
    original = (tmp_path / "corpus/guides/security.md").read_bytes()

    deletion = service.delete_document(document_id)

    assert deletion.kept_as.startswith(".deleted/guides/security.") and deletion.kept_as.endswith(".md")
    assert (tmp_path / "corpus" / deletion.kept_as).read_bytes() == original
    assert not (tmp_path / "corpus/guides/security.md").exists()
    assert not service.ask(PHISHING).answered
    [kept] = service.deleted()
    assert (kept.document_id, kept.name, kept.kept_as, kept.name_taken) == (
        document_id, "guides/security.md", deletion.kept_as, False)

    restored = service.restore(document_id)

    assert (restored.document_id, restored.name, restored.restored_from) == (
        document_id, "guides/security.md", deletion.kept_as)
    assert (tmp_path / "corpus/guides/security.md").read_bytes() == original
    assert service.deleted() == []
    answer = service.ask(PHISHING)
    assert answer.answered and answer.citations[0].document_id == document_id
    assert restored.chunks == service.library.store.chunk_count(document_id) >= 1


def test_restoring_a_name_now_in_use_is_refused_and_nothing_is_lost(service, tmp_path):
    document_id = security_id(service)
    kept_as = service.delete_document(document_id).kept_as
    newer = b"# Security\n\nPhishing goes to the new abuse desk.\n"
    service.upload([("security.md", newer)])
    (tmp_path / "corpus/guides/security.md").write_bytes(newer)

    with pytest.raises(NameTaken, match="guides/security.md is in the corpus folder already"):
        service.restore(document_id)

    assert (tmp_path / "corpus/guides/security.md").read_bytes() == newer
    assert (tmp_path / "corpus" / kept_as).is_file()
    assert [k.name_taken for k in service.deleted()] == [True]


def test_a_restore_names_a_kept_file_by_id_or_is_refused(service):
    with pytest.raises(KeptFileNotFound, match="no deleted document"):
        service.restore("0123456789abcdef")
    with pytest.raises(ValueError, match="16 hex digits"):
        service.restore("../../etc/passwd")
    kept_as = service.delete_document(security_id(service)).kept_as
    [kept] = service.deleted()

    assert service.restore(kept.id).restored_from == kept_as


def test_links_in_the_kept_folder_lead_nowhere_outside_the_corpus(service, tmp_path):
    secret = tmp_path / "outside" / "secret.txt"
    write_files(tmp_path / "outside", {"secret.txt": "Secret\nThe vault code is 1234.\n"})
    kept = tmp_path / "corpus/.deleted"
    kept.mkdir()
    (kept / "secret.20250101T120000Z-1a2b3c4d.txt").symlink_to(secret)
    (kept / "elsewhere").symlink_to(tmp_path / "outside", target_is_directory=True)
    (tmp_path / "outside/notes.20250101T120000Z-1a2b3c4d.txt").write_text("Notes\nOutside.\n")

    assert service.deleted() == []
    with pytest.raises(KeptFileNotFound):
        service.restore(document_id_for("corpus/secret.txt"))
    assert not (tmp_path / "corpus/secret.txt").exists()


def test_a_kept_folder_that_is_a_link_is_not_followed(service, tmp_path):
    write_files(tmp_path / "outside", {"notes.20250101T120000Z-1a2b3c4d.txt": "Notes\nOutside.\n"})
    (tmp_path / "corpus/.deleted").symlink_to(tmp_path / "outside", target_is_directory=True)

    assert service.deleted() == []


def test_kept_names_give_back_the_original_name():
    assert original_name("notes.20250101T120000Z-1a2b3c4d.txt")[0] == "notes.txt"
    assert original_name("notes.v2.20250101T120000Z-1a2b3c4d-3.md")[0] == "notes.v2.md"
    assert original_name("README.20250101T120000Z-1a2b3c4d")[0] == "README"
    assert original_name("notes.txt") is None


@pytest.fixture
def client(service):
    with TestClient(create_app(service, with_page=False)) as client:
        yield client


def test_the_api_deletes_lists_and_restores_with_the_token(client, service, tmp_path):
    document_id = security_id(service)
    deleted = client.delete(f"/api/documents/{document_id}", headers=TOKEN)
    assert deleted.status_code == 200
    deletion = DeleteResponse.model_validate(deleted.json())
    assert deletion.kept_as.startswith(".deleted/guides/security.") and deletion.source.endswith("security.md")

    assert "API token" in ErrorResponse.model_validate(client.get("/api/deleted").json()).error
    assert client.post(f"/api/deleted/{document_id}/restore").status_code == 401
    listed = client.get("/api/deleted", headers=TOKEN)
    assert listed.status_code == 200
    [kept] = [DeletedModel.model_validate(k) for k in listed.json()]
    assert (kept.document_id, kept.name, kept.kept_as) == (document_id, "guides/security.md", deletion.kept_as)

    restored = client.post(f"/api/deleted/{document_id}/restore", headers=TOKEN)
    assert restored.status_code == 200
    assert RestoreResponse.model_validate(restored.json()).id == document_id
    assert client.post("/api/ask", json={"question": PHISHING}).json()["answered"] is True

    again = client.post(f"/api/deleted/{document_id}/restore", headers=TOKEN)
    assert again.status_code == 404 and "no deleted document" in ErrorResponse.model_validate(again.json()).error
    bad = client.post("/api/deleted/not-an-id/restore", headers=TOKEN)
    assert bad.status_code == 400 and "16 hex digits" in ErrorResponse.model_validate(bad.json()).error


def test_the_api_answers_a_taken_name_with_409(client, service, tmp_path):
    document_id = security_id(service)
    client.delete(f"/api/documents/{document_id}", headers=TOKEN)
    write_files(tmp_path / "corpus", {"guides/security.md": "# Security\n\nNew text.\n"})

    response = client.post(f"/api/deleted/{document_id}/restore", headers=TOKEN)

    assert response.status_code == 409
    assert "is in the corpus folder already" in ErrorResponse.model_validate(response.json()).error
    assert len(service.deleted()) == 1


def test_the_cli_lists_and_restores(service, monkeypatch, embedder, reader, tmp_path):
    monkeypatch.setattr(service_module, "load_embedder", lambda settings: embedder)
    monkeypatch.setattr(service_module, "Reader", lambda directory, **options: reader)
    document_id = security_id(service)
    service.delete_document(document_id)
    options = ["--index", str(service.settings.index_dir), "--corpus", str(tmp_path / "corpus")]

    listed = CliRunner().invoke(app, ["deleted", *options, "--json"])
    restored = CliRunner().invoke(app, ["restore", document_id, *options])
    again = CliRunner().invoke(app, ["restore", document_id, *options])

    assert listed.exit_code == 0, listed.output
    assert [k["document_id"] for k in json.loads(listed.stdout)] == [document_id]
    assert restored.exit_code == 0, restored.output
    assert "restored corpus/guides/security.md" in restored.stdout
    assert again.exit_code == 1 and "no deleted document" in again.output
    assert (tmp_path / "corpus/guides/security.md").is_file()
