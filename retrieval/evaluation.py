"""Built-in evaluation: a question set over the current index, and BEIR benchmarks."""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ingest.records import Document
from retrieval.answer import clears
from retrieval.fusion import Fusion, fuse
from retrieval.search import dense_search

_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "′": "'", "″": '"'})


def normalise(text: str) -> str:
    """Fold case, quote characters and whitespace, so answer strings match passages fairly."""
    return re.sub(r"\s+", " ", text.translate(_QUOTES).lower()).strip()


@dataclass(frozen=True, slots=True)
class QAItem:
    """One evaluation question with the strings a correct passage contains."""

    question: str
    answers: tuple[str, ...]
    answerable: bool


def load_qa(path: Path) -> list[QAItem]:
    """Read a QA JSON-lines file, naming the line of any malformed entry."""
    items = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as error:
            raise ValueError(f"{path}:{number}: not a QA entry ({error})") from error
        if isinstance(row, dict) and "review" in row:
            # A line `sourcebook feedback to-eval` made from a thumbs-down: its right answer is not known yet.
            comment = row["review"].get("comment", "") if isinstance(row["review"], dict) else row["review"]
            raise ValueError(
                f"{path}:{number}: a candidate still to review ({comment!r}): "
                "fill in its answers and answerable, then remove its review field"
            )
        try:
            item = QAItem(str(row["question"]), tuple(str(a) for a in row.get("answers", [])), bool(row["answerable"]))
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: not a QA entry ({error})") from error
        if item.answerable and not item.answers:
            raise ValueError(f"{path}:{number}: an answerable question needs at least one answer string")
        items.append(item)
    if not items:
        raise ValueError(f"{path} holds no questions")
    return items


def contains_answer(text: str, answers: Iterable[str]) -> bool:
    """Return whether `text` contains any of the answer strings, after normalising both."""
    folded = normalise(text)
    return any(normalise(answer) in folded for answer in answers)


def first_relevant_rank(relevant: Sequence[bool]) -> int | None:
    """Return the 1-based rank of the first relevant result, if any."""
    return next((rank for rank, flag in enumerate(relevant, start=1) if flag), None)


