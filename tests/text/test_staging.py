"""Staged uploads: a request's files reach the corpus all together or not at all, even when
the process dies (``os._exit``, as ``kill -9`` would leave it) at a point the test picks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from redbook_qa.errors import CorpusError
from redbook_qa.models import Document
from redbook_qa.text.staging import STAGING_DIR, Staging, overlay, recover

from conftest import ROOT, write

# Stages a.md (replacing the corpus's) and b.md (new), dying at the point named in argv[2].
CRASHING_UPLOAD = """
import os, sys
from pathlib import Path
from redbook_qa.text import staging

corpus, point = Path(sys.argv[1]), sys.argv[2]
real_replace = os.replace

def replace(source, target):
    real_replace(source, target)
    if Path(target).name == "COMMIT" and point == "after-journal":
        os._exit(9)
    if Path(target).parent == corpus and point == "after-first-move":
        os._exit(9)

os.replace = replace
with staging.Staging(corpus) as upload:
    upload.add("a.md", b"# A\\nThe new A.\\n")
    upload.add("b.md", b"# B\\nThe new B.\\n")
    if point == "before-commit":
        os._exit(9)
    upload.commit()
"""


def _doc(source: str, text: str = "Text.\n") -> Document:
    return Document(id=source.rsplit(".", 1)[0], title="T", text=text, source=source)


def _files(folder) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    write(folder, "a.md", "# A\nThe old A.\n")
    write(folder, "c.txt", "C\nUntouched.\n")
    return folder


def test_committed_files_move_in_and_staging_leaves_no_trace(corpus):
    with Staging(corpus) as upload:
        assert upload.add("a.md", b"# A\nThe new A.\n") == "updated"
        assert upload.add("b.md", b"# B\nThe new B.\n") == "added"
        assert upload.add("c.txt", b"C\nUntouched.\n") == "unchanged"
        assert _files(corpus)["a.md"] == "# A\nThe old A.\n", "nothing moves before commit"
        upload.commit()
    assert _files(corpus) == {
        "a.md": "# A\nThe new A.\n",
        "b.md": "# B\nThe new B.\n",
        "c.txt": "C\nUntouched.\n",
    }


def test_leaving_without_a_commit_leaves_the_corpus_as_it_was(corpus):
    before = _files(corpus)

    def upload_whose_index_build_fails():
        with Staging(corpus) as upload:
            upload.add("b.md", b"# B\nThe new B.\n")
            raise RuntimeError("the index build failed")

    with pytest.raises(RuntimeError):
        upload_whose_index_build_fails()
    assert _files(corpus) == before
    assert not (corpus / STAGING_DIR).exists()


@pytest.mark.faults
@pytest.mark.parametrize(
    ("point", "expected_a", "has_b"),
    [
        ("before-commit", "# A\nThe old A.\n", False),
        ("after-journal", "# A\nThe new A.\n", True),
        ("after-first-move", "# A\nThe new A.\n", True),
    ],
)
def test_a_crash_at_any_point_leaves_the_old_corpus_or_the_whole_upload(
    corpus, point, expected_a, has_b
):
    run = subprocess.run(
        [sys.executable, "-c", CRASHING_UPLOAD, str(corpus), point],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src")},
        check=False,
    )
    assert run.returncode == 9, f"the upload should have died at {point}: {run.stderr}"
    assert (corpus / STAGING_DIR).is_dir(), "the crash left its staging folder"
    recover(corpus)
    files = _files(corpus)
    assert files["a.md"] == expected_a
    assert ("b.md" in files) == has_b
    assert files["c.txt"] == "C\nUntouched.\n"
    assert not (corpus / STAGING_DIR).exists()


def test_recovery_leaves_an_upload_in_progress_alone(corpus):
    with Staging(corpus) as upload:
        upload.add("b.md", b"# B\nThe new B.\n")
        assert recover(corpus) == []  # another reader of the folder, meanwhile
        assert (upload.root / "files" / "b.md").is_file()
        upload.commit()
    assert "b.md" in _files(corpus)


def test_an_upload_replaces_its_namesake_and_refuses_to_share_an_article_id():
    corpus = [_doc("a.md", "Old.\n"), _doc("c.txt")]
    merged = overlay(corpus, [_doc("a.md", "New.\n"), _doc("b.md")])
    assert [(d.source, d.text) for d in merged] == [
        ("a.md", "New.\n"),
        ("b.md", "Text.\n"),
        ("c.txt", "Text.\n"),
    ]
    with pytest.raises(CorpusError, match=r"c\.md would give the article id 'c', which c\.txt"):
        overlay(corpus, [_doc("c.md")])
    with pytest.raises(CorpusError, match=r"d\.txt would give the article id 'd', which d\.md"):
        overlay(corpus, [_doc("d.md"), _doc("d.txt")])
    with pytest.raises(CorpusError, match="named alike"):
        overlay(corpus, [_doc("e.md"), _doc("e.md")])
