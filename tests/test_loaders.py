"""Loaders turn each supported file type into quotable text with the right sections, pages and title."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import docx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfReader, PdfWriter

from ingest.errors import DocumentTooLarge, EmptyDocument, IngestError, UnreadableDocument, UnsupportedFormat
from ingest.loaders import SUPPORTED_SUFFIXES, Limits, load, parse
from ingest.records import Document

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


# ------------------------------------------------------------------ fixtures


def make_pdf(pages: list[str], *, title: str | None = None) -> bytes:
    """Hand-write a small valid PDF of Helvetica text: a string per page, a line of it per newline."""
    font_number = 3 + 2 * len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode()]
    for i, page in enumerate(pages):
        # T* moves to the next line, 14 points (TL) down.
        shown = " T* ".join(f"({line}) Tj" for line in page.split("\n"))
        leading = "14 TL " if "\n" in page else ""
        stream = f"BT /F1 12 Tf {leading}72 720 Td {shown} ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R"
            f" /Resources << /Font << /F1 {font_number} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    info = ""
    if title is not None:
        objects.append(f"<< /Title ({title}) >>".encode())
        info = f" /Info {len(objects)} 0 R"
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def encrypt_pdf(data: bytes, *, user_password: str, owner_password: str = "owner") -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password, owner_password)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def make_docx(build: Callable[[docx.document.Document], None]) -> bytes:
    document = docx.Document()
    build(document)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def zip_bomb(uncompressed_mb: int) -> bytes:
    """A zip whose one member is `uncompressed_mb` MiB of zeros, compressed to a few KB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            for _ in range(uncompressed_mb):
                member.write(bytes(2**20))
    return buffer.getvalue()


def section_text(document: Document, heading: str) -> str:
    section = next(s for s in document.sections if s.heading == heading)
    return document.text[section.start : section.end]


def page_text(document: Document, number: int) -> str:
    page = next(p for p in document.pages if p.number == number)
    return document.text[page.start : page.end]


def assert_spans_tile(document: Document) -> None:
    """Sections and pages lie inside the text, in order, each ending where the next starts."""
    for spans in (document.sections, document.pages):
        for span in spans:
            assert 0 <= span.start < span.end <= len(document.text)
        for before, after in zip(spans, spans[1:]):
            assert before.end == after.start


def write(tmp_path: Path, name: str, content: bytes | str) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


# ------------------------------------------------------------------ markdown


def test_markdown_headings_become_sections_over_the_raw_text(tmp_path: Path) -> None:
    raw = "# Setup\n\nYou need Python 3.11.\n\n## Install\n\nRun `pip install sourcebook`.\n"
    document = load(write(tmp_path, "guide.md", raw))

    assert document.text == raw
    assert document.title == "Setup"
    assert [(s.heading, s.level) for s in document.sections] == [("Setup", 1), ("Install", 2)]
    assert section_text(document, "Setup").startswith("# Setup\n")
    assert "Python 3.11" in section_text(document, "Setup")
    assert section_text(document, "Install").startswith("## Install")
    assert "pip install sourcebook" in section_text(document, "Install")
    assert "pip install" not in section_text(document, "Setup")
    assert_spans_tile(document)


def test_markdown_front_matter_setext_headings_and_crlf(tmp_path: Path) -> None:
    raw = "---\r\ntitle: Team Handbook\r\n---\r\nHolidays\r\n========\r\n\r\nEveryone gets 25 days.\r\n"
    document = load(write(tmp_path, "handbook.markdown", raw))

    # The front matter is settings, not text; blank lines keep the file's line numbers.
    assert document.text == "\n\n\nHolidays\n========\n\nEveryone gets 25 days.\n"
    assert document.line_at(document.text.index("Everyone")) == 7
    assert document.title == "Team Handbook"
    # The front matter's closing `---` must not turn "title: ..." into a setext heading.
    assert [s.heading for s in document.sections] == ["Holidays"]
    assert "25 days" in section_text(document, "Holidays")


def test_markdown_title_falls_back_to_first_heading_then_the_file_name() -> None:
    assert parse(b"Intro line\n\n## Usage\n\nCall it.\n", ".md", source="a.md").title == "Usage"
    # A sentence is prose, not a heading: the file's name says more.
    assert parse(b"Just a note about **bold** things.\n", ".md", source="notes/bold_things.md").title == "Bold things"


