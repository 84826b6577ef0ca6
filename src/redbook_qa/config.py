"""One settings object for wiring, read from arguments or ``REDBOOK_QA_*`` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from redbook_qa.embedding.base import BUNDLED_MODEL
from redbook_qa.retrieval.fusion import DEFAULT_ALPHA, DEFAULT_FUSION, FusionMethod
from redbook_qa.retrieval.query import MAX_QUESTION_CHARS
from redbook_qa.retrieval.retriever import DEFAULT_SENTENCE_WEIGHT
from redbook_qa.stores.base import SentenceVectors
from redbook_qa.stores.faiss_index import IndexKind
from redbook_qa.text.chunking import DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP
from redbook_qa.text.corpus import MAX_CORPUS_CHARS
from redbook_qa.text.loaders.limits import (
    MAX_DOCUMENT_CHARS,
    MAX_DOCX_PART_BYTES,
    MAX_HTML_BYTES,
    MAX_PDF_PAGES,
    PARSE_MEMORY_MB,
    PARSE_SECONDS,
    ReadLimits,
)
from redbook_qa.text.tokens import DEFAULT_ENCODING

DEFAULT_K = 5
PROJECT_ROOT = Path(__file__).resolve().parents[2]

# What a request may cost the servers (redbook_qa.serving reads these from Settings). They
# are defined here, not beside the code they bound, because serving sits above this module.
MAX_REQUEST_BYTES = 1_000_000
"""Largest request body: a question is at most a few kilobytes, and the page sends its chat
history with each one (a long conversation is a few hundred kilobytes)."""
MAX_UPLOAD_REQUEST_BYTES = 200_000_000
"""Largest body of the page's upload route: a few documents of at most 50 MB each."""
MAX_SESSIONS = 1_000
"""Visitors whose chat state the page keeps (Gradio's ``state_session_capacity``); the
oldest is dropped for a new one."""
MAX_VOTES_PER_ANSWER = 3
"""Votes one answer takes (a change of mind or two); more change nothing."""
MAX_FEEDBACK_BYTES = 50_000_000
"""The feedback file stops growing here: some 5,000 votes on typical answers."""


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

    # Bounds on what untrusted files and requests may cost (README, "Reliability").
    max_pdf_pages: int = Field(default=MAX_PDF_PAGES, ge=1)
    max_document_chars: int = Field(default=MAX_DOCUMENT_CHARS, ge=1)
    max_corpus_chars: int = Field(default=MAX_CORPUS_CHARS, ge=1)
    max_docx_part_bytes: int = Field(default=MAX_DOCX_PART_BYTES, ge=1)
    max_html_bytes: int = Field(default=MAX_HTML_BYTES, ge=1)
    parse_memory_mb: int = Field(default=PARSE_MEMORY_MB, ge=16)
    parse_seconds: float = Field(default=PARSE_SECONDS, gt=0.0)
    max_question_chars: int = Field(default=MAX_QUESTION_CHARS, ge=1)
    max_request_bytes: int = Field(default=MAX_REQUEST_BYTES, ge=1_024)
    max_upload_request_bytes: int = Field(default=MAX_UPLOAD_REQUEST_BYTES, ge=1_024)
    # Names the servers answer to besides loopback (comma-separated in the environment);
    # "*" turns the Host and Origin checks off (see redbook_qa.serving.guard).
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    max_sessions: int = Field(default=MAX_SESSIONS, ge=1)
    max_votes_per_answer: int = Field(default=MAX_VOTES_PER_ANSWER, ge=0)
    max_feedback_bytes: int = Field(default=MAX_FEEDBACK_BYTES, ge=0)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        # REDBOOK_QA_ALLOWED_HOSTS=qa.example.com,10.0.0.5
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @property
    def read_limits(self) -> ReadLimits:
        """How far reading one corpus file or upload may go."""
        return ReadLimits(
            max_pages=self.max_pdf_pages,
            max_chars=self.max_document_chars,
            max_part_bytes=self.max_docx_part_bytes,
            max_html_bytes=self.max_html_bytes,
            memory_mb=self.parse_memory_mb,
            seconds=self.parse_seconds,
        )
