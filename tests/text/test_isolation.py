"""Files read in a child process: a reader that crashes, hogs memory or never returns costs
one refused file with a message naming the limit, and the next file reads as usual.

The failures come from readers in ``tests/misbehaving.py`` that fail on purpose at a point
the test controls; the real hostile files are in ``tests/text/test_loaders.py`` and
``tests/test_attacks.py``.
"""

from __future__ import annotations

import os

import pytest

from redbook_qa.errors import CorpusError
from redbook_qa.text.loaders import ReadLimits, extract, isolation
from redbook_qa.text.loaders.choice import extract_here
from redbook_qa.text.loaders.isolation import read_isolated

import misbehaving
from conftest import PATIENCE, write
from documents import write_docx, write_pdf

pytestmark = pytest.mark.faults

# Each test trips one limit: the others are far away, so the one it means always comes first,
# however slowly this machine forks and starts the child.
SMALL = ReadLimits(memory_mb=64, seconds=PATIENCE)
SHORT = ReadLimits(seconds=0.5)


@pytest.fixture
def pdf(tmp_path):
    return write_pdf(tmp_path / "a.pdf", [("Tea", [("Tea", ["Moonleaf tea is picked by hand."])])])


def test_a_file_read_in_the_child_is_what_this_process_would_read(pdf, tmp_path):
    assert extract(pdf) == extract_here(pdf)
    docx = write_docx(tmp_path / "b.docx", "Tea", [("Harvest", ["Picked in spring."])])
    assert extract(docx) == extract_here(docx)


def test_each_file_is_read_in_a_fresh_child_of_another_process(pdf):
    said = read_isolated(misbehaving.greet, pdf, name="a.pdf", limits=ReadLimits())
    again = read_isolated(misbehaving.greet, pdf, name="a.pdf", limits=ReadLimits())
    assert said.startswith("a.pdf read in process ")
    assert said != again, "one child per file"
    assert str(os.getpid()) not in {said.rsplit(" ", 1)[1], again.rsplit(" ", 1)[1]}


def test_a_reader_that_aborts_costs_its_file_only(pdf):
    with pytest.raises(CorpusError, match=r"a\.pdf: this PDF expands past 64 MB .*SIGABRT"):
        read_isolated(misbehaving.abort, pdf, name="a.pdf", limits=SMALL)
    assert "Moonleaf" in extract(pdf).text, "the next file is read as usual"


def test_a_reader_over_its_memory_is_stopped_with_the_limit_named(pdf):
    with pytest.raises(CorpusError, match=r"expands past 64 MB while it is read .*MEMORY_MB"):
        read_isolated(misbehaving.allocate, pdf, name="a.pdf", limits=SMALL)


def test_a_reader_that_never_returns_is_stopped_at_its_deadline(pdf):
    with pytest.raises(CorpusError, match=r"took longer than 0\.5 s.*PARSE_SECONDS"):
        read_isolated(misbehaving.spin, pdf, name="a.pdf", limits=SHORT)
    assert "Moonleaf" in extract(pdf).text


def test_errors_come_back_as_raised_and_a_parsers_own_as_a_corpus_error(pdf):
    with pytest.raises(ImportError, match=r"redbook_qa\[docs\]|x\[docs\]"):
        read_isolated(misbehaving.lack_a_module, pdf, name="a.pdf", limits=ReadLimits())
    with pytest.raises(CorpusError, match=r"a\.pdf cannot be read \(KeyError: 'w:p'\); re-save"):
        read_isolated(misbehaving.trip, pdf, name="a.pdf", limits=ReadLimits())


def test_plain_text_is_read_here_and_a_zip_named_txt_in_a_child(tmp_path, monkeypatch):
    text = write(tmp_path, "a.txt", "Tea\nMoonleaf tea.\n")
    docx = write_docx(tmp_path / "b.docx", "Tea", [("Harvest", ["Picked in spring."])])
    renamed = tmp_path / "b.txt"
    renamed.write_bytes(docx.read_bytes())
    with pytest.raises(CorpusError, match=r"b\.txt is named \.txt but its content is a Word"):
        extract(renamed)

    def no_child(*args, **kwargs):
        raise AssertionError("plain text went to a child")

    monkeypatch.setattr(isolation, "read_isolated", no_child)
    assert extract(text).text == "Tea\nMoonleaf tea.\n"
