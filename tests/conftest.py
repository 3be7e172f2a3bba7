"""Fixtures: every test runs in its own temporary directory, with the index pointed there.

Helpers the test modules import are in tests/helpers.py, fakes in tests/fakes.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fastapi.testclient import TestClient

from app.service import Sourcebook
from retrieval.embedder import load_embedder
from retrieval.settings import Settings
from tests.fakes import FakeEmbedder, FakeReader
from ui.server import create_app


COSTLY_MARKS = ("integration", "browser", "slow")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that carries no costlier mark as fast: the tier `make test-unit` runs."""
    for item in items:
        if not any(item.get_closest_marker(mark) for mark in COSTLY_MARKS):
            item.add_marker(pytest.mark.fast)


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory) -> Path:
    """The default embedder's (models/embedder) ONNX export with its recipe (`model-onnx/`), made once for the session."""
    index = tmp_path_factory.mktemp("exported")
    load_embedder(Settings(index_dir=index))
    return index / "model-onnx"


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


@pytest.fixture
def client(service):
    """The HTTP API (no page) over the module's own `service` fixture."""
    with TestClient(create_app(service, with_page=False)) as client:
        yield client


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for a module's browser tests (tests/browser.py launches it)."""
    from playwright.sync_api import sync_playwright

    from tests.browser import launch

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()
