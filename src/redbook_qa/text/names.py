"""Name aliases: groups of names for one thing, mined from the corpus or given by the user.

"RedNote", "XHS" and "小红书" should find what "Xiaohongshu" finds. Aliases expand the keyword
query (all names of a group are searched) and the dense query (the group's first name is
appended, since a small English model may not know the others); canonicalised, a group
counts as one concept when a sentence's coverage of a question is measured.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from redbook_qa.errors import CorpusError
from redbook_qa.text.cjk import CJK_CHARS
from redbook_qa.text.terms import analyze

# "Key Opinion Leaders (KOLs)", "Xiaohongshu (小红书)", "Xiaohongshu (often shortened to X)",
# "Xiaohongshu, or Little Red Book as it's sometimes called".
_NAME = r"[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*){0,4}"

_PATTERNS = (
    re.compile(
        rf"({_NAME})[\"”]?\s+\((?:also known as |often shortened to |aka |or )?"
        rf"([A-Z{CJK_CHARS}][^()\n]{{0,39}})\)"
    ),
    re.compile(
        rf"({_NAME}) \([^()\n]*\),? or ({_NAME}) as it(?:'s|’s| is) (?:sometimes |often )?called"
    ),
    re.compile(rf"({_NAME}),? or ({_NAME}) as it(?:'s|’s| is) (?:sometimes |often )?called"),
)


def mine_aliases(texts: Iterable[str]) -> AliasTable:
    """Find "Name (alias)" and "Name, or Alias as it's called" patterns in corpus texts."""
    table = AliasTable()
    for text in texts:
        for pattern in _PATTERNS:
            for match in pattern.finditer(text):
                names = [g for g in match.groups() if g and analyze(g)]
                if len(names) == 2 and _key(names[0]) != _key(names[1]):
                    table.add(names)
    return table


DEFAULT_ALIASES: tuple[tuple[str, ...], ...] = (
    # Names the press uses for the app that the articles may not spell out.
    ("Xiaohongshu", "小红书", "Little Red Book", "RedNote", "Red Note", "XHS"),
)


class AliasTable:
    """Groups of interchangeable names; the first name of a group is its canonical form."""

    def __init__(self, groups: Iterable[Sequence[str]] = ()) -> None:
        self._groups: list[list[str]] = []
        for group in groups:
            self.add(group)

    def add(self, names: Sequence[str]) -> None:
        """Add a group, merging it into an existing group that shares a name."""
        cleaned = [n.strip() for n in names if n.strip()]
        keys = {_key(n) for n in cleaned}
        for group in self._groups:
            if keys & {_key(n) for n in group}:
                group.extend(n for n in cleaned if _key(n) not in {_key(g) for g in group})
                return
        if len(cleaned) >= 2:
            self._groups.append(cleaned)

    @property
    def groups(self) -> list[list[str]]:
        """Return the groups, each a list of names."""
        return [list(g) for g in self._groups]

    def matches(self, text: str) -> list[list[str]]:
        """Return the groups with a name that occurs in ``text`` (as whole terms)."""
        terms = set(analyze(text))
        return [g for g in self._groups if any(_contains(terms, name) for name in g)]

    def expand(self, terms: list[str]) -> list[str]:
        """Add the terms of every name in a group that one of ``terms``' names belongs to."""
        present = set(terms)
        extra: list[str] = []
        for group in self._groups:
            if any(_contains(present, name) for name in group):
                extra.extend(t for name in group for t in _key(name) if t not in present)
        return terms + list(dict.fromkeys(extra))

    def canonicalize(self, terms: list[str]) -> list[str]:
        """Replace the terms of any name of a group by the group's canonical term.

        "Little Red Book" and "XHS" then count as one concept, "xiaohongshu", when measuring
        how much of a question a sentence covers, instead of one concept counted many times.
        """
        out = list(terms)
        for group in self._groups:
            canonical = _key(group[0])
            if not canonical:
                continue
            for name in group:
                key = _key(name)
                if key and all(t in out for t in key):
                    out = [t for t in out if t not in key]
                    out.append(canonical[0])
        return list(dict.fromkeys(out))

    def rewrite(self, question: str) -> str:
        """Append the canonical name of each matched group the question doesn't already use."""
        terms = set(analyze(question))
        missing = [g[0] for g in self.matches(question) if not _contains(terms, g[0])]
        return f"{question} ({', '.join(missing)})" if missing else question


def load_aliases(path: Path) -> AliasTable:
    """Read a JSON list of name groups, e.g. ``[["Xiaohongshu", "RedNote", "XHS"]]``."""
    try:
        groups = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CorpusError(f"alias table {path} is unreadable ({err}); fix or remove it") from err
    if not isinstance(groups, list) or not all(
        isinstance(g, list) and all(isinstance(n, str) for n in g) for g in groups
    ):
        raise CorpusError(f"alias table {path} must be a JSON list of lists of names")
    return AliasTable(groups)


@functools.lru_cache(maxsize=4096)
def _key(name: str) -> tuple[str, ...]:
    # Names are analysed once per process, not once per question.
    return tuple(analyze(name))


def _contains(terms: set[str], name: str) -> bool:
    key = _key(name)
    return bool(key) and all(t in terms for t in key)
