"""SQuAD articles turned into reader pairs: a question, a candidate sentence in its context, a label.

The reader learns one thing: does this sentence answer this question. Positives are the sentence
holding the answer; negatives are the paragraph's other sentences that share the most words with
the question, and, for SQuAD 2.0's unanswerable questions (written to look answerable from their
paragraph), the sentences nearest to them: the near misses a reader must learn to decline. More
near misses are made from v1.1 questions by swapping a name, number or year the answering
sentence states for another one of the same article, or by rewording the question (an opposite,
a negation), so the sentence no longer answers.

SQuAD is CC BY-SA 4.0 (Rajpurkar et al. 2016, 2018); so is anything trained on it.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.sentences import sentence_spans
from retrieval.reader import reader_context
from retrieval.reading import CALENDAR
from retrieval.text import STOPWORDS, keyword_terms

# The SQuAD 2.0 dev articles are split by article: the reader trains on some, its threshold is
# calibrated on others, and the rest are touched only by the final check. Fixed by this seed.
SPLIT_SEED = 13
TEST_ARTICLES = 7
CALIBRATION_ARTICLES = 6


@dataclass(frozen=True, slots=True)
class Pair:
    """One training or scoring example for the reader."""

    question: str
    context: str  # the candidate sentence, then what helps read it (reader_context)
    label: float  # 1.0 when the sentence holds the answer
    group: str  # the question's id: its pairs are scored together when measuring
    answer: str = ""  # a positive's answer text as it stands in the sentence (for --span-weight)


@dataclass(frozen=True, slots=True)
class Question:
    """A SQuAD question over one paragraph, with its paragraph cut into sentences."""

    id: str
    text: str
    title: str
    sentences: tuple[str, ...]
    answering: frozenset[int]  # indices of the sentences holding an answer; empty when unanswerable
    answers: tuple[str, ...]


def load_articles(path: Path) -> list[dict]:
    """Read a (gzipped) SQuAD JSON file's articles."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)["data"]


# SQuAD 2.0's training file, whole, if the data folder has it; else the sample ../shared holds.
SQUAD2_TRAIN_FILES = ("train-v2.0.json.gz", "train-v2.0-first10.json.gz")


def squad2_training_articles(data: Path, dev: dict[str, list[dict]] | None = None) -> list[dict]:
    """The SQuAD 2.0 articles to train on: the dev set's training articles and SQuAD 2.0's training
    file (whole when present: its real unanswerable questions are what the reader lacks;
    docs/QUALITY.md). `dev`: the dev set as `split_dev` parts, when the caller has split it already."""
    articles = (dev or split_dev(load_articles(data / "dev-v2.0.json.gz")))["train"]
    train = next((data / name for name in SQUAD2_TRAIN_FILES if (data / name).exists()), None)
    return articles + (load_articles(train) if train else [])


def split_dev(articles: Sequence[dict]) -> dict[str, list[dict]]:
    """Split SQuAD 2.0 dev articles into train, calibrate and test, by article, reproducibly."""
    titles = sorted(article["title"] for article in articles)
    random.Random(SPLIT_SEED).shuffle(titles)
    parts = {
        "test": set(titles[:TEST_ARTICLES]),
        "calibrate": set(titles[TEST_ARTICLES : TEST_ARTICLES + CALIBRATION_ARTICLES]),
        "train": set(titles[TEST_ARTICLES + CALIBRATION_ARTICLES :]),
    }
    return {name: [a for a in articles if a["title"] in chosen] for name, chosen in parts.items()}


def unseen_articles(v1_dev: Sequence[dict], v2_dev: Sequence[dict]) -> list[dict]:
    """The SQuAD v1.1 dev articles that SQuAD 2.0's dev file does not hold: nothing trains, calibrates
    or is chosen on them, so they show how the threshold carries to articles no choice has seen
    (answerable questions only: how many an answer declines wrongly, how many it gets right)."""
    seen = {article["title"] for article in v2_dev}
    return [article for article in v1_dev if article["title"] not in seen]


