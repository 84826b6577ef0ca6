from __future__ import annotations

import json
import shutil
import socket
import sys

import numpy as np
import pytest

from redbook_qa.api import RedbookQA
from redbook_qa.config import Settings
from redbook_qa.errors import ClusterError
from redbook_qa.serving.cli import main

from conftest import SEEDS, write

pytest.importorskip("ray", reason='needs Ray: pip install "redbook_qa[scale]"')

from redbook_qa.embedding.ray import RayEmbedder

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ray_embedder():
    """One local Ray cluster for the module; 2 workers and small batches, so rows interleave."""
    embedder = RayEmbedder(workers=2, batch_size=8)
    embedder.connect()
    yield embedder
    embedder.close()


@pytest.fixture(scope="module")
def ray_seeds_index(ray_embedder, tmp_path_factory):
    """The seeds corpus indexed with its passages embedded on the cluster; its index folder."""
    corpus = tmp_path_factory.mktemp("ray-corpus")
    for path in SEEDS.iterdir():
        shutil.copy(path, corpus / path.name)
    index = tmp_path_factory.mktemp("ray-index")
    settings = Settings(corpus_dir=corpus, index_dir=index)
    RedbookQA.from_dir(corpus, index_dir=index, settings=settings, embedder=ray_embedder)
    return index


@pytest.fixture
def small_corpus(tmp_path, monkeypatch):
    monkeypatch.delenv("REDBOOK_QA_EMBEDDING_MODEL", raising=False)  # the real model
    corpus = tmp_path / "corpus"
    write(corpus, "pets.txt", "Pets\nCats sleep most of the day. Dogs bark at the mail carrier.\n")
    write(corpus, "tea.txt", "Tea\nGreen tea is steamed or pan-fired soon after picking.\n")
    return corpus, tmp_path / "index"


def test_an_index_built_on_two_workers_holds_the_plain_vectors_in_corpus_order(
    ray_seeds_index, embedder, seeds_qa
):
    ray_qa = RedbookQA.load(ray_seeds_index, embedder=embedder)  # opens with the plain model
    built, plain = ray_qa.store, seeds_qa.store
    assert built.manifest.embedder == plain.manifest.embedder
    assert [c.id for c in built.chunks] == [c.id for c in plain.chunks]
    assert len(built.chunks) > 2 * 8  # more batches than workers: order had to be restored
    for ours, theirs in [
        (built.chunk_vectors, plain.chunk_vectors),
        (built.sentence_vectors, plain.sentence_vectors),
    ]:
        assert ours.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_the_ray_index_answers_with_the_same_top_passages(ray_seeds_index, embedder, seeds_qa):
    question = "Why did American users move from TikTok to Xiaohongshu?"
    ray_qa = RedbookQA.load(ray_seeds_index, embedder=embedder)
    ours = [p.chunk_id for p in ray_qa.retrieve(question, k=5)]
    assert ours == [p.chunk_id for p in seeds_qa.retrieve(question, k=5)]
    assert ray_qa.ask(question).citations


def test_a_local_cluster_listens_on_loopback_only(ray_embedder, ray_seeds_index):
    # ray_seeds_index has embedded on the cluster, so its workers and actors are up too.
    psutil = pytest.importorskip("psutil")
    import ray

    assert ray.util.get_node_ip_address() == "127.0.0.1"
    listening = []
    for process in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            name, sockets = process.name(), process.net_connections(kind="inet")
        except psutil.Error:  # exited meanwhile
            continue
        listening += [(name, s.laddr) for s in sockets if s.status == psutil.CONN_LISTEN]
    names = {name for name, _ in listening}
    assert {"gcs_server", "raylet"} <= names  # the cluster's own servers were found
    exposed = [(n, a) for n, a in listening if a.ip not in {"127.0.0.1", "::1", "::ffff:127.0.0.1"}]
    assert exposed == []
    assert 8265 not in {a.port for _, a in listening}  # no dashboard


def test_index_with_ray_builds_an_index_that_ask_then_uses(ray_embedder, small_corpus, capsys):
    corpus, index = small_corpus
    args = ["index", str(corpus), "--index-dir", str(index), "--ray", "--ray-workers", "1"]
    assert main(args) == 0
    assert "index of 2 documents" in capsys.readouterr().out
    question = "How is green tea processed after picking?"
    assert (
        main(["ask", question, "--json", "--corpus", str(corpus), "--index-dir", str(index)]) == 0
    )
    answer = json.loads(capsys.readouterr().out)
    assert answer["passages"][0]["source"] == "tea.txt"
    assert {c["source"] for c in answer["citations"]} == {"tea.txt"}


@pytest.mark.faults
def test_an_unreachable_cluster_fails_in_seconds_and_says_what_to_do(
    small_corpus, capsys, monkeypatch
):
    corpus, index = small_corpus
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    ray = pytest.importorskip("ray")
    joined = []  # ray.init retries an address where nothing listens for minutes
    monkeypatch.setattr(ray, "init", lambda *args, **kwargs: joined.append(kwargs))
    assert main(["index", str(corpus), "--index-dir", str(index), "--ray-address", address]) == 2
    assert joined == [], "refused only after asking Ray to join the cluster"
    err = capsys.readouterr().err
    assert err.startswith("redbook-qa: error: cannot reach a Ray cluster")  # before any model
    assert address in err
    assert "ray start --head" in err
    assert not index.exists() or not any(index.glob("gen-*"))


def test_more_workers_than_the_cluster_can_hold_is_refused_with_the_limit(ray_embedder):
    import ray

    cpus = int(ray.cluster_resources()["CPU"])
    too_many = RayEmbedder(workers=cpus + 1)
    with pytest.raises(ClusterError, match=f"the cluster has {cpus}.*--ray-workers {cpus}"):
        too_many.embed_documents(["one passage"])


def test_ray_workers_without_a_cluster_flag_is_refused(small_corpus, capsys):
    corpus, index = small_corpus
    assert main(["index", str(corpus), "--index-dir", str(index), "--ray-workers", "2"]) == 2
    assert "--ray-workers needs --ray" in capsys.readouterr().err


def test_without_ray_installed_the_error_names_the_extra(small_corpus, capsys, monkeypatch):
    corpus, index = small_corpus
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if missing
    assert main(["index", str(corpus), "--index-dir", str(index), "--ray"]) == 2
    assert 'pip install "redbook_qa[scale]"' in capsys.readouterr().err
