"""The model: sentence-transformers' ONNX export, and the same export run directly on ONNX Runtime."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from retrieval.embedder import (
    MODEL_CALLS,
    RECIPE_FILE,
    ExportRecipe,
    OnnxRuntimeEmbedder,
    SentenceTransformerEmbedder,
    bundled_model_path,
    load_embedder,
    model_identity,
)
from retrieval.settings import Settings
from tests.helpers import CORPUS, with_model

REPO = Path(__file__).resolve().parents[1]

TEXTS = [
    "Who founded Xiaohongshu, and when?",
    "RedNote",
    "",
    "Emoji 🎉, accents (café) and 小红书 in one line.",
    # Longer than the model reads: both must cut it at the same token.
    " ".join((CORPUS / "what-is-red-note.txt").read_text().split()[:400]),
    *[line for line in (CORPUS / "what-is-red-note.txt").read_text().splitlines() if len(line) > 40][:5],
]


@pytest.fixture(scope="module")
def both(tmp_path_factory, exported_model):
    """sentence-transformers on the session's export, and the direct runtime on that export."""
    index = with_model(exported_model, tmp_path_factory.mktemp("index"))
    settings = Settings(index_dir=index)
    exporter = SentenceTransformerEmbedder(name="tuned", model_path=settings.model_path, cache_dir=index / "model-onnx",
                                           backend="onnx")
    direct = load_embedder(settings)
    return exporter, direct, index


@pytest.mark.integration
def test_the_export_leaves_a_recipe_that_load_embedder_runs_directly(both):
    exporter, direct, index = both
    recipe = ExportRecipe.load(index / "model-onnx")

    assert isinstance(direct, OnnxRuntimeEmbedder)
    assert recipe is not None and (recipe.pooling, recipe.normalize) == ("mean", True)
    assert (direct.dim, direct.max_tokens) == (exporter.dim, exporter.max_tokens) == (384, 254)


@pytest.mark.integration
def test_the_direct_runtime_gives_sentence_transformers_vectors(both):
    exporter, direct, _ = both

    assert np.abs(direct.encode(TEXTS) - exporter.encode(TEXTS)).max() < 1e-5
    # One text at a time pads nothing: still the same vectors.
    assert np.abs(direct.encode(TEXTS[:1]) - exporter.encode(TEXTS[:1])).max() < 1e-5
    for got, expected in zip(direct.token_vectors(TEXTS), exporter.token_vectors(TEXTS), strict=True):
        assert got.spans == expected.spans
        assert got.vectors.shape == expected.vectors.shape
        assert np.abs(got.vectors - expected.vectors).max(initial=0.0) < 1e-4
    assert [direct.count_tokens(t) for t in TEXTS] == [exporter.count_tokens(t) for t in TEXTS]


class _CountingSession:
    """An ONNX Runtime session that counts its runs."""

    def __init__(self, session) -> None:
        self.session, self.runs = session, 0

    def run(self, *args, **kwargs):
        self.runs += 1
        return self.session.run(*args, **kwargs)


@pytest.mark.integration
def test_a_lone_query_runs_on_every_core_and_others_on_one(both, monkeypatch):
    exporter, direct, _ = both
    if direct._query_session is None:
        pytest.fail("the lone-query session needs two or more cores; this machine has one")
    fast, single = _CountingSession(direct._query_session), _CountingSession(direct.session)
    monkeypatch.setattr(direct, "_query_session", fast)
    monkeypatch.setattr(direct, "session", single)
    expected = exporter.encode(TEXTS[:1])

    alone = direct.encode(TEXTS[:1])
    assert (fast.runs, single.runs) == (1, 0)
    with direct._query_turn:  # another query holds the every-core session
        meanwhile = direct.encode(TEXTS[:1])
    assert (fast.runs, single.runs) == (1, 1)
    monkeypatch.setattr(direct, "_running", 1)  # a one-thread run is under way (a batch, another query)
    direct.encode(TEXTS[:1])
    assert (fast.runs, single.runs) == (1, 2)
    monkeypatch.setattr(direct, "_running", 0)
    direct.encode(TEXTS[:4])  # a batch never takes it
    assert fast.runs == 1

    assert np.abs(alone - expected).max() < 1e-5 and np.abs(meanwhile - expected).max() < 1e-5


@pytest.mark.integration
def test_a_second_start_runs_the_export_without_sentence_transformers(both):
    """Serving starts fast because nothing imports sentence-transformers or torch once the export exists."""
    _, _, index = both
    script = (
        "import sys; from retrieval.embedder import load_embedder; from retrieval.settings import Settings; "
        f"e = load_embedder(Settings(index_dir={str(index)!r})); e.encode(['warm']); "
        "print(type(e).__name__, 'sentence_transformers' in sys.modules, 'torch' in sys.modules)"
    )
    shown = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)

    assert shown.stdout.split() == ["OnnxRuntimeEmbedder", "False", "False"]


