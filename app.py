"""The Gradio chat page over `seeds/` (run: `make run`, or `python app.py`).

Thin on purpose: the handlers live in `redbook_qa.ui` and are tested without a browser.
Settings come from `REDBOOK_QA_*` variables (e.g. REDBOOK_QA_CORPUS_DIR=my_articles).
"""

from __future__ import annotations

import argparse
import logging

from redbook_qa.ui import launch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback)")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("bm25s", "httpx"):  # one line per index build / per HTTP request
        logging.getLogger(noisy).setLevel(logging.WARNING)
    launch(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
