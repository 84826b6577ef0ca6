"""Readers that misbehave on purpose, for the reader process to run in its child.

Each fails in one way at a point the test controls, so a test never depends on how fast or
how large a real parser's failure is on this machine.
"""

from __future__ import annotations

import os
import time


def abort(path, *, name, limits):
    """Die as PDFium does when an allocation fails: SIGABRT, no exception."""
    os.abort()


def allocate(path, *, name, limits):
    """Ask for four times the memory the reader may take."""
    return bytearray(4 * limits.memory_mb * 2**20)


def spin(path, *, name, limits):
    """Never return."""
    while True:
        time.sleep(3600)


def lack_a_module(path, *, name, limits):
    """Fail as a loader whose optional dependency is missing."""
    raise ImportError('reading PDF files needs the "pypdfium2" package: pip install "x[docs]"')


def trip(path, *, name, limits):
    """Raise a parser's own error, as lxml's XPathEvalError would."""
    raise KeyError("w:p")


def greet(path, *, name, limits):
    """Read nothing; say who asked, in this child's process id."""
    return f"{name} read in process {os.getpid()}"
