"""Faults: the indexer killed mid-build, index files damaged, two builders at once.

The indexer runs in a child process (forked from a server that has imported the package, hash
embedder) and kills itself with SIGKILL just before its k-th write to the disk (each file
opened for writing, folder made, file renamed or removed, as Python's audit hooks report
them), for every k of a rebuild in turn: the crash lands on the same write on every CPU. After
every kill the index on disk must load and answer exactly as a clean build of whichever corpus
version it holds, and the next build must complete and leave nothing behind. Every index file
is then truncated, emptied, bit-flipped, replaced with garbage or deleted in turn: loading
fails with an error naming the file and the fix, and the facade rebuilds to the same answers
as a clean build.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from redbook_qa.api import RedbookQA
from redbook_qa.config import Settings
from redbook_qa.errors import RedbookQAError
from redbook_qa.stores import folder as persist

from conftest import PATIENCE, SEEDS, write

QUESTIONS = (
    "Who makes Labubu?",
    "Why did American users join Xiaohongshu?",
    "Which zeppelin carried the extra articles?",
)
# Reads commands "KILL_AT CORPUS INDEX" on stdin; for each, forks a child that builds the index
# and SIGKILLs itself just before its KILL_AT-th write (0: never), and answers "writes STATUS"
# (the writes the child reached, its wait status as Popen.returncode gives it).
BUILDS = textwrap.dedent(
    """
    import os, signal, sys, tempfile
    import redbook_qa.api as api
    from redbook_qa.config import Settings

    CHANGES = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree",
               "tempfile.mkdtemp", "tempfile.mkstemp"}
    WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def is_write(event, args):
        if event == "open":
            _, mode, flags = args
            return any(c in mode for c in "wax+") if mode else bool(flags & WRITING)
        return event in CHANGES

    def build(kill_at, corpus, index, report):
        writes = 0

        def hook(event, args):
            nonlocal writes
            if is_write(event, args):
                writes += 1
                os.write(report, b"%d\\n" % writes)
                if writes == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)

        if report is not None:
            sys.addaudithook(hook)
        settings = Settings(embedding_model="hash-32")
        api.RedbookQA.from_dir(corpus, index_dir=index, settings=settings)

    for n, line in enumerate(sys.stdin):
        kill_at, corpus, index = line.split()
        if n == 0:  # load what builds load lazily (tokeniser, ...) once, before any fork
            with tempfile.TemporaryDirectory() as warm:
                build(0, corpus, warm, None)
        read, report = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                build(int(kill_at), corpus, index, report)
            except BaseException as err:
                print(f"build failed: {err!r}", file=sys.stderr, flush=True)
                os._exit(1)
            os._exit(0)
        os.close(report)
        with os.fdopen(read) as lines:
            writes = sum(1 for _ in lines)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(writes, code, flush=True)
    """
)


class Builds:
    """The build server above, as a context manager: ``run`` one build, killed or not."""

    def __enter__(self) -> Builds:
        # One thread per library: a child forked from a process whose OpenMP or BLAS pool has
        # run would wait on threads that fork did not copy.
        single = dict.fromkeys(["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"], "1")
        self.process = subprocess.Popen(
            [sys.executable, "-c", BUILDS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ | single,
        )
        return self

    def run(self, corpus: Path, index: Path, *, kill_at: int = 0) -> tuple[int, int]:
        """Build; return the writes the builder reached and its exit status (-9: killed)."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"{kill_at} {corpus} {index}\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline().split()
        assert len(reply) == 2, f"the build server exited with {self.process.poll()}"
        writes, status = map(int, reply)
        return writes, status

    def __exit__(self, *exc: object) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=PATIENCE)


