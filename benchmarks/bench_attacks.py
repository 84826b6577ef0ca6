"""The eight attacks of issue #24 at full size, against a real page and API on loopback.

Starts ``python app.py`` and ``redbook-qa api --auth`` over a copy of the seeds with the
default limits, then for each attack records what the attacker sees, how long the refusal
took, and the peak memory of the server and of its file reader (sampled every 20 ms), and
checks that the page still answers and the corpus and index are unchanged. Uploads and
votes go through the page in Chromium (playwright), as a person's would; bodies and headers
through raw HTTP. Prints a markdown table. Run (dev extra, Debian's chromium):
``python benchmarks/bench_attacks.py``; ``--only 1,5`` runs some of them.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import free_port, stop, wait_until_up  # noqa: E402
from documents import (  # noqa: E402
    write_docx_bomb,
    write_flate_bomb_pdf,
    write_page_tree_pdf,
)

QUESTION = "Why did users pick Xiaohongshu?"
AUTH = "Basic YWxpY2U6czNjcmV0"  # alice:s3cret
SEED = sorted((ROOT / "seeds").glob("*.txt"))[0]


class Peak:
    """Samples a process's RSS and its descendants' (the file reader and its child)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.server = self.children = 0
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def reset(self) -> None:
        self.server = self.children = 0
        self.sample()

    def sample(self) -> None:
        with contextlib.suppress(psutil.Error):
            self.server = max(self.server, self.process.memory_info().rss)
            rss = 0
            for kid in self.process.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    rss = max(rss, kid.memory_info().rss)
            self.children = max(self.children, rss)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.sample()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="1,2,3,4,5,6,7,8")
    args = parser.parse_args()
    wanted = {int(n) for n in args.only.split(",")}
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp))
        try:
            for number, case in CASES.items():
                if number in wanted:
                    case(bench)
        finally:
            bench.close()
        print(
            "| # | attack | limit (setting) | the attacker sees | time to refusal | "
            "peak RSS: server / file reader | page answers after | corpus and index |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for row in bench.rows:
            print("| " + " | ".join(str(cell) for cell in row) + " |")


class Bench:
    """The two servers over a copy of the seeds, a browser on the page, and the results."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.rows = tmp, []
        self.corpus, self.index = tmp / "corpus", tmp / "index"
        shutil.copytree(ROOT / "seeds", self.corpus)
        self.env = {
            **os.environ,
            "REDBOOK_QA_CORPUS_DIR": str(self.corpus),
            "REDBOOK_QA_INDEX_DIR": str(self.index),
            "HF_HUB_OFFLINE": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
        }
        self.env.pop("REDBOOK_QA_AUTH", None)
        self._start_page()
        self.api_port = free_port()
        command = [sys.executable, "-m", "redbook_qa", "api", "--port"]
        self.api = self._spawn([*command, str(self.api_port), "--auth", "alice:s3cret"], "api")
        try:
            wait_until_up(f"http://127.0.0.1:{self.api_port}/docs", self.api, tmp / "api.log", 300)
        except BaseException:
            self.close()
            raise
        self.api_peak = Peak(self.api.pid)

    def _spawn(self, command: list[str], name: str) -> subprocess.Popen[bytes]:
        with (self.tmp / f"{name}.log").open("ab") as log:
            return subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def _start_page(self) -> None:
        from playwright.sync_api import sync_playwright

        self.page_port = free_port()
        app = [sys.executable, str(ROOT / "app.py"), "--port", str(self.page_port)]
        self.app = self._spawn(app, "page")
        self.url = f"http://127.0.0.1:{self.page_port}/"
        wait_until_up(self.url, self.app, self.tmp / "page.log", 300)
        self.peak = Peak(self.app.pid)
        if not hasattr(self, "playwright"):
            self.playwright = sync_playwright().start()
            self.browser = self.playwright.chromium.launch(
                executable_path=shutil.which("chromium"), args=["--no-sandbox"]
            )
        self.tab = self.browser.new_page()
        self.tab.goto(self.url)
        self.tab.locator("#rq-question textarea").wait_for(timeout=60_000)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.browser.close()
            self.playwright.stop()
        for process in (self.app, self.api):
            stop(process)

    def state(self) -> tuple[dict[str, int], str]:
        files = {p.name: p.stat().st_size for p in self.corpus.iterdir()}
        current = (self.index / "CURRENT").read_text(encoding="utf-8").strip()
        return files, current

    def upload(self, *paths: Path) -> tuple[str, float]:
        from playwright.sync_api import expect

        self.tab.get_by_role("tab", name="Articles").click()
        status = self.tab.locator("#rq-upload-status")
        started = time.perf_counter()
        self.tab.locator("#rq-upload input[type=file]").set_input_files([str(p) for p in paths])
        expect(status).to_contain_text(f"{paths[-1].name}", timeout=600_000)  # this upload's
        seconds = time.perf_counter() - started
        text = status.inner_text()
        self.tab.get_by_role("tab", name="Ask").click()
        return text, seconds

    def answers(self) -> str:
        from gradio_client import Client

        client = Client(self.url, verbose=False)
        _, sources, *_ = client.predict(QUESTION, [], 5, False, api_name="/ask")
        return "yes" if 'id="source-1"' in sources else "NO"

    def record(self, number, attack, limit, seen, seconds, before, *, api=False) -> None:
        peak = self.api_peak if api else self.peak
        peak.sample()
        rss = f"{peak.server / 2**20:,.0f} / {peak.children / 2**20:,.0f} MiB"
        same = "unchanged" if self.state() == before else "CHANGED"
        took = f"{seconds:.2f} s" if seconds is not None else "—"
        self.rows.append(
            [number, attack, limit, seen.replace("\n", " ")[:220], took, rss, self.answers(), same]
        )
        print(self.rows[-1], flush=True)


def case_1(bench: Bench) -> None:
    for size, label in ((100_000_000, "100 MB"), (1_000_000_000, "1 GB")):
        bomb = write_flate_bomb_pdf(bench.tmp / f"bomb-{label[:-3]}.pdf", size)
        before = bench.state()
        bench.peak.reset()
        seen, seconds = bench.upload(bomb)
        attack = f"PDF of {bomb.stat().st_size / 1e6:.2f} MB, one stream inflating to {label}"
        bench.record(1, attack, "1,024 MB (`parse_memory_mb`)", seen, seconds, before)


def case_2(bench: Bench) -> None:
    clash = bench.tmp / "in" / f"{SEED.stem}.md"
    clash.parent.mkdir(exist_ok=True)
    clash.write_text("# Clash\n\nSame article id as a seed.\n", encoding="utf-8")
    bomb = write_flate_bomb_pdf(bench.tmp / "in" / "bomb.pdf", 1_000_000_000)
    before = bench.state()
    bench.peak.reset()
    seen, seconds = bench.upload(clash, bomb)
    bench.record(
        2,
        ".md taking a seed's id + the 1 GB PDF, one upload",
        "all or nothing",
        seen,
        seconds,
        before,
    )
    # kill -9 while an upload is staged, then start again.
    good = [bench.tmp / "in" / f"{name}.md" for name in ("apples", "zebras")]
    for path in good:
        path.write_text(f"# {path.stem}\n\n{path.stem.title()} are in this article.\n", "utf-8")
    bench.tab.get_by_role("tab", name="Articles").click()
    bench.tab.locator("#rq-upload input[type=file]").set_input_files([str(p) for p in good])
    staging = bench.corpus / ".staging"
    deadline = time.monotonic() + 300
    while not staging.exists() and time.monotonic() < deadline:
        time.sleep(0.002)
    os.kill(bench.app.pid, signal.SIGKILL)
    bench.app.wait()
    time.sleep(1)  # the reader process ends when it sees its server gone
    orphans = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if "reader_process import serve" in " ".join(p.info["cmdline"] or [])
    ]
    files = sorted(p.name for p in bench.corpus.iterdir() if p.is_file())
    ask = subprocess.run(
        [sys.executable, "-m", "redbook_qa", "ask", QUESTION],
        env=bench.env,
        capture_output=True,
        text=True,
        check=False,
    )
    after = sorted(p.name for p in bench.corpus.iterdir() if p.is_file())
    seen = (
        f"killed with .staging present; files {files}; `redbook-qa ask` exit {ask.returncode}; "
        f"after: {after}; reader processes left: {len(orphans)}"
    )
    bench._start_page()
    bench.rows.append(
        [
            2,
            "kill -9 of the page during an upload",
            "journal + staging",
            seen,
            "—",
            "—",
            bench.answers(),
            "old or whole upload",
        ]
    )
    print(bench.rows[-1], flush=True)


def case_3(bench: Bench) -> None:
    for levels in (6, 5):
        tree = write_page_tree_pdf(bench.tmp / f"tree{levels}.pdf", levels)
        before = bench.state()
        bench.peak.reset()
        seen, seconds = bench.upload(tree)
        attack = f"{tree.stat().st_size:,}-byte PDF, page tree of {10**levels:,} pages"
        bench.record(3, attack, "2,000 pages (`max_pdf_pages`)", seen, seconds, before)
    text = write_page_tree_pdf(bench.tmp / "text3.pdf", 3, lines=450)  # 1,000 pages of 20k
    before = bench.state()
    bench.peak.reset()
    seen, seconds = bench.upload(text)
    attack = f"{text.stat().st_size:,}-byte PDF, 1,000 pages of 20,000 characters"
    bench.record(3, attack, "10M characters (`max_document_chars`)", seen, seconds, before)


def case_4(bench: Bench) -> None:
    import docx

    long = bench.tmp / "long.docx"
    document = docx.Document()
    for _ in range(13_000):
        document.add_paragraph("A paragraph repeated to make a long article. " * 22)
    document.save(str(long))
    empty20 = write_docx_bomb(bench.tmp / "empty20.docx", 9_990_000)
    empty200 = write_docx_bomb(bench.tmp / "empty200.docx", 200_000_000)
    page = bench.tmp / "page.html"
    with page.open("wb") as out:
        out.write(b"<html><body>")
        for _ in range(45_000):
            out.write(b"<p>" + b"Filler text of a saved page. " * 34 + b"</p>\n")
        out.write(b"</body></html>")
    cases = [
        (long, "13M characters of text", "10M characters (`max_document_chars`)"),
        (empty20, "10 MB of empty paragraphs", "10 MB an XML part (`max_docx_part_bytes`)"),
        (empty200, "200 MB of empty paragraphs", "10 MB an XML part (`max_docx_part_bytes`)"),
        (page, "web page", "10 MB (`max_html_bytes`)"),
    ]
    for path, what, limit in cases:
        before = bench.state()
        bench.peak.reset()
        seen, seconds = bench.upload(path)
        size = f"{path.stat().st_size / 1e3:,.0f} KB"
        bench.record(4, f"{path.suffix} of {size}: {what}", limit, seen, seconds, before)


def _declared(port: int, path: str, size: int, headers: dict[str, str]) -> tuple[str, float]:
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.putrequest("POST", path)
    for key, value in {**headers, "Content-Length": str(size)}.items():
        connection.putheader(key, value)
    connection.endheaders()
    with contextlib.suppress(OSError):  # send the body, as curl would, until refused
        chunk = b"x" * 1_048_576
        sock = connection.sock
        for _ in range(size // len(chunk)):
            if select.select([sock], [], [], 0)[0]:
                break
            sock.sendall(chunk)
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    return f"{response.status} {json.loads(body)['detail'][:120]}", time.perf_counter() - started


def _streamed(port: int, path: str, total: int) -> tuple[str, float, int]:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=600) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk, sent = b"x" * 65_536, 0
        with contextlib.suppress(OSError):
            while sent < total and not select.select([sock], [], [], 0)[0]:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        reply = sock.recv(65_536).decode("latin-1").split("\r\n")[0]
    return reply, time.perf_counter() - started, sent


def case_5(bench: Bench) -> None:
    json_headers = {"Content-Type": "application/json"}
    for name, port, path, api in (
        ("API", bench.api_port, "/ask", True),
        ("page", bench.page_port, "/gradio_api/queue/join", False),
    ):
        for size in (300_000_000, 1_000_000_000):
            before = bench.state()
            (bench.api_peak if api else bench.peak).reset()
            seen, seconds = _declared(port, path, size, json_headers)
            attack = f"POST {path} ({name}), {size / 1e6:,.0f} MB body, no login"
            bench.record(5, attack, "1 MB (`max_request_bytes`)", seen, seconds, before, api=api)
        before = bench.state()
        (bench.api_peak if api else bench.peak).reset()
        results = []
        threads = [
            threading.Thread(
                target=lambda p=port, u=path, out=results: out.append(_streamed(p, u, 300 << 20))
            )
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seen = "; ".join(f"{r[0]} after {r[2] / 2**20:.1f} MiB sent" for r in results)
        seconds = max(r[1] for r in results)
        attack = f"4 parallel chunked 300 MB bodies to {path} ({name})"
        bench.record(5, attack, "1 MB (`max_request_bytes`)", seen, seconds, before, api=api)


def case_6(bench: Bench) -> None:
    for name, port, path, api in (
        ("API", bench.api_port, "/health", True),
        ("page", bench.page_port, "/", False),
        ("page", bench.page_port, "/gradio_api/upload", False),
    ):
        before = bench.state()
        seen = []
        for method, headers in (
            ("GET", {"Host": f"attacker.example:{port}", "Authorization": AUTH}),
            (
                "OPTIONS",
                {"Origin": "http://attacker.example", "Access-Control-Request-Method": "GET"},
            ),
            ("POST", {"Origin": "http://attacker.example", "Authorization": AUTH}),
        ):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request(method, path, headers=headers)
            response = connection.getresponse()
            allow = response.getheader("access-control-allow-origin") or "none"
            seen.append(f"{method} {response.status} (ACAO {allow})")
            response.read()
            connection.close()
        attack = f"forged Host / foreign Origin on {path} ({name})"
        bench.record(
            6, attack, "loopback names (`allowed_hosts`)", "; ".join(seen), None, before, api=api
        )


def case_7(bench: Bench) -> None:
    from gradio_client import Client

    before = bench.state()
    bench.peak.reset()
    base = bench.peak.process.memory_info().rss
    refused = accepted = 0
    started = time.perf_counter()
    for n in range(40):
        client = Client(bench.url, verbose=False)
        size = 5_000_000 if n < 20 else 900_000  # over, then just under the body limit
        try:
            client.predict("why " * (size // 4), [], 5, False, api_name="/ask")
            accepted += 1
        except Exception:  # gradio_client raises on the 413
            refused += 1
    seconds = time.perf_counter() - started
    grown = (bench.peak.process.memory_info().rss - base) / 2**20
    seen = (
        f"{refused} of 20 five-MB questions refused (413), {accepted} of 20 900-KB questions "
        f"answered, cut to 2,000 characters; server RSS {grown:+.0f} MiB after 40 sessions"
    )
    bench.record(
        7,
        "40 new sessions asking 5 MB / 900 KB questions",
        "1 MB body, 2,000 chars (`max_question_chars`), 1,000 sessions",
        seen,
        seconds,
        before,
    )


def case_8(bench: Bench) -> None:
    from playwright.sync_api import expect

    before = bench.state()
    feedback = bench.index / "feedback.jsonl"
    had = feedback.stat().st_size if feedback.exists() else 0
    bot = bench.tab.locator('#rq-chat [data-testid="bot"]')
    count = bot.count()
    bench.tab.locator("#rq-question textarea").fill("why did users pick Xiaohongshu? " * 31_000)
    bench.tab.locator("#rq-ask").click()
    expect(bot).to_have_count(count + 1, timeout=300_000)
    chat = bench.tab.locator("#rq-chat")
    started = time.perf_counter()
    for n in range(20):
        chat.get_by_role("button", name="Dislike" if n % 2 else "Like").last.click()
        bench.tab.wait_for_timeout(300)
    seconds = time.perf_counter() - started
    data = feedback.read_bytes()[had:] if feedback.exists() else b""
    records = data.decode("utf-8").splitlines()
    seen = (
        f"{len(records)} records kept of 20 clicks, {len(data):,} bytes appended in all; "
        f"page says: {bench.tab.locator('#rq-feedback').inner_text()}"
    )
    bench.record(
        8,
        "a 1 MB question, then 👍/👎 clicked 20 times",
        "3 votes an answer, 64 KB a record, 50 MB a file",
        seen,
        seconds,
        before,
    )


CASES = {1: case_1, 2: case_2, 3: case_3, 4: case_4, 5: case_5, 6: case_6, 7: case_7, 8: case_8}


if __name__ == "__main__":
    main()
