"""Evaluation: the seeds question set, BEIR-layout benchmarks, and the pure metrics behind both."""

from __future__ import annotations