def _build(corpus: Path, index: Path) -> subprocess.Popen[str]:
    """A plain build in a process of its own that prints "saving", "saved", "done"."""
    return subprocess.Popen(
        [sys.executable, "-c", TRACED_BUILD, str(corpus), str(index)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


TRACED_BUILD = textwrap.dedent(
    """
    import logging, sys
    import redbook_qa.api as api
    import redbook_qa.stores.location as location
    from redbook_qa.config import Settings

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    real_save = location.save_store

    def traced_save(store, root):
        print("saving", flush=True)
        path = real_save(store, root)
        print("saved", flush=True)
        return path

    location.save_store = traced_save
    settings = Settings(embedding_model="hash-32")
    api.RedbookQA.from_dir(sys.argv[1], index_dir=sys.argv[2], settings=settings)
    print("done", flush=True)
    """
)


def _settings(corpus: Path, index: Path) -> Settings:
    return Settings(corpus_dir=corpus, index_dir=index, embedding_model="hash-32")


def _answers(qa: RedbookQA) -> list[object]:
    return [(qa.ask(q), qa.retrieve(q, k=5)) for q in QUESTIONS]


class Corpus:
    """A corpus folder that switches between two versions: v2 adds a few articles."""

    def __init__(self, folder: Path, n_articles: int) -> None:
        self.folder = folder
        seeds = sorted(SEEDS.glob("*.txt"))
        for i in range(n_articles):
            text = seeds[i % len(seeds)].read_text(encoding="utf-8")
            write(folder, f"article-{i:02d}.txt", f"Copy {i}\n{text}")
        self.extra = {
            f"extra-{i}.txt": f"Extra {i}\nThe zeppelin number {i} carried the extra articles."
            f" It flew over Shanghai in {1900 + i}.\n"
            for i in range(3)
        }

    def switch(self, version: int) -> None:
        for name, text in self.extra.items():
            if version == 2:
                write(self.folder, name, text)
            else:
                (self.folder / name).unlink(missing_ok=True)


@pytest.fixture
def versions(tmp_path):
    """Both corpus versions, each with its fingerprint, answers and clean index."""
    corpus = Corpus(tmp_path / "corpus", n_articles=4)
    reference, clean = {}, {}
    for version in (2, 1):
        corpus.switch(version)
        clean[version] = index = tmp_path / f"clean-{version}"
        RedbookQA.from_dir(corpus.folder, index_dir=index, settings=_settings(corpus.folder, index))
        qa = RedbookQA.load(index)
        reference[qa.store.manifest.corpus_fingerprint] = (version, _answers(qa))
    return corpus, reference, clean


@pytest.mark.faults
def test_sigkill_at_every_write_of_a_rebuild_never_loses_the_index(versions, tmp_path):
    corpus, reference, clean = versions
    corpus.switch(2)  # the v1 index is live; each build below rebuilds it to v2
    outcomes = {"previous index live": 0, "new index live": 0, "leftovers removed": 0}
    rebuilt = reference[RedbookQA.load(clean[2]).store.manifest.corpus_fingerprint][1]
    with Builds() as builds:
        probe = tmp_path / "probe"
        shutil.copytree(clean[1], probe)
        writes, status = builds.run(corpus.folder, probe)
        assert status == 0, f"a rebuild that nobody kills exited with {status}"
        assert writes >= 20, f"expected a rebuild to make 20+ writes, it made {writes}"
        for kill_at in range(1, writes + 1):
            index = tmp_path / f"killed-at-{kill_at}"
            shutil.copytree(clean[1], index)
            reached, status = builds.run(corpus.folder, index, kill_at=kill_at)
            where = f"killed at write {kill_at} of {writes}"
            assert (reached, status) == (kill_at, -signal.SIGKILL), (
                f"{where}: expected the builder killed there, saw it reach write {reached} "
                f"and exit with {status}"
            )
            loaded = RedbookQA.load(index)  # never raises: some complete index is always live
            version, expected = reference[loaded.store.manifest.corpus_fingerprint]
            assert _answers(loaded) == expected, f"{where}: answers differ from a clean build"
            outcomes["new index live" if version == 2 else "previous index live"] += 1
            outcomes["leftovers removed"] += len(list(index.iterdir())) > 3
            _, status = builds.run(corpus.folder, index)
            assert status == 0, f"{where}: the next build exited with {status}"
            left = sorted(p.name for p in index.iterdir())
            assert left == [".lock", "CURRENT", persist.live_generation(index).name], (
                f"{where}: the next build left {left}"
            )
            assert _answers(RedbookQA.load(index)) == rebuilt, (
                f"{where}: the next build does not answer as a clean build of v2"
            )
    print(f"\nSIGKILL before each of {writes} writes: {outcomes}")  # shown with -s
    assert outcomes["previous index live"]
    assert outcomes["new index live"]


# Damaged files ---------------------------------------------------------------------------

FILES = [
    "CURRENT",
    "manifest.json",
    "checksums.json",
    "chunks.jsonl",
    "sentences.jsonl",
    "hashes.json",
    "chunk_sentences.npy",
    "chunk_sentence_bounds.npy",
    "chunk_vectors.npy",
    "sentence_vectors.npy",
    "index.faiss",
    "bm25/params.index.json",
    "bm25/vocab.index.json",
    "bm25/data.csc.index.npy",
    "bm25/indices.csc.index.npy",
    "bm25/indptr.csc.index.npy",
]


def _damage(path: Path, mode: str) -> None:
    data = path.read_bytes()
    if mode == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif mode == "emptied":
        path.write_bytes(b"")
    elif mode == "bit-flipped":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :])
    elif mode == "garbage":
        path.write_bytes(b"\xff\xfe\x00[]{}" * 8)
    elif mode == "json-of-another-shape":
        path.write_bytes(b"[1, 2, 3]")
    elif mode == "deleted":
        path.unlink()


@pytest.fixture(scope="module")
def clean_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    corpus = root / "corpus"
    write(corpus, "cats.txt", "Cats\nCats sleep most of the day. They hunt mice at night.\n")
    write(corpus, "dogs.txt", "Dogs\nDogs bark at the mail carrier. They love long walks.\n")
    qa = RedbookQA.from_dir(corpus, index_dir=root / "index", settings=_settings(corpus, root))
    return corpus, root / "index", _answers(qa)


