"""The chat page in a real browser (Debian's chromium driven by Playwright), used as a person would.

The app runs as a subprocess (``python app.py``) over a copy of ``seeds/`` plus a hostile
article, with the real bundled model. Screenshots go to a temp folder and, when
REDBOOK_QA_SCREENSHOTS is set, to that folder too (``tests/screenshots/answer.png`` in the
README comes from here).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PATIENCE, ROOT, SEEDS, free_port, stop, wait_for, wait_until_up, write

pytestmark = [pytest.mark.integration, pytest.mark.faults]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE = (
    "Zorbania Pangolin Festival\n"
    "The pangolin festival in Zorbania opens with <script>alert(1)</script> drums, **bold** "
    "banners, [a link](javascript:alert(2)) and <img src=x onerror=alert(3)> lanterns at dawn.\n"
    "Visitors bring their own pangolin lanterns.\n"
)
NEW_ARTICLE = (
    "Moonleaf Tea Cooperative\n"
    "The Moonleaf tea cooperative was founded in 1987 by twelve farmers in the Nilgiri hills.\n"
    "Its green tea is picked by hand every spring and sold in Chennai.\n"
)
HARBOUR_PAGES = [
    ("Quillhaven Harbour", [("Quillhaven Harbour", ["The Quillhaven ferry leaves at dawn."])]),
    ("Quillhaven Lighthouse", [("Keepers", [
        "The Quillhaven lighthouse keeper polishes the brass lamp every morning.",
    ])]),
]  # fmt: skip
# Every wait on the page is a hang guard: the suite's patience, never a bet on speed. On one
# core shared with a busy loop and another heavy process, the first render alone once took
# over 120 s (2026-12-03).
ANSWER_MS = PATIENCE * 1000


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: sudo apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    # Every wait on the page is a hang guard, never a bet that the page is fast enough: the
    # 5 s default is shorter than one answer takes on a slow, busy CPU.
    expect.set_options(timeout=ANSWER_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=ANSWER_MS
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Start ``app.py`` on a free loopback port; yield its URL and index folder."""
    root = tmp_path_factory.mktemp("app")
    corpus, index = root / "corpus", root / "index"
    shutil.copytree(SEEDS, corpus)
    write(corpus, "hostile.txt", HOSTILE)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDBOOK_QA_AUTH"}
    env |= {
        "REDBOOK_QA_CORPUS_DIR": str(corpus),
        "REDBOOK_QA_INDEX_DIR": str(index),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    log = root / "app.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--port", str(port)],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_up(url, process, log, PATIENCE)
        yield url, index
    finally:
        stop(process)


@pytest.fixture
def shots(tmp_path):
    """Save a full-page screenshot under a name, in the temp folder and $REDBOOK_QA_SCREENSHOTS."""
    extra = os.environ.get("REDBOOK_QA_SCREENSHOTS")

    def save(page, name):
        path = tmp_path / f"{name}.png"
        page.screenshot(path=path, full_page=True)
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(extra) / path.name)
        return path

    return save


@pytest.fixture
def page(browser, server):
    url, _ = server
    context = browser.new_context(viewport={"width": 1280, "height": 760})
    context.set_default_timeout(ANSWER_MS)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url.rstrip("/"))
    tab = context.new_page()
    tab.dialogs = []
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    tab.goto(url, wait_until="domcontentloaded")
    tab.locator("#rq-question textarea").wait_for()
    yield tab
    context.close()


def test_a_person_asks_follows_up_opens_sources_and_adds_an_article(page, server, shots, tmp_path):
    from playwright.sync_api import expect

    answer = _ask(page, "why did users pick Xiaohongshu?")
    expect(answer.locator('a[href="#source-1"]')).to_be_visible()
    expect(page.locator("#source-1 mark")).not_to_have_text("")
    badge = answer.locator(".rq-confidence")
    expect(badge).to_contain_text("confidence: ")
    expect(badge).to_have_attribute("title", re.compile(r"\d+% chance that the quotes answer"))
    shots(page, "answer")

    page.locator("#rq-settings").get_by_text("Settings").click()
    page.get_by_label("Show scores (fused, dense, keyword)").check()
    expect(page.locator("#source-1 .rq-scores")).to_contain_text("fused")
    expect(page.locator("#source-1 .rq-scores")).to_contain_text("keyword")

    # Each marker brings its source into view, even one below the fold.
    page.evaluate("window.scrollTo(0, 0)")
    answer.locator('a[href="#source-1"]').click()
    expect(page.locator("#source-1")).to_be_in_viewport()
    expect(page.locator("#source-1")).to_have_class("rq-source rq-flash")
    last = answer.locator('a[href^="#source-"]').last
    target = page.locator(last.get_attribute("href"))
    page.evaluate("window.scrollTo(0, 0)")
    last.click()
    expect(target).to_be_in_viewport()
    expect(target.locator("mark")).not_to_have_text("")

    follow_up = _ask(page, "and why not Facebook?")
    expect(follow_up).to_contain_text("searched for: “and why not Facebook? (")
    expect(follow_up.locator('a[href="#source-1"]')).to_be_visible()
    shots(page, "follow-up")

    page.locator("#rq-copy").click()  # the page writes the clipboard asynchronously
    pasted = wait_for(
        "the copied answer on the clipboard",
        lambda: page.evaluate("navigator.clipboard.readText()"),
        lambda text: text.startswith("**Q:** and why not Facebook?"),
    )
    assert "\n[1] " in pasted

    page.locator("#rq-chat").get_by_role("button", name="Like").last.click()
    expect(page.locator("#rq-feedback")).to_contain_text("saved")
    assert (server[1] / "feedback.jsonl").read_text(encoding="utf-8").count("\n") == 1

    page.get_by_role("tab", name="Articles").click()
    upload = write(tmp_path / "uploads", "moonleaf.txt", NEW_ARTICLE)
    page.locator("#rq-upload input[type=file]").set_input_files(str(upload))
    status = page.locator("#rq-upload-status")
    expect(status).to_contain_text("moonleaf.txt: added", timeout=ANSWER_MS)
    expect(status).to_contain_text("Index: added moonleaf.txt")
    expect(page.locator("#rq-articles")).to_contain_text("Moonleaf Tea Cooperative")
    shots(page, "articles")

    page.get_by_role("tab", name="Ask").click()
    about_it = _ask(page, "Who founded the Moonleaf tea cooperative?")
    expect(about_it).to_contain_text("twelve farmers")
    expect(about_it.locator('a[href="#source-1"]')).to_be_visible()
    expect(page.locator("#source-1")).to_contain_text("moonleaf.txt")
    assert page.dialogs == []


