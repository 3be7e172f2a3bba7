"""Fuzz the HTTP API against its own OpenAPI schema: no 5xx, and responses match the schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.service import Sourcebook
from retrieval.settings import Settings
from tests.fakes import FakeEmbedder
from tests.helpers import write_files
from ui.server import create_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    service = Sourcebook(
        Settings(index_dir=root / "index", corpus_dir=root / "corpus", max_file_bytes=5000), embedder=FakeEmbedder()
    )
    service.ingest(
        write_files(root / "corpus", {"a.txt": "Alpha\nThe alpha team ships on Tuesdays.\n",
                                      "b.md": "# Beta\n\nBeta reviews happen every second Friday.\n"})
    )
    return create_app(service, with_page=False)


def test_no_server_errors_and_responses_match_the_schema(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8

    for operation in operations:

        # The positive-data check (a schema-valid request must be accepted) is off: a schema
        # cannot say which file types are readable (an unsupported upload is rightly 415), and
        # regex dialects disagree on what counts as white space or a control character, which
        # the service refuses with a 400 or 422 that is documented and checked below.
        excluded = [positive_data_acceptance]

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case):
            # call_and_validate fails on any 5xx and on a response that does not match the schema.
            case.call_and_validate(excluded_checks=excluded)

        check()
