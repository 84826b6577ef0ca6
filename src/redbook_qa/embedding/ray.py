"""Embedding a corpus on a Ray cluster: one model per worker, vectors back in corpus order.

:class:`RayEmbedder` is an :class:`~redbook_qa.embedding.Embedder`: passages go through Ray
Data (``map_batches`` over a fixed pool of workers, each loading the model once, on a GPU
when the cluster has them), while questions, token counts and the model's name and dimension
come from the same model in this process. One-pass builds run there too
(:meth:`RayEmbedder.embed_spans`: each chunk once, its sentences pooled on the worker), so an
index built with it is the index the plain embedder builds, and the ordinary query path reads
it.

Ray is imported when a ``RayEmbedder`` is made, never by ``import redbook_qa``
(``pip install "redbook_qa[scale]"``). Every node of a remote cluster needs ``redbook_qa``
with the same model installed.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from types import ModuleType, TracebackType
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from redbook_qa.embedding.base import BUNDLED_MODEL, DEFAULT_BATCH_SIZE, Span, Tokenized, Vectors
from redbook_qa.embedding.transformer import SentenceTransformerEmbedder
from redbook_qa.errors import ClusterError

logger = logging.getLogger(__name__)

DEFAULT_CPU_WORKERS = 2
# Workers load models from local files only; Hugging Face must not try the network.
WORKER_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
_CONNECT_TIMEOUT_S = 5.0
LOOPBACK = "127.0.0.1"
# Ray's own switch for single-machine clusters (its default on macOS and Windows).
_SINGLE_MACHINE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_INSTALL_HINT = 'Ray is not installed: `pip install "redbook_qa[scale]"` to embed on a cluster'
Batch = dict[str, npt.NDArray[Any]]


class RayEmbedder:
    """Embed passages on a Ray cluster with one copy of the model per worker.

    The cluster is joined or started on the first :meth:`embed_documents` (or
    :meth:`connect`). Use the embedder as a context manager, or call :meth:`close`, so that a
    local cluster it started is shut down; a cluster it only joined is left running.

    Args:
        model: The sentence-transformers model every worker loads (as
            :class:`~redbook_qa.embedding.SentenceTransformerEmbedder` does).
        address: ``None`` to start a local cluster (or use the one this process already
            started); ``"auto"``, ``"host:port"`` or ``"ray://host:port"`` for a running one.
        workers: Model replicas; ``None`` means one per GPU, or 2 on a cluster without GPUs.
        device: Device of the model in this process, which embeds questions.
        batch_size: Passages a worker embeds per call.

    Raises:
        ImportError: Ray is not installed (the message gives the install command).
        ClusterError: Nothing listens at ``address``.

    Example:
        >>> with RayEmbedder(workers=2) as embedder:  # doctest: +SKIP
        ...     qa = RedbookQA.from_dir("seeds", index_dir="embeddings", embedder=embedder)
    """

    def __init__(
        self,
        model: str = BUNDLED_MODEL,
        *,
        address: str | None = None,
        workers: int | None = None,
        device: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        # Fail now, not after chunking a corpus: without Ray, or with nothing at the address.
        self._ray = _import_ray()
        if address is not None and address != "auto":
            _check_reachable(address)
        self._local = SentenceTransformerEmbedder(model, device=device, batch_size=batch_size)
        self._address = address
        self._workers = workers
        self._batch_size = batch_size
        self._owns_cluster = False
        self.startup_seconds = 0.0
        """Seconds the last :meth:`connect` spent starting or joining the cluster."""

    @property
    def name(self) -> str:
        """Return the model name, the same as the plain embedder's."""
        return self._local.name

    @property
    def dimension(self) -> int:
        """Return the model's output dimension."""
        return self._local.dimension

    @property
    def max_tokens(self) -> int:
        """Return how many word pieces the model reads before it truncates."""
        return self._local.max_tokens

    def count_tokens(self, text: str) -> int:
        """Count the model's word pieces, in this process."""
        return self._local.count_tokens(text)

    def embed_query(self, text: str) -> Vectors:
        """Embed one question in this process: a query is too small to ship to a cluster."""
        return self._local.embed_query(text)

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> Vectors:
        """Embed passages on the cluster and return them in the order given.

        Raises:
            ClusterError: The cluster cannot be reached or started, or is too small for the
                workers asked for.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        items = [{"row": i, "text": t} for i, t in enumerate(texts)]
        for batch in self._map(items, _EmbedBatches, show_progress):
            out[batch["row"]] = batch["vector"]
        return out

    def tokenize(self, texts: Sequence[str]) -> Tokenized:
        """Tokenise in this process, for the build's truncation check."""
        return self._local.tokenize(texts)

    def embed_spans(
        self,
        tokenized: Tokenized,
        spans: Sequence[Sequence[Span]],
        *,
        show_progress: bool = False,
    ) -> tuple[Vectors, list[Vectors]]:
        """One forward pass per passage on the cluster, with its sentences pooled there.

        Workers tokenise their own batch again: shipping the text is cheaper than its ids
        and offsets, and tokenising is a small share of a forward pass. Spans and pooled
        vectors travel as raw bytes, so rows with any number of sentences fit one column.

        Raises:
            ClusterError: As :meth:`embed_documents`.
        """
        n, dim = len(tokenized.texts), self.dimension
        vectors = np.zeros((n, dim), dtype=np.float32)
        pooled = [np.zeros((len(s), dim), dtype=np.float32) for s in spans]
        if not n:
            return vectors, pooled
        items = [
            {"row": i, "text": t, "spans": np.asarray(s, dtype=np.int64).tobytes()}
            for i, (t, s) in enumerate(zip(tokenized.texts, spans, strict=True))
        ]
        for batch in self._map(items, _SpanBatches, show_progress):
            vectors[batch["row"]] = batch["vector"]
            for row, raw in zip(batch["row"], batch["pooled"], strict=True):
                pooled[int(row)] = np.frombuffer(raw, dtype=np.float32).reshape(-1, dim).copy()
        return vectors, pooled

    def _map(
        self, items: list[dict[str, Any]], worker: type, show_progress: bool
    ) -> Iterator[Batch]:
        """Run ``worker`` over ``items`` on a fixed pool of actors; batches in any order."""
        self.connect()
        ray = self._ray
        workers, resources = _worker_plan(
            ray.cluster_resources(), _largest_node(ray), self._workers
        )
        workers = min(workers, len(items))  # a worker without a text would only load the model
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = context.print_on_execution_start = show_progress
        started = time.perf_counter()
        batches = ray.data.from_items(items).map_batches(
            worker,
            fn_constructor_args=(self.name, self._batch_size),
            batch_size=self._batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            **resources,
        )
        seen = np.zeros(len(items), dtype=bool)
        for batch in batches.iter_batches(batch_format="numpy", batch_size=None):
            seen[batch["row"]] = True
            yield batch
        if not seen.all():
            raise ClusterError(f"the cluster returned {int(seen.sum())} of {len(items)} rows")
        logger.info(
            "embedded %d texts on %d Ray workers in %.1f s",
            len(items),
            workers,
            time.perf_counter() - started,
        )

    def connect(self) -> None:
        """Join the cluster at ``address``, or start a local one.

        A process already connected to Ray (by an earlier embedder or its own ``ray.init``)
        keeps that connection, but an address given must still be reachable.

        Raises:
            ClusterError: Nothing answers at ``address``, or the local cluster cannot start.
        """
        ray = self._ray
        address = self._address
        if address is not None and address != "auto":
            _check_reachable(address)
        if ray.is_initialized():
            return
        started = time.perf_counter()
        # A local cluster gets no dashboard and listens on loopback only; a running one keeps
        # whatever it was started with.
        local: dict[str, Any] = (
            {"include_dashboard": False, "_node_ip_address": LOOPBACK} if address is None else {}
        )
        try:
            with _loopback_only(ray) if address is None else nullcontext():
                ray.init(
                    address=address,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                    runtime_env={"env_vars": WORKER_ENV},
                    **local,
                )
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ClusterError(_unreachable(address, err)) from err
        self._owns_cluster = address is None
        self.startup_seconds = time.perf_counter() - started
        logger.info(
            "%s Ray cluster in %.1f s: %s",
            "started a local" if self._owns_cluster else "joined the",
            self.startup_seconds,
            ray.cluster_resources(),
        )

    def close(self) -> None:
        """Shut down the local cluster if this embedder started it; leave others running."""
        if self._owns_cluster and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns_cluster = False

    def __enter__(self) -> RayEmbedder:
        return self  # the cluster starts on first use: a fresh index never needs it

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class _EmbedBatches:
    """The Ray Data worker: loads the model once, then embeds each batch it is handed."""

    def __init__(self, model: str, batch_size: int) -> None:
        self._embedder = SentenceTransformerEmbedder(model, batch_size=batch_size)
        _ = self._embedder.dimension  # load when the worker starts, not in its first batch

    def __call__(self, batch: Batch) -> Batch:
        texts = [str(text) for text in batch["text"]]
        return {"row": batch["row"], "vector": self._embedder.embed_documents(texts)}


