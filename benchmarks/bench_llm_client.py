"""Per-call overhead of the LLM client against a local fake OpenAI-compatible server.

Run it on two trees to compare clients (the server answers instantly, so only the client's
own cost is left):

    PYTHONPATH=src python benchmarks/bench_llm_client.py
    git worktree add /tmp/old d75d3b0
    PYTHONPATH=/tmp/old/src python benchmarks/bench_llm_client.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HI = [{"role": "user", "content": "Say hi"}]
COMPLETION = json.dumps({"choices": [{"message": {"role": "assistant", "content": "Hello!"}}]})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers offer
    disable_nagle_algorithm = True  # as uvicorn does; else delayed ACKs add 40 ms a call

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for piece in ["a "] * 8:
                chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.close_connection = True
            return
        data = COMPLETION.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _per_call_ms(call, n: int) -> float:
    call()  # warm up: imports, first connection
    started = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - started) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="calls per measurement")
    args = parser.parse_args()
    timing = (
        "import time; t = time.perf_counter(); import redbook_qa.llm.client as c; "
        "c.OpenAICompatibleClient('http://127.0.0.1:1/v1'); print(time.perf_counter() - t)"
    )
    run = subprocess.run([sys.executable, "-c", timing], capture_output=True, text=True, check=True)
    import_s = float(run.stdout)

    from redbook_qa.llm.client import OpenAICompatibleClient

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = OpenAICompatibleClient(f"http://127.0.0.1:{server.server_address[1]}/v1")
    complete = _per_call_ms(lambda: client.complete(HI), args.n)
    stream = _per_call_ms(lambda: list(client.stream(HI)), args.n)
    server.shutdown()
    print("| client | complete ms/call | 8-piece stream ms/call | import + build s |")
    print("| --- | --- | --- | --- |")
    where = OpenAICompatibleClient.__module__ + " from " + sys.modules["redbook_qa"].__file__
    print(f"| {where} | {complete:.2f} | {stream:.2f} | {import_s:.2f} |")


if __name__ == "__main__":
    main()
