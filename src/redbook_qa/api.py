"""The facade: wire corpus, chunker, embedder, indexes, retriever and answerer from ``Settings``."""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from redbook_qa.aliases import AliasTable, load_aliases
from redbook_qa.answering import Answerer, ExtractiveAnswerer, StreamingAnswerer
from redbook_qa.config import Settings
from redbook_qa.conversation import rewrite_with_llm, standalone_question
from redbook_qa.corpus import load_corpus
from redbook_qa.embedding import Embedder, HashEmbedder, SentenceTransformerEmbedder
from redbook_qa.errors import IndexMismatchError, IndexNotFoundError, RedbookQAError
from redbook_qa.models import Answer, Context, CorpusChange, Document, Passage
from redbook_qa.persist import load_store, save_store, write_lock
from redbook_qa.retrieval import Retriever
from redbook_qa.screening import without_instructions
from redbook_qa.store import (
    ChunkingParams,
    Manifest,
    Store,
    build_store,
    corpus_fingerprint,
    fingerprint,
)
from redbook_qa.tokens import TiktokenCounter
from redbook_qa.translation import has_cjk, strip_cjk, translate_query
from redbook_qa.vectorstore import Filters, VectorStore

if TYPE_CHECKING:
    from redbook_qa.pgstore import PgVectorStore

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2_000
Mode = Literal["extractive", "llm"]
DEFAULT_ALIASES: tuple[tuple[str, ...], ...] = (
    # Names the press uses for the app that the articles may not spell out.
    ("Xiaohongshu", "小红书", "Little Red Book", "RedNote", "Red Note", "XHS"),
)


