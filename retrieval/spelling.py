"""Misspelt words of a question, read as the library's nearest words.

A question's word that no passage holds and that is not an English word is most likely a slip of
the keys ("Xioohongshu", "employes", "advertiing"): left as typed, search misses it, the readers
doubt every sentence, and a misspelt name even turns the question into one about something the
documents never mention. So such a word is read as the library word nearest to it in edit
distance (a letter left out, added, changed, or two swapped; two of them for longer words), with
the same first letter or the first letter left out or swapped with the second ("ikTok"), of
equally near ones the same first letter first, then the most frequent. Words the library holds,
English words it does not (a question may ask about what the documents lack: "Paris" is not
"pairs"), short words, codes ("FISS", "OmpF": one letter changed is another code) and words with
digits are read as typed. Two or three words typed apart that the library writes as one ("Tik
Tok", "Xiao Hongshu") are read as that word: apart, a name no document writes so would make the
question one about something the documents never mention. The answer reports each reading, so
the asker sees how the question was read (docs/QUALITY.md, "Misspelt questions"); `search`
reads its query the same way.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from importlib import resources

from retrieval.records import Correction
from retrieval.text import STOPWORDS

# A word as typed: letters, with inner apostrophes or hyphens ("Xiaohongshu's", "cross-border"),
# not part of a token with digits ("Lemon8").
QUESTION_WORD = re.compile(r"(?<![\w'’-])[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*(?!\w)")
_POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)
SHORTEST = 4
# A word this short with a capital after its first letter is an acronym or a code (`is_code`).
CODE_UP_TO = 4
# Up to this length one edit, beyond it two: two slips in a short word make another word.
ONE_EDIT_UP_TO = 7
# Words typed apart that the library writes as one ("Tik Tok"): up to this many.
MOST_JOINED = 3
# A question with more words than this that are neither the library's nor English is not misspelt
# English (another language, a code, a list of names): it is read as typed.
MOST_SUSPECTS = 3
# pyspellchecker's English list counts each word in a corpus of film subtitles; its rarest
# entries (counts under 100) include common misspellings, so they do not count as words here.
ENGLISH_AT_LEAST = 100


def edit_distance(a: str, b: str, limit: int) -> int:
    """Letters inserted, deleted, changed or swapped with a neighbour to turn `a` into `b`
    (optimal string alignment); anything over `limit` is reported as `limit + 1`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] | None = None
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (a[i - 1] != b[j - 1]))
            if before is not None and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        before, row = row, current
    return min(row[-1], limit + 1)


def words_of(text: str) -> list[str]:
    """The words of a passage, as `suspects` reads a question's (a possessive's 's left off)."""
    return [_POSSESSIVE.sub("", match.group()) for match in QUESTION_WORD.finditer(text)]


def allowed_edits(word: str) -> int:
    """How many edits a misspelling of this length may be from its word."""
    return 1 if len(word) <= ONE_EDIT_UP_TO else 2


def is_code(word: str) -> bool:
    """Whether the word is an acronym or a code ("FISS", "OmpF", "dLNs"): four letters or fewer
    with a capital after the first. One letter changed makes another code of it, not a slip."""
    return len(word) <= CODE_UP_TO and any(letter.isupper() for letter in word[1:])


def suspects(question: str, *, known: Callable[[str], bool], english: Callable[[str], bool]) -> list[str]:
    """The words of `question` that may be misspelt: long enough, no library word, no English word."""
    found: list[str] = []
    for match in QUESTION_WORD.finditer(question):
        word = _POSSESSIVE.sub("", match.group())
        folded = word.casefold()
        if len(word) < SHORTEST or folded in STOPWORDS or word in found or is_code(word):
            continue
        # The library first: the English list is loaded only when a word is not in the library.
        if known(word) or english(folded):
            continue
        found.append(word)
    return found


def first_letter_slip(typed: str, word: str) -> bool:
    """Whether `typed` is `word` with its first letter left out ("ikTok") or swapped with the
    second ("mAerican"): the slips that change a word's first letter without making another name
    of it, as changing the letter would ("Tanya", "Sanya")."""
    return word[1:] == typed or (len(word) == len(typed) > 2 and word[:2] == typed[1::-1] and word[2:] == typed[2:])


def nearest(
    word: str, library_words: Iterable[str], *, limit: int | None = None, first_letter_slips: bool = True
) -> str | None:
    """The library word nearest to `word` (within `limit` edits, by default `allowed_edits`; the
    same first letter, or a `first_letter_slip` away if `first_letter_slips`), in its most frequent
    form as written there; of equally near ones the one with the same first letter, then the most
    frequent. None if none is near."""
    folded = word.casefold()
    limit = allowed_edits(folded) if limit is None else limit
    forms: dict[str, Counter[str]] = {}
    for written in library_words:
        candidate = written.casefold()
        if candidate != folded and (candidate[:1] == folded[:1]
                                    or first_letter_slips and first_letter_slip(folded, candidate)):
            forms.setdefault(candidate, Counter())[written] += 1
    best: tuple[int, bool, int, str] | None = None
    for candidate, written in forms.items():
        distance = edit_distance(folded, candidate, limit)
        if distance <= limit:
            key = (distance, candidate[:1] != folded[:1], -sum(written.values()), candidate)
            if best is None or key < best:
                best = key
    return None if best is None else _in_typed_case(word, forms[best[3]])


