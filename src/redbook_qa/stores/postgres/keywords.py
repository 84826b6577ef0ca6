"""BM25 in PostgreSQL: term counts per chunk, replaced only for the chunks that changed.

A BM25 score mixes one chunk's counts (``tf``, its length) with corpus-wide figures (a
term's ``df``, the chunk count, the average length). Storing finished scores, as table
version 2 did, tied every posting to the whole corpus: any edit rewrote all of them (~1.2M
rows at 100k chunks). Here a save replaces the postings of the chunks whose BM25 text
changed, moves ``df`` by what those chunks held and hold now, and recomputes the two
corpus figures (``meta.bm25``); a question combines them (:mod:`.reading`) with the
formula of :func:`~redbook_qa.stores.bm25.term_scores`, so scores equal the in-process
:class:`~redbook_qa.stores.bm25.LexicalIndex`'s.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redbook_qa.models import Chunk
from redbook_qa.stores.bm25 import document_terms
from redbook_qa.stores.postgres.schema import Schema
from redbook_qa.text.chunking import embedding_text

if TYPE_CHECKING:
    from redbook_qa.stores.postgres.schema import Conn


@dataclass(frozen=True)
class CorpusStats:
    """The corpus-wide figures of BM25: how many chunks, and their average length in terms."""

    n_docs: int
    avg_length: float

    @classmethod
    def from_json(cls, value: str | None) -> CorpusStats:
        """Read ``meta.bm25`` (absent before a first save: an empty corpus)."""
        if value is None:
            return cls(0, 1.0)
        data = json.loads(value)
        return cls(int(data["n_docs"]), float(data["avg_length"]))


def stale_positions(stored: dict[int, str], hashes: Sequence[str]) -> list[int]:
    """Positions whose BM25 text differs from the stored one: changed, new, or gone.

    ``stored`` maps each stored position to its chunk hash, which names exactly the text
    BM25 counts (the embedded text, see :func:`~redbook_qa.text.chunking.embedding_text`).
    """
    changed = [p for p, digest in enumerate(hashes) if stored.get(p) != digest]
    return changed + sorted(p for p in stored if p >= len(hashes))


def write_keywords(
    conn: Conn, schema: Schema, chunks: Sequence[Chunk], stale: Sequence[int]
) -> int:
    """Replace the postings of the ``stale`` positions of ``chunks``; return rows written."""
    if not stale:
        return 0
    positions = list(stale)
    # df first loses what the stale chunks held, then gains what they hold now.
    conn.execute(
        schema.sql(
            "UPDATE {s}.terms t SET df = t.df - c.n FROM (SELECT term, count(*) AS n "
            "FROM {s}.postings WHERE position = ANY(%s) GROUP BY term) c WHERE t.term = c.term"
        ),
        (positions,),
    )
    conn.execute(schema.sql("DELETE FROM {s}.postings WHERE position = ANY(%s)"), (positions,))
    conn.execute(schema.sql("DELETE FROM {s}.lengths WHERE position = ANY(%s)"), (positions,))
    current = [p for p in positions if p < len(chunks)]
    written = _copy_postings(conn, schema, chunks, current)
    conn.execute(
        schema.sql(
            "INSERT INTO {s}.terms SELECT term, count(*) FROM {s}.postings "
            "WHERE position = ANY(%s) GROUP BY term "
            "ON CONFLICT (term) DO UPDATE SET df = {s}.terms.df + excluded.df"
        ),
        (current,),
    )
    conn.execute(schema.sql("DELETE FROM {s}.terms WHERE df <= 0"))
    row = conn.execute(
        schema.sql("SELECT count(*), coalesce(sum(length), 0) FROM {s}.lengths")
    ).fetchone()
    n_docs, total = (int(row[0]), int(row[1])) if row else (0, 0)
    # total / n equals numpy's mean of the integer lengths, which bm25s takes.
    stats = {"n_docs": n_docs, "avg_length": total / n_docs if n_docs else 1.0}
    schema.write_meta(conn, {"bm25": json.dumps(stats)})
    return written


def _copy_postings(
    conn: Conn, schema: Schema, chunks: Sequence[Chunk], positions: Sequence[int]
) -> int:
    lengths: list[tuple[int, int]] = []
    written = 0
    with conn.cursor() as cursor:
        with cursor.copy(
            schema.sql("COPY {s}.postings (term, position, tf, length) FROM STDIN (FORMAT BINARY)")
        ) as copy:
            copy.set_types(["text", "int4", "int4", "int4"])
            for position in positions:
                terms = document_terms(embedding_text(chunks[position]))
                for term, tf in Counter(terms).items():
                    copy.write_row((term, position, tf, len(terms)))
                    written += 1
                lengths.append((position, len(terms)))
        # One COPY at a time per connection: the lengths follow.
        with cursor.copy(
            schema.sql("COPY {s}.lengths (position, length) FROM STDIN (FORMAT BINARY)")
        ) as copy:
            copy.set_types(["int4", "int4"])
            for row in lengths:
                copy.write_row(row)
    return written
