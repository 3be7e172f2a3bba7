"""Reading files into documents: loaders (one per format), sentences, chunking and the records they make.

The lowest layer: it imports nothing from `retrieval`, `app` or `ui` (tests/test_layers.py).
"""