class _SpanBatches(_EmbedBatches):
    """The Ray Data worker of one-pass builds: passage vectors and pooled sentence vectors."""

    def __call__(self, batch: Batch) -> Batch:
        texts = [str(text) for text in batch["text"]]
        spans = [
            [(int(a), int(b)) for a, b in np.frombuffer(raw, dtype=np.int64).reshape(-1, 2)]
            for raw in batch["spans"]
        ]
        vectors, pooled = self._embedder.embed_spans(self._embedder.tokenize(texts), spans)
        raw = np.empty(len(pooled), dtype=object)
        raw[:] = [p.astype(np.float32).tobytes() for p in pooled]
        return {"row": batch["row"], "vector": vectors, "pooled": raw}


@contextmanager
def _loopback_only(ray: ModuleType) -> Iterator[None]:
    """Start a local cluster whose processes all listen on 127.0.0.1 only.

    Given ``_node_ip_address="127.0.0.1"``, Ray swaps in the machine's external address, and
    its GCS, raylets and workers then listen on every interface. With its single-machine
    switch off it keeps loopback: the child processes read the variable, and this process
    the constant Ray derived from it at import (so the switch works after ``import ray``).
    ``tests/test_cluster.py`` checks every listening socket of the cluster.
    """
    constants = ray._private.ray_constants
    saved_env, saved_flag = os.environ.get(_SINGLE_MACHINE), constants.ENABLE_RAY_CLUSTER
    os.environ[_SINGLE_MACHINE] = "0"
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(_SINGLE_MACHINE, None)
        else:
            os.environ[_SINGLE_MACHINE] = saved_env


