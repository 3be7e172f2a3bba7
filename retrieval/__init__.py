"""Everything a query touches: the models (embedder, reader), the store, the vector and keyword
indexes, search and fusion, answers, and evaluation.

Imports `ingest` (its records) and nothing above it (tests/test_layers.py).
"""
