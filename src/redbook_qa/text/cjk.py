"""Chinese, Japanese and Korean characters: one range, and the tests made of it (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from redbook_qa.models import Chunk

# CJK Unified Ideographs (with extension A) and the compatibility block.
CJK_CHARS = "\u3400-\u9fff\uf900-\ufaff"
CJK = re.compile(f"[{CJK_CHARS}]")
CJK_RUN = re.compile(f"[{CJK_CHARS}]+")


def has_cjk(text: str) -> bool:
    """Say whether ``text`` contains Chinese characters."""
    return bool(CJK.search(text))


def is_cjk_char(char: str) -> bool:
    """Say whether one character is a CJK ideograph."""
    return bool(CJK.fullmatch(char))


def is_cjk_corpus(chunks: Sequence[Chunk]) -> bool:
    """Say whether the articles are mostly Chinese (over a third of chunks hold some)."""
    cjk = sum(1 for c in chunks if CJK.search(c.text))
    return bool(chunks) and cjk * 3 > len(chunks)