def readable_title(title: str) -> str:
    """SQuAD titles are page names: "Super_Bowl_50" reads "Super Bowl 50"."""
    return title.replace("_", " ")


def questions(articles: Sequence[dict]) -> Iterator[Question]:
    """Yield every question of the articles with its paragraph's sentences and which ones answer it."""
    for article in articles:
        title = readable_title(article["title"])
        for p, paragraph in enumerate(article["paragraphs"]):
            context = paragraph["context"]
            spans = sentence_spans(context)
            sentences = tuple(context[start:end] for start, end in spans)
            for q, qa in enumerate(paragraph["qas"]):
                answers = tuple(a["text"] for a in qa.get("answers", []) if a["text"].strip())
                answering = frozenset(
                    i
                    for a in qa.get("answers", [])
                    for i, (start, end) in enumerate(spans)
                    if start <= a["answer_start"] < end
                )
                if qa.get("is_impossible"):
                    answering, answers = frozenset(), ()
                elif not answering:
                    continue  # an answer between sentences: nothing to learn from it
                yield Question(qa.get("id") or f"{article['title']}/{p}/{q}", qa["question"], title, sentences, answering, answers)


def context_of(question: Question, index: int, sentence: str | None = None) -> str:
    """The reader's text for one of the question's sentences: itself (or `sentence` in its place),
    its title and the sentence before."""
    previous = question.sentences[index - 1] if index > 0 else ""
    return reader_context(sentence or question.sentences[index], title=question.title, previous=previous)


def shared_words(question: str, sentence: str) -> int:
    """How many content words of the question the sentence contains, by 5-letter prefix."""
    stems = {word[:5] for word in keyword_terms(sentence)}
    return sum(1 for word in keyword_terms(question) if word[:5] in stems)


def mentions_answer(sentence: str, answers: Sequence[str]) -> bool:
    """Whether the sentence contains one of the answer texts (it may answer too: never a negative)."""
    lowered = sentence.lower()
    return any(answer.lower() in lowered for answer in answers)


def answer_in(sentence: str, answers: Sequence[str]) -> str:
    """The first answer text that stands in the sentence as written, or "" when none does."""
    return next((answer for answer in answers if answer and answer in sentence), "")


def nearest_sentences(question: Question, limit: int, rng: random.Random) -> list[int]:
    """The non-answering sentences sharing the most words with the question (ties broken at random)."""
    others = [
        i
        for i, sentence in enumerate(question.sentences)
        if i not in question.answering and not mentions_answer(sentence, question.answers) and len(sentence.split()) >= 4
    ]
    rng.shuffle(others)
    others.sort(key=lambda i: -shared_words(question.text, question.sentences[i]))
    return others[:limit]


def all_pairs(question: Question) -> list[Pair]:
    """Every sentence of the question's paragraph as a pair: how the reader is measured."""
    return [
        Pair(question.text, context_of(question, i), float(i in question.answering), question.id)
        for i in range(len(question.sentences))
        if len(question.sentences[i].split()) >= 4 or i in question.answering
    ]


_SWAPPABLE = re.compile(r"\b(?:1[5-9]\d\d|20\d\d|\d[\d,.]*|[A-Z][a-z]+(?:\s[A-Z][a-z]+)*)\b")


def _kind(token: str) -> str:
    if re.fullmatch(r"1[5-9]\d\d|20\d\d", token):
        return "year"
    if token[0].isdigit():
        return "number"
    return "name"


def swappables(text: str, *, skip_first: bool = True) -> list[str]:
    """The years, numbers and capitalised names of a text (a sentence's first word is not a name)."""
    found = []
    for match in _SWAPPABLE.finditer(text):
        if skip_first and match.start() == 0 and _kind(match.group()) == "name":
            continue
        found.append(match.group())
    return found