@pytest.mark.integration
@pytest.mark.parametrize("which", ["sentence-transformers", "direct"])
def test_the_model_serves_threads_at_once(both, which):
    """Requests run on threads: encoding, token vectors and counting overlap without errors or changed results."""
    embedder = both[0] if which == "sentence-transformers" else both[1]
    texts = TEXTS[-5:]
    expected = (embedder.encode(texts), embedder.token_vectors(texts), [embedder.count_tokens(t) for t in texts])
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(4):
                match (n + i) % 3:
                    case 0:
                        assert np.allclose(embedder.encode(texts), expected[0], atol=1e-5)
                    case 1:
                        got = embedder.token_vectors(texts)
                        assert [t.spans for t in got] == [t.spans for t in expected[1]]
                    case 2:
                        assert [embedder.count_tokens(t) for t in texts] == expected[2]
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []


@pytest.mark.integration
def test_sentence_transformers_runs_a_bounded_number_of_model_calls_at_once(both, monkeypatch):
    """Under many clients each model call holds its own activations: only so many run together."""
    exporter = both[0]
    inner = exporter.model.encode
    running, peak, lock = 0, 0, threading.Lock()

    def slow_encode(*args, **kwargs):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            time.sleep(0.05)
            return inner(*args, **kwargs)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(exporter.model, "encode", slow_encode)
    calls = [exporter.encode if n % 2 else exporter.token_vectors for n in range(3 * MODEL_CALLS)]
    threads = [threading.Thread(target=call, args=(["a short question"],)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert peak == max(MODEL_CALLS, len(os.sched_getaffinity(0)))


def _export(directory: Path, *, source: str, pooling: str = "mean") -> Path:
    """An export directory with a recipe; its graph file is never opened by the checks below."""
    (directory / "onnx").mkdir(parents=True)
    (directory / "onnx" / "model.onnx").write_bytes(b"not a graph")
    recipe = {"source": source, "max_seq_length": 256, "dim": 384, "pooling": pooling, "normalize": True}
    (directory / RECIPE_FILE).write_text(json.dumps(recipe))
    return directory


def test_an_export_of_another_model_is_not_run_directly(tmp_path):
    export = _export(tmp_path / "model-onnx", source=str(tmp_path / "some-other-model"))

    assert OnnxRuntimeEmbedder.from_export(export, source=tmp_path / "the-model", name="m") is None


def test_an_export_with_other_pooling_is_not_run_directly(tmp_path):
    (tmp_path / "the-model").mkdir()
    export = _export(tmp_path / "model-onnx", source=str((tmp_path / "the-model").resolve()), pooling="cls")

    assert OnnxRuntimeEmbedder.from_export(export, source=tmp_path / "the-model", name="m") is None


def test_an_export_without_a_readable_recipe_is_not_run_directly(tmp_path):
    export = _export(tmp_path / "model-onnx", source=str(tmp_path))
    (export / RECIPE_FILE).write_text("{not json")

    assert ExportRecipe.load(export) is None
    assert OnnxRuntimeEmbedder.from_export(export, source=tmp_path, name="m") is None


class _FakeExport:
    """Stands in for a SentenceTransformer built by a factory: remembers its path, saves a marker."""

    def __init__(self, path: str) -> None:
        self.path = path

    def save_pretrained(self, directory: str) -> None:
        (Path(directory) / "onnx").mkdir(parents=True)
        (Path(directory) / "onnx" / "model.onnx").write_text(f"exported from {self.path}")


def test_an_export_recorded_for_another_model_is_made_again_and_one_for_this_model_is_reused(tmp_path):
    model = tmp_path / "the-model"
    model.mkdir()
    cache = _export(tmp_path / "model-onnx", source=str(tmp_path / "some-other-model"))

    loaded = SentenceTransformerEmbedder._load_onnx(_FakeExport, model, cache)

    # Exported anew from this model, replacing the other model's export.
    assert loaded.path == str(model)
    assert (cache / "onnx" / "model.onnx").read_text() == f"exported from {model}"
    # Once the recipe names this model, the export is loaded from the cache as it is.
    ExportRecipe(str(model.resolve()), 256, 384, "mean", True).save(cache)
    assert SentenceTransformerEmbedder._load_onnx(_FakeExport, model, cache).path == str(cache)


def test_a_model_folder_of_ones_own_is_recorded_by_its_weights(tmp_path):
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    for folder, weights in ((mine, b"one"), (theirs, b"two")):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(weights)

    def identity(model_path: Path | None) -> str:
        return model_identity(Settings(index_dir=tmp_path / "index", model_path=model_path))

    # The bundled model keeps the name libraries were always built with, however it is named.
    assert identity(None) == identity(bundled_model_path()) == "sentence-transformers/all-MiniLM-L6-v2"
    # Another folder, or the same folder trained on, is another model: its library is refused (IndexMismatch).
    assert len({identity(None), identity(mine), identity(theirs)}) == 3
    # The same weights elsewhere are the same model (a moved checkout keeps its library).
    shutil.copytree(mine, tmp_path / "moved")
    assert identity(tmp_path / "moved") == identity(mine)
    before = identity(mine)
    (mine / "model.safetensors").write_bytes(b"one, trained on")
    assert identity(mine) != before
