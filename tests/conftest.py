"""Every test runs in its own temporary directory, with the index pointed there."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fastapi.testclient import TestClient

from retrieval.embedder import load_embedder
from retrieval.service import Sourcebook
from retrieval.settings import Settings
from tests.fakes import FakeEmbedder, FakeReader
from ui.server import create_app

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory) -> Path:
    """The bundled model's ONNX export with its recipe (`model-onnx/`), made once for the session."""
    index = tmp_path_factory.mktemp("exported")
    load_embedder(Settings(index_dir=index))
    return index / "model-onnx"


def with_model(exported_model: Path, index_dir: Path) -> Path:
    """Put the session's model export into `index_dir`, as an earlier run would have left it; return the folder."""
    shutil.copytree(exported_model, Path(index_dir) / "model-onnx")
    return Path(index_dir)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Work inside tmp_path so no test touches the user's index or corpus."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOURCEBOOK_INDEX_DIR", str(tmp_path / "index"))
    return tmp_path


@pytest.fixture
def settings(tmp_path) -> Settings:
    # The abstention threshold is calibrated for the real reader; the fake one's scores are the
    # share of the question's words a sentence holds.
    return Settings(index_dir=tmp_path / "index", abstain_below=0.5)


@pytest.fixture
def embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def reader() -> FakeReader:
    return FakeReader()


@pytest.fixture
def make_service(settings, embedder, reader):
    """Open a service over the test index with the fake embedder and reader."""

    def make(**overrides) -> Sourcebook:
        # Built anew rather than copied, so overrides are validated like real settings.
        return Sourcebook(Settings(**{**settings.model_dump(), **overrides}), embedder=embedder, reader=reader)

    return make


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


@pytest.fixture
def client(service):
    """The HTTP API (no page) over the module's own `service` fixture."""
    with TestClient(create_app(service, with_page=False)) as client:
        yield client