def near_miss(question: Question, vocabulary: dict[str, list[str]], rng: random.Random) -> str | None:
    """The question with a name, number or year its answering sentence states swapped for another of the article.

    "When did the Normans reach Sicily?" becomes "When did the Normans reach Apulia?": the sentence
    that answered the first says nothing of the second. None when nothing can be swapped.
    """
    answering = " ".join(question.sentences[i] for i in sorted(question.answering))
    paragraph = " ".join(question.sentences).lower()
    targets = [t for t in swappables(question.text) if t in answering]
    if not targets:
        return None
    target = rng.choice(targets)
    options = [
        v
        for v in vocabulary.get(_kind(target), [])
        if v.lower() not in paragraph and v.lower() not in question.text.lower()
    ]
    if not options:
        return None
    return question.text.replace(target, rng.choice(options), 1)


# Words whose opposite asks for another fact: "the largest city" is not "the smallest city".
# SQuAD 2.0's writers made a fifth of its unanswerable questions this way (Rajpurkar et al. 2018).
_OPPOSITE_PAIRS = (
    ("first", "last"), ("largest", "smallest"), ("biggest", "smallest"), ("highest", "lowest"),
    ("most", "least"), ("more", "less"), ("earliest", "latest"), ("before", "after"),
    ("increase", "decrease"), ("increased", "decreased"), ("north", "south"), ("east", "west"),
    ("northern", "southern"), ("eastern", "western"), ("longest", "shortest"), ("oldest", "newest"),
    ("best", "worst"), ("major", "minor"), ("upper", "lower"), ("inside", "outside"),
    ("began", "ended"), ("won", "lost"), ("win", "lose"), ("positive", "negative"),
    ("maximum", "minimum"), ("early", "late"), ("rich", "poor"), ("public", "private"),
)
OPPOSITES = {a: b for a, b in _OPPOSITE_PAIRS} | {b: a for a, b in _OPPOSITE_PAIRS}
# An auxiliary before a participle takes a "not" cleanly: "were killed" -> "were not killed".
_AUXILIARY = re.compile(r"\b(?:is|was|are|were|has|have|had|been)(?= [a-z]+(?:ed|en|ing)\b)")
_NEGATION = re.compile(r"\b(?:not|never|no|none|nor|without)\b|n't\b", re.IGNORECASE)


def reworded_miss(question: Question, rng: random.Random) -> str | None:
    """The question turned to ask for something its answering sentence does not say: a word swapped
    for its opposite ("first" for "last"), else a negation ("How many people were not killed?"):
    two more kinds of SQuAD 2.0's near misses that can be made by rule. None when neither fits.
    """
    answering = " ".join(question.sentences[i] for i in sorted(question.answering)).lower()
    answering_words = set(re.findall(r"[a-z]+", answering))
    options = []
    for match in re.finditer(r"\b[A-Za-z]+\b(?!-)", question.text):
        word = match.group()
        opposite = OPPOSITES.get(word.lower())
        if not opposite or opposite in answering_words:
            continue
        if word[0].isupper():
            if match.start() > 0:
                continue  # part of a name: "North Carolina"
            opposite = opposite.capitalize()
        options.append(question.text[: match.start()] + opposite + question.text[match.end() :])
    if options:
        return rng.choice(options)
    auxiliary = _AUXILIARY.search(question.text)
    if auxiliary and not _NEGATION.search(answering) and not _NEGATION.search(question.text):
        return f"{question.text[: auxiliary.end()]} not{question.text[auxiliary.end() :]}"
    return None


# The auxiliaries and modals that carry a verb ("was founded", "can grind").
_CARRIERS = "is|was|are|were|has|have|had|can|could|will|would|should|may|might|must"
# "When", "Where", "Why" and "How" before an auxiliary trade places and the question still reads:
# "When did the Normans reach Sicily?" -> "Why did the Normans reach Sicily?".
_ASKING = re.compile(rf"^(when|where|why|how)(?= (?:did|does|do|{_CARRIERS})\b)", re.IGNORECASE)
# How a sentence may say when, or why; a sentence with none of these cannot answer the one asked.
_SAYS_WHEN = re.compile(
    r"\b(?:1\d{3}|20\d{2}|\d{1,2}(?:st|nd|rd|th)|january|february|march|april|may|june|july|august|"
    r"september|october|november|december|centur(?:y|ies)|decades?|eras?|periods?|ages?|ago|years?|months?|"
    r"weeks?|days?|today|seasons?|spring|summer|autumn|fall|winter|dates?|times?|during|until|since|after|"
    r"before|when|while|once|then|now|later|earl(?:y|ier)|late|recent(?:ly)?|former(?:ly)?|previous(?:ly)?)\b",
    re.IGNORECASE)
_SAYS_WHY = re.compile(
    r"\b(?:because|due|since|so|reasons?|caus\w*|result\w*|order|led|leads?|thanks|owing|for|purposes?|"
    r"aim\w*|hence|therefore|thus|as|why)\b|\bto (?!(?:the|a|an|his|her|its|their|this|that|these|those)\b)[a-z]",
    re.IGNORECASE)
_SAYS = {"when": _SAYS_WHEN, "why": _SAYS_WHY}


def asked_otherwise(question: Question, rng: random.Random) -> str | None:
    """The question turned to ask when, or why, where its answering sentence says neither: "How did
    the Normans reach Sicily?" against "The Normans reached Sicily by sea in 1061." becomes "Why did
    the Normans reach Sicily?". The sentence is about what is asked, but not the kind of fact asked
    for: the quote about the subject that misses the fact. None when the question does not open
    with when, where, why or how and an auxiliary, or the sentence may say both.
    """
    opening = _ASKING.match(question.text)
    if not opening:
        return None
    answering = " ".join(question.sentences[i] for i in sorted(question.answering))
    asked = opening.group().lower()
    kinds = [kind for kind, says in _SAYS.items() if kind != asked and not says.search(answering)]
    if not kinds:
        return None
    kind = rng.choice(kinds)
    return (kind.capitalize() if opening.group()[0].isupper() else kind) + question.text[opening.end():]


# Questions about a relation that reads the same both ways ("Who did X marry?"): turned around they
# may still be answered, so they are not made into role-swapped near misses.
_TWO_WAY = re.compile(
    r"\b(?:marr\w*|wed\w*|spouses?|wife|husband|met|meet\w*|border\w*|neighbo\w*|all(?:y|ied|ies|iance)|"
    r"partner\w*|fight\w*|fought|battle\w*|wars?|versus|vs|compet\w*|play\w*|against|merg\w*|tie\w*|"
    r"same|equal\w*|known|called|named?|sibling\w*|brothers?|sisters?|cousins?|friend\w*|rival\w*|"
    r"relat\w*|between|and|or|with|also|twins?|similar\w*|like|alike|together|both|each|other|"
    r"join\w*|collaborat\w*|contact\w*|connect\w*|link\w*|trade\w*|treaty|agreement|signed|stand|short)\b",
    re.IGNORECASE)
_ASKS_FIGURE = re.compile(r"\b(?:how (?:many|much|long|old|far|large|big|high)|when|what (?:year|date|time)|which year"
                          r"|percent\w*)\b", re.IGNORECASE)
_NAME_ANSWER = re.compile(r"[A-Z][\w'’.-]*(?: (?:of |the |de |and |& )?[A-Z][\w'’.-]*){0,4}")


def _whole(name: str) -> re.Pattern:
    """A name standing whole in a text: not part of a longer name or word ("Kim Il" in "Kim Il-Sung")."""
    return re.compile(rf"(?<![\w.-]){re.escape(name)}(?![\w-]|\.\w)")


