"""The application: the service the front ends call, and the indexing that writes the library.

Above `retrieval` (models, store, indexes, search, answers) and `ingest` (files to documents),
below `ui`: it imports both, and neither imports it.
"""