# ---------------------------------------------------------------------- html

PAGE = b"""<!doctype html>
<html><head><title>Refund  Policy</title><style>p { color: red }</style></head>
<body>
<nav><a href="/">Home</a></nav>
<h1>Refunds</h1>
<p>Refunds are paid   within <b>14</b> days.</p>
<script>alert(1)</script>
<h2>Exceptions</h2>
<p>Type &lt;script&gt; to see &amp; learn.<br>Second line.</p>
<table><tr><th>Plan</th><th>Price</th></tr><tr><td>Basic</td><td>$5</td></tr></table>
<ul><li>Gift cards</li><li>Sale items</li></ul>
</body></html>"""


def test_html_keeps_visible_text_only_and_takes_title_from_title_element(tmp_path: Path) -> None:
    document = load(write(tmp_path, "refunds.html", PAGE))

    assert document.title == "Refund Policy"
    assert "alert(1)" not in document.text
    assert "color: red" not in document.text
    assert "Home" not in document.text
    assert "<b>" not in document.text
    assert "Refunds are paid within 14 days." in document.text.split("\n\n")
    # Escaped markup in the page is text, so it decodes to the literal characters.
    assert "Type <script> to see & learn.\nSecond line." in document.text
    assert "Plan | Price\n\nBasic | $5" in document.text
    assert "Gift cards\n\nSale items" in document.text


def test_html_headings_are_sections_with_levels(tmp_path: Path) -> None:
    document = load(write(tmp_path, "refunds.htm", PAGE))

    assert [(s.heading, s.level) for s in document.sections] == [("Refunds", 1), ("Exceptions", 2)]
    assert "14 days" in section_text(document, "Refunds")
    assert "Gift cards" in section_text(document, "Exceptions")
    assert "14 days" not in section_text(document, "Exceptions")
    assert_spans_tile(document)


def test_html_title_falls_back_to_first_h1() -> None:
    document = parse(b"<p>Preface.</p><h2>Minor</h2><h1>Main Topic</h1><p>Body.</p>", ".html", source="x.html")
    assert document.title == "Main Topic"


def test_html_honours_a_declared_legacy_charset() -> None:
    page = '<meta charset="windows-1252"><p>Caf\u00e9 \u201cmenu\u201d</p>'.encode("cp1252")
    assert parse(page, ".html", source="menu.html").text == "Caf\u00e9 \u201cmenu\u201d"


# ----------------------------------------------------------------------- pdf


def test_pdf_pages_are_spans_holding_their_own_words(tmp_path: Path) -> None:
    path = write(tmp_path, "report.pdf", make_pdf(["Alpha apples on page one", "Beta bananas on page two"]))
    document = load(path)

    assert [p.number for p in document.pages] == [1, 2]
    assert "Alpha apples" in page_text(document, 1)
    assert "Beta bananas" not in page_text(document, 1)
    assert "Beta bananas" in page_text(document, 2)
    assert document.page_at(document.text.index("bananas")) == 2
    assert document.title == "Alpha apples on page one"
    assert document.sections == ()
    assert_spans_tile(document)


def test_pdf_title_comes_from_metadata() -> None:
    document = parse(make_pdf(["Body text"], title="Quarterly Report"), ".pdf", source="q.pdf")
    assert document.title == "Quarterly Report"


def test_pdf_with_only_an_owner_password_opens() -> None:
    data = encrypt_pdf(make_pdf(["Open to all readers"]), user_password="")
    assert parse(data, ".pdf", source="open.pdf").text == "Open to all readers"


# ---------------------------------------------------------------------- docx


def build_handbook(document: docx.document.Document) -> None:
    document.add_heading("Employee Handbook", 0)
    document.add_heading("Setup", 1)
    document.add_paragraph("Ask IT for a laptop.")
    document.add_paragraph("   ")
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, [("Item", "Owner"), ("Laptop", "IT desk")]):
        for cell, value in zip(row.cells, cells):
            cell.text = value
    document.add_heading("Install", 2)
    document.add_paragraph("Run the installer from the share.")


