"""A document's title describes it: navigation lines and junk metadata give way to a heading, then the file name."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import docx
import pytest

from ingest.loaders import load, parse
from ingest.titles import TitleCandidates, choose_title, fits, is_junk, without_site_name
from retrieval.library import LOADER_KEY
from tests.helpers import write_files
from tests.test_loaders import make_docx, make_pdf

CORPUS = Path(__file__).resolve().parents[1] / "corpus"

# An article as a scraper saves it: a neighbouring article's headline and a date above its own.
BAKERIES = """\
Council votes to close the city swimming pool for summer repairs
March 3, 2025
How three bakeries survived the flour shortage
When the mills cut deliveries in January, the bakeries on Mill Street had a choice: close for a month or
change their bread. Anna Berg switched her bakery to rye and barley flour, which the shortage had spared,
and sold out of loaves by noon every day. Her neighbour Tom Reyes baked smaller loaves, kept his prices and
told customers why on a chalkboard by the door. The third bakery, run by the Okafor family, bought flour
together with two restaurants and shared a truck to a mill two hundred kilometres north.
All three bakeries stayed open. Berg says the rye loaves outsell wheat even now the shortage is over, and
the shared truck still runs every Tuesday. Reyes says customers forgave the smaller loaves once they knew
the reason. The flour shortage taught every baker in town to keep a second supplier.
"""


def test_a_navigation_line_above_an_article_gives_way_to_its_own_headline() -> None:
    document = parse(BAKERIES.encode(), ".txt", source="news/bakeries.txt")

    # The swimming pool shares no words with the article; the date is no title at all.
    assert document.title == "How three bakeries survived the flour shortage"


def test_an_article_with_no_headline_of_its_own_is_titled_by_its_file_name() -> None:
    text = BAKERIES.replace("How three bakeries survived the flour shortage\n", "")
    assert parse(text.encode(), ".txt", source="news/mill-street-bakeries.txt").title == "Mill street bakeries"


@pytest.mark.parametrize(
    "title",
    [
        "about:blank", "Untitled", "untitled document", "Document1", "Microsoft Word - plan.doc",
        "Microsoft Word - Q3 report.docx", "report_final_v2.pdf", "https://example.com/news/123", "www.example.com",
        "March 26, 2025", "2025-03-26", "Estimated time: 20 minutes", "Date: 3 May 2024", "Contents",
        "Skip to content", "x", "", "1234", "A" * 200,
    ],
)
def test_junk_metadata_and_boilerplate_are_not_titles(title: str) -> None:
    assert is_junk(title)


@pytest.mark.parametrize(
    "title", ["Parking rules", "Apollo 11: 50 years on", "What is Red Note?", "Q3 report", "小红书的国际化"]
)
def test_real_titles_are_not_junk(title: str) -> None:
    assert not is_junk(title)


def test_a_title_fits_a_text_that_shares_its_words() -> None:
    body = BAKERIES.split("\n", 3)[3]
    assert fits("How three bakeries survived the flour shortage", body)
    assert not fits("Council votes to close the city swimming pool for summer repairs", body)
    # A text too short to judge by fits any title.
    assert fits("Parking", "Staff may leave cars in bay B.")


def test_the_owners_title_wins_over_everything() -> None:
    candidates = TitleCandidates(owner="Untitled bakery notes", found=("How three bakeries survived",))
    assert choose_title(candidates, text=BAKERIES, source="b.txt") == "Untitled bakery notes"


def test_the_file_name_is_the_last_resort() -> None:
    candidates = TitleCandidates(found=("about:blank", "", "Microsoft Word - x.doc"))
    assert choose_title(candidates, text="Some text.", source="team/on_call-rota.docx") == "On call rota"


def test_a_web_pages_title_loses_its_site_name() -> None:
    assert without_site_name("Refund policy | Acme Shop") == "Refund policy"
    assert without_site_name("Acme | Refund policy for gift cards") == "Refund policy for gift cards"
    assert without_site_name("Spider-Man - Wikipedia") == "Spider-Man"
    assert without_site_name("Refund policy") == "Refund policy"


# ------------------------------------------------------------------- per format


def test_pdf_titled_about_blank_takes_its_first_heading_then_its_file_name() -> None:
    titled = make_pdf(["Quarterly revenue report\nRevenue rose in every region this quarter."], title="about:blank")
    assert parse(titled, ".pdf", source="q3.pdf").title == "Quarterly revenue report"

    untitled = make_pdf(["Revenue rose in every region this quarter."], title="about:blank")
    assert parse(untitled, ".pdf", source="reports/q3-revenue.pdf").title == "Q3 revenue"

    # A page printed from a browser starts with the time it was printed.
    printed = make_pdf(["3/26/25, 10:15 AM Quarterly revenue report\nRevenue rose in every region."], title="about:blank")
    assert parse(printed, ".pdf", source="q3.pdf").title == "Quarterly revenue report"


def test_docx_titled_by_its_word_export_takes_its_title_style_heading() -> None:
    def build(document: docx.document.Document) -> None:
        document.core_properties.title = "Microsoft Word - handbook_v3.doc"
        document.add_heading("Employee Handbook", 0)
        document.add_paragraph("Ask IT for a laptop.")

    assert parse(make_docx(build), ".docx", source="h.docx").title == "Employee Handbook"


def test_html_untitled_page_takes_its_h1() -> None:
    page = b"<html><head><title>Untitled</title></head><body><h1>Refunds</h1><p>Paid in 14 days.</p></body></html>"
    assert parse(page, ".html", source="r.html").title == "Refunds"
    suffixed = page.replace(b"Untitled", b"Refund policy | Acme Shop")
    assert parse(suffixed, ".html", source="r.html").title == "Refund policy"


def test_markdown_front_matter_title_wins_and_is_not_document_text() -> None:
    raw = b"---\ntitle: Bakery survival guide\nauthor: Anna Berg\n---\n# How three bakeries survived\n\nRye sold out.\n"
    document = parse(raw, ".md", source="guide.md")

    assert document.title == "Bakery survival guide"
    assert "title:" not in document.text and "Anna Berg" not in document.text
    # Blank lines stand in for the front matter, so line numbers are the file's own.
    assert document.line_at(document.text.index("Rye sold out")) == 7


# ------------------------------------------------------------------------- sizes


def test_a_documents_size_is_its_files_size_not_its_texts(tmp_path: Path) -> None:
    data = make_pdf(["Quarterly revenue report", "Revenue rose in every region."], title="about:blank")
    path = tmp_path / "q3.pdf"
    path.write_bytes(data)

    document = load(path)

    assert document.size == len(data) == path.stat().st_size
    assert len(document.text.encode()) < document.size  # the text alone is a fraction of the file


def test_the_sources_list_shows_an_uploaded_pdfs_file_size(make_service, tmp_path) -> None:
    data = make_pdf(["Quarterly revenue report", "Revenue rose in every region."], title="about:blank")
    service = make_service(corpus_dir=tmp_path / "corpus")

    [result] = service.upload([("q3.pdf", data)])
    [listed] = service.documents()

    assert result.status == "added"
    assert (listed.title, listed.size) == ("Quarterly revenue report", len(data))


def test_an_ingested_files_size_is_its_size_on_disk(make_service, tmp_path) -> None:
    folder = write_files(tmp_path / "docs", {"notes.md": "---\ntitle: Team notes\n---\n# Notes\n\nBring cake.\n"})
    service = make_service()
    service.ingest(folder)

    [listed] = service.documents()

    assert (listed.title, listed.size) == ("Team notes", (folder / "notes.md").stat().st_size)


# ------------------------------------------------------------------------ corpus


CORPUS_TITLES = {
    "rednote-after-the-tiktok-refugees.txt": "Xiaohongshu (Rednote) after the TikTok Refugees’ dust has settled",
    # Its first line is the headline of another article on the same site; it has none of its own.
    "rednote-global-pivot.txt": "Rednote global pivot",
    # Its first line is "Estimated time: 20 minutes".
    "rednote-overnight-sensation.txt": "Rednote overnight sensation",
    "rednote-split-personality.txt": "The split personality of Rednote and Xiaohongshu",
    "what-is-red-note.txt": "What is Red Note and Why It's the Most Downloaded App in US & the World Now?",
}


def test_every_corpus_file_is_titled_by_what_it_is_about() -> None:
    titles = {path.name: load(path).title for path in sorted(CORPUS.glob("*.txt"))}

    assert titles == CORPUS_TITLES
    assert "fluoride" not in titles["rednote-global-pivot.txt"]


def test_a_store_read_by_earlier_loaders_gets_new_titles_and_sizes_without_embedding_again(
    make_service, embedder, tmp_path, monkeypatch
) -> None:
    import app.pipeline

    folder = write_files(tmp_path / "news", {"bakeries.txt": BAKERIES})
    read_by_new_loaders = app.pipeline.parse

    def read_as_before(data, suffix, *, source):
        document = read_by_new_loaders(data, suffix, source=source)
        return replace(document, title=BAKERIES.split("\n")[0], size=None)

    monkeypatch.setattr(app.pipeline, "parse", read_as_before)
    service = make_service()
    service.ingest(folder)
    service.library.store.set_meta({LOADER_KEY: "1"})  # as a store made before LOADER_VERSION 2 says
    monkeypatch.setattr(app.pipeline, "parse", read_by_new_loaders)
    [before] = service.documents()
    embedder.encoded.clear()

    report = make_service().ingest(folder)
    [after] = make_service().documents()

    assert before.title.startswith("Council votes")
    assert (after.title, after.size) == ("How three bakeries survived the flour shortage", len(BAKERIES.encode()))
    assert report.updated == ["news/bakeries.txt"] and embedder.encoded == []
    # Read once: the next ingest finds the file unchanged.
    assert make_service().ingest(folder).unchanged == ["news/bakeries.txt"]
