"""Context to a cited answer: the answerer protocol, the extractive and the generated answerers."""

from __future__ import annotations

from redbook_qa.answering.base import Answerer, StreamingAnswerer, abstention, answer_stream
from redbook_qa.answering.extractive import ExtractiveAnswerer, calibrated_min_support

__all__ = [
    "Answerer",
    "ExtractiveAnswerer",
    "StreamingAnswerer",
    "abstention",
    "answer_stream",
    "calibrated_min_support",
]
