"""The facade: wire corpus, embedder, index home, retriever and answerers from ``Settings``.

It decides nothing a component can decide: where the index lives and how it is kept fresh
is the index home's part (:mod:`redbook_qa.stores.location`), what a question means is the
query's (:mod:`redbook_qa.retrieval.query`), what to quote is the answerer's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal

from redbook_qa.answering.base import Answerer, answer_stream
from redbook_qa.answering.conversation import rewrite_with_llm, standalone_question
from redbook_qa.answering.extractive import ExtractiveAnswerer
from redbook_qa.config import Settings
from redbook_qa.embedding.base import Embedder
from redbook_qa.embedding.choice import embedder_named
from redbook_qa.llm.client import LLMClient
from redbook_qa.models import Answer, Context, CorpusChange, Document, Passage
from redbook_qa.retrieval.retriever import Retriever
from redbook_qa.stores.base import BuildSpec, ChunkingParams, Filters, check_embedder
from redbook_qa.stores.building import fingerprint
from redbook_qa.stores.folder import load_store, save_store, write_lock
from redbook_qa.stores.location import Folder, IndexHome, InMemory, home_for
from redbook_qa.stores.protocol import VectorStore
from redbook_qa.text.corpus import check_corpus_size, load_corpus
from redbook_qa.text.names import DEFAULT_ALIASES, AliasTable, load_aliases
from redbook_qa.text.staging import Staging, overlay, recover
from redbook_qa.text.tokens import TiktokenCounter
from redbook_qa.text.uploads import Article

logger = logging.getLogger(__name__)

Mode = Literal["extractive", "llm"]


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
        home: IndexHome | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.embedder = embedder
        self.corpus_dir: Path | None = None  # set by from_dir: what refresh() re-reads
        self.index_dir: Path | None = None
        self._home: IndexHome = home or InMemory()
        self._refresh_lock = threading.Lock()
        self._install(store, aliases)
        self.answerer: Answerer = answerer or ExtractiveAnswerer(
            min_support=self.settings.min_support
        )
        self.llm_client: LLMClient | None = None
        if llm_answerer is None and self.settings.llm_base_url:
            self.llm_client = _llm_client(self.settings)
            llm_answerer = self._llm_answerer(self.llm_client)
        self.llm_answerer = llm_answerer

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
        refreshed or built there exactly as :meth:`from_dir` does (or in PostgreSQL when
        ``settings.store`` names one).
        """
        settings = settings or Settings()
        embedder = embedder or embedder_named(settings.embedding_model, device=settings.device)
        folder = None if index_dir is None else Path(index_dir)
        home = home_for(
            settings.store,
            folder,
            schema=settings.store_schema,
            local_dir=settings.index_dir / "postgres",  # REDBOOK_QA_STORE=local: beside the index
        )
        store = home.open(documents, embedder, _spec(settings), TiktokenCounter(settings.encoding))
        return cls(store, embedder, settings=settings, home=home)

    @classmethod
    def from_dir(
        cls,
        path: Path | str,
        *,
        index_dir: Path | str | None = None,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
    ) -> RedbookQA:
        """Load a folder of articles (``.txt``, ``.md``, ``.html``, ``.pdf``, ``.docx``).

        PDF, Word and HTML files need the ``docs`` extra (see :mod:`redbook_qa.text.loaders`);
        citations of a PDF carry the page they were printed on.

        With ``index_dir``, a saved index is reused when it matches the corpus and settings,
        and otherwise rebuilt (re-embedding only changed chunks) and saved atomically. An
        upload a crash interrupted is finished or undone first (:mod:`redbook_qa.text.staging`).
        A file that cannot be read is refused with a warning naming it; the rest is served.
        """
        settings = settings or Settings()
        recover(path)
        documents = _read_corpus(Path(path), settings, starting=True)
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
        settings = settings or Settings()
        store = load_store(Path(directory))
        embedder = embedder or embedder_named(store.manifest.embedder, device=settings.device)
        check_embedder(store.manifest, embedder, Path(directory))
        return cls(store, embedder, settings=settings, home=Folder(directory))

    @classmethod
    def open(cls, settings: Settings | None = None) -> RedbookQA:
        """Open the configured corpus with its index, building or refreshing it as needed."""
        settings = settings or Settings()
        return cls.from_dir(settings.corpus_dir, index_dir=settings.index_dir, settings=settings)

    @property
    def modes(self) -> tuple[Mode, ...]:
        """The answer modes available: always ``"extractive"``, and ``"llm"`` when configured."""
        return ("extractive", "llm") if self.llm_answerer is not None else ("extractive",)

    @property
    def default_mode(self) -> Mode:
        """The mode ``ask`` uses when none is given: the LLM when one is configured."""
        return self.modes[-1]

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

    def refresh(self, *, adding: Sequence[Article] = ()) -> CorpusChange:
        """Re-read the corpus folder and bring the index up to date.

        Only chunks whose text changed are embedded again; the new index is saved where it
        lives before it is used. Questions asked meanwhile are answered from the previous one.

        ``adding`` (uploads, see :func:`redbook_qa.text.uploads.read_upload`) are staged,
        the folder as it will be is indexed and saved, and only then are they moved into it,
        all of them or none (:mod:`redbook_qa.text.staging`): a refusal or a crash at any
        point leaves the folder whole.

        Raises:
            ValueError: This instance was not made by :meth:`from_dir`.
            CorpusError: A file in the folder cannot be read, an upload would give an
                article id another file gives, or the corpus would grow past
                ``max_corpus_chars`` (the current index and folder stay as they were).
        """
        if self.corpus_dir is None:
            raise ValueError("refresh() needs a corpus folder: open it with RedbookQA.from_dir")
        corpus = self.corpus_dir
        with self._refresh_lock:
            recover(corpus)
            if not adding:
                return self._update(_read_corpus(corpus, self.settings))
            with Staging(corpus) as staging:
                staged = [
                    a.document for a in adding if staging.add(a.name, a.content) != "unchanged"
                ]
                documents = overlay(_read_corpus(corpus, self.settings), staged)
                where = f"{corpus} with this upload"
                check_corpus_size(documents, self.settings.max_corpus_chars, where=where)
                return self._update(documents, commit=staging.commit)

    def _update(
        self, documents: Sequence[Document], *, commit: Callable[[], None] | None = None
    ) -> CorpusChange:
        # Index (and save) the corpus as it will be, commit the uploads, then serve it.
        old, new = self.store.manifest.documents, fingerprint(documents)
        change = CorpusChange(
            added=tuple(s for s in new if s not in old),
            changed=tuple(s for s in new if s in old and old[s] != new[s]),
            removed=tuple(s for s in old if s not in new),
        )
        store = None
        if change:
            counter = TiktokenCounter(self.settings.encoding)
            store = self._home.open(
                documents, self.embedder, _spec(self.settings), counter, previous=self.store
            )
        if commit is not None:
            commit()
        if store is not None:
            self._install(store, None)
        return change.model_copy(update={"n_chunks": self.store.manifest.n_chunks})

    def save(self, directory: Path | str) -> Path:
        """Save the index as a folder, atomically; return the folder of the generation written.

        An index kept in PostgreSQL is read back and saved as a folder copy.
        """
        root = Path(directory)
        with write_lock(root):
            return save_store(self.store.snapshot(), root)

    def retrieve(
        self, question: str, k: int = 5, *, filters: Filters | None = None
    ) -> list[Passage]:
        """Return the ``k`` passages that best match ``question``, best first."""
        retriever = self.retriever  # one snapshot, even if refresh() swaps it meanwhile
        return retriever.retrieve(retriever.query(question), k=k, filters=filters)

    def context(
        self, question: str, *, k: int | None = None, filters: Filters | None = None
    ) -> Context:
        """Return what the answerer sees for ``question``: passages and scored sentences."""
        retriever = self.retriever
        query = retriever.query(question)
        return retriever.context(query, k=k or self.settings.k, filters=filters)

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
        retriever = self.retriever
        query = retriever.query(question)
        context = retriever.context(query, k=k or self.settings.k, filters=filters)
        return answerer.answer(query.question, context)

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
        retriever = self.retriever
        query = retriever.query(question)
        context = retriever.context(query, k=k or self.settings.k, filters=filters)
        yield from answer_stream(answerer, query.question, context)

    def standalone(self, question: str, earlier: Sequence[str]) -> str:
        """Rewrite a follow-up into a standalone question, given the earlier user questions.

        Deterministic by default; with an LLM configured, the model rewrites it, checked (see
        :func:`redbook_qa.answering.conversation.rewrite_with_llm`).
        """
        if self.llm_client is None:
            return standalone_question(question, earlier)
        return rewrite_with_llm(question, earlier, self.llm_client)

    def _llm_answerer(self, client: LLMClient) -> Answerer:
        from redbook_qa.answering.generated import LLMAnswerer

        return LLMAnswerer(
            client,
            self.embedder,
            fallback=self.answerer,
            context_tokens=self.settings.llm_context_tokens,
        )

    def _install(self, store: VectorStore, aliases: AliasTable | None) -> None:
        retriever = Retriever(
            self.embedder,
            store,
            fusion=self.settings.fusion,
            alpha=self.settings.alpha,
            aliases=aliases or _aliases_for(store, self.settings),
            sentence_weight=self.settings.sentence_weight,
            max_question_chars=self.settings.max_question_chars,
        )
        # One assignment swaps store, aliases and retriever together for readers.
        self._state = (store, retriever)

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