def role_swapped(question: Question, rng: random.Random) -> str | None:
    """The question with a name it shares with its answering sentence swapped for another name that
    sentence holds, often the answer itself: "Who replaced Dowding on 25 November?" against "... the
    replacement of Dowding with Sholto Douglas on 25 November" becomes "Who replaced Sholto Douglas
    on 25 November?". Every word of the new question still stands in the sentence, in other roles,
    so sharing words says nothing; the reader must read who did what (on articles nothing trains on
    the served second reader accepted 0.87 of them, 0.07 of `near_miss`'s: `bench.near_misses`,
    docs/QUALITY.md). None when the question asks about a relation that reads both ways, or no
    name fits.
    """
    if _TWO_WAY.search(question.text):
        return None
    sentence = question.sentences[min(question.answering)]
    asked = question.text.lower()
    targets = [t for t in swappables(question.text) if _kind(t) == "name" and t.lower() not in CALENDAR
               and _whole(t).search(question.text) and _whole(t).search(sentence)]
    # Another name of the sentence may be a parallel item holding its own figure or date ("Ceilandia had
    # 344,039, Taguatinga 243,575"): for such questions only the answer stands in.
    others = [] if _ASKS_FIGURE.search(question.text) else [
        n for n in swappables(sentence, skip_first=False) if _kind(n) == "name"]
    answer = question.answers[0].strip() if question.answers else ""
    if _NAME_ANSWER.fullmatch(answer):
        others.append(answer)
    options = [
        (target, other)
        for target in targets
        for other in dict.fromkeys(others)
        if other.lower() not in asked and other.lower() not in STOPWORDS and other.lower() not in CALENDAR
        and not set(other.lower().split()) & set(target.lower().split())
    ]
    if not options:
        return None
    target, other = rng.choice(options)
    return _whole(target).sub(lambda _: other, question.text, count=1)


# Words a question opens with that are not names (the common words, and a few more a question may
# open with): lowered when the question is joined after another.
_OPENING = STOPWORDS | frozenset("whose according along although among besides despite following since upon within".split())
JOINED_WORDS = 24  # the most words a two-part question is made of


def joined(question: Question, other: Question) -> str | None:
    """Two questions about one paragraph asked as one, the way people ask: "Who founded the app?"
    and "When was it founded?" become "Who founded the app, and when was it founded?". Each part's
    answering sentence answers it: the answer quotes both (a reader that takes a sentence answering
    one part for no answer declines the question). None when both are answered by one sentence, or
    the two make a question of more than `JOINED_WORDS` words (people's two-part questions run short).
    """
    if min(question.answering) == min(other.answering) or len(f"{question.text} {other.text}".split()) > JOINED_WORDS:
        return None
    first = question.text.strip().rstrip("?").rstrip()
    second = other.text.strip()
    word = second.split(maxsplit=1)[0] if second else ""
    if word.lower() in _OPENING:
        second = second[0].lower() + second[1:]
    return f"{first}, and {second.rstrip('?').rstrip()}?"


# A verb carried by an auxiliary or a modal takes a "not" cleanly: "was founded" -> "was not founded".
_CARRIER = re.compile(rf"\b(?:{_CARRIERS})\b (?=([a-z]+)\b)")


def denied_sentence(question: Question) -> str | None:
    """The question's answering sentence made to deny what the question asks: a word the question
    uses swapped for its opposite ("the largest mill" -> "the smallest mill"), else a "not" after
    the auxiliary or modal carrying a verb the question uses ("was founded" -> "was not founded").
    SQuAD 2.0's writers often asked, without the "not" or with the other word, about a sentence
    that denies it; the reworded near misses only change the question. None when the sentence or
    the question already negates, or nothing the question uses can be turned.
    """
    i = min(question.answering)
    sentence = question.sentences[i]
    if _NEGATION.search(sentence) or _NEGATION.search(question.text):
        return None
    words = set(re.findall(r"[a-z]+", sentence.lower()))
    asked = set(re.findall(r"[a-z]+", question.text.lower()))
    for match in re.finditer(r"\b[a-z]+\b(?!-)", sentence):
        opposite = OPPOSITES.get(match.group())
        if opposite and match.group() in asked and opposite not in words:
            return sentence[: match.start()] + opposite + sentence[match.end() :]
    stems = {word[:5] for word in keyword_terms(question.text)}
    for match in _CARRIER.finditer(sentence):
        if match.group(1)[:5] in stems:
            return f"{sentence[: match.end()]}not {sentence[match.end() :]}"
    return None


