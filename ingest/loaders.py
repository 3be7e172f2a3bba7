"""Turn a file's bytes into a `Document`: plain text to index and quote, plus its sections and pages."""

from __future__ import annotations

import codecs
import io
import logging
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import docx
from lxml import etree
from docx.table import Table
from docx.text.paragraph import Paragraph
from markdown_it import MarkdownIt
from pypdf import PasswordType, PdfReader
from selectolax.lexbor import LexborHTMLParser, LexborNode

from ingest.errors import DocumentTooLarge, EmptyDocument, IngestError, UnreadableDocument, UnsupportedFormat
from ingest import ocr
from ingest.records import Document, Page, Section
from ingest.titles import TitleCandidates, choose_title, leading_lines, without_site_name

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES: frozenset[str] = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"})
DEFAULT_MAX_UNCOMPRESSED_BYTES = 200 * 2**20
# Work per file is bounded by what it holds, not only by its size: a 27 KB .docx of three million
# empty paragraphs once held a server for minutes. About 5,000 pages of prose each.
DEFAULT_MAX_TEXT_CHARS = 10_000_000
DEFAULT_MAX_PARTS = 100_000  # paragraphs and table rows (.docx), blocks (.html), lines (text)
DEFAULT_MAX_PAGES = 10_000  # .pdf
# Pages without text that OCR reads per document, a second or two each; the rest are flagged unread.
DEFAULT_MAX_OCR_PAGES = 200
# Bumped when the loaders read a file differently (its title, size or text): stores note the
# version that read their documents, and an ingest reads older ones again.
# 2: titles from choose_title, sizes of files, Markdown front matter kept out of the text.
# 3: a PDF's page count (pages without text too), so each document's health is assessed; OCR of
#    pages without text when Tesseract is installed.
LOADER_VERSION = "3"
_WORD_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"

_BLOCK_SEPARATOR = "\n\n"
# Share of control characters above which decoded "text" is treated as binary.
_MAX_CONTROL_SHARE = 0.05
# Control characters other than tab, line feed, vertical tab, form feed and carriage return.
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")
# '?' is absent on purpose: a short question ("What's Happening Right Now?") can be a heading.
_SENTENCE_END = tuple(".,;:!…。，；：！")
_CLOSERS = "\"'”’)]»"
_HEADING_MAX_WORDS = 8
_HEADING_MAX_CHARS = 70
_SLASHED_WORD = re.compile(r"\w/\w")


@dataclass(frozen=True, slots=True)
class Limits:
    """How much one file may unpack to and hold; over any of them it is refused, naming the limit."""

    uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES
    text_chars: int = DEFAULT_MAX_TEXT_CHARS
    parts: int = DEFAULT_MAX_PARTS
    pages: int = DEFAULT_MAX_PAGES
    ocr_pages: int = DEFAULT_MAX_OCR_PAGES

    def check_text(self, chars: int, source: str) -> None:
        """Refuse a document whose text has grown past the limit (checked as it is extracted)."""
        if chars > self.text_chars:
            raise DocumentTooLarge(
                source, f"holds more than {self.text_chars:,} characters of text, the limit per document"
            )

    def check_parts(self, parts: int, source: str, what: str) -> None:
        """Refuse a document with more than `parts` paragraphs, rows, blocks or lines (`what` names them)."""
        if parts > self.parts:
            raise DocumentTooLarge(source, f"has more than {self.parts:,} {what}, the limit per document")


