"""Choose a document's title: the owner's if set, else the first candidate that names this document, else its file name.

Loaders offer candidates (metadata, headings, first lines) and `choose_title` decides, so every
file type follows the same rule. A candidate is refused when it is junk metadata ("about:blank",
"Untitled", "Microsoft Word - x.doc", a file name or URL, a date, "Estimated time: 20 minutes",
"Contents") or when it names another document: a scraped navigation line ("As opposition to
fluoride grows, rural America risks a new surge of tooth decay" above an article on RedNote)
shares almost none of its words with the text it sits on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TITLE_LIMIT = 120
# Longer than this, a line is a paragraph, not a title.
MAX_TITLE_CHARS = 150
MIN_TITLE_CHARS = 3
# A body with fewer distinct content words than this is too short to tell whether a title fits it.
MIN_BODY_WORDS = 40
# Enough of the body to judge a title by (some 30,000 words) without reading a whole book.
_BODY_SAMPLE_CHARS = 200_000
# A title must share at least this share of its content words with the body.
MIN_SHARED = 0.5
# Words compared by their first letters, so "America" finds "American" and "downloaded" "download".
_STEM_CHARS = 6
# How many first lines of a text are looked at for its title.
LEADING_LINES = 3

_STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers him his how i if in into is it its itself just me more most my no nor
    not now of off on once only or other our ours out over own same she should so some such than that
    the their theirs them then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your new one two get gets""".split()
)
# Lines a site or an editor puts around every article; they never name one.
_BOILERPLATE = frozenset(
    """contents|table of contents|content|skip to content|skip to main content|menu|main menu|home|
    homepage|navigation|search|share|share this|share this article|subscribe|sign in|sign up|log in|
    login|register|advertisement|sponsored|read more|related|related articles|more stories|
    recommended|trending|cookie policy|privacy policy|terms of use|accept cookies|print|back|next|
    previous|top|back to top|close|loading|introduction|overview|summary|abstract|conclusion|
    background|references|sources|notes|appendix|index|title|no title|untitled|untitled document|
    document|new document|draft|page|slide|presentation|powerpoint presentation|word document|
    microsoft word document|blank|none|null|undefined""".replace("\n", "").split("|")
)
_PLACEHOLDER = re.compile(r"^(untitled|document|new document|slide|page|presentation|doc|noname)[\s_-]*\d*$", re.I)
_OFFICE_EXPORT = re.compile(r"^microsoft\s+(word|powerpoint|excel|publisher)\b", re.I)
_URL = re.compile(r"^([a-z][a-z0-9+.-]*:\S*|www\.\S+)$|://", re.I)
_FILE_NAME = re.compile(r"^\S.*\.(docx?|pdf|txt|md|markdown|html?|pptx?|xlsx?|rtf|odt|pages|indd|tex|qxd|ps)$", re.I)
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE = re.compile(
    rf"^((\w+day,?\s+)?({_MONTH}\s+\d{{1,2}}(st|nd|rd|th)?,?\s+\d{{2,4}}|\d{{1,2}}(st|nd|rd|th)?\s+{_MONTH},?\s+\d{{2,4}}"
    rf"|{_MONTH}\s+\d{{4}}|\d{{1,4}}[/.-]\d{{1,2}}[/.-]\d{{1,4}}(,?\s+\d{{1,2}}:\d{{2}}(\s*[ap]m)?)?))$",
    re.I,
)
# "Date: 3 May 2024", "Estimated time: 20 minutes", "By: Jane Doe": a field of a page, not its title.
_FIELD = re.compile(
    r"^([\w ]{0,30}\b(date|time|length|duration)|author|authors|by|posted|published|updated|tags?|category|"
    r"categories|source|filed under|time to read)\s*:.*$",
    re.I,
)
# The date and time a browser prints at the top of each page: "3/26/25, 10:15 AM  Article title".
_PRINTED_AT = re.compile(r"^\d{1,2}/\d{1,2}/\d{2,4},?\s+\d{1,2}:\d{2}(\s*[ap]m)?\s+", re.I)
# Separators between an article's title and its site's name in an HTML <title>.
_SITE_SEPARATORS = (" | ", " – ", " — ", " - ", " :: ", " · ", " • ")
_MAX_SITE_NAME_CHARS = 40
_SENTENCE_END = tuple(".,;:!…。，；：！")
_CLOSERS = "\"'”’)]»"
_WORD = re.compile(r"[^\W\d_]+")
# Scripts written without spaces: compared two characters at a time.
_UNSPACED = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\u3040-\u30ff]")


@dataclass(frozen=True, slots=True)
class TitleCandidates:
    """What a file offers as its title: the owner's own (front matter), then others, best first."""

    owner: str | None = None
    found: tuple[str, ...] = ()