@dataclass(frozen=True, slots=True)
class QAReport:
    """Retrieval, answer and abstention figures over a question set.

    A figure over a kind of question the set does not hold is None: a SQuAD v1.1 file has no
    unanswerable questions to decline, and 0.0 would read as none declined.
    """

    questions: int
    answerable: int
    unanswerable: int
    recall_at_1: float | None
    recall_at_5: float | None
    mrr_at_10: float | None
    answer_hit_rate: float | None
    declined_unanswerable: float | None
    declined_answerable: float | None

    def to_dict(self) -> dict:
        """Return the figures as a plain dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class QAOutcome:
    """How one question went: the rank of the first correct passage, and the answer."""

    item: QAItem
    rank: int | None
    answered: bool
    answer_correct: bool
    evidence: float  # the reader's probability for the best sentence


def score_qa(outcomes: Sequence[QAOutcome]) -> QAReport:
    """Aggregate per-question outcomes into the report."""
    answerable = [o for o in outcomes if o.item.answerable]
    unanswerable = [o for o in outcomes if not o.item.answerable]

    def share(flags: list[bool]) -> float | None:
        return round(sum(flags) / len(flags), 4) if flags else None

    return QAReport(
        questions=len(outcomes),
        answerable=len(answerable),
        unanswerable=len(unanswerable),
        recall_at_1=share([o.rank == 1 for o in answerable]),
        recall_at_5=share([o.rank is not None and o.rank <= 5 for o in answerable]),
        mrr_at_10=round(sum(1 / o.rank for o in answerable if o.rank and o.rank <= 10) / len(answerable), 4)
        if answerable
        else None,
        answer_hit_rate=share([o.answer_correct for o in answerable]),
        declined_unanswerable=share([not o.answered for o in unanswerable]),
        declined_answerable=share([not o.answered for o in answerable]),
    )


def evaluate_qa(ask: Callable[[str], object], items: Sequence[QAItem]) -> tuple[QAReport, list[QAOutcome]]:
    """Ask every question (with k=10 passages) and score passages, answers and abstentions."""
    outcomes = []
    for item in items:
        answer = ask(item.question)
        relevant = [contains_answer(p.text, item.answers) for p in answer.passages[:10]]
        outcomes.append(
            QAOutcome(
                item=item,
                rank=first_relevant_rank(relevant),
                answered=answer.answered,
                answer_correct=answer.answered and contains_answer(answer.answer, item.answers),
                evidence=answer.evidence,
            )
        )
    return score_qa(outcomes), outcomes


def _floor(value: float) -> float:
    # Rounded down, so the question a threshold sits on stays answered.
    return math.floor(value * 10_000) / 10_000


def calibrate_threshold(outcomes: Sequence[QAOutcome], *, max_wrong_declines: float | None = None) -> float:
    """Return the abstention threshold on the reader's best probability that these questions favour.

    Run the questions with abstention off (threshold 0) so every score is seen. By default the
    threshold makes the most of both rates at once: right answers among the answerable questions
    plus declines among the unanswerable ones. With `max_wrong_declines`, it declines the most
    unanswerable questions while declining at most that share of the answerable ones. Each
    candidate sits on a question's score; of equally good ones the lowest wins.
    """
    answerable = [o for o in outcomes if o.item.answerable]
    unanswerable = [o for o in outcomes if not o.item.answerable]
    if not answerable:
        raise ValueError("calibration needs answerable questions")
    best: tuple[tuple[float, float], float] | None = None
    for threshold in sorted({0.0} | {_floor(o.evidence) for o in outcomes}):
        wrong = sum(not clears(o.evidence, threshold) for o in answerable) / len(answerable)
        if max_wrong_declines is not None and wrong > max_wrong_declines:
            break
        right = sum(o.answer_correct and clears(o.evidence, threshold) for o in answerable) / len(answerable)
        declined = sum(not clears(o.evidence, threshold) for o in unanswerable) / max(1, len(unanswerable))
        key = (declined, -wrong) if max_wrong_declines is not None else (right + declined, 0.0)
        if best is None or key > best[0]:
            best = (key, threshold)
    return best[1]


def with_threshold(outcomes: Sequence[QAOutcome], threshold: float) -> list[QAOutcome]:
    """Return the outcomes as they would be had answers below this threshold been declined."""
    return [
        replace(
            o,
            answered=o.answered and clears(o.evidence, threshold),
            answer_correct=o.answer_correct and clears(o.evidence, threshold),
        )
        for o in outcomes
    ]


# --- SQuAD ---------------------------------------------------------------------------


def load_squad(path: Path) -> tuple[list[Document], list[QAItem]]:
    """Read a SQuAD (2.0 or 1.1) JSON file, gzipped or not: each article a document, its questions QA items.

    An article's paragraphs are joined by blank lines, so each stays a paragraph of the document.
    """
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        articles = json.load(handle)["data"]
    documents, items = [], []
    for article in articles:
        title = article["title"].replace("_", " ")
        text = "\n\n".join(paragraph["context"].strip() for paragraph in article["paragraphs"])
        documents.append(Document(source=article["title"], title=title, text=text))
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = tuple(a["text"] for a in qa.get("answers", []) if a["text"].strip())
                answerable = not qa.get("is_impossible", False) and bool(answers)
                items.append(QAItem(qa["question"].strip(), answers if answerable else (), answerable))
    if not items:
        raise ValueError(f"{path} holds no questions")
    return documents, items


# --- BEIR ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BeirSet:
    """A BEIR-layout benchmark: documents, queries and relevance judgements."""

    documents: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(directory: Path, split: str = "test") -> BeirSet:
    """Read corpus.jsonl, queries.jsonl and qrels/SPLIT.tsv; documents are cited by their BEIR id."""
    directory = Path(directory)
    qrels_path = directory / "qrels" / f"{split}.tsv"
    for path in (directory / "corpus.jsonl", directory / "queries.jsonl", qrels_path):
        if not path.is_file():
            raise FileNotFoundError(f"BEIR set is missing {path}")
    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_path, encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if len(row) < 3 or row[0] == "query-id":
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    documents = []
    with open(directory / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            title, text = row.get("title", "").strip(), row.get("text", "").strip()
            body = f"{title}\n\n{text}" if title else text
            if body:
                documents.append(Document(source=str(row["_id"]), title=title or str(row["_id"]), text=body))
    queries = {}
    with open(directory / "queries.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if str(row["_id"]) in qrels:
                queries[str(row["_id"])] = row["text"]
    return BeirSet(documents, queries, qrels)


def ndcg_at(ranking: Sequence[str], relevant: dict[str, int], k: int) -> float:
    """Normalised discounted cumulative gain at k."""
    gain = sum(relevant.get(doc, 0) / math.log2(rank + 1) for rank, doc in enumerate(ranking[:k], start=1))
    ideal = sum(g / math.log2(rank + 1) for rank, g in enumerate(sorted(relevant.values(), reverse=True)[:k], start=1))
    return gain / ideal if ideal else 0.0


def recall_at(ranking: Sequence[str], relevant: dict[str, int], k: int) -> float:
    """Share of the relevant documents found in the top k."""
    wanted = {doc for doc, grade in relevant.items() if grade > 0}
    return len(wanted & set(ranking[:k])) / len(wanted) if wanted else 0.0


def mrr_at(ranking: Sequence[str], relevant: dict[str, int], k: int) -> float:
    """Reciprocal rank of the first relevant document within the top k."""
    rank = first_relevant_rank([relevant.get(doc, 0) > 0 for doc in ranking[:k]])
    return 1 / rank if rank else 0.0


def beir_metrics(runs: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Average nDCG@10, recall@10, recall@100 and MRR@10 over the judged queries."""
    judged = [q for q in qrels if q in runs]
    metrics = {
        "ndcg@10": lambda r, rel: ndcg_at(r, rel, 10),
        "recall@10": lambda r, rel: recall_at(r, rel, 10),
        "recall@100": lambda r, rel: recall_at(r, rel, 100),
        "mrr@10": lambda r, rel: mrr_at(r, rel, 10),
    }
    return {
        name: round(float(np.mean([metric(runs[q], qrels[q]) for q in judged])), 4) if judged else 0.0
        for name, metric in metrics.items()
    }


