"""The Gradio chat page over `seeds/` (run: `make run`, or `python app.py`).

Thin on purpose: the handlers live in `redbook_qa.serving.chat` and are tested without a browser.
Settings come from `REDBOOK_QA_*` variables (e.g. REDBOOK_QA_CORPUS_DIR=my_articles); the
page asks for a login when given `--auth user:password` or REDBOOK_QA_AUTH=user:password.
It is never published through a Gradio share link.
"""

from __future__ import annotations

import argparse
import logging
import os

from redbook_qa.serving.auth import parse_auth
from redbook_qa.serving.ui import launch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument(
        "--auth",
        default=os.environ.get("REDBOOK_QA_AUTH"),
        metavar="USER:PASSWORD",
        help="ask for this login (default: $REDBOOK_QA_AUTH, else no login)",
    )
    parser.add_argument("--feedback", help="JSON Lines file for 👍/👎 (default: in the index dir)")
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name clients use besides loopback (repeatable); other Hosts get a 403",
    )
    args = parser.parse_args()
    try:
        auth = parse_auth(args.auth) if args.auth else None
    except ValueError as err:
        parser.error(str(err))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("bm25s", "httpx"):  # one line per index build / per HTTP request
        logging.getLogger(noisy).setLevel(logging.WARNING)
    launch(
        host=args.host,
        port=args.port,
        auth=auth,
        feedback_path=args.feedback,
        allowed_hosts=args.allowed_host,
    )


if __name__ == "__main__":
    main()
