"""Run the command line with ``python -m redbook_qa``."""

from __future__ import annotations

import sys

from redbook_qa.serving.cli import main

sys.exit(main())