def documents_ranking(ranked_chunks: Sequence[tuple[int, float]], source_of: dict[int, str], depth: int) -> list[tuple[str, float]]:
    """Collapse a chunk ranking to documents, each scored by its best chunk."""
    seen: dict[str, float] = {}
    for rowid, score in ranked_chunks:
        source = source_of.get(rowid)
        if source is not None and source not in seen:
            seen[source] = score
            if len(seen) == depth:
                break
    return list(seen.items())


def beir_runs(service, queries: dict[str, str], *, fusion: Fusion, depth: int = 100) -> dict[str, dict[str, list[tuple[str, float]]]]:
    """Rank documents for every query three ways: dense only, keyword only and hybrid; each query
    read as `search` reads it (misspelt words as the library's nearest, retrieval/spelling.py)."""
    store, index, keywords = service.library.store, service.library.index, service.library.keywords
    source_of = store.chunk_sources()
    # Chunks per document vary, so take more chunk candidates than documents wanted.
    candidates = depth * 4
    ids = list(queries)
    searcher = service.searcher
    read = {q: searcher.read(queries[q])[0] for q in ids}
    vectors = searcher.query_vectors([read[q] for q in ids])
    runs: dict[str, dict[str, list[tuple[str, float]]]] = {"dense": {}, "keyword": {}, "hybrid": {}}
    for query_id, vector in zip(ids, vectors):
        dense = dense_search(index, vector, candidates)
        keyword = keywords.search(read[query_id], candidates)
        runs["dense"][query_id] = documents_ranking(dense, source_of, depth)
        runs["keyword"][query_id] = documents_ranking(keyword, source_of, depth)
        runs["hybrid"][query_id] = documents_ranking(fuse(dense, keyword, fusion), source_of, depth)
    return runs


def write_trec_run(path: Path, run: dict[str, list[tuple[str, float]]], name: str) -> None:
    """Write a ranking in TREC run format: qid Q0 docid rank score name."""
    with open(path, "w", encoding="utf-8") as handle:
        for query_id, ranking in run.items():
            for rank, (doc, score) in enumerate(ranking, start=1):
                handle.write(f"{query_id} Q0 {doc} {rank} {score:.6f} {name}\n")
