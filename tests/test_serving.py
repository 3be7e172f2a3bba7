"""What serving adds to the service: the API alone starts without the page's imports, and warms the index."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from retrieval.library import VECTORS_FILE
from tests.helpers import REPO, write_files
from ui.server import create_app

DOCS = {
    "a.txt": "Backups\nThe database is backed up every night at two o'clock.\n",
    "b.txt": "On call\nThe on-call engineer answers pages within fifteen minutes.\n",
}


# A fresh Python process (the only way to see what importing the API pulls in): slow by its cost.
@pytest.mark.slow
def test_the_api_alone_does_not_import_gradio():
    """Gradio takes seconds to import; a server without the chat page must not pay for it."""
    code = "import sys, ui.server; print('gradio' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)

    assert result.stdout.strip() == "False"


def test_a_started_server_reads_the_saved_index_into_memory(make_service, tmp_path):
    make_service().ingest(write_files(tmp_path / "docs", DOCS))
    service = make_service()  # reopened: the index is mapped from its file
    assert (service.library.directory / VECTORS_FILE).exists() and service.library.index.memory_mapped
    assert not service.library.index.wait_until_warm(timeout=0)

    with TestClient(create_app(service, with_page=False)) as client:
        assert client.get("/healthz").status_code == 200
        assert service.library.index.wait_until_warm(timeout=30)