def load(
    path: Path, *, source: str | None = None, max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES
) -> Document:
    """Read the file at `path` and return it as a `Document` whose source is `source` or the path."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedFormat(str(path), _unsupported_reason(path.suffix))
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UnreadableDocument(str(path), f"cannot read the file ({error.strerror or error})") from error
    try:
        return parse(data, suffix, source=source or str(path), max_uncompressed_bytes=max_uncompressed_bytes)
    except IngestError as error:
        # Name the file on disk: that is what the person fixing it needs, whatever the source label.
        raise type(error)(str(path), error.reason) from error


def parse(
    data: bytes,
    suffix: str,
    *,
    source: str,
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES,
    limits: Limits | None = None,
) -> Document:
    """Parse the bytes of a file of type `suffix` (".pdf", ".md", ...) into a `Document`, or raise IngestError.

    `limits` bound the work (text, parts, pages); `max_uncompressed_bytes` overrides theirs.
    """
    if max_uncompressed_bytes <= 0:
        raise ValueError(f"max_uncompressed_bytes must be positive, got {max_uncompressed_bytes}")
    limits = Limits(uncompressed_bytes=max_uncompressed_bytes) if limits is None else limits
    suffix = suffix.lower() if suffix.startswith(".") else f".{suffix.lower()}"
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedFormat(source, _unsupported_reason(suffix))
    try:
        return _parse(data, suffix, source, limits)
    except (IngestError, MemoryError):
        raise
    except Exception as error:
        # A parser may fail in ways no one listed (a codec, a library's own bug): that is this
        # file's failure, reported and skipped, never the end of a whole ingest or a 500.
        logger.warning("could not parse %s", source, exc_info=True)
        raise UnreadableDocument(source, f"could not be read ({type(error).__name__}: {error})") from error


def _parse(data: bytes, suffix: str, source: str, limits: Limits) -> Document:
    if not data:
        raise EmptyDocument(source, "the file is empty (0 bytes)")
    reading = _PdfReading()
    if suffix == ".pdf":
        (titles, text, sections, pages), reading = _parse_pdf(data, source, limits)
    elif suffix == ".docx":
        titles, text, sections, pages = _parse_docx(data, source, limits)
    else:
        markup_parser = _TEXT_PARSERS[suffix]
        html = markup_parser is _parse_html
        raw = _decode_text(data, source, html=html)
        if html:
            titles, text, sections, pages = _parse_html(raw, source, limits)
        else:
            # The text is the file's own: check it before any line of it is looked at.
            limits.check_text(len(raw), source)
            limits.check_parts(raw.count("\n") + 1, source, "lines")
            titles, text, sections, pages = markup_parser(raw)
    if not text.strip():
        reason = "no text found"
        if suffix == ".pdf":
            reason += " (a scan? OCR found no words either)" if ocr.available() else f" (a scan? {ocr.INSTALL_HINT})"
        raise EmptyDocument(source, reason)
    limits.check_text(len(text), source)
    title = choose_title(titles, text=text, source=source)
    return Document(
        source=source, title=title, text=text, sections=sections, pages=pages, size=len(data), page_count=reading.page_count,
        ocr_ran=reading.page_count is not None and ocr.available(), ocr_pages=reading.ocr_pages,
        ocr_skipped=reading.ocr_skipped,
    )


# What each format's parser returns: its title candidates, text, sections and pages.
_Parsed = tuple[TitleCandidates, str, tuple[Section, ...], tuple[Page, ...]]


def _unsupported_reason(suffix: str) -> str:
    kind = f"{suffix!r} files are" if suffix else "files without an extension are"
    return f"{kind} not supported (supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})"


# ---------------------------------------------------------------- plain text


def _decode_text(data: bytes, source: str, *, html: bool = False) -> str:
    """Decode bytes that claim to be text, refusing ones that are really binary."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = _try_decode(data, "utf-16")
    else:
        text = _try_decode(data, _declared_html_charset(data) if html else None) or _try_decode(data, "utf-8")
    if text is None:
        # Legacy Windows files are the usual non-UTF-8 text; cp1252 leaves only 5 bytes undefined.
        text = data.decode("cp1252", errors="replace")
        if _looks_binary(text):
            raise UnreadableDocument(source, "not valid UTF-8 text and looks binary")
        logger.info("%s is not UTF-8; decoded it as Windows-1252", source)
    elif _looks_binary(text):
        raise UnreadableDocument(source, "looks like a binary file, not text")
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _try_decode(data: bytes, encoding: str | None) -> str | None:
    if encoding is None:
        return None
    try:
        return data.decode(encoding)
    except (UnicodeError, LookupError):
        # A declared charset can name any codec: "punycode" and "undefined" raise a bare
        # UnicodeError, "rot13" a LookupError. Either way the declaration is not usable.
        return None