# Where a sentence can be cut and still read as one: before a comma, a semicolon, a dash or a bracket.
_CLAUSE_END = re.compile(r"\s*(?:[,;(]|\s[-\u2013\u2014])\s")
# A sentence opening with one of these is a dependent clause: cut short, it is no sentence.
_SUBORDINATE = frozenset(
    "although though while when whereas because since if unless after before as once until".split())
# Nor is one ending on a word that leads on to what was cut.
_DANGLING = frozenset("and or but nor rather however including such like namely e.g. i.e. than the a an of".split())


def cut_sentence(question: Question) -> str | None:
    """The question's answering sentence cut short before the clause holding the answer: it still
    speaks of what the question asks about, but no longer says the fact asked for ("In 2024 the app
    had 225 million users, and ranked seventh." -> "In 2024 the app had 225 million users." for
    "Where does the app rank?"). The reader is prone to accept such a sentence about the subject.
    None when the answer is in the first clause, or what is left is short, names no word of the
    question, or still names an answer.
    """
    i = min(question.answering)
    sentence = question.sentences[i]
    answer = answer_in(sentence, question.answers)
    at = sentence.find(answer) if answer else -1
    if at <= 0:
        return None
    ends = [match.start() for match in _CLAUSE_END.finditer(sentence, 0, at)]
    if not ends:
        return None
    kept = sentence[: ends[-1]].rstrip(" ,;:-\u2013\u2014(")
    words = [word.strip(",").lower() for word in kept.split()]
    if (len(words) < 6 or _SUBORDINATE.intersection(words[:2]) or words[-1] in _DANGLING
            or kept.count("(") != kept.count(")") or mentions_answer(kept, question.answers)
            or not shared_words(question.text, kept)):
        return None
    return kept + "."


def most_alike(question: Question, others: Sequence[Question], count: int = 1) -> list[Question]:
    """The `count` other questions sharing the most content words with this one (at least two each)."""
    ranked = sorted(others, key=lambda other: -shared_words(question.text, other.text))
    return [other for other in ranked[:count] if shared_words(question.text, other.text) >= 2]


def article_vocabulary(article: dict) -> dict[str, list[str]]:
    """The article's years, numbers and names, by kind, for near misses."""
    vocabulary: dict[str, set[str]] = {"year": set(), "number": set(), "name": set()}
    for paragraph in article["paragraphs"]:
        context = paragraph["context"]
        for start, end in sentence_spans(context):
            for token in swappables(context[start:end]):
                if token.lower() not in STOPWORDS:
                    vocabulary[_kind(token)].add(token)
    return {kind: sorted(values) for kind, values in vocabulary.items()}


def question_of(pair: Pair) -> str:
    """The id of the question a pair was made from (a made-up near miss is grouped apart from it)."""
    return pair.group.removesuffix("/swapped").removesuffix("/denied").removesuffix("/joined")


