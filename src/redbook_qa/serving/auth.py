"""Logins for the page and the API: ``user:password`` from ``--auth`` or ``REDBOOK_QA_AUTH``."""

from __future__ import annotations


def parse_auth(value: str) -> tuple[str, str]:
    """Split ``user:password`` into its two parts.

    Raises:
        ValueError: If either part is missing.
    """
    user, colon, password = value.partition(":")
    if not (colon and user.strip() and password):
        raise ValueError("auth must look like user:password (e.g. --auth alice:s3cret)")
    return user.strip(), password
