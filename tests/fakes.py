"""A deterministic stand-in for the embedding model: bag of hashed word stems."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from retrieval.embedder import TokenVectors

_WORD = re.compile(r"\w+")


def _stem_vector(stem: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(stem.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


class FakeEmbedder:
    """Texts sharing word stems get similar vectors; counts every call so tests can see re-embedding."""

    name = "fake-bag-of-words"

    def __init__(self, *, dim: int = 64, max_tokens: int = 254, batch_size: int = 32) -> None:
        self.dim = dim
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.encoded.extend(texts)
        rows = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in zip(rows, texts):
            for word in _WORD.findall(text.lower()):
                row += _stem_vector(word[:5], self.dim)
            norm = np.linalg.norm(row)
            if norm:
                row /= norm
        return rows

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text))

    def token_vectors(self, texts: Sequence[str]) -> list[TokenVectors]:
        """One token per word: words sharing a stem match exactly, others hardly at all."""
        result = []
        for text in texts:
            matches = list(_WORD.finditer(text.lower()))
            rows = np.array([_stem_vector(m.group()[:5], self.dim) for m in matches], dtype=np.float32).reshape(-1, self.dim)
            result.append(TokenVectors(tuple(m.span() for m in matches), rows))
        return result


class FakeReader:
    """A stand-in for the reader: the share of the question's content words its sentence holds.

    Reads only the sentence (what comes before the reader context's [SEP]); counts its calls.
    """

    def __init__(self) -> None:
        self.read: list[tuple[str, str]] = []

    def score(self, question: str, contexts: Sequence[str]) -> np.ndarray:
        from retrieval.candidates import shared_words
        from retrieval.text import keyword_terms

        terms = set(keyword_terms(question))
        self.read.extend((question, context) for context in contexts)
        return np.array([shared_words(terms, context.split(" [SEP] ")[0]) for context in contexts], dtype=np.float32)
