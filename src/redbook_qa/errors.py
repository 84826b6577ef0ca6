"""Exceptions raised by redbook_qa.

Hierarchy::

    RedbookQAError                      catch this to catch everything we raise
    ├── CorpusError (ValueError)        no readable documents, undecodable or unsupported file
    ├── IndexNotFoundError (FileNotFoundError)
    │                                   missing index directory or one of its files
    ├── IndexMismatchError              saved manifest disagrees with the embedder or format
    ├── IndexCorruptError               an index file exists but cannot be read back
    ├── IndexLockedError                another process is writing the same index
    ├── ContextBudgetError (ValueError) the token budget cannot hold even one passage
    ├── LimitError (ValueError)         a request or record goes past a limit in Settings
    ├── ClusterError (ConnectionError)  a Ray cluster cannot be reached, started or used
    ├── StoreUnavailableError (ConnectionError)
    │                                   PostgreSQL cannot be reached, or its server failed
    └── LLMError                        a language-model server or the bundled model failed
        ├── LLMUnavailableError         unreachable, timed out, or 5xx/429 after retries
        ├── LLMAuthError                the server refused the API key (401/403)
        ├── LLMNotFoundError            wrong URL or model name (404)
        └── LLMResponseError            the server answered, but not with a usable completion

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


class LimitError(RedbookQAError, ValueError):
    """A request, or a record it would store, goes past one of the limits in ``Settings``."""


class ClusterError(RedbookQAError, ConnectionError):
    """A Ray cluster cannot be reached or started, or is too small for the work asked."""


class StoreUnavailableError(RedbookQAError, ConnectionError):
    """The PostgreSQL store cannot be reached or started, or its server failed mid-question."""


class LLMError(RedbookQAError):
    """A language-model server, or the bundled local model, could not produce text."""


class LLMUnavailableError(LLMError):
    """The server cannot be reached, timed out, or kept failing (5xx/429) after retries."""


class LLMAuthError(LLMError):
    """The server refused the request's credentials (HTTP 401 or 403)."""


class LLMNotFoundError(LLMError):
    """The URL or the model name does not exist on the server (HTTP 404)."""


class LLMResponseError(LLMError):
    """The server answered, but with malformed JSON, an unexpected shape or another 4xx."""
