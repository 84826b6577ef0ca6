"""The Gradio chat page: plain handler functions, and a thin Blocks layout over them.

Handlers take and return plain values (strings, lists of message dicts), so they are tested
without a browser; ``build_demo`` only wires them to components.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redbook_qa.conversation import standalone_question
from redbook_qa.errors import RedbookQAError
from redbook_qa.render import answer_markdown, escape_markdown, sources_html

if TYPE_CHECKING:
    import gradio as gr

    from redbook_qa.api import RedbookQA

logger = logging.getLogger(__name__)

EXAMPLES = (
    "Why did users pick Xiaohongshu?",
    "Why are people leaving TikTok?",
    "What role do KOLs play on Xiaohongshu?",
    "Who makes Labubu?",
    "What challenges does Xiaohongshu face?",
)
Message = dict[str, str]


@dataclass
class ChatSession:
    """The page's state that outlives one question: the facade and the cited source texts."""

    qa: RedbookQA
    source_texts: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        root = Path(self.qa.settings.corpus_dir)
        for source in self.qa.store.manifest.documents:
            path = root / source
            if path.is_file():
                with path.open(encoding="utf-8", errors="replace") as handle:
                    self.source_texts[source] = handle.read()

    def respond(
        self, message: str, history: list[Message], *, k: int = 5, show_scores: bool = False
    ) -> tuple[list[Message], str, str]:
        """Answer a chat message.

        Returns:
            The updated history, the sources panel HTML, and a "searched for" note.
        """
        history = list(history or [])
        earlier = [m["content"] for m in history if m.get("role") == "user"]
        searched = standalone_question(message.strip(), earlier) if message.strip() else ""
        try:
            answer = self.qa.ask(searched, k=k)
        except (RedbookQAError, ValueError, TypeError) as err:
            reply = f"⚠️ {escape_markdown(str(err))}"
            return [*history, _user(message), _assistant(reply)], "", ""
        panel = sources_html(answer, self.source_texts, show_scores=show_scores)
        note = f"searched for: “{escape_markdown(searched)}”" if searched != message.strip() else ""
        return [*history, _user(message), _assistant(answer_markdown(answer))], panel, note


def _user(text: str) -> Message:
    return {"role": "user", "content": escape_markdown(text)}


def _assistant(text: str) -> Message:
    return {"role": "assistant", "content": text}


def build_demo(session: ChatSession) -> gr.Blocks:
    """Lay out the chat page over ``session``."""
    try:
        import gradio as gr
    except ImportError as err:
        raise ImportError('the chat page needs Gradio: pip install "redbook_qa[app]"') from err

    with gr.Blocks(title="redbook_qa") as demo:
        gr.Markdown(
            "## Ask the articles\nAnswers quote the articles; every sentence cites its "
            "source `[n]`, shown on the right. If the articles don't say, the answer says so."
        )
        with gr.Row():
            with gr.Column(scale=3):
                chat = gr.Chatbot(label="Answer", height=460, elem_id="rq-chat")
                question = gr.Textbox(
                    label="Question",
                    placeholder="Why did users pick Xiaohongshu?",
                    elem_id="rq-question",
                )
                with gr.Row():
                    send = gr.Button("Ask", variant="primary", elem_id="rq-ask")
                    clear = gr.Button("New conversation")
                gr.Examples(examples=[[e] for e in EXAMPLES], inputs=[question])
            with gr.Column(scale=2):
                searched = gr.Markdown(elem_id="rq-searched")
                gr.Markdown("### Sources")
                sources = gr.HTML(elem_id="rq-sources")
                with gr.Accordion("Settings", open=False):
                    k = gr.Slider(1, 20, value=session.qa.settings.k, step=1, label="Passages (k)")
                    scores = gr.Checkbox(label="Show scores", value=False)

        def on_ask(
            message: str, history: list[Message], k_value: float, show: bool
        ) -> tuple[Any, ...]:
            new_history, panel, note = session.respond(
                message, history, k=int(k_value), show_scores=show
            )
            return new_history, panel, note, ""

        outputs = [chat, sources, searched, question]
        # One public endpoint, "/ask", for scripts (gradio_client); the rest stay private.
        send.click(on_ask, [question, chat, k, scores], outputs, api_name="ask")
        question.submit(on_ask, [question, chat, k, scores], outputs, api_visibility="private")
        clear.click(lambda: ([], "", "", ""), None, outputs, api_visibility="private")
    blocks: gr.Blocks = demo
    return blocks


def launch(*, host: str = "127.0.0.1", port: int = 7860, qa: RedbookQA | None = None) -> None:
    """Open the configured corpus and serve the page (never a public share link)."""
    from redbook_qa.api import RedbookQA

    session = ChatSession(qa or RedbookQA.open())
    demo = build_demo(session)
    demo.queue(default_concurrency_limit=4).launch(server_name=host, server_port=port, share=False)