def test_docx_headings_become_sections_with_levels_and_tables_stay_in_order(tmp_path: Path) -> None:
    document = load(write(tmp_path, "handbook.docx", make_docx(build_handbook)))

    assert [(s.heading, s.level) for s in document.sections] == [
        ("Employee Handbook", 0),
        ("Setup", 1),
        ("Install", 2),
    ]
    assert document.title == "Employee Handbook"
    assert document.text.split("\n\n") == [
        "Employee Handbook",
        "Setup",
        "Ask IT for a laptop.",
        "Item | Owner",
        "Laptop | IT desk",
        "Install",
        "Run the installer from the share.",
    ]
    assert "Laptop | IT desk" in section_text(document, "Setup")
    assert section_text(document, "Install").startswith("Install\n\nRun the installer")
    assert_spans_tile(document)


def test_docx_title_prefers_core_properties() -> None:
    def build(document: docx.document.Document) -> None:
        build_handbook(document)
        document.core_properties.title = "HR Handbook 2025"

    assert parse(make_docx(build), ".docx", source="h.docx").title == "HR Handbook 2025"


def test_docx_merged_cells_appear_once() -> None:
    def build(document: docx.document.Document) -> None:
        table = document.add_table(rows=1, cols=3)
        table.cell(0, 0).merge(table.cell(0, 1)).text = "Wide"
        table.cell(0, 2).text = "Narrow"

    assert parse(make_docx(build), ".docx", source="t.docx").text == "Wide | Narrow"


# ---------------------------------------------------------------------- text


def test_txt_decodes_cp1252_when_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "legacy.txt", "Caf\u00e9 menu\r\n\u201cSoup\u201d \u2013 \u20ac4".encode("cp1252"))
    document = load(path)

    assert document.text == "Caf\u00e9 menu\n\u201cSoup\u201d \u2013 \u20ac4"
    assert document.title == "Caf\u00e9 menu"


def test_txt_with_a_utf16_bom_is_text_not_binary() -> None:
    data = "Notes from Notepad\n\u201cquoted\u201d".encode("utf-16")
    assert parse(data, ".txt", source="notepad.txt").text == "Notes from Notepad\n\u201cquoted\u201d"


def test_txt_keeps_text_verbatim_apart_from_bom_and_line_endings() -> None:
    raw = "\ufeffNotes\r\nRedNote\u2019s   growth,run-together words\rand\ttabs\n"
    assert parse(raw.encode("utf-8"), ".txt", source="n.txt").text == (
        "Notes\nRedNote\u2019s   growth,run-together words\nand\ttabs\n"
    )


def test_txt_headings_are_short_lines_that_open_a_paragraph() -> None:
    raw = (
        "An Article Title\n"
        "Origin and Development\n"
        "RedNote first launched in China in 2013 as a shopping sharing app for travellers.\n"
        "It grew fast.\n"
        "Its interface shows several kinds of content at once:\n"
        "Short videos\n"
        "Photo albums\n"
        "Long-form text\n"
        "This multi-dimensional approach lets users engage with many content formats at once.\n"
        "Cheers,\n"
        "Ed Sander \u2013 Research Editor\n"
        "What's Happening Right Now?\n"
        "\n"
        "If TikTok does shut down in the U.S., where will its American users go next?\n"
        "Photo: Jane Doe/Getty Images\n"
        "The last paragraph of the article ends the text right here.\n"
    )
    document = parse(raw.encode(), ".txt", source="a.txt")

    assert [s.heading for s in document.sections] == ["Origin and Development", "What's Happening Right Now?"]
    assert document.title == "An Article Title"
    assert section_text(document, "Origin and Development").startswith("Origin and Development\nRedNote first")
    assert "Short videos" in section_text(document, "Origin and Development")
    assert section_text(document, "What's Happening Right Now?").endswith("ends the text right here.\n")
    assert_spans_tile(document)


def test_txt_first_line_that_is_a_paragraph_is_no_title() -> None:
    first_line = " ".join(["word"] * 60)
    assert parse(f"{first_line}\nbody\n".encode(), ".txt", source="docs/long-notes.txt").title == "Long notes"


