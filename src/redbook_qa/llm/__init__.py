"""Language models for generated answers: an OpenAI-compatible client, the bundled model."""

from __future__ import annotations

from redbook_qa.llm.client import LLMClient, OpenAICompatibleClient

__all__ = ["LLMClient", "OpenAICompatibleClient"]