def training_pairs(
    articles: Sequence[dict],
    *,
    rng: random.Random,
    negatives: int = 1,
    unanswerable_negatives: int = 2,
    near_miss_share: float = 0.0,
    reworded_share: float = 0.0,
    denied_share: float = 0.0,
    cut_share: float = 0.0,
    asked_share: float = 0.0,
    role_share: float = 0.0,
    joined_share: float = 0.0,
    question_limit: int | None = None,
    paired_unanswerable: int = 0,
) -> list[Pair]:
    """Pairs for training from the articles' questions.

    Per answerable question: the answering sentence and its `negatives` nearest other sentences;
    per unanswerable question its `unanswerable_negatives` nearest sentences; and, for a
    `near_miss_share` of answerable questions, the question with a fact swapped, against the
    sentence that answered the original; for a `reworded_share`, a reworded near miss (an opposite
    or a negation) against it too; for a `denied_share`, the question against its answering
    sentence made to deny it (`denied_sentence`; grouped as `/denied`); for a `cut_share`, against
    its answering sentence cut short before the answer (`cut_sentence`; grouped so too); for an
    `asked_share`, the question turned to ask when or why where the sentence says neither
    (`asked_otherwise`), against it (grouped as the near misses are); for a `role_share`, the
    question with a name swapped for another its answering sentence holds (`role_swapped`), so too; for
    a `joined_share`, the question asked together with another of its paragraph (`joined`), against
    each part's answering sentence, both answering (grouped as `/joined`). With
    `paired_unanswerable`, each unanswerable question is also read against the answering sentence
    of its paragraph's most alike answerable question (a real near miss; grouped with that
    question's pairs, as made-up near misses are: `/swapped`); a number reads it against that many
    of the most alike.
    """
    pairs: list[Pair] = []
    for article in articles:
        vocabulary = article_vocabulary(article) if near_miss_share else {}
        chosen = list(questions([article]))
        rng.shuffle(chosen)
        answerable: dict[tuple[str, ...], list[Question]] = {}
        for question in chosen:
            if question.answering:
                answerable.setdefault(question.sentences, []).append(question)
        for question in chosen:
            if question.answering:
                for i in sorted(question.answering)[:1]:
                    answer = answer_in(question.sentences[i], question.answers)
                    pairs.append(Pair(question.text, context_of(question, i), 1.0, question.id, answer))
                for i in nearest_sentences(question, negatives, rng):
                    pairs.append(Pair(question.text, context_of(question, i), 0.0, question.id))
                if near_miss_share and rng.random() < near_miss_share:
                    swapped = near_miss(question, vocabulary, rng)
                    if swapped:
                        i = min(question.answering)
                        pairs.append(Pair(swapped, context_of(question, i), 0.0, question.id + "/swapped"))
                turns = ((reworded_share, reworded_miss), (asked_share, asked_otherwise), (role_share, role_swapped))
                for share, turned in turns:
                    if share and rng.random() < share and (other := turned(question, rng)):
                        pairs.append(Pair(other, context_of(question, min(question.answering)), 0.0,
                                          question.id + "/swapped"))
                if joined_share and rng.random() < joined_share:
                    others = [q for q in answerable[question.sentences] if q is not question]
                    partner = rng.choice(others) if others else None
                    if partner and (text := joined(question, partner)):
                        for asked in (question, partner):
                            i = min(asked.answering)
                            pairs.append(Pair(text, context_of(asked, i), 1.0, question.id + "/joined",
                                              answer_in(asked.sentences[i], asked.answers)))
                for share, changed in ((denied_share, denied_sentence), (cut_share, cut_sentence)):
                    if share and rng.random() < share and (sentence := changed(question)):
                        context = context_of(question, min(question.answering), sentence)
                        pairs.append(Pair(question.text, context, 0.0, question.id + "/denied"))
            else:
                for i in nearest_sentences(question, unanswerable_negatives, rng):
                    pairs.append(Pair(question.text, context_of(question, i), 0.0, question.id))
                for twin in most_alike(question, answerable.get(question.sentences, []), paired_unanswerable):
                    i = min(twin.answering)
                    pairs.append(Pair(question.text, context_of(twin, i), 0.0, twin.id + "/swapped"))
    if question_limit is not None:
        # Keep whole questions: every pair of the first `question_limit` groups.
        keep: dict[str, None] = {}
        for pair in pairs:
            group = question_of(pair)
            if group in keep or len(keep) < question_limit:
                keep[group] = None
        pairs = [p for p in pairs if question_of(p) in keep]
    return pairs
