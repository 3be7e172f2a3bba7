"""Each document's health: text per page of a PDF, and warnings for scans, empty sections and boilerplate."""

from __future__ import annotations

import io
import json
import sqlite3

import pytest
from PIL import Image, ImageDraw, ImageFont
from pypdf import PdfReader, PdfWriter
from typer.testing import CliRunner

from app import service as service_module
from ingest import ocr
from ingest.health import Concern, DocumentHealth, assess
from ingest.loaders import Limits, parse
from tests.fakes import FakeEmbedder, FakeReader
from tests.helpers import write_files
from tests.test_loaders import make_pdf
from ui.api import DocumentSummary
from ui.cli import app

REPORT = "Quarterly report\nSales rose in every region this quarter, led by the northern stores."

GUIDE = """\
# Onboarding guide

## Accounts

Ask the service desk for a laptop and an email account on your first day.

## Parking

## Lunch

The canteen on the ground floor serves lunch from noon until two.
"""

NORMAL = """\
# Travel

## Booking

Book flights through the travel desk at least two weeks ahead.

## Expenses

### Receipts

Keep every receipt and submit it within thirty days of the trip.
"""

FOOTER = "Confidential: for internal use only. Do not distribute."

SCANNED = ["Minutes of the harbour board", "The board approved the budget", "for the new harbour museum."]


@pytest.fixture(autouse=True)
def without_tesseract(monkeypatch):
    """As on a machine without Tesseract (this one may have it: the OCR test puts it back)."""
    monkeypatch.setattr(ocr, "available", lambda: False)


def scanned_pdf(text_page: str, scanned_lines: list[str]) -> bytes:
    """A PDF whose page 1 has text and page 2 is only a picture of printed lines, as a scanner makes it."""
    picture = Image.new("L", (1700, 2200), 255)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=48)
    for row, line in enumerate(scanned_lines):
        draw.text((150, 200 + row * 90), line, fill=0, font=font)
    scan = io.BytesIO()
    picture.save(scan, "PDF", resolution=200)
    writer = PdfWriter()
    for pdf in (make_pdf([text_page]), scan.getvalue()):
        for page in PdfReader(io.BytesIO(pdf)).pages:
            writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_pdf_page_without_text_is_flagged_with_how_to_read_it() -> None:
    document = parse(make_pdf([REPORT, ""]), ".pdf", source="report.pdf")

    health = assess(document)

    assert health.page_chars[1] == 0 and health.page_chars[0] == len(REPORT)
    [warning] = health.warnings
    assert warning.concern == Concern.NO_TEXT and warning.pages == (2,)
    assert warning.message == (
        "page 2 has no text: a scan? Install Tesseract (apt-get install tesseract-ocr, or `make ocr`)"
        " to read scanned pages"
    )


def test_a_scanned_page_is_flagged_without_tesseract() -> None:
    document = parse(scanned_pdf(REPORT, SCANNED), ".pdf", source="minutes.pdf")

    [warning] = assess(document).warnings

    assert "harbour" not in document.text and document.ocr_pages == ()
    assert warning.concern == Concern.NO_TEXT and warning.message.startswith("page 2 has no text: a scan? Install")


def test_ocr_reads_at_most_the_limit_of_pages_and_flags_the_rest_unread(monkeypatch) -> None:
    read = []
    monkeypatch.setattr(ocr, "available", lambda: True)
    monkeypatch.setattr(ocr, "read_page", lambda page: read.append(page) or "Words a scanner saw")

    document = parse(make_pdf([REPORT, "", "", ""]), ".pdf", source="long.pdf", limits=Limits(ocr_pages=2))
    warnings = {w.concern: w for w in assess(document).warnings}

    assert len(read) == 2 and document.ocr_pages == (2, 3) and document.ocr_skipped == (4,)
    assert document.page_at(document.text.rindex("Words a scanner saw")) == 3
    assert warnings[Concern.OCR].pages == (2, 3)
    assert warnings[Concern.NO_TEXT].message == (
        "page 4 has no text and was not read by OCR: past the most pages it reads in one document"
    )


@pytest.mark.slow  # runs Tesseract (`make ocr` installs it, as `make test` does)
def test_a_scanned_page_is_read_by_ocr_on_its_own_page(monkeypatch) -> None:
    monkeypatch.undo()  # the real check: Tesseract is installed here
    assert ocr.available(), "Tesseract is not installed: run `make ocr`"
    document = parse(scanned_pdf(REPORT, SCANNED), ".pdf", source="minutes.pdf")

    health = assess(document)
    museum = document.text.index("harbour museum")

    assert document.page_at(museum) == 2 and document.page_at(document.text.index("Sales rose")) == 1
    assert document.ocr_pages == (2,) and health.page_chars[1] > len("".join(SCANNED)) * 0.9
    [warning] = health.warnings
    assert warning.concern == Concern.OCR and warning.pages == (2,)
    assert warning.message.startswith("page 2 has no text layer and was read by OCR (Tesseract)")


@pytest.mark.slow  # runs Tesseract
def test_with_tesseract_a_page_without_words_says_ocr_found_none(monkeypatch) -> None:
    monkeypatch.undo()
    document = parse(make_pdf([REPORT, ""]), ".pdf", source="report.pdf")

    [warning] = assess(document).warnings

    assert warning.concern == Concern.NO_TEXT and "OCR (Tesseract) found no words either" in warning.message


