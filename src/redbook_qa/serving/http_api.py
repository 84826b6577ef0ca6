"""A small JSON HTTP API over :class:`~redbook_qa.api.RedbookQA`, for programs and load balancers.

::

    GET  /health     the index in use: store kind, corpus fingerprint, documents, chunks
    POST /ask        {"question", "k"?, "mode"?, "sources"?}  → an Answer (text, citations)
    POST /retrieve   {"question", "k"?, "sources"?}           → the passages, best first
    POST /refresh    re-read the articles folder and update the index → what changed

With the index in PostgreSQL (``REDBOOK_QA_STORE``) a process holds no state of its own: any
number of replicas behind any load balancer give the same answers, and a refresh made through
one is used by all from their next question. Handlers are plain functions, which FastAPI runs
on worker threads, as Gradio does. FastAPI and uvicorn come with the ``app`` extra (Gradio).

:func:`build_server` puts the app behind :class:`~redbook_qa.serving.guard.Guard`: a request
that names another host or comes from another site's page is refused, and so is a body over
``max_request_bytes``, before FastAPI reads it or checks a login. A question over
``max_question_chars`` is refused with a 422 that says so.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from redbook_qa.errors import IndexNotFoundError, LimitError, RedbookQAError
from redbook_qa.models import Answer, CorpusChange, Passage
from redbook_qa.serving.guard import LOOPBACK_HOSTS, Guard, allowed_names

if TYPE_CHECKING:
    from fastapi import FastAPI

    from redbook_qa.api import RedbookQA

logger = logging.getLogger(__name__)


class AskRequest(BaseModel):
    """A question, with how many passages to read and which articles to search."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1)
    k: int | None = Field(default=None, ge=1, le=100)
    mode: Literal["extractive", "llm"] | None = None
    sources: list[str] | None = Field(default=None, description="only search these files")


class RetrieveRequest(BaseModel):
    """A question whose best passages are wanted."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1)
    k: int = Field(default=5, ge=1, le=100)
    sources: list[str] | None = None


class Health(BaseModel):
    """What a replica serves; equal fingerprints mean equal answers."""

    status: Literal["ok"] = "ok"
    store: Literal["postgresql", "process"]
    corpus_fingerprint: str
    embedder: str
    documents: int
    chunks: int


def build_app(qa: RedbookQA, *, auth: tuple[str, str] | None = None) -> FastAPI:
    """Return the FastAPI app answering over ``qa``; ``auth`` = (user, password) for Basic."""
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.responses import JSONResponse
    from fastapi.security import HTTPBasic, HTTPBasicCredentials

    app = FastAPI(title="redbook_qa", version="1", docs_url="/docs", redoc_url=None)
    basic = HTTPBasic(auto_error=auth is not None)

    # A default of Depends(...) rather than an annotation: with postponed annotations FastAPI
    # could not resolve the locally imported credentials type.
    def check(credentials: Any = Depends(basic)) -> None:  # noqa: B008 - FastAPI's idiom
        if auth is None:
            return
        user, password = auth
        given = credentials or HTTPBasicCredentials(username="", password="")
        if not (
            secrets.compare_digest(given.username.encode(), user.encode())
            and secrets.compare_digest(given.password.encode(), password.encode())
        ):
            raise HTTPException(
                status_code=401,
                detail="wrong user or password",
                headers={"WWW-Authenticate": "Basic"},
            )

    @app.exception_handler(LimitError)
    def _over_limit(_: Request, err: LimitError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(err)})

    @app.exception_handler(IndexNotFoundError)
    def _no_index(_: Request, err: IndexNotFoundError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(err)})

    @app.exception_handler(RedbookQAError)
    def _bad_corpus(_: Request, err: RedbookQAError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(err)})

    @app.exception_handler(ValueError)
    def _bad_value(_: Request, err: ValueError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": str(err)})

    guarded: list[Any] = [Depends(check)]

    @app.get("/health", dependencies=guarded)
    def health() -> Health:
        manifest = qa.store.manifest
        return Health(
            store=qa.store.kind,
            corpus_fingerprint=manifest.corpus_fingerprint,
            embedder=manifest.embedder,
            documents=len(manifest.documents),
            chunks=manifest.n_chunks,
        )

    @app.post("/ask", dependencies=guarded)
    def ask(request: AskRequest) -> Answer:
        filters = {"source": request.sources} if request.sources else None
        question = _bounded(request.question, qa.settings.max_question_chars)
        return qa.ask(question, k=request.k, filters=filters, mode=request.mode)

    @app.post("/retrieve", dependencies=guarded)
    def retrieve(request: RetrieveRequest) -> list[Passage]:
        filters = {"source": request.sources} if request.sources else None
        question = _bounded(request.question, qa.settings.max_question_chars)
        return qa.retrieve(question, request.k, filters=filters)

    @app.post("/refresh", dependencies=guarded)
    def refresh() -> CorpusChange:
        return qa.refresh()

    return app


def build_server(
    qa: RedbookQA, *, auth: tuple[str, str] | None = None, hosts: frozenset[str]
) -> Guard:
    """Return the API behind its front door (see :mod:`redbook_qa.serving.guard`).

    Args:
        qa: The facade to answer over; its settings give the body limit.
        auth: ``(user, password)`` for HTTP Basic, or ``None``.
        hosts: The host names this server answers to (:func:`allowed_names`).
    """
    return Guard(
        build_app(qa, auth=auth), hosts=hosts, max_body_bytes=qa.settings.max_request_bytes
    )


def serve(
    qa: RedbookQA,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    auth: tuple[str, str] | None = None,
    allowed_hosts: Sequence[str] = (),
) -> None:
    """Serve the API with uvicorn until interrupted.

    It answers to loopback names, the address it binds, ``allowed_hosts`` and
    ``qa.settings.allowed_hosts``; requests naming any other host are refused.
    """
    import uvicorn

    if auth is None and host not in LOOPBACK_HOSTS:
        logger.warning(
            "serving the API on %s without --auth: anyone who can reach it can ask", host
        )
    hosts = allowed_names([*qa.settings.allowed_hosts, *allowed_hosts], bound_to=host)
    server = build_server(qa, auth=auth, hosts=hosts)
    uvicorn.run(server, host=host, port=port, log_level="warning")


def _bounded(question: str, max_chars: int) -> str:
    if len(question) > max_chars:
        raise LimitError(
            f"the question is {len(question):,} characters long, over the {max_chars:,} this "
            "server reads; ask it in fewer words, or raise REDBOOK_QA_MAX_QUESTION_CHARS"
        )
    return question
