"""Helpers the test modules share (fixtures stay in conftest.py): paths, small corpora, the model export."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"


def with_model(exported_model: Path, index_dir: Path) -> Path:
    """Put the session's model export into `index_dir`, as an earlier run would have left it; return the folder."""
    shutil.copytree(exported_model, Path(index_dir) / "model-onnx")
    return Path(index_dir)


def write_files(folder: Path, files: dict[str, str | bytes]) -> Path:
    """Write a small corpus: {relative name: text or bytes}."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder
