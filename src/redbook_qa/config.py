"""One settings object for wiring, read from arguments or ``REDBOOK_QA_*`` variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from redbook_qa.embedding.base import BUNDLED_MODEL
from redbook_qa.retrieval.fusion import DEFAULT_ALPHA, DEFAULT_FUSION, FusionMethod
from redbook_qa.retrieval.retriever import DEFAULT_SENTENCE_WEIGHT
from redbook_qa.stores.base import SentenceVectors
from redbook_qa.stores.faiss_index import IndexKind
from redbook_qa.text.chunking import DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP
from redbook_qa.text.tokens import DEFAULT_ENCODING

DEFAULT_K = 5
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _default_dir(name: str) -> Path:
    # `seeds/` beside the working directory, else beside the checkout the package runs from.
    here = Path.cwd() / name
    return here if here.exists() or not (PROJECT_ROOT / name).exists() else PROJECT_ROOT / name


class Settings(BaseSettings):
    """Every tunable of the default pipeline.

    Each field can be set by keyword or by an environment variable named
    ``REDBOOK_QA_<FIELD>`` (for example ``REDBOOK_QA_INDEX_DIR=/tmp/idx``).
    """

    model_config = SettingsConfigDict(env_prefix="REDBOOK_QA_", frozen=True, extra="forbid")

    corpus_dir: Path = Field(default_factory=lambda: _default_dir("seeds"))
    index_dir: Path = Field(default_factory=lambda: _default_dir("embeddings"))
    # A PostgreSQL URL (postgresql://…) keeps the index in PostgreSQL + pgvector instead of
    # index_dir, searched there by every process that opens it (extra "pg"; see
    # redbook_qa.stores.postgres.store); "local" (or "local:DIR") starts the bundled PostgreSQL on
    # index_dir/postgres (or DIR). store_schema names the PostgreSQL schema, one per index.
    store: str | None = None
    store_schema: str = Field(default="redbook_qa", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    embedding_model: str = BUNDLED_MODEL
    device: str | None = None
    encoding: str = DEFAULT_ENCODING
    max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, ge=8)
    overlap: int = Field(default=DEFAULT_OVERLAP, ge=0)
    k: int = Field(default=DEFAULT_K, ge=1, le=100)
    index_kind: IndexKind = "auto"
    fusion: FusionMethod = DEFAULT_FUSION
    alpha: float = Field(default=DEFAULT_ALPHA, ge=0.0, le=1.0)
    sentence_weight: float = Field(default=DEFAULT_SENTENCE_WEIGHT, ge=0.0, le=1.0)
    # "pooled": one model pass per chunk, sentence vectors pooled from it (2.3x faster builds,
    # better SQuAD answers, lower seeds quote precision); "encoded": each sentence encoded
    # again with its title and heading (the default: see redbook_qa.stores.pooling).
    sentence_vectors: SentenceVectors = "encoded"
    # The least confidence (a probability) to answer with; None: the threshold calibrated with
    # the shipped weights (redbook_qa.answering.calibrated_min_support).
    min_support: float | None = Field(default=None, ge=0.0, le=1.0)
    aliases_file: Path | None = None
    show_progress: bool = False
    # A generative answerer over any OpenAI-compatible server; unset keeps answers extractive.
    llm_base_url: str | None = None
    llm_model: str = "default"
    llm_api_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("llm_api_key", "REDBOOK_QA_LLM_API_KEY", "OPENAI_API_KEY"),
    )
    llm_timeout: float = Field(default=60.0, gt=0.0)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    # Passage tokens in the prompt. The bundled 135M model answers better with less: on 18
    # seeds questions, 500 tokens gave 8 checked LLM answers (37 % of draft sentences
    # supported), 1200 gave 4 (25 %); `--local-llm` uses LOCAL_LLM_CONTEXT_TOKENS.
    llm_context_tokens: int = Field(default=1_200, ge=24)
