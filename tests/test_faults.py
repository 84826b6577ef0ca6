"""Faults: the indexer killed mid-build, index files damaged, two builders at once.

The indexer runs in a child process (``python -c`` over the package, hash embedder) and is
sent SIGKILL at seeded random moments: half anywhere in its run, half inside the save
itself (timed from a line the child prints when it starts saving). After every kill the
index on disk must load and answer exactly as a clean build of whichever corpus version
it holds; the next build must complete. Every index file is then truncated, emptied,
bit-flipped, replaced with garbage or deleted in turn: loading fails with an error naming
the file and the fix, and the facade rebuilds to the same answers as a clean build.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from redbook_qa.api import RedbookQA
from redbook_qa.config import Settings
from redbook_qa.errors import RedbookQAError
from redbook_qa.stores import folder as persist

from conftest import SEEDS, write

KILLS = 20
SEED = 20261123
QUESTIONS = (
    "Who makes Labubu?",
    "Why did American users join Xiaohongshu?",
    "Which zeppelin carried the extra articles?",
)
BUILD = textwrap.dedent(
    """
    import logging, sys
    import redbook_qa.api as api
    import redbook_qa.stores.location as location
    from redbook_qa.config import Settings

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    real_save = location.save_store

    def traced_save(store, root):
        print("saving", flush=True)  # the parent times a kill inside the save from here
        path = real_save(store, root)
        print("saved", flush=True)
        return path

    location.save_store = traced_save
    settings = Settings(embedding_model="hash-32")
    api.RedbookQA.from_dir(sys.argv[1], index_dir=sys.argv[2], settings=settings)
    print("done", flush=True)
    """
)


def _build(corpus: Path, index: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", BUILD, str(corpus), str(index)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
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
    """Both corpus versions, each with its fingerprint and answers from a clean build."""
    corpus = Corpus(tmp_path / "corpus", n_articles=12)
    reference = {}
    for version in (2, 1):
        corpus.switch(version)
        index = tmp_path / f"clean-{version}"
        RedbookQA.from_dir(corpus.folder, index_dir=index, settings=_settings(corpus.folder, index))
        qa = RedbookQA.load(index)
        reference[qa.store.manifest.corpus_fingerprint] = (version, _answers(qa))
    return corpus, reference


def test_sigkill_at_random_moments_never_loses_the_index(versions, tmp_path):
    corpus, reference = versions
    index = tmp_path / "index"
    started = time.perf_counter()
    first = _build(corpus.folder, index)  # version 1, timed to place the kills
    lines = [(line.strip(), time.perf_counter() - started) for line in first.stdout or []]
    assert first.wait(timeout=120) == 0, first.stderr.read() if first.stderr else ""
    times = dict(lines)
    total, save = times["done"], times["saved"] - times["saving"]
    rng = random.Random(SEED)
    outcomes = {
        "previous index live": 0,
        "new index live": 0,
        "half-written staging folder left": 0,
        "complete but unused generation left": 0,
    }
    live = 1
    for kill in range(KILLS):
        target = 2 if live == 1 else 1
        corpus.switch(target)
        staging_before = set(index.glob(".staging-*"))
        child = _build(corpus.folder, index)
        if kill % 2:  # inside the save: after "saving", within its measured length
            assert child.stdout is not None
            while (line := child.stdout.readline()) and line.strip() != "saving":
                pass
            time.sleep(rng.uniform(0, save * 1.5))
        else:
            time.sleep(rng.uniform(0.2 * total, 1.1 * total))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        outcomes["half-written staging folder left"] += bool(
            set(index.glob(".staging-*")) - staging_before
        )
        loaded = RedbookQA.load(index)  # never raises: some complete index is always live
        version, expected = reference[loaded.store.manifest.corpus_fingerprint]
        assert _answers(loaded) == expected, f"kill {kill}: answers differ from a clean build"
        outcomes["new index live" if version == target else "previous index live"] += 1
        outcomes["complete but unused generation left"] += len(list(index.glob("gen-*"))) > 1
        live = version
    corpus.switch(1 if live == 2 else 2)
    final = _build(corpus.folder, index)
    assert final.wait(timeout=120) == 0
    loaded = RedbookQA.load(index)
    assert reference[loaded.store.manifest.corpus_fingerprint][0] != live
    assert [p.name for p in index.iterdir() if p.name.startswith(".")] == [".lock"]
    assert len(list(index.glob("gen-*"))) == 1
    print(f"\n{KILLS} SIGKILLs: {outcomes}")  # shown with -s; the README quotes a run
    assert outcomes["previous index live"] + outcomes["new index live"] == KILLS


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


def test_two_processes_building_at_once_build_once_and_both_succeed(tmp_path):
    corpus = Corpus(tmp_path / "corpus", n_articles=12)
    index = tmp_path / "index"
    children = [_build(corpus.folder, index) for _ in range(2)]
    logs = []
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        logs.append(err)
    assert sum(log.count("building it") for log in logs) == 1, logs
    loaded = RedbookQA.load(index)
    clean = tmp_path / "clean"
    RedbookQA.from_dir(corpus.folder, index_dir=clean, settings=_settings(corpus.folder, clean))
    assert _answers(loaded) == _answers(RedbookQA.load(clean))


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


def test_a_second_writer_waits_for_the_lock_or_fails_clearly(tmp_path):
    corpus = Corpus(tmp_path / "corpus", n_articles=2)
    index = tmp_path / "index"
    with persist.write_lock(index):
        impatient = subprocess.run(
            [sys.executable, "-c", LOCK_ONCE, str(index)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert impatient.returncode == 3
        assert f"another process is building the index in {index}" in impatient.stderr
        assert "wait for it to finish" in impatient.stderr
        patient = _build(corpus.folder, index)
        time.sleep(2.0)
        assert patient.poll() is None, "the builder should wait while the lock is held"
        assert not (index / "CURRENT").exists()
    out, err = patient.communicate(timeout=120)
    assert patient.returncode == 0, err
    assert out.split() == ["saving", "saved", "done"]
    assert RedbookQA.load(index).store.manifest.documents
