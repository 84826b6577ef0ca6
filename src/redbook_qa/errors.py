"""Exceptions raised by redbook_qa.

Hierarchy::

    RedbookQAError                      catch this to catch everything we raise
    ├── CorpusError (ValueError)        no readable documents, undecodable or unsupported file
    ├── IndexNotFoundError (FileNotFoundError)
    │                                   missing index directory or one of its files
    ├── IndexMismatchError              saved manifest disagrees with the embedder or format
    ├── IndexCorruptError               an index file exists but cannot be read back
    ├── IndexLockedError                another process is writing the same index
    └── ContextBudgetError (ValueError) the token budget cannot hold even one passage

Each message says what happened, shows the offending value and says what to do next.
"""

from __future__ import annotations


class RedbookQAError(Exception):
    """Base class of every error redbook_qa raises on purpose."""


class CorpusError(RedbookQAError, ValueError):
    """A corpus file or folder cannot be turned into documents."""


class IndexNotFoundError(RedbookQAError, FileNotFoundError):
    """The index directory, or a file it needs, does not exist."""


class IndexMismatchError(RedbookQAError):
    """The saved index was built with another model, dimension or format."""


class IndexCorruptError(RedbookQAError):
    """An index file exists but its content is truncated or unreadable."""


class IndexLockedError(RedbookQAError):
    """Another process holds the write lock of the index directory."""


class ContextBudgetError(RedbookQAError, ValueError):
    """The context token budget is too small to hold a single passage."""