class RedbookQA:
    """Ask questions of a folder of articles and get answers that cite exact passages.

    Example:
        >>> from redbook_qa import RedbookQA
        >>> qa = RedbookQA.from_dir("seeds")  # doctest: +SKIP
        >>> answer = qa.ask("Who makes Labubu?")  # doctest: +SKIP
        >>> print(answer.text, answer.citations[0].source)  # doctest: +SKIP
    """

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        *,
        answerer: Answerer | None = None,
        llm_answerer: Answerer | None = None,
        settings: Settings | None = None,
        aliases: AliasTable | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.embedder = embedder
        self.corpus_dir: Path | None = None  # set by from_dir: what refresh() re-reads
        self.index_dir: Path | None = None
        self._refresh_lock = threading.Lock()
        self._install(store, aliases)
        self.answerer: Answerer = answerer or ExtractiveAnswerer(
            min_support=self.settings.min_support
        )
        if llm_answerer is None and self.settings.llm_base_url:
            llm_answerer = self._llm_answerer()
        self.llm_answerer = llm_answerer

    def _llm_answerer(self) -> Answerer:
        from redbook_qa.generation import LLMAnswerer
        from redbook_qa.llm import OpenAICompatibleClient

        return LLMAnswerer(
            OpenAICompatibleClient.from_settings(self.settings),
            self.embedder,
            fallback=self.answerer,
            context_tokens=self.settings.llm_context_tokens,
            # Index-time vectors of passage sentences, from whichever index is in use.
            vectors=lambda evidence: self.retriever.sentence_vectors(evidence),
        )

    @property
    def modes(self) -> tuple[Mode, ...]:
        """The answer modes available: always ``"extractive"``, and ``"llm"`` when configured."""
        return ("extractive", "llm") if self.llm_answerer is not None else ("extractive",)

    @property
    def default_mode(self) -> Mode:
        """The mode ``ask`` uses when none is given: the LLM when one is configured."""
        return self.modes[-1]

    @classmethod
    def from_documents(
        cls,
        documents: Sequence[Document],
        *,
        index_dir: Path | str | None = None,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
    ) -> RedbookQA:
        """Index documents given in code; ``source`` of their passages is the document id.

        Without ``index_dir`` nothing is written to disk; with it, the index is reused,
        refreshed or built there exactly as :meth:`from_dir` does.
        """
        settings = settings or Settings()
        embedder = embedder or _embedder(settings)
        folder = None if index_dir is None else Path(index_dir)
        store = _index(documents, embedder, settings, folder, previous=None)
        return cls(store, embedder, settings=settings)

    @classmethod
    def from_dir(
        cls,
        path: Path | str,
        *,
        index_dir: Path | str | None = None,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
    ) -> RedbookQA:
        """Load a folder of ``.txt``/``.md`` articles.

        With ``index_dir``, a saved index is reused when it matches the corpus and settings,
        and otherwise rebuilt (re-embedding only changed chunks) and saved atomically.
        """
        settings = settings or Settings()
        embedder = embedder or _embedder(settings)
        documents = load_corpus(path)
        qa = cls.from_documents(
            documents, index_dir=index_dir, settings=settings, embedder=embedder
        )
        qa.corpus_dir = Path(path)
        qa.index_dir = None if index_dir is None else Path(index_dir)
        return qa

    @classmethod
    def load(
        cls,
        directory: Path | str,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
    ) -> RedbookQA:
        """Load a saved index; the embedder is the one named in its manifest unless given."""
        store = load_store(Path(directory))
        embedder = embedder or _embedder_named(store.manifest.embedder, settings or Settings())
        _check_embedder(store, embedder, Path(directory))
        return cls(store, embedder, settings=settings)

    @classmethod
    def open(cls, settings: Settings | None = None) -> RedbookQA:
        """Open the configured corpus with its index, building or refreshing it as needed."""
        settings = settings or Settings()
        return cls.from_dir(settings.corpus_dir, index_dir=settings.index_dir, settings=settings)

    def refresh(self) -> CorpusChange:
        """Re-read the corpus folder and bring the index up to date.

        Only chunks whose text changed are embedded again; with an index folder, the new
        generation is saved atomically before it is used. Questions asked meanwhile are
        answered from the previous index.

        Raises:
            ValueError: This instance was not made by :meth:`from_dir`.
            CorpusError: A file in the folder cannot be read (the current index stays).
        """
        if self.corpus_dir is None:
            raise ValueError("refresh() needs a corpus folder: open it with RedbookQA.from_dir")
        with self._refresh_lock:
            documents = load_corpus(self.corpus_dir)
            old = self.store.manifest.documents
            new = fingerprint(documents)
            change = CorpusChange(
                added=tuple(s for s in new if s not in old),
                changed=tuple(s for s in new if s in old and old[s] != new[s]),
                removed=tuple(s for s in old if s not in new),
            )
            if not change:
                return change.model_copy(update={"n_chunks": self.store.manifest.n_chunks})
            store = _index(
                documents, self.embedder, self.settings, self.index_dir, previous=self.store
            )
            self._install(store, None)
            return change.model_copy(update={"n_chunks": store.manifest.n_chunks})

    def _install(self, store: VectorStore, aliases: AliasTable | None) -> None:
        retriever = Retriever(
            self.embedder,
            store,
            fusion=self.settings.fusion,
            alpha=self.settings.alpha,
            aliases=aliases or _aliases_for(store, self.settings),
            sentence_weight=self.settings.sentence_weight,
        )
        # One assignment swaps store, aliases and retriever together for readers.
        self._state = (store, retriever)

    @property
    def store(self) -> VectorStore:
        """The index in use: in this process, or in PostgreSQL (``settings.store``)."""
        return self._state[0]

    @property
    def retriever(self) -> Retriever:
        """The retriever over the index in use."""
        return self._state[1]

    @property
    def aliases(self) -> AliasTable:
        """Name variants used to expand questions."""
        return self.retriever.aliases

    def save(self, directory: Path | str) -> Path:
        """Save the index atomically; return the folder of the generation written.

        Raises:
            ValueError: The index lives in PostgreSQL (it is saved there as it is built).
        """
        store = self.store
        if not isinstance(store, Store):
            raise ValueError(
                "this index lives in PostgreSQL and is saved there as it is built; to also "
                "keep a folder copy, open the corpus without REDBOOK_QA_STORE and save that"
            )
        root = Path(directory)
        with write_lock(root):
            return save_store(store, root)

    def retrieve(
        self, question: str, k: int = 5, *, filters: Filters | None = None
    ) -> list[Passage]:
        """Return the ``k`` passages that best match ``question``, best first."""
        query = _clean_question(question)
        retriever = self.retriever
        return retriever.retrieve(_search_text(retriever, query), k=k, filters=filters)

    def context(
        self, question: str, *, k: int | None = None, filters: Filters | None = None
    ) -> Context:
        """Return what the answerer sees for ``question``: passages and scored sentences."""
        return self._context(_clean_question(question), k, filters)

    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        filters: Filters | None = None,
        mode: Mode | None = None,
    ) -> Answer:
        """Answer ``question`` from the articles, citing each sentence, or abstain."""
        answerer = self._answerer(mode)
        query = _clean_question(question)
        return answerer.answer(query, self._context(query, k, filters))

    def ask_stream(
        self,
        question: str,
        *,
        k: int | None = None,
        filters: Filters | None = None,
        mode: Mode | None = None,
    ) -> Iterator[str | Answer]:
        """Answer as a stream: pieces of the draft text as they are written, then the ``Answer``.

        The last item is always the checked, cited ``Answer`` (it replaces the draft). An
        extractive answer is ready at once, so it comes alone.
        """
        answerer = self._answerer(mode)
        query = _clean_question(question)
        context = self._context(query, k, filters)
        if isinstance(answerer, StreamingAnswerer):
            yield from answerer.stream(query, context)
        else:
            yield answerer.answer(query, context)

    def standalone(self, question: str, earlier: Sequence[str]) -> str:
        """Rewrite a follow-up into a standalone question, given the earlier user questions.

        Deterministic by default; with an LLM configured, the model rewrites it, checked (see
        :func:`redbook_qa.conversation.rewrite_with_llm`).
        """
        client = getattr(self.llm_answerer, "client", None)
        if client is None:
            return standalone_question(question, earlier)
        return rewrite_with_llm(question, earlier, client)

    def _answerer(self, mode: Mode | None) -> Answerer:
        mode = mode or self.default_mode
        if mode == "extractive":
            return self.answerer
        if mode == "llm" and self.llm_answerer is not None:
            return self.llm_answerer
        if mode == "llm":
            raise ValueError(
                "answer mode 'llm' needs an LLM server: set REDBOOK_QA_LLM_BASE_URL "
                "(any OpenAI-compatible /v1 URL) or run `make run-local-llm`"
            )
        raise ValueError(f"unknown answer mode {mode!r}; use 'extractive' or 'llm'")

    def _context(self, query: str, k: int | None, filters: Filters | None) -> Context:
        retriever = self.retriever  # one snapshot, even if refresh() swaps it meanwhile
        return retriever.context(
            _search_text(retriever, query), k=k or self.settings.k, filters=filters
        )