def choose_title(candidates: TitleCandidates, *, text: str, source: str) -> str:
    """Return the owner's title, else the first candidate that names the document `text`, else a title from `source`."""
    if candidates.owner and (owner := _clean(candidates.owner)):
        return shorten(owner)
    for candidate in candidates.found:
        candidate = _PRINTED_AT.sub("", _clean(candidate))
        if not is_junk(candidate) and fits(candidate, text):
            return shorten(candidate)
    return title_from_name(source)


def is_junk(title: str) -> bool:
    """Whether `title` is no title at all: a placeholder, an export's name, a URL, a date, a field or site boilerplate."""
    title = _clean(title)
    bare = title.strip(" .:;!-–—|#*_").lower()
    return (
        len(title) < MIN_TITLE_CHARS
        or len(title) > MAX_TITLE_CHARS
        or not _WORD.search(title)
        or bare in _BOILERPLATE
        or _PLACEHOLDER.match(bare) is not None
        or _OFFICE_EXPORT.match(title) is not None
        or _URL.search(title) is not None
        or _FILE_NAME.match(title) is not None
        or _DATE.match(title) is not None
        or _FIELD.match(title) is not None
    )


def fits(title: str, text: str) -> bool:
    """Whether at least half the content words of `title` occur in `text` (the title's own line aside).

    A headline scraped from a neighbouring article shares almost none. A text too short to say
    (under MIN_BODY_WORDS distinct words) fits any title.
    """
    body = text[:_BODY_SAMPLE_CHARS].replace(title, " ", 1).lower()
    if len(set(_WORD.findall(body)) - _STOPWORDS) < MIN_BODY_WORDS:
        return True
    words = content_words(title)
    if not words:
        return True
    shared = sum(1 for word in words if _occurs(word, body))
    return shared >= MIN_SHARED * len(words)


def content_words(title: str) -> list[str]:
    """Return the words of `title` that carry meaning, cut to their stems; pairs of characters in unspaced scripts."""
    words: list[str] = []
    for word in _WORD.findall(title.lower().replace("’", "'")):
        if _UNSPACED.search(word):
            words.extend(word[i : i + 2] for i in range(max(1, len(word) - 1)))
        elif len(word) >= 3 and word not in _STOPWORDS:
            if len(word) <= _STEM_CHARS and word.endswith("s") and not word.endswith("ss") and len(word) > 3:
                word = word[:-1]
            words.append(word[:_STEM_CHARS])
    return list(dict.fromkeys(words))


def _occurs(word: str, body: str) -> bool:
    if _UNSPACED.search(word):
        return word in body
    # A stem matches any ending ("americ" finds "American"); a short word only itself or its plural.
    ending = "" if len(word) >= _STEM_CHARS else r"(s|es)?(?![^\W\d_])"
    return re.search(rf"(?<![^\W\d_]){re.escape(word)}{ending}", body) is not None


def without_site_name(title: str) -> str:
    """Drop a site's name from either end of a web page's title: "Refund policy | Acme" -> "Refund policy"."""
    title = _clean(title)
    for separator in _SITE_SEPARATORS:
        parts = title.split(separator)
        if len(parts) < 2:
            continue
        first, last = parts[0], parts[-1]
        # The site's name is the shorter end; keep the rest, separators and all.
        if len(last) <= len(first) and len(last) <= _MAX_SITE_NAME_CHARS:
            return separator.join(parts[:-1]).strip()
        if len(first) < len(last) and len(first) <= _MAX_SITE_NAME_CHARS:
            return separator.join(parts[1:]).strip()
        return title
    return title


def leading_lines(text: str, *, limit: int = LEADING_LINES) -> tuple[str, ...]:
    """Return the heading-like lines among the first `limit` non-empty lines of `text`, before its first paragraph.

    A line that ends a sentence ("The team met to plan the launch.") is prose, not a heading; a
    question ("What is Red Note?") can be either, so it stays.
    """
    lines: list[str] = []
    for line in [line.strip() for line in text.split("\n") if line.strip()][:limit]:
        if len(line) > MAX_TITLE_CHARS:
            break
        if not line.rstrip(_CLOSERS).endswith(_SENTENCE_END):
            lines.append(line)
    return tuple(lines)


def title_from_name(source: str) -> str:
    """Make a title of a file's name: "docs/launch-plan.txt" -> "Launch plan"."""
    stem = " ".join(Path(source).stem.replace("_", " ").replace("-", " ").split())
    return shorten(stem[:1].upper() + stem[1:] if stem else source)


def shorten(title: str) -> str:
    """Cut a long title at the last word boundary before the limit."""
    title = _clean(title)
    if len(title) <= TITLE_LIMIT:
        return title
    cut = title.rfind(" ", 0, TITLE_LIMIT)
    return title[: cut if cut > 0 else TITLE_LIMIT].rstrip() + "…"


def _clean(title: str) -> str:
    return " ".join(str(title).split())