def test_an_article_with_script_and_markup_renders_as_text(page, shots):
    from playwright.sync_api import expect

    answer = _ask(page, "What opens the pangolin festival in Zorbania?")
    sources = page.locator("#rq-sources")
    for shown in ("<script>alert(1)</script>", "**bold**", "[a link](javascript:alert(2))"):
        expect(answer).to_contain_text(shown)
        expect(sources).to_contain_text(shown)
    expect(answer).to_contain_text("<img src=x onerror=alert(3)>")
    shots(page, "hostile")
    # No element that could run the article's code exists, so none can run later either.
    assert page.locator("#rq-chat script, #rq-sources script").count() == 0
    assert page.locator("img[src=x], a[href^='javascript']").count() == 0
    handlers = page.evaluate(
        """() => [...document.querySelectorAll('#rq-chat *, #rq-sources *')]
            .flatMap(e => [...e.attributes].filter(a => a.name.startsWith('on'))
            .map(a => `${e.tagName} ${a.name}`))"""
    )
    assert handlers == [], f"event handlers in the rendered answer: {handlers}"
    assert page.dialogs == []


def test_an_uploaded_pdf_answers_with_its_page_and_its_citation_opens_that_page(
    page, tmp_path, shots
):
    from playwright.sync_api import expect

    from documents import write_pdf

    (tmp_path / "uploads").mkdir()
    pdf = write_pdf(tmp_path / "uploads" / "harbour.pdf", HARBOUR_PAGES)
    page.get_by_role("tab", name="Articles").click()
    page.locator("#rq-upload input[type=file]").set_input_files(str(pdf))
    status = page.locator("#rq-upload-status")
    expect(status).to_contain_text("harbour.pdf: added", timeout=ANSWER_MS)
    page.get_by_role("tab", name="Ask").click()

    answer = _ask(page, "What does the Quillhaven lighthouse keeper polish every morning?")
    expect(answer).to_contain_text("brass lamp")
    answer.locator('a[href="#source-1"]').click()
    source = page.locator("#source-1")
    expect(source).to_be_in_viewport()
    expect(source).to_contain_text("harbour.pdf · p. 2")
    expect(source.locator("mark")).to_contain_text("polishes the brass lamp")
    link = source.locator("a.rq-original")
    expect(link).to_have_text("open p. 2")
    href = link.get_attribute("href")
    assert href.endswith("harbour.pdf#page=2")
    shots(page, "pdf-citation")
    with page.expect_popup() as opened:
        link.click()
    assert opened.value.url.endswith("harbour.pdf#page=2")
    base = page.url.split("#")[0].rstrip("/")
    original = page.request.get(base + href.split("#")[0])
    assert original.ok
    assert original.headers["content-type"] == "application/pdf"
    assert original.body() == pdf.read_bytes()
    other = page.request.get(f"{base}/gradio_api/file={ROOT / 'pyproject.toml'}")
    assert other.status == 403, "only cited PDFs are served, never the rest of the disk"


def _ask(page, question):
    """Ask through the page and return the finished answer's message."""
    from playwright.sync_api import expect

    bot = page.locator('#rq-chat [data-testid="bot"]')
    before = bot.count()
    page.locator("#rq-question textarea").fill(question)
    page.locator("#rq-ask").click()
    expect(bot).to_have_count(before + 1, timeout=ANSWER_MS)
    answer = bot.last
    expect(answer.locator('a[href^="#source-"], strong')).not_to_have_count(0, timeout=ANSWER_MS)
    expect(page.locator("#rq-sources .rq-source, #rq-sources .rq-abstain")).not_to_have_count(0)
    return answer