def _read_corpus(folder: Path, settings: Settings, *, starting: bool = False) -> list[Document]:
    # Starting, a file that cannot be read is refused with a warning and the rest is served;
    # a refresh, asked for to take in the folder's changes, names it and keeps the index.
    return load_corpus(
        folder,
        limits=settings.read_limits,
        max_chars=settings.max_corpus_chars,
        skip_unreadable=starting,
    )


def _spec(settings: Settings) -> BuildSpec:
    chunking = ChunkingParams(
        max_tokens=settings.max_tokens,
        overlap=settings.overlap,
        encoding=settings.encoding,
        sentence_vectors=settings.sentence_vectors,
    )
    return BuildSpec(
        chunking=chunking, index_kind=settings.index_kind, show_progress=settings.show_progress
    )


def _llm_client(settings: Settings) -> LLMClient:
    """The client that ``REDBOOK_QA_LLM_*`` settings describe."""
    from redbook_qa.llm.client import OpenAICompatibleClient

    if not settings.llm_base_url:
        raise ValueError(
            "no LLM server configured: set REDBOOK_QA_LLM_BASE_URL (an OpenAI-compatible "
            "URL ending in /v1) or run `make run-local-llm`"
        )
    return OpenAICompatibleClient(
        settings.llm_base_url,
        settings.llm_model,
        api_key=settings.llm_api_key,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
    )


def _aliases_for(store: VectorStore, settings: Settings) -> AliasTable:
    table = AliasTable(DEFAULT_ALIASES)
    for group in store.manifest.aliases:
        table.add(group)
    if settings.aliases_file is not None:
        for group in load_aliases(settings.aliases_file).groups:
            table.add(group)
    return table