def test_a_page_with_almost_no_text_among_full_ones_is_flagged() -> None:
    full = "\n".join(f"{REPORT} Table {row} lists the figures." for row in range(12))
    document = parse(make_pdf([full, "Figure 3", full]), ".pdf", source="figures.pdf")

    [warning] = assess(document).warnings

    assert warning.concern == Concern.LITTLE_TEXT and warning.pages == (2,)
    assert warning.message.startswith("page 2 has almost no text")


def test_an_empty_section_is_named_and_a_heading_over_subsections_is_not() -> None:
    document = parse(GUIDE.encode(), ".md", source="guide.md")

    [warning] = assess(document).warnings

    assert warning.concern == Concern.EMPTY_SECTION and warning.sections == ("Parking",)
    assert warning.message == "section “Parking” has nothing under the heading"


def test_a_normal_document_has_no_warnings() -> None:
    for document in (parse(NORMAL.encode(), ".md", source="travel.md"),
                     parse(make_pdf([REPORT, REPORT.upper()]), ".pdf", source="two.pdf")):
        assert assess(document).warnings == ()
    assert assess(parse(NORMAL.encode(), ".md", source="travel.md")).page_chars == ()


def test_text_mostly_of_repeated_lines_is_boilerplate_and_a_footer_on_each_page_is_not() -> None:
    notices = "\n".join([FOOTER, "Call the office.", FOOTER, FOOTER, "Thanks."])
    pages = [" ".join(f"Region {page}{n} sold {n} crates more than last year." for n in range(6)) + f"\n{FOOTER}"
             for page in range(4)]

    [warning] = assess(parse(notices.encode(), ".txt", source="notice.txt")).warnings

    assert warning.concern == Concern.BOILERPLATE
    assert warning.message.startswith("88% of the text is lines repeated 3 or more times (such as “Confidential")
    assert assess(parse(make_pdf(pages), ".pdf", source="footers.pdf")).warnings == ()


def test_health_survives_its_json_shape() -> None:
    health = assess(parse(GUIDE.encode(), ".md", source="guide.md"))

    assert DocumentHealth.from_dict(json.loads(json.dumps(health.to_dict()))) == health


# --------------------------------------------------------------- stored and listed


@pytest.fixture
def corpus(tmp_path):
    return write_files(tmp_path / "docs", {"report.pdf": make_pdf([REPORT, ""]), "guide.md": GUIDE, "travel.md": NORMAL})


def test_the_service_lists_each_documents_health(make_service, corpus) -> None:
    service = make_service()
    service.ingest(corpus)

    health = {d.source: d.health for d in service.documents()}

    assert health["docs/report.pdf"].page_chars == (len(REPORT), 0)
    assert [w.concern for w in health["docs/report.pdf"].warnings] == [Concern.NO_TEXT]
    assert [w.sections for w in health["docs/guide.md"].warnings] == [("Parking",)]
    assert health["docs/travel.md"].warnings == ()


def test_docs_shows_warnings_at_80_columns_and_json_carries_health(corpus, monkeypatch) -> None:
    monkeypatch.setattr(service_module, "load_embedder", lambda settings: FakeEmbedder())
    monkeypatch.setattr(service_module, "Reader", lambda directory, **options: FakeReader())
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(corpus)]).exit_code == 0

    table = runner.invoke(app, ["docs"], env={"COLUMNS": "80"})
    listed = {d["source"]: d for d in json.loads(runner.invoke(app, ["docs", "--json"]).output)}

    assert table.exit_code == 0
    assert max(len(line) for line in table.output.splitlines()) <= 80
    joined = " ".join(table.output.split())
    assert f"docs/report.pdf: 2 pages; characters of text per page: {len(REPORT)}, 0" in joined
    assert "docs/report.pdf: ! page 2 has no text: a scan?" in joined
    assert "docs/guide.md: ! section “Parking” has nothing under the heading" in joined
    assert "docs/travel.md:" not in joined
    assert listed["docs/report.pdf"]["health"]["page_chars"] == [len(REPORT), 0]
    assert listed["docs/report.pdf"]["health"]["warnings"][0]["pages"] == [2]
    assert listed["docs/travel.md"]["health"] == {"page_chars": [], "warnings": []}
    assert set(listed["docs/travel.md"]) == {"id", "title", "source", "size", "chunks", "updated", "health"}


def test_the_api_lists_health_beside_the_fields_it_had(make_service, corpus) -> None:
    from fastapi.testclient import TestClient

    from ui.server import create_app

    service = make_service()
    service.ingest(corpus)
    with TestClient(create_app(service, with_page=False)) as client:
        response = client.get("/api/documents")

    assert response.status_code == 200
    listed = {d.source: d for d in (DocumentSummary.model_validate(d) for d in response.json())}
    report = listed["docs/report.pdf"]
    assert report.health.page_chars == [len(REPORT), 0] and report.health.warnings[0].concern == Concern.NO_TEXT
    assert report.chunks == 1 and report.title == "Quarterly report"


def test_an_older_store_without_health_opens_lists_and_is_assessed_at_the_next_ingest(make_service, corpus) -> None:
    make_service().ingest(corpus)
    store = make_service().library.store.path
    with sqlite3.connect(store) as db:  # as a store made before health was kept
        db.execute("ALTER TABLE documents DROP COLUMN health")
        db.execute("UPDATE meta SET value='2' WHERE key='loader'")
    db.close()

    service = make_service()
    before = {d.source: d for d in service.documents()}
    service.ingest(corpus)
    after = {d.source: d for d in make_service().documents()}

    assert set(before) == {"docs/report.pdf", "docs/guide.md", "docs/travel.md"}
    assert all(d.health is None and d.chunks >= 1 for d in before.values())
    assert after["docs/report.pdf"].health.page_chars == (len(REPORT), 0)
