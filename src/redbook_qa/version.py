"""The package version, kept apart so that any module can read it without the facade."""

from __future__ import annotations

__version__ = "0.1.0"
