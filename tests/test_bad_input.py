"""Bad input, through the HTTP API and the CLI: a clear message, and the index answers as before."""

from __future__ import annotations

import io
import zipfile

import pytest
from pypdf import PdfWriter
from typer.testing import CliRunner

from app import service as service_module
from app.uploads import safe_filename
from tests.fakes import FakeEmbedder, FakeReader
from tests.helpers import write_files
from ui.api import AskResponse, ErrorResponse, UploadResponse
from ui.cli import app as cli

DOCS = {
    "travel.txt": "Travel\nBook flights through the travel desk at least two weeks ahead.\n",
    "security.md": "# Security\n\nReport phishing emails to the security team with the report button.\n",
}
PROBES = ["Where do I report phishing emails?", "How far ahead should I book flights through the travel desk?"]


def pdf_bytes(*, password: str | None = None) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    if password:
        writer.encrypt(password)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    # The fastest compression: zeros shrink to about a megabyte even so, in a third of the time.
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w") as member:
            chunk = b"\0" * 2**20
            for _ in range(260):  # 260 MiB of zeros, a few hundred KB compressed
                member.write(chunk)
    return buffer.getvalue()


def bad_files() -> dict[str, tuple[bytes, str]]:
    """Each bad file and what its upload should come to; made when a test asks, not when the module loads."""
    return {
        "latin1.txt": ("Caf\xe9 menu: the canteen serves cr\xeapes on Fridays.\n".encode("cp1252"), "added"),
        "binary.txt": (bytes(range(256)) * 16, "failed"),
        "corrupt.pdf": (b"%PDF-1.7\n" + bytes(range(256)) * 8, "failed"),
        "truncated.pdf": (pdf_bytes()[:300], "failed"),
        "locked.pdf": (pdf_bytes(password="secret"), "failed"),
        "empty.txt": (b"", "failed"),
        "bomb.docx": (zip_bomb(), "failed"),
    }


@pytest.fixture
def service(make_service, tmp_path):
    service = make_service(corpus_dir=tmp_path / "corpus", max_upload_files=10)
    service.ingest(write_files(tmp_path / "corpus", DOCS))
    return service


def answers(client) -> list[tuple[bool, str]]:
    """What the probe questions get now: checked before and after each bad input."""
    results = []
    for question in PROBES:
        answer = AskResponse.model_validate(client.post("/api/ask", json={"question": question}).json())
        results.append((answer.answered, answer.citations[0].source if answer.citations else ""))
    return results


@pytest.mark.parametrize(
    "body",
    [
        {"question": ""},
        {"question": " \t\n "},
        {"question": "x" * 100_000},
        {"question": "\x00\x01\x02"},
        {"question": "ok?", "k": 0},
        {"question": "ok?", "k": 1000},
        {"question": "ok?", "k": "five"},
        {"question": ["not", "a", "string"]},
    ],
)
def test_bad_questions_get_a_clear_4xx_and_change_nothing(client, body):
    before = answers(client)

    response = client.post("/api/ask", json=body)

    assert response.status_code in (400, 422)
    assert ErrorResponse.model_validate(response.json()).error
    assert answers(client) == before


def test_control_characters_in_a_question_are_cleaned_not_fatal(client):
    response = client.post("/api/ask", json={"question": "Where do I report \x07phishing\x1b emails?"})

    assert response.status_code == 200
    answer = AskResponse.model_validate(response.json())
    assert answer.citations[0].source == "corpus/security.md"