def _import_ray() -> ModuleType:
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise ImportError(_INSTALL_HINT) from err
    return ray


def _worker_plan(
    cluster: dict[str, float], largest_node: dict[str, float], workers: int | None
) -> tuple[int, dict[str, float]]:
    """Return how many workers to run and what each reserves: a GPU, else a share of CPUs."""
    gpus, cpus = int(cluster.get("GPU", 0)), int(cluster.get("CPU", 0))
    if gpus:
        count = workers or gpus
        if count > gpus:
            raise ClusterError(
                f"{count} workers need one GPU each, the cluster has {gpus}; "
                f"ask for at most {gpus} workers (--ray-workers {gpus})"
            )
        return count, {"num_gpus": 1.0}
    count = workers or DEFAULT_CPU_WORKERS
    if count > cpus:
        raise ClusterError(
            f"{count} workers need a CPU each, the cluster has {cpus}; "
            f"ask for at most {cpus} workers (--ray-workers {cpus})"
        )
    # Each worker's torch uses as many threads as CPUs it reserves (Ray sets OMP_NUM_THREADS).
    share = max(1, min(cpus // count, int(largest_node.get("CPU", 1))))
    return count, {"num_cpus": float(share)}


def _largest_node(ray: ModuleType) -> dict[str, float]:
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    return max(nodes, key=lambda r: r.get("CPU", 0), default={})


def _check_reachable(address: str) -> None:
    """Fail in seconds on an address where nothing listens (Ray itself waits minutes)."""
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as err:
        raise ClusterError(_unreachable(address, err)) from err
    if not host or port is None:
        raise ClusterError(_unreachable(address, ValueError("expected host:port")))
    try:
        socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise ClusterError(_unreachable(address, err)) from err


def _unreachable(address: str | None, err: Exception) -> str:
    if address is None:
        return f"cannot start a local Ray cluster ({err}); see `ray status`, or pass --ray-address"
    return (
        f"cannot reach a Ray cluster at {address!r} ({err}); start one there with "
        "`ray start --head`, pass its address as host:6379 (on a node of it), "
        "ray://host:10001 (Ray Client) or auto, or use --ray alone for a local cluster"
    )