def test_the_damage_list_covers_every_file_of_an_index(clean_index):
    _, index, _ = clean_index
    folder = persist.live_generation(index)
    written = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert written | {"CURRENT"} == set(FILES)


MODES = ["truncated", "emptied", "bit-flipped", "garbage", "json-of-another-shape", "deleted"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", FILES)
def test_a_damaged_file_is_named_with_the_fix_and_the_facade_rebuilds(
    clean_index, tmp_path, name, mode
):
    corpus, clean, expected = clean_index
    index = tmp_path / "index"
    shutil.copytree(clean, index)
    target = index / name if name == "CURRENT" else persist.live_generation(index) / name
    _damage(target, mode)
    with pytest.raises(RedbookQAError) as error:
        RedbookQA.load(index)
    message = str(error.value)
    if (name, mode) == ("CURRENT", "deleted"):
        assert f"no index in {index}" in message
    else:
        assert f"{Path(name).name}" in message
    assert "redbook-qa index" in message
    rebuilt = RedbookQA.from_dir(corpus, index_dir=index, settings=_settings(corpus, index))
    assert _answers(rebuilt) == expected
    assert _answers(RedbookQA.load(index)) == expected


def test_a_valid_index_of_another_corpus_is_never_used_to_answer(clean_index, tmp_path):
    corpus, clean, expected = clean_index
    other_corpus = tmp_path / "other"
    write(other_corpus, "birds.txt", "Birds\nBirds sing at dawn. Mice fear owls at night.\n")
    other = tmp_path / "other-index"
    RedbookQA.from_dir(other_corpus, index_dir=other, settings=_settings(other_corpus, other))
    index = tmp_path / "index"
    shutil.copytree(clean, index)
    foreign = persist.live_generation(other)
    shutil.copytree(foreign, index / foreign.name)
    (index / "CURRENT").write_text(foreign.name + "\n", encoding="utf-8")
    # Loaded on its own it is the other corpus's index, and says so in its manifest...
    assert RedbookQA.load(index).store.manifest.documents.keys() == {"birds.txt"}
    # ...and opened over this corpus it is seen to be stale and rebuilt.
    qa = RedbookQA.from_dir(corpus, index_dir=index, settings=_settings(corpus, index))
    assert _answers(qa) == expected


# Two writers -----------------------------------------------------------------------------


@pytest.mark.faults
def test_two_processes_building_at_once_build_once_and_both_succeed(tmp_path):
    corpus = Corpus(tmp_path / "corpus", n_articles=12)
    index = tmp_path / "index"
    with persist.write_lock(index):  # both builders get as far as the lock, then wait there
        children = [_build(corpus.folder, index) for _ in range(2)]
        logs = [_until_waiting(child) for child in children]
    for child, log in zip(children, logs, strict=True):
        _, err = child.communicate(timeout=PATIENCE)
        assert child.returncode == 0, err
        log.append(err)
    assert sum("building it" in "".join(log) for log in logs) == 1, logs
    loaded = RedbookQA.load(index)
    clean = tmp_path / "clean"
    RedbookQA.from_dir(corpus.folder, index_dir=clean, settings=_settings(corpus.folder, clean))
    assert _answers(loaded) == _answers(RedbookQA.load(clean))


def _until_waiting(builder: subprocess.Popen[str]) -> list[str]:
    """Read the builder's log up to the line saying it waits for the lock; return the lines."""
    assert builder.stderr is not None
    said = []
    while line := builder.stderr.readline():
        said.append(line)
        if "waiting for it" in line:
            return said
    raise AssertionError(f"waited for the builder to wait for the lock; it exited saying {said}")


LOCK_ONCE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from redbook_qa.errors import IndexLockedError
    from redbook_qa.stores.folder import write_lock

    try:
        with write_lock(Path(sys.argv[1]), wait=False):
            pass
    except IndexLockedError as err:
        print(err, file=sys.stderr)
        sys.exit(3)
    """
)


@pytest.mark.faults
def test_a_second_writer_waits_for_the_lock_or_fails_clearly(tmp_path):
    corpus = Corpus(tmp_path / "corpus", n_articles=2)
    index = tmp_path / "index"
    with persist.write_lock(index):
        impatient = subprocess.run(
            [sys.executable, "-c", LOCK_ONCE, str(index)],
            capture_output=True,
            text=True,
            timeout=PATIENCE,
        )
        assert impatient.returncode == 3
        assert f"another process is building the index in {index}" in impatient.stderr
        assert "wait for it to finish" in impatient.stderr
        patient = _build(corpus.folder, index)
        _until_waiting(patient)
        assert patient.poll() is None, "the builder should wait while the lock is held"
        assert not (index / "CURRENT").exists()
    out, err = patient.communicate(timeout=PATIENCE)
    assert patient.returncode == 0, err
    assert out.split() == ["saving", "saved", "done"]
    assert RedbookQA.load(index).store.manifest.documents
