"""How the dense and keyword rankings of a search combine into one: a method chosen by name from a table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

Ranked = list[tuple[int, float]]


class FusionMethod(StrEnum):
    """The ways two rankings combine (measured in docs/QUALITY.md); settings name one."""

    # A weighted sum of each half's scores divided by that half's best score.
    SCALED = "scaled"
    # The same sum over min-max normalised scores.
    MIX = "mix"
    # Reciprocal rank fusion: scores are ignored, ranks count.
    RRF = "rrf"


@dataclass(frozen=True, slots=True)
class Fusion:
    """How the two rankings combine; the defaults are the ones measured best (docs/QUALITY.md)."""

    method: FusionMethod = FusionMethod.SCALED
    rrf_k: int = 60
    dense_weight: float = 0.7
    keyword_weight: float = 0.3

    def __post_init__(self) -> None:
        try:
            method = FusionMethod(self.method)
        except ValueError:
            names = ", ".join(repr(m.value) for m in FusionMethod)
            raise ValueError(f"fusion method must be one of {names}, got {self.method!r}") from None
        object.__setattr__(self, "method", method)


def fuse(dense: Ranked, keyword: Ranked, fusion: Fusion) -> Ranked:
    """Merge two best-first (id, score) rankings into one, scores scaled to 0..1."""
    scores, best_possible = FUSE[fusion.method](dense, keyword, fusion)
    fused = sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
    return [(item, score / best_possible) for item, score in fused]


def _rrf(dense: Ranked, keyword: Ranked, fusion: Fusion) -> tuple[dict[int, float], float]:
    scores: dict[int, float] = {}
    for weight, ranking in ((fusion.dense_weight, dense), (fusion.keyword_weight, keyword)):
        for rank, (item, _) in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (fusion.rrf_k + rank)
    return scores, (fusion.dense_weight + fusion.keyword_weight) / (fusion.rrf_k + 1)


def _weighted_sum(normalise: Callable[[Ranked], Ranked]) -> Callable[[Ranked, Ranked, Fusion], tuple[dict[int, float], float]]:
    """A fusion that sums each half's normalised scores, weighted."""

    def combine(dense: Ranked, keyword: Ranked, fusion: Fusion) -> tuple[dict[int, float], float]:
        scores: dict[int, float] = {}
        total = fusion.dense_weight + fusion.keyword_weight
        for weight, ranking in ((fusion.dense_weight, dense), (fusion.keyword_weight, keyword)):
            for item, value in normalise(ranking):
                scores[item] = scores.get(item, 0.0) + weight / total * value
        return scores, 1.0

    return combine


def _scaled(ranking: Ranked) -> Ranked:
    # Zero stays "no match" (cosine 0, BM25 0) rather than becoming the weakest candidate fetched,
    # so an item's share does not depend on how many candidates were taken (docs/QUALITY.md).
    if not ranking:
        return []
    best = max(score for _, score in ranking)
    if best <= 0:
        return [(item, 0.0) for item, _ in ranking]
    return [(item, max(score, 0.0) / best) for item, score in ranking]


def _min_max(ranking: Ranked) -> Ranked:
    if not ranking:
        return []
    values = [score for _, score in ranking]
    low, high = min(values), max(values)
    spread = high - low
    return [(item, (score - low) / spread if spread > 0 else 1.0) for item, score in ranking]


# Each method's scores and the best score it can give (fused scores are divided by it).
FUSE: dict[FusionMethod, Callable[[Ranked, Ranked, Fusion], tuple[dict[int, float], float]]] = {
    FusionMethod.SCALED: _weighted_sum(_scaled),
    FusionMethod.MIX: _weighted_sum(_min_max),
    FusionMethod.RRF: _rrf,
}
