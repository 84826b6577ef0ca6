"""Search terms: lowercased, stopword-free, Snowball-stemmed words; CJK as bigrams (pure)."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from redbook_qa.text.cjk import CJK_RUN

if TYPE_CHECKING:
    pass


_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


# Function words and question words: they say how a question is asked, not what about.
STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each even few for
    from further had has have having he her here hers herself him himself his how i if in into
    is it its itself just let me more most my myself no nor not now of off on once only or
    other our ours out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself s t d ll
    re ve m don doesn didn isn aren wasn weren tell say says said according
    """.split()  # noqa: SIM905 - a word list reads best as text
)


@functools.lru_cache(maxsize=1)
def _stemmer() -> object:
    import Stemmer

    return Stemmer.Stemmer("english")


def analyze(text: str) -> list[str]:
    """Turn text into search terms: lowercased, stopwords dropped, Snowball-stemmed.

    CJK runs, which carry no spaces, become overlapping character bigrams.
    """
    words: list[str] = []
    for token in _TOKEN.findall(text.lower()):
        if CJK_RUN.fullmatch(token):
            words.extend(token[i : i + 2] for i in range(max(1, len(token) - 1)))
        elif token not in STOPWORDS and (len(token) > 1 or token.isdigit()):
            words.append(token)
    ascii_words = [w for w in words if not CJK_RUN.match(w)]
    stems = iter(_stemmer().stemWords(ascii_words))  # type: ignore[attr-defined]
    return [w if CJK_RUN.match(w) else next(stems) for w in words]