@given(
    st.lists(
        st.one_of(
            st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=90),
            st.sampled_from(["Introduction", "What Now?", "", "  ", "Plain sentence here."]),
            st.just("A long paragraph line that runs well past seventy characters and ends properly."),
        ),
        max_size=30,
    ),
    st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_txt_sections_are_ordered_non_overlapping_and_in_bounds(lines: list[str], newline: str) -> None:
    try:
        document = parse(newline.join(lines).encode("utf-8"), ".txt", source="p.txt")
    except EmptyDocument:
        return
    previous_end = 0
    for section in document.sections:
        assert previous_end <= section.start < section.end <= len(document.text)
        assert document.text[section.start : section.end].lstrip().startswith(section.heading)
        previous_end = section.end


# -------------------------------------------------------------------- errors

TRUNCATED_PDF = make_pdf(["Alpha apples", "Beta bananas"])[:450]

BAD_FILES = [
    ("corrupt.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 8, UnreadableDocument, "not a readable PDF"),
    ("truncated.pdf", TRUNCATED_PDF, UnreadableDocument, "not a readable PDF"),
    ("locked.pdf", encrypt_pdf(make_pdf(["Secret plans"]), user_password="hunter2"), UnreadableDocument,
     "password-protected"),
    ("image.pdf", make_pdf([""]), EmptyDocument, "no text found"),
    ("program.txt", b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)), UnreadableDocument, "looks binary"),
    ("utf8-with-nuls.md", b"ab\x00cd\x00ef", UnreadableDocument, "binary"),
    ("empty.txt", b"", EmptyDocument, "empty"),
    ("blank.html", b"  \n\t \r\n", EmptyDocument, "no text found"),
    ("only-script.html", b"<script>alert(1)</script>", EmptyDocument, "no text found"),
    ("notes.docx", b"These are plain notes, saved with the wrong extension.\n", UnreadableDocument,
     "not a valid .docx"),
    ("archive.docx", zip_bomb(0), UnreadableDocument, "not a valid .docx"),
    ("setup.exe", b"MZ\x90\x00", UnsupportedFormat, "'.exe' files are not supported"),
]


