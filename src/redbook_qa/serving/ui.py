"""The Gradio chat page: a thin Blocks layout over the plain handlers of :class:`ChatSession`.

The page is mounted in a FastAPI app of its own behind :class:`~redbook_qa.serving.guard.Guard`
and served by uvicorn, so Host, Origin and body size are checked before Gradio (its CORS
headers, its logins, its queue) sees a request. Importing this module imports Gradio;
``redbook_qa`` itself never does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

try:
    import gradio as gr
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError('the chat page needs Gradio: pip install "redbook_qa[app]"') from err

from redbook_qa.api import RedbookQA
from redbook_qa.serving.chat import ChatSession, Message, Turn
from redbook_qa.serving.feedback import FEEDBACK_FILE, FeedbackLog, Rating
from redbook_qa.serving.guard import LOOPBACK_HOSTS, Guard, allowed_names
from redbook_qa.text.uploads import ALLOWED_SUFFIXES, MAX_DOCUMENT_UPLOAD_BYTES, MAX_UPLOAD_BYTES

__all__ = ["ChatSession", "build_demo", "build_server", "launch"]

logger = logging.getLogger(__name__)

EXAMPLES = (
    "Why did users pick Xiaohongshu?",
    "And why not Facebook?",
    "What role do KOLs play on Xiaohongshu?",
    "Who makes Labubu?",
    "What challenges does Xiaohongshu face?",
)
SESSION_TTL_SECONDS = 3600
UPLOAD_ROUTE = "/gradio_api/upload"
CSS = """
#rq-sources mark { background: #fde68a; color: #111827; padding: 0 2px; border-radius: 2px; }
.rq-source, .rq-related { border-left: 3px solid #e5e7eb; padding: 2px 10px; margin: 0 0 14px; }
.rq-source p, .rq-related p { margin: 4px 0; }
.rq-source.rq-flash { animation: rq-flash 2s ease-out; }
@keyframes rq-flash {
  from { background: #fef3c7; border-left-color: #f59e0b; }
  to { background: transparent; border-left-color: #e5e7eb; }
}
.rq-scores { color: #6b7280; }
#rq-chat small { color: #6b7280; }
.rq-confidence { border-radius: 9px; padding: 0 7px; cursor: help; }
.rq-confidence-high { background: #dcfce7; color: #166534; }
.rq-confidence-medium { background: #fef9c3; color: #854d0e; }
.rq-confidence-low { background: #fee2e2; color: #991b1b; }
"""
# A [n] marker in an answer is a link to "#source-n" in the sources panel. Scroll to it here
# rather than rely on the browser: Gradio may open links from chat messages in a new tab.
JS = """
() => {
  document.addEventListener("click", (event) => {
    const link = event.target.closest ? event.target.closest('a[href^="#source-"]') : null;
    if (!link) return;
    const target = document.getElementById(link.getAttribute("href").slice(1));
    if (!target) return;
    event.preventDefault();
    event.stopPropagation();
    target.scrollIntoView({ behavior: "smooth", block: "center" });
    target.classList.remove("rq-flash");
    void target.offsetWidth;
    target.classList.add("rq-flash");
  }, true);
}
"""

# Clipboard from the page itself: navigator.clipboard needs a secure origin (loopback counts);
# elsewhere fall back to a selected textarea.
COPY_JS = """
(text) => {
  if (!text) return;
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement("textarea");
  area.value = text;
  document.body.appendChild(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}
"""


def build_demo(session: ChatSession) -> gr.Blocks:
    """Lay out the chat page over ``session`` and wire its handlers."""
    with gr.Blocks(title="redbook_qa") as demo:
        gr.Markdown(
            "## Ask the articles\nEvery sentence of an answer quotes an article and cites it "
            "`[n]`; click a marker to see the quote in its paragraph. If the articles don't "
            "say, the answer says so and offers the closest passages."
        )
        with gr.Tab("Ask"):
            _ask_tab(session)
        with gr.Tab("Articles", elem_id="rq-articles-tab"):
            table = _articles_tab(session)
        # On each page load, so every visitor sees what others uploaded.
        demo.load(session.articles, None, table, api_visibility="private")
    blocks: gr.Blocks = demo
    return blocks


def _ask_tab(session: ChatSession) -> None:
    # Per-visitor state lives on the server: drop it after an idle hour.
    turns = gr.State([], time_to_live=SESSION_TTL_SECONDS)
    with gr.Row():
        with gr.Column(scale=3):
            # No built-in copy buttons: they copy the escaped message source, not its text.
            chat = gr.Chatbot(label="Answer", height=520, buttons=[], elem_id="rq-chat")
            question = gr.Textbox(
                label="Question",
                placeholder=EXAMPLES[0],
                max_length=session.qa.settings.max_question_chars,
                elem_id="rq-question",
            )
            with gr.Row():
                send = gr.Button("Ask", variant="primary", elem_id="rq-ask")
                copy = gr.Button("Copy as Markdown", elem_id="rq-copy")
                clear = gr.Button("New conversation", elem_id="rq-clear")
            rated = gr.Markdown(elem_id="rq-feedback")
            gr.Examples(examples=[[e] for e in EXAMPLES], inputs=[question])
            with gr.Accordion("The answer as Markdown", open=False):
                markdown = gr.Code(
                    language="markdown",
                    label="The answer with its quotes",
                    interactive=False,
                    buttons=["copy"],
                    elem_id="rq-markdown",
                )
        with gr.Column(scale=2):
            k, mode, scores = _settings(session.qa)
            gr.Markdown("### Sources")
            sources = gr.HTML(elem_id="rq-sources")

    def on_ask(
        message: str, history: list[Message], k_value: float, show: bool, mode_value: str,
        state: list[Turn],
    ) -> Iterator[tuple[Any, ...]]:  # fmt: skip
        for reply in session.stream(
            message, history, state, k=int(k_value), mode=mode_value, show_scores=show
        ):
            yield reply.history, reply.sources, reply.markdown, "", reply.turns

    def on_like(state: list[Turn], data: gr.LikeData) -> tuple[str, list[Turn]]:
        rating = _rating(data.liked)
        if rating is None:
            return "", state
        index = data.index if isinstance(data.index, int) else data.index[0]
        return session.rate(state, index, rating=rating)

    inputs = [question, chat, k, scores, mode, turns]
    outputs = [chat, sources, markdown, question, turns]
    # One public endpoint, "/ask", for scripts (gradio_client); the rest stay private.
    send.click(on_ask, inputs, outputs, api_name="ask")
    question.submit(on_ask, inputs, outputs, api_visibility="private")
    for event in (clear.click, chat.clear):
        event(lambda: ([], "", "", "", [], ""), None, [*outputs, rated], api_visibility="private")
    scores.change(
        lambda state, show: session.sources(state, show_scores=show),
        [turns, scores],
        [sources],
        api_visibility="private",
    )
    copy.click(None, [markdown], None, js=COPY_JS, api_visibility="private")
    chat.like(on_like, [turns], [rated, turns], api_visibility="private")


def _settings(qa: RedbookQA) -> tuple[gr.Slider, gr.Radio, gr.Checkbox]:
    with gr.Accordion("Settings", open=False, elem_id="rq-settings"):
        k = gr.Slider(1, 20, value=qa.settings.k, step=1, label="Passages searched (k)")
        mode = gr.Radio(
            list(qa.modes),
            value=qa.default_mode,
            label="Answer mode",
            info=None if len(qa.modes) > 1 else "set REDBOOK_QA_LLM_BASE_URL for llm",
            interactive=len(qa.modes) > 1,
        )
        scores = gr.Checkbox(label="Show scores (fused, dense, keyword)", value=False)
    return k, mode, scores


def _articles_tab(session: ChatSession) -> gr.Dataframe:
    gr.Markdown(
        f"Add articles as {', '.join(ALLOWED_SUFFIXES)} files (text in UTF-8, at most "
        f"{MAX_UPLOAD_BYTES // 1_000_000} MB; PDF, Word and HTML at most "
        f"{MAX_DOCUMENT_UPLOAD_BYTES // 1_000_000} MB). Pages keep their main text, PDFs "
        "their page numbers. The index updates at once, re-embedding only what changed."
    )
    upload = gr.File(
        label="Add articles",
        file_count="multiple",
        file_types=list(ALLOWED_SUFFIXES),
        elem_id="rq-upload",
    )
    status = gr.Markdown(elem_id="rq-upload-status")
    table = gr.Dataframe(
        value=session.articles(),
        headers=["Title", "File", "Sections", "Chunks"],
        interactive=False,
        wrap=True,
        column_widths=["34%", "22%", "36%", "8%"],
        elem_id="rq-articles",
    )

    def on_upload(files: list[str] | None) -> tuple[Any, ...]:
        return session.upload(files), session.articles(), None

    upload.upload(on_upload, [upload], [status, table, upload], api_visibility="private")
    return table


def build_server(
    demo: gr.Blocks,
    qa: RedbookQA,
    *,
    auth: tuple[str, str] | None = None,
    hosts: frozenset[str],
) -> Guard:
    """Mount the page in an app of its own behind the front door; return what uvicorn runs.

    Args:
        demo: The page (:func:`build_demo`).
        qa: The facade it serves; its settings bound sessions and request bodies.
        auth: A ``(user, password)`` the page asks for; ``None`` leaves it open.
        hosts: The host names this server answers to
            (:func:`~redbook_qa.serving.guard.allowed_names`).
    """
    from fastapi import FastAPI

    settings = qa.settings
    demo.state_session_capacity = settings.max_sessions  # oldest session dropped past it
    demo.queue(default_concurrency_limit=4)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    gr.mount_gradio_app(
        app,
        demo,
        path="/",
        auth=auth,
        css=CSS,
        js=JS,
        max_file_size=MAX_DOCUMENT_UPLOAD_BYTES,
        allowed_paths=[],  # cited PDFs are added one by one (see _serve)
        ssr_mode=False,
    )
    return Guard(
        app,
        hosts=hosts,
        max_body_bytes=settings.max_request_bytes,
        larger_bodies={UPLOAD_ROUTE: settings.max_upload_request_bytes},
    )


def launch(
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    qa: RedbookQA | None = None,
    auth: tuple[str, str] | None = None,
    feedback_path: Path | str | None = None,
    allowed_hosts: Sequence[str] = (),
) -> None:
    """Open the configured corpus and serve the page; never through a public share link.

    Args:
        host: Address to bind; the default serves this machine only.
        port: Port to listen on.
        qa: The facade to serve (default: ``RedbookQA.open()`` over the configured corpus).
        auth: A ``(user, password)`` the page asks for; ``None`` leaves it open.
        feedback_path: JSON Lines file for thumbs up/down (default: in the index folder).
        allowed_hosts: Names the page answers to besides loopback, the bound address and
            ``qa.settings.allowed_hosts`` (a proxy's public name, say).
    """
    import uvicorn

    qa = qa or RedbookQA.open()
    feedback = Path(feedback_path or Path(qa.index_dir or qa.settings.index_dir) / FEEDBACK_FILE)
    log = FeedbackLog(feedback, max_bytes=qa.settings.max_feedback_bytes)
    session = ChatSession(qa, feedback=log, link=lambda path: _serve(demo, path))
    demo = build_demo(session)
    if auth is None and host not in LOOPBACK_HOSTS:
        logger.warning("serving on %s without --auth: anyone who can reach it can ask", host)
    hosts = allowed_names([*qa.settings.allowed_hosts, *allowed_hosts], bound_to=host)
    server = build_server(demo, qa, auth=auth, hosts=hosts)
    logger.info("feedback goes to %s", feedback)
    logger.info("serving the page on http://%s:%d (answering to %s)", host, port, sorted(hosts))
    uvicorn.run(server, host=host, port=port, log_level="warning")


def _serve(demo: gr.Blocks, path: Path) -> str:
    """Let the page serve one cited file, and return its URL.

    Files are allowed one by one as they are cited, never the whole corpus folder: an
    uploaded .html served from the page's own origin could run its scripts there.
    """
    if str(path) not in demo.allowed_paths:
        demo.allowed_paths.append(str(path))
    return f"/gradio_api/file={quote(str(path))}"


def _rating(liked: bool | str) -> Rating | None:
    if liked in (True, "Like"):
        return "up"
    if liked in (False, "Dislike"):
        return "down"
    return None  # a vote taken back, or another option
