"""Plain text and Markdown: the file is the text, as Python's text mode reads it."""

from __future__ import annotations

from pathlib import Path

from redbook_qa.errors import CorpusError
from redbook_qa.text.loaders.base import Extraction
from redbook_qa.text.loaders.limits import ReadLimits, too_long


class PlainTextLoader:
    """Reads ``.txt`` and ``.md`` as UTF-8 with universal newlines; the title is line one.

    Offsets into the text also hold against the file read the same way, so
    ``open(path, encoding="utf-8").read()[start:end]`` reproduces any citation.
    """

    kind = "text"
    suffixes = (".txt", ".md")

    def load(self, path: Path, *, shown: str, limits: ReadLimits) -> Extraction:
        """Read the file as UTF-8 text.

        Raises:
            CorpusError: The file is not UTF-8, holds NUL bytes (UTF-16, binary), holds more
                than ``limits.max_chars`` characters or cannot be read.
        """
        try:
            with path.open(encoding="utf-8") as handle:
                text = handle.read(limits.max_chars + 1)
        except UnicodeDecodeError as err:
            raise CorpusError(
                f"{shown} is not UTF-8 text ({err.reason} at byte {err.start}); "
                "convert it to UTF-8 or remove it from the corpus folder"
            ) from err
        except FileNotFoundError:
            raise
        except OSError as err:
            raise CorpusError(
                f"cannot read {shown} ({err.strerror}); check its permissions or remove it"
            ) from err
        if "\x00" in text:
            raise CorpusError(
                f"{shown} looks binary (it contains NUL bytes, as UTF-16 text does); "
                "convert it to UTF-8 text or remove it from the corpus folder"
            )
        if len(text) > limits.max_chars:
            raise CorpusError(too_long(shown, limits))
        return Extraction(text=text, title=first_line(text))


def first_line(text: str) -> str:
    """The first non-blank line without Markdown's ``#``: the title of a plain article."""
    line = next((line for line in text.splitlines() if line.strip()), "")
    return line.strip().lstrip("#").strip()