@pytest.mark.parametrize(("name", "content", "error", "reason"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_raise_a_named_error(
    tmp_path: Path, name: str, content: bytes, error: type[IngestError], reason: str
) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(error) as raised:
        load(path)
    assert type(raised.value) is error
    assert raised.value.path == str(path)
    assert str(path) in str(raised.value)
    assert reason in raised.value.reason


def test_docx_zip_bomb_is_refused_before_parsing(tmp_path: Path) -> None:
    path = write(tmp_path, "bomb.docx", zip_bomb(8))
    with pytest.raises(UnreadableDocument, match="zip bomb") as raised:
        load(path, max_uncompressed_bytes=2**20)
    assert str(path) in str(raised.value)


def test_errors_name_the_file_on_disk_even_with_a_source_label(tmp_path: Path) -> None:
    path = write(tmp_path, "blank.txt", b"   \n")
    with pytest.raises(EmptyDocument) as raised:
        load(path, source="team/blank.txt")
    assert raised.value.path == str(path)


def test_parse_rejects_unsupported_suffix_and_bad_limit() -> None:
    with pytest.raises(UnsupportedFormat, match="x.rtf"):
        parse(b"{\\rtf1}", ".rtf", source="x.rtf")
    with pytest.raises(ValueError, match="got 0"):
        parse(b"text", ".txt", source="x.txt", max_uncompressed_bytes=0)


def test_supported_suffixes_are_the_documented_set() -> None:
    assert SUPPORTED_SUFFIXES == {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"}


def test_source_label_is_kept(tmp_path: Path) -> None:
    document = load(write(tmp_path, "a.md", "# A\n\nBody.\n"), source="docs/a.md")
    assert document.source == "docs/a.md"


# -------------------------------------------------------------------- corpus


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.txt")), ids=lambda p: p.name)
def test_corpus_files_load_verbatim(path: Path) -> None:
    content = path.read_text(encoding="utf-8")
    document = load(path)

    # Their titles are checked in tests/test_titles.py.
    assert document.text == content
    assert document.size == path.stat().st_size
    assert_spans_tile(document)


def test_a_label_value_first_line_gives_way_to_the_file_name() -> None:
    document = parse(b"Date: 3 May 2024\nThe team met to plan the launch.\n", ".txt", source="docs/launch-plan.txt")

    assert document.title == "Launch plan"


def test_corpus_explainer_has_its_headings() -> None:
    document = load(CORPUS / "rednote-overnight-sensation.txt")
    headings = [s.heading for s in document.sections]

    assert len(headings) >= 2
    assert "Origin and Development" in headings
    assert "Tapping Into Diverse Markets" in headings
    assert "2013" in section_text(document, "Origin and Development")


def test_corpus_question_headings_are_found() -> None:
    document = load(CORPUS / "what-is-red-note.txt")
    assert [s.heading for s in document.sections] == [
        "What's Happening Right Now?",
        "What is Xiaohongshu / RedNote?",
        "What Will Happen Next?",
    ]


# -------------------------------------------------------------------- limits


def with_body(paragraphs: int, text: str = "") -> bytes:
    """A .docx whose body is `paragraphs` paragraphs each holding `text` (empty ones by default)."""
    template = make_docx(lambda document: document.add_paragraph("placeholder"))
    run = f"<w:r><w:t>{text}</w:t></w:r>" if text else ""
    body = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
        + f"<w:p>{run}</w:p>" * paragraphs
        + "</w:body></w:document>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(template)) as source, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as copy:
        for member in source.infolist():
            data = body.encode() if member.filename == "word/document.xml" else source.read(member)
            copy.writestr(member.filename, data)
    return buffer.getvalue()


def test_a_small_docx_of_300000_empty_paragraphs_is_refused_quickly_naming_the_limit() -> None:
    data = with_body(300_000)
    assert len(data) < 100_000  # small on disk: only what it holds makes it costly

    started = time.perf_counter()
    with pytest.raises(DocumentTooLarge) as raised:
        parse(data, ".docx", source="empty.docx")
    elapsed = time.perf_counter() - started

    assert raised.value.reason == "has more than 100,000 paragraphs and table rows, the limit per document"
    assert elapsed < 2.0, f"took {elapsed:.1f} s to refuse"


def test_a_docx_within_the_limits_is_read_whole() -> None:
    document = parse(with_body(500, "Row of text."), ".docx", source="fine.docx")
    assert document.text.count("Row of text.") == 500


def test_each_format_is_refused_past_its_limit_on_text_parts_or_pages() -> None:
    small = Limits(text_chars=1_000, parts=50, pages=2)
    refusals = {
        "long.txt": (("word " * 300).encode(), "more than 1,000 characters of text"),
        "lines.md": (b"line\n" * 60, "more than 50 lines"),
        "empty-blocks.html": (b"<p></p>" * 60 + b"<p>some text</p>", "more than 50 blocks"),
        "rows.docx": (with_body(60, "x"), "more than 50 paragraphs and table rows"),
        "wordy.docx": (with_body(10, "word " * 30), "more than 1,000 characters of text"),
        "pages.pdf": (make_pdf(["one", "two", "three"]), "has 3 pages, over the limit of 2 per document"),
    }
    for name, (data, reason) in refusals.items():
        with pytest.raises(DocumentTooLarge) as raised:
            parse(data, Path(name).suffix, source=name, limits=small)
        assert raised.value.path == name
        assert reason in raised.value.reason, name


def test_an_upload_over_a_limit_is_refused_with_the_reason_and_nothing_written(make_service, tmp_path) -> None:
    service = make_service(corpus_dir=tmp_path / "corpus")
    [result] = service.upload([("empty.docx", with_body(300_000))])
    assert (result.status, result.reason) == ("failed", "has more than 100,000 paragraphs and table rows, the limit per document")
    assert not (tmp_path / "corpus").exists() or not any((tmp_path / "corpus").iterdir())
    assert service.counts() == (0, 0)


def test_an_upload_is_parsed_once(make_service, tmp_path, monkeypatch) -> None:
    from app import service as service_module

    parsed = []
    original = service_module.parse

    def counting(*args, **kwargs):
        parsed.append(kwargs["source"])
        return original(*args, **kwargs)

    monkeypatch.setattr(service_module, "parse", counting)
    monkeypatch.setattr("app.pipeline.parse", counting)
    service = make_service(corpus_dir=tmp_path / "corpus")
    [result] = service.upload([("handbook.docx", make_docx(build_handbook))])
    assert result.status == "added"
    assert parsed == ["corpus/handbook.docx"]
