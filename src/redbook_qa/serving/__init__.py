"""The ways users reach the library: the command line, the chat page and the JSON HTTP API.

Each module imports its framework (Gradio, FastAPI) only when it is used.
"""

from __future__ import annotations