def _declared_html_charset(data: bytes) -> str | None:
    match = re.search(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", data[:4096], re.IGNORECASE)
    charset = match.group(1).decode("ascii").lower() if match else None
    if charset in {"iso-8859-1", "latin1", "latin-1"}:
        charset = "cp1252"  # browsers read Latin-1 declarations as Windows-1252, so pages rely on it
    # A UTF-16/32 declaration inside ASCII-readable markup is wrong by definition; HTML treats it as UTF-8.
    return None if charset is None or charset.startswith(("utf-16", "utf-32")) else charset


def _looks_binary(text: str) -> bool:
    return "\x00" in text or len(_CONTROL.findall(text)) > _MAX_CONTROL_SHARE * len(text)


def _parse_txt(text: str) -> _Parsed:
    # A text file's title, if it has one, is among its first lines; headings inside it name sections.
    return TitleCandidates(found=leading_lines(text)), text, _sections(text, _text_headings(text)), ()


def _text_headings(text: str) -> list[tuple[int, int, str]]:
    """Guess headings in unmarked text: short title-like lines that introduce a longer paragraph."""
    lines: list[tuple[int, str]] = []
    offset = 0
    for raw in text.split("\n"):
        if raw.strip():
            lines.append((offset, raw.strip()))
        offset += len(raw) + 1
    headings: list[tuple[int, int, str]] = []
    in_list = False
    # The first non-empty line is the title, so it never opens a section.
    for index in range(1, len(lines) - 1):
        previous, (start, line), following = lines[index - 1][1], lines[index], lines[index + 1][1]
        if _ends_sentence(previous, ":"):
            in_list = True
        elif not _heading_shaped(previous):
            in_list = False
        # Short lines after "...in several ways:" are list items, not headings.
        if in_list or not _heading_shaped(line):
            continue
        if len(following) > len(line) and (len(following) > _HEADING_MAX_CHARS or _ends_sentence(following)):
            headings.append((start, 1, line))
    return headings


def _heading_shaped(line: str) -> bool:
    first = line[0]
    starts_like_heading = first.isdigit() or (first.isalpha() and not first.islower())
    short = len(line) <= _HEADING_MAX_CHARS and len(line.split()) <= _HEADING_MAX_WORDS
    # Photo credits ("AFP/Getty Images") and paths glue words with a slash; headings rarely do.
    credit_like = _SLASHED_WORD.search(line) is not None
    return starts_like_heading and short and not credit_like and not _ends_sentence(line)


def _ends_sentence(line: str, marks: str | tuple[str, ...] = _SENTENCE_END) -> bool:
    return line.rstrip().rstrip(_CLOSERS).endswith(marks)


# ------------------------------------------------------------------ markdown


def _parse_markdown(raw: str) -> _Parsed:
    body_line, front_title = _front_matter(raw)
    # The front matter is the owner's settings, not prose to search or quote. Blank lines stand in
    # for it, so a citation's line numbers are still those of the file.
    text = "\n" * body_line + "\n".join(raw.split("\n")[body_line:])
    line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    body = text[body_line:]
    tokens = MarkdownIt("commonmark").parse(body)
    headings: list[tuple[int, int, str]] = []
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.map:
            inline = tokens[index + 1]
            words = (c.content for c in inline.children or () if c.type in {"text", "code_inline", "image"})
            heading = " ".join("".join(words).split())
            if heading:
                headings.append((line_starts[body_line + token.map[0]], int(token.tag[1:]), heading))
    top = [h for _, level, h in headings if level == 1]
    others = [h for _, level, h in headings if level != 1]
    titles = TitleCandidates(owner=front_title, found=(*top, *others[:1], *leading_lines(body)))
    return titles, text, _sections(text, headings), ()


def _front_matter(text: str) -> tuple[int, str | None]:
    """Return the first line after YAML front matter and its `title:`, so `---` isn't read as a heading."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return 0, None
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() in {"---", "..."}:
            titles = [m.group(1) for m in (re.match(r"title:\s*(.+)", entry) for entry in lines[1:index]) if m]
            return index + 1, titles[0].strip().strip("\"'") if titles else None
    return 0, None


# ---------------------------------------------------------------------- html

_DROPPED = frozenset({"head", "script", "style", "noscript", "template", "nav", "svg", "math", "iframe", "object"})
_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details", "dialog", "div",
    "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "html", "legend", "li",
    "main", "ol", "p", "section", "summary", "table", "tbody", "tfoot", "thead", "ul",
})
_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})


def _parse_html(markup: str, source: str, limits: Limits) -> _Parsed:
    tree = LexborHTMLParser(markup)
    blocks: list[tuple[str, int | None]] = []
    lines: list[list[str]] = [[]]
    ended = 0  # blocks ended, empty ones too: a page of a million empty <p> is refused early

    def flush() -> None:
        nonlocal ended
        ended += 1
        limits.check_parts(ended, source, "blocks")
        paragraph = "\n".join(" ".join("".join(parts).split()) for parts in lines).strip()
        if paragraph:
            blocks.append((paragraph, None))
        lines[:] = [[]]

    # An explicit stack, not recursion: deeply nested markup must not hit the recursion limit.
    stack: list[tuple[LexborNode, bool]] = [(tree.root, False)] if tree.root else []
    while stack:
        node, leaving = stack.pop()
        tag = node.tag or ""
        if leaving:
            flush()
        elif tag == "-text":
            lines[-1].append(node.text_content or "")
        elif tag.startswith("-") or tag in _DROPPED:
            continue
        elif tag == "br":
            lines.append([])
        elif tag in _HEADING_TAGS or tag in {"tr", "pre"}:
            flush()
            if tag == "tr":
                cells = (_node_text(cell) for cell in node.iter() if cell.tag in {"td", "th"})
                blocks.append((" | ".join(cell for cell in cells if cell), None))
            elif tag == "pre":
                blocks.append((_node_text(node, keep_whitespace=True).strip("\n").rstrip(), None))
            else:
                blocks.append((_node_text(node), int(tag[1])))
        else:
            if tag in _BLOCKS:
                flush()
                stack.append((node, True))
            stack.extend((child, False) for child in reversed(list(node.iter(include_text=True))))
    flush()
    blocks = [(text, level) for text, level in blocks if text.strip()]
    text, sections = _assemble(blocks)
    title_node = tree.css_first("head > title")
    page_title = without_site_name(title_node.text()) if title_node else ""
    top = tuple(s.heading for s in sections if s.level == 1)
    return TitleCandidates(found=(page_title, *top, *leading_lines(text))), text, sections, ()


def _node_text(node: LexborNode, *, keep_whitespace: bool = False) -> str:
    """Return the visible text under `node`, without dropped elements; blocks and <br> break words."""
    parts: list[str] = []
    stack: list[LexborNode | str] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            parts.append(item)
            continue
        tag = item.tag or ""
        if tag == "-text":
            parts.append(item.text_content or "")
        elif tag == "br":
            parts.append("\n")
        elif not tag.startswith("-") and tag not in _DROPPED:
            if tag in _BLOCKS or tag in {"td", "th"}:
                stack.append(" ")
            stack.extend(reversed(list(item.iter(include_text=True))))
    text = "".join(parts)
    return text if keep_whitespace else " ".join(text.split())


# ----------------------------------------------------------------------- pdf


@dataclass(frozen=True, slots=True)
class _PdfReading:
    """How a PDF was read: its pages (with text or not), those OCR read and those past the OCR limit."""

    page_count: int | None = None
    ocr_pages: tuple[int, ...] = ()
    ocr_skipped: tuple[int, ...] = ()


def _parse_pdf(data: bytes, source: str, limits: Limits) -> tuple[_Parsed, _PdfReading]:
    """Return what a PDF holds and how it was read.

    A page without a text layer is read by OCR when Tesseract is installed, its words kept on its
    page, up to `limits.ocr_pages` pages a document.
    """
    # pypdf raises many exception types on malformed input (not only PdfReadError), so catch them all.
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise UnreadableDocument(source, "PDF is password-protected")
        if (count := len(reader.pages)) > limits.pages:
            raise DocumentTooLarge(source, f"has {count:,} pages, over the limit of {limits.pages:,} per document")
        pages, chars, ocr_pages, ocr_tried, ocr_skipped = [], 0, [], 0, []
        for number, page in enumerate(reader.pages, start=1):
            page_text = page.extract_text() or ""
            if not page_text.strip() and ocr.available():
                if ocr_tried >= limits.ocr_pages:
                    ocr_skipped.append(number)
                else:
                    ocr_tried += 1
                    page_text = ocr.read_page(page)
                    if page_text:
                        ocr_pages.append(number)
            pages.append((number, page_text))
            chars += len(pages[-1][1])
            limits.check_text(chars, source)
        metadata_title = (reader.metadata.title if reader.metadata else None) or ""
    except IngestError:
        raise
    except Exception as error:
        raise UnreadableDocument(source, f"not a readable PDF: {error}") from error
    blocks = [(number, text.replace("\r\n", "\n").replace("\r", "\n").strip()) for number, text in pages]
    blocks = [(number, text) for number, text in blocks if text]  # blank or scanned pages hold no text
    text, starts = _join((text for _, text in blocks))
    ends = starts[1:] + [len(text)]
    spans = tuple(Page(number, start, end) for (number, _), start, end in zip(blocks, starts, ends))
    titles = TitleCandidates(found=(str(metadata_title), *leading_lines(text)))
    return (titles, text, (), spans), _PdfReading(len(pages), tuple(ocr_pages), tuple(ocr_skipped))


# ---------------------------------------------------------------------- docx


def _parse_docx(data: bytes, source: str, limits: Limits) -> _Parsed:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        # Declared sizes are trustworthy: zipfile stops reading a member at its declared size.
        unpacked = sum(member.file_size for member in archive.infolist())
    except Exception as error:  # zipfile raises BadZipFile, NotImplementedError, struct.error... on junk
        raise UnreadableDocument(source, "not a valid .docx file (not a readable zip archive)") from error
    if unpacked > limits.uncompressed_bytes:
        limit_mb = limits.uncompressed_bytes / 2**20
        reason = f"unpacks to {unpacked / 2**20:.0f} MB, over the {limit_mb:g} MB limit (possible zip bomb)"
        raise UnreadableDocument(source, reason)
    try:
        with archive:
            _count_docx_parts(archive, source, limits)
        document = docx.Document(io.BytesIO(data))
        blocks = list(_docx_blocks(document.iter_inner_content(), source, limits))
        core_title = (document.core_properties.title or "").strip()
    except IngestError:
        raise
    except Exception as error:  # python-docx and lxml raise KeyError, ValueError, XMLSyntaxError...
        detail = error.args[0] if error.args else type(error).__name__
        raise UnreadableDocument(source, f"not a valid .docx file ({detail})") from error
    text, sections = _assemble(blocks)
    styled = tuple(s.heading for s in sections if s.level == 0)  # the "Title" style
    first_heading = tuple(s.heading for s in sections[:1])
    return TitleCandidates(found=(core_title, *styled, *first_heading, *leading_lines(text))), text, sections, ()


def _count_docx_parts(archive: zipfile.ZipFile, source: str, limits: Limits) -> None:
    """Count the body's paragraphs and table rows as its XML streams in, refusing past the limit.

    Done before python-docx builds the whole tree (and a Python object per paragraph), so a small
    file of millions of empty paragraphs is refused in a fraction of a second.
    """
    if "word/document.xml" not in archive.namelist():
        return  # an unusual layout: python-docx finds the body, and _docx_blocks counts as it reads
    parts = 0
    with archive.open("word/document.xml") as body:
        events = etree.iterparse(
            body, events=("end",), tag=(f"{{{_WORD_NS}}}p", f"{{{_WORD_NS}}}tr"),
            resolve_entities=False, no_network=True,
        )
        for _, element in events:
            parts += 1
            limits.check_parts(parts, source, "paragraphs and table rows")
            element.clear()


def _docx_blocks(content: Iterable[Paragraph | Table], source: str, limits: Limits) -> Iterable[tuple[str, int | None]]:
    """Yield each non-empty paragraph (with its heading level) and table row, in document order."""
    parts = chars = 0
    # Heading levels by style id: python-docx finds an unstyled paragraph's default style by
    # reading every style of the document, milliseconds a paragraph (seconds for a few hundred).
    levels: dict[str | None, int | None] = {}
    for block in content:
        if isinstance(block, Table):
            for row in block.rows:
                parts += 1
                limits.check_parts(parts, source, "paragraphs and table rows")
                cells = []
                for cell in row.cells:
                    # A merged cell is repeated once per grid column it spans; keep it once.
                    if not cells or cell._tc is not cells[-1]._tc:
                        cells.append(cell)
                line = " | ".join(" ".join(cell.text.split()) for cell in cells)
                chars += len(line)
                limits.check_text(chars, source)
                if line.replace("|", "").strip():
                    yield line, None
            continue
        parts += 1
        limits.check_parts(parts, source, "paragraphs and table rows")
        paragraph_text = block.text.strip()
        chars += len(paragraph_text)
        limits.check_text(chars, source)
        if paragraph_text:
            style_id = block._p.style
            if style_id not in levels:
                style = block.style
                levels[style_id] = _docx_heading_level(style.name if style else None)
            yield paragraph_text, levels[style_id]


def _docx_heading_level(style_name: str | None) -> int | None:
    name = (style_name or "").strip().lower()
    if name == "title":
        return 0  # above every "Heading n"
    match = re.fullmatch(r"heading\s*([1-9])", name)
    return int(match.group(1)) if match else None


_TEXT_PARSERS = {
    ".txt": _parse_txt, ".md": _parse_markdown, ".markdown": _parse_markdown, ".html": _parse_html, ".htm": _parse_html,
}


# -------------------------------------------------------------------- shared


def _join(blocks: Iterable[str]) -> tuple[str, list[int]]:
    """Join blocks with a blank line and return the text and each block's start offset."""
    starts: list[int] = []
    offset = 0
    pieces = list(blocks)
    for piece in pieces:
        starts.append(offset)
        offset += len(piece) + len(_BLOCK_SEPARATOR)
    return _BLOCK_SEPARATOR.join(pieces), starts


def _assemble(blocks: list[tuple[str, int | None]]) -> tuple[str, tuple[Section, ...]]:
    text, starts = _join(block for block, _ in blocks)
    headings = [(start, level, block) for (block, level), start in zip(blocks, starts) if level is not None]
    return text, _sections(text, headings)


def _sections(text: str, headings: list[tuple[int, int, str]]) -> tuple[Section, ...]:
    """Make each heading's section run from its start to the next heading's start, or the end."""
    ends = [start for start, _, _ in headings[1:]] + [len(text)]
    return tuple(Section(heading, start, end, level) for (start, level, heading), end in zip(headings, ends))