def _search_text(retriever: Retriever, question: str) -> str:
    """What is searched for: the question plus the canonical names of its aliases.

    A Chinese question over articles that are not in Chinese is searched in English: its
    Chinese words are replaced by their dictionary glosses (see :mod:`redbook_qa.translation`).
    """
    text = retriever.aliases.rewrite(question)
    if not has_cjk(question) or retriever.corpus_is_cjk:
        return text
    names = [name for group in retriever.aliases.groups for name in group]
    gloss = translate_query(question, known=names)
    return f"{strip_cjk(text)} {gloss}".strip() if gloss else text


def _clean_question(question: str) -> str:
    if not isinstance(question, str):
        raise TypeError(f"question must be a string, got {type(question).__name__}")
    cleaned = "".join(
        " " if unicodedata.category(ch) in {"Cc", "Cs", "Zl", "Zp"} else ch for ch in question
    )
    cleaned = " ".join(cleaned.split())[:MAX_QUESTION_CHARS]
    if not any(ch.isalnum() for ch in cleaned):
        raise ValueError("the question is empty; type a question about the articles")
    return without_instructions(cleaned)


def _embedder(settings: Settings) -> Embedder:
    return _embedder_named(settings.embedding_model, settings)


def _embedder_named(name: str, settings: Settings) -> Embedder:
    if name.startswith("hash-") and name[5:].isdigit():
        return HashEmbedder(int(name[5:]))
    return SentenceTransformerEmbedder(name, device=settings.device)


def _check_embedder(store: Store, embedder: Embedder, where: Path) -> None:
    manifest = store.manifest
    if manifest.embedder != embedder.name or manifest.dimension != embedder.dimension:
        raise IndexMismatchError(
            f"index in {where} was built with {manifest.embedder} (dim {manifest.dimension}), "
            f"the embedder is {embedder.name} (dim {embedder.dimension}); "
            "rebuild it with `redbook-qa index`"
        )


def _chunking(settings: Settings) -> ChunkingParams:
    return ChunkingParams(
        max_tokens=settings.max_tokens, overlap=settings.overlap, encoding=settings.encoding
    )