def _in_typed_case(typed: str, forms: Counter[str]) -> str:
    """The library's most frequent form of a word; lower case if `typed` was (typed in lower case,
    read in lower case: a word the documents capitalise only at a sentence's start)."""
    form = forms.most_common(1)[0][0]
    return form.casefold() if typed == typed.casefold() else form


def joined(question: str, *, known: Callable[[str], bool]) -> list[tuple[str, str]]:
    """Runs of two or three words typed a space apart that the library holds as one word, and not
    each apart ("Tik Tok" for "TikTok", "Xiao Hong Shu"): each as (the run as typed, the word).
    Words the library holds each ("Red Note") are found as they are."""
    matches = list(QUESTION_WORD.finditer(question))
    found = []
    i = 0
    while i < len(matches):
        for size in range(min(MOST_JOINED, len(matches) - i), 1, -1):
            run = matches[i : i + size]
            if any(question[a.end() : b.start()] != " " for a, b in zip(run, run[1:])):
                continue
            parts = [m.group() for m in run[:-1]] + [_POSSESSIVE.sub("", run[-1].group())]
            word = "".join(parts)
            if (len(word) >= SHORTEST and not any(p.casefold() in STOPWORDS for p in parts)
                    and not all(known(p) for p in parts) and known(word)):
                found.append((question[run[0].start() : run[-1].start()] + parts[-1], word))
                i += size
                break
        else:
            i += 1
    # A run typed more than once is read once (`corrected` replaces it everywhere).
    return list(dict.fromkeys(found))


def library_form(word: str, library_words: Iterable[str]) -> str:
    """The word as the library most often writes it ("TikTok" for "tiktok"); lower case if typed so."""
    forms = Counter(w for w in library_words if w.casefold() == word.casefold())
    return _in_typed_case(word, forms) if forms else word


def corrections(
    question: str,
    *,
    known: Callable[[str], bool],
    english: Callable[[str], bool],
    library_words_near: Callable[[str, int], Iterable[str]],
    same_stem: Callable[[str, str], bool] = lambda typed, near: False,
    listed: Callable[[str], bool] = lambda word: False,
) -> tuple[Correction, ...]:
    """How to read the question's misspelt words: `library_words_near(word, edits)` gives the words
    of the passages that hold a word within `edits` of it. A word whose nearest has its stem
    (`same_stem`: "valuations", "valuation") is another form of a library word, not a slip: as typed.
    A word the English list holds at all (`listed`, its rare entries too) is no slip of a first
    letter: "synchronously" is not "asynchronously" with the "a" left out."""
    # Joining and the suspects ask after the same words: each is looked up once.
    known = functools.cache(known)
    found = [Correction(typed, library_form(word, library_words_near(word, 0)))
             for typed, word in joined(question, known=known)]
    # The words joined are read as one library word; the rest may be misspelt.
    words = suspects(corrected(question, found), known=known, english=english)
    if len(words) > MOST_SUSPECTS:
        return tuple(found)
    for word in words:
        # One edit first: the passages holding a word two edits away are many more, and those
        # looked at might all miss the word one edit away.
        for edits in range(1, allowed_edits(word.casefold()) + 1):
            near = nearest(word, library_words_near(word, edits), limit=edits,
                           first_letter_slips=not listed(word.casefold()))
            if near is not None:
                if not same_stem(word, near):
                    found.append(Correction(word, near))
                break
    return tuple(found)


def corrected(question: str, found: Iterable[Correction]) -> str:
    """The question with each misspelt word replaced by the word it was read as."""
    for correction in found:
        question = re.sub(rf"(?<![\w'’-]){re.escape(correction.typed)}(?![\w-])", lambda _: correction.read_as,
                          question)
    return question


# pyspellchecker's English list in two sets: its common words (`ENGLISH_AT_LEAST`) and the rest.
_english: tuple[frozenset[str], frozenset[str]] | None = None
_english_lock = threading.Lock()


def _english_words() -> tuple[frozenset[str], frozenset[str]]:
    """The English list's common words and its rare ones (loaded once, about 0.3 s; two sets, as a
    dict of every count holds twice the memory)."""
    global _english
    if _english is None:
        with _english_lock:
            if _english is None:
                source = resources.files("spellchecker") / "resources" / "en.json.gz"
                with resources.as_file(source) as path, gzip.open(path, "rt", encoding="utf-8") as handle:
                    counts = json.load(handle)
                _english = (frozenset(w for w, n in counts.items() if n >= ENGLISH_AT_LEAST),
                            frozenset(w for w, n in counts.items() if n < ENGLISH_AT_LEAST))
    return _english


def is_english(word: str) -> bool:
    """Whether a lower-cased word is a common English word (pyspellchecker's list, counts `ENGLISH_AT_LEAST` up)."""
    return word in _english_words()[0]


def is_listed(word: str) -> bool:
    """Whether a lower-cased word is in pyspellchecker's English list at all, its rarest entries included."""
    common, rare = _english_words()
    return word in common or word in rare