@pytest.mark.parametrize(
    "body",
    [
        b'{"question": "Where do I report \\ud800 phishing?"}',  # a lone surrogate: not Unicode text
        b'{"question": "caf\xe9?"}',  # Latin-1 bytes: not UTF-8
        b'{"question": ',  # cut short
    ],
)
def test_invalid_unicode_or_json_is_a_clear_4xx(client, body):
    before = answers(client)

    response = client.post("/api/ask", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code in (400, 422)
    assert ErrorResponse.model_validate(response.json()).error
    assert answers(client) == before


def test_a_batch_of_bad_files_is_reported_per_file_and_the_good_one_kept(client, tmp_path):
    before = answers(client)
    bad = bad_files()
    files = [("files", (name, data, "application/octet-stream")) for name, (data, _) in bad.items()]

    response = client.post("/api/documents", files=files)

    assert response.status_code == 200
    results = {r.filename: r for r in UploadResponse.model_validate(response.json()).results}
    assert {name: r.status for name, r in results.items()} == {name: s for name, (_, s) in bad.items()}
    assert all(r.reason for r in results.values() if r.status == "failed")
    assert "password" in results["locked.pdf"].reason
    assert "zip bomb" in results["bomb.docx"].reason
    # Refused files never land in the corpus folder.
    assert sorted(p.name for p in (tmp_path / "corpus").iterdir()) == ["latin1.txt", "security.md", "travel.txt"]
    assert answers(client) == before


@pytest.mark.parametrize(
    ("offered", "saved"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("/absolute/path/notes.md", "notes.md"),
        ("..\\..\\windows\\notes.txt", "notes.txt"),
        ("nul\x00byte.txt", "nul_00byte.txt"),  # the client sends the NUL percent-encoded
        (".hidden.txt", "hidden.txt"),
        ("Ünïcødé naïve 日本.txt", "Ünïcødé naïve 日本.txt"),
        ("semi;colon|pipe$.txt", "semi_colon_pipe_.txt"),
    ],
)
def test_upload_names_land_inside_the_corpus_folder(client, tmp_path, offered, saved):
    files = [("files", (offered, b"Note\nA note about the quarterly planning meeting.\n", "text/plain"))]

    result = UploadResponse.model_validate(client.post("/api/documents", files=files).json()).results[0]

    assert result.status == "added"
    assert (tmp_path / "corpus" / saved).is_file()
    assert not (tmp_path / "etc").exists() and not (tmp_path.parent / "etc" / "passwd.txt").exists()


@pytest.mark.parametrize("name", ["", "..", ".", "/", "...", "\x00", "dir/"])
def test_names_that_are_no_file_name_are_refused(name):
    with pytest.raises(ValueError, match="not a usable file name"):
        safe_filename(name)


def test_nul_and_control_characters_are_dropped_from_names():
    assert safe_filename("nul\x00by\x1bte.txt") == "nulbyte.txt"


def test_the_same_file_twice_is_unchanged_the_second_time(client):
    files = [("files", ("menu.txt", b"Menu\nSoup of the day is tomato.\n", "text/plain"))]

    first = UploadResponse.model_validate(client.post("/api/documents", files=files).json()).results[0]
    second = UploadResponse.model_validate(client.post("/api/documents", files=files).json()).results[0]

    assert (first.status, second.status) == ("added", "unchanged")
    assert first.document_id == second.document_id
    assert len([d for d in client.get("/api/documents").json() if d["source"].endswith("menu.txt")]) == 1


def test_unknown_ids_are_404_and_change_nothing(client):
    before = answers(client)

    assert client.get("/api/documents/does-not-exist").status_code == 404
    assert client.delete("/api/documents/does-not-exist").status_code == 404
    assert answers(client) == before


@pytest.fixture
def fake_model(monkeypatch):
    """The CLI's service with the fake embedder and reader: bad input is refused before any model matters."""
    embedder = FakeEmbedder()
    monkeypatch.setattr(service_module, "load_embedder", lambda settings: embedder)
    monkeypatch.setattr(service_module, "Reader", lambda directory, **options: FakeReader())


@pytest.mark.parametrize(
    ("arguments", "stdin"),
    [
        (["ask", ""], None),
        (["ask", "x" * 100_000], None),
        (["ask", "\x01\x02"], None),
        (["search", "ok", "-k", "99"], None),
        (["ask", "--json", "-"], "   \n\x00\n"),
        (["ingest", "missing-folder"], None),
    ],
)
def test_the_cli_answers_bad_input_with_one_line_and_a_non_zero_exit(fake_model, tmp_path, arguments, stdin):
    runner = CliRunner()
    runner.invoke(cli, ["ingest", str(write_files(tmp_path / "docs", DOCS))])
    before = runner.invoke(cli, ["ask", PROBES[0], "--json"]).output

    result = runner.invoke(cli, arguments, input=stdin)

    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert result.output.strip() and len(result.output.strip().splitlines()) <= 2
    assert runner.invoke(cli, ["ask", PROBES[0], "--json"]).output == before