def _build(
    documents: Sequence[Document], embedder: Embedder, settings: Settings, previous: Store | None
) -> Store:
    return build_store(
        documents,
        embedder,
        TiktokenCounter(settings.encoding),
        chunking=_chunking(settings),
        index_kind=settings.index_kind,
        previous=previous,
        show_progress=settings.show_progress,
    )


def _index(
    documents: Sequence[Document],
    embedder: Embedder,
    settings: Settings,
    index_dir: Path | None,
    *,
    previous: VectorStore | None,
) -> VectorStore:
    """Bring the index of ``documents`` up to date where it lives, and return it.

    In PostgreSQL when ``settings.store`` names one, else in ``index_dir``, else only in
    memory (reusing the vectors of ``previous``).
    """
    if settings.store is not None:
        from redbook_qa.pgstore import PgVectorStore

        # A refresh keeps the store (and its pooled connections) it already has.
        pg = (
            previous
            if isinstance(previous, PgVectorStore)
            else PgVectorStore.open(
                settings.store, schema=settings.store_schema, local_dir=_local_pg_dir(settings)
            )
        )
        return _open_or_rebuild_pg(pg, documents, embedder, settings)
    if index_dir is None:
        kept = previous if isinstance(previous, Store) else None
        return _build(documents, embedder, settings, previous=kept)
    return _open_or_rebuild(index_dir, documents, embedder, settings)


def _local_pg_dir(settings: Settings) -> Path:
    """Where ``REDBOOK_QA_STORE=local`` keeps the bundled PostgreSQL's data: beside the index."""
    return settings.index_dir / "postgres"


def _open_or_rebuild(
    root: Path, documents: Sequence[Document], embedder: Embedder, settings: Settings
) -> Store:
    wanted = corpus_fingerprint(fingerprint(documents))
    previous = _try_load(root)
    if previous is not None and _is_fresh(previous.manifest, wanted, embedder, settings):
        return previous
    with write_lock(root):
        latest = _try_load(root)  # another process may have rebuilt while we waited
        if latest is not None and _is_fresh(latest.manifest, wanted, embedder, settings):
            return latest
        reason = "missing" if latest is None else "stale"
        logger.info("index in %s is %s; building it", root, reason)
        store = _build(documents, embedder, settings, previous=latest)
        save_store(store, root)
        return store


def _open_or_rebuild_pg(
    pg: PgVectorStore, documents: Sequence[Document], embedder: Embedder, settings: Settings
) -> PgVectorStore:
    """Search the index kept in PostgreSQL if it is fresh; else build it and save it there.

    Nothing is loaded into this process: questions are answered by querying PostgreSQL.
    Tables of an older redbook_qa are migrated in place first.
    """
    pg.migrate()
    wanted = corpus_fingerprint(fingerprint(documents))
    if _pg_is_fresh(pg, wanted, embedder, settings):
        return pg
    with pg.building():
        # Replicas starting together wait here; the first builds, the others find it fresh.
        if _pg_is_fresh(pg, wanted, embedder, settings):
            return pg
        try:
            previous: Store | None = pg.load()  # to reuse the vectors of unchanged chunks
        except IndexNotFoundError:
            previous = None
        store = _build(documents, embedder, settings, previous=previous)
        pg.save(store)  # one transaction: readers see the old index or this one
    return pg


def _pg_is_fresh(pg: PgVectorStore, wanted: str, embedder: Embedder, settings: Settings) -> bool:
    try:
        manifest = pg.manifest
    except IndexNotFoundError:
        return False
    return _is_fresh(manifest, wanted, embedder, settings)


def _try_load(root: Path) -> Store | None:
    try:
        return load_store(root)
    except RedbookQAError as err:
        if root.exists() and any(root.glob("gen-*")):
            logger.warning("cannot use the index in %s (%s); rebuilding it", root, err)
        return None


def _is_fresh(manifest: Manifest, wanted: str, embedder: Embedder, settings: Settings) -> bool:
    return (
        manifest.corpus_fingerprint == wanted
        and manifest.embedder == embedder.name
        and manifest.chunking == _chunking(settings)
        and (settings.index_kind == "auto" or manifest.index.get("kind") == settings.index_kind)
    )


def _aliases_for(store: VectorStore, settings: Settings) -> AliasTable:
    table = AliasTable(DEFAULT_ALIASES)
    for group in store.manifest.aliases:
        table.add(group)
    if settings.aliases_file is not None:
        for group in load_aliases(settings.aliases_file).groups:
            table.add(group)
    return table
