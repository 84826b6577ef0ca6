from __future__ import annotations

import pytest

from redbook_qa.errors import CorpusError
from redbook_qa.text.corpus import load_corpus
from redbook_qa.text.uploads import (
    MAX_UPLOAD_BYTES,
    Article,
    read_upload,
    safe_name,
    save_article,
)


def _file(tmp_path, name, data: bytes):
    path = tmp_path / "upload" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("notes.txt", "notes.txt"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\ann\\Report.MD", "Report.md"),
        (".hidden.md", "hidden.md"),
        ("my <notes>;rm -rf.txt", "my _notes_rm -rf.txt"),
        ("a/<b>x</b>.md", "b.md"),
        ("小红书.txt", "小红书.txt"),
    ],
)
def test_upload_names_are_reduced_to_a_safe_base_name(name, expected):
    assert safe_name(name) == expected


@pytest.mark.parametrize("name", ["...", "../", "<>.txt"])
def test_a_name_with_nothing_usable_is_refused(name):
    with pytest.raises(CorpusError, match="rename it"):
        safe_name(name)


def test_text_and_markdown_are_kept_without_bom_and_with_unix_line_ends(tmp_path):
    path = _file(tmp_path, "a.txt", "\ufeffTitle\r\nBody line.\r\n".encode())
    assert read_upload(path) == Article(name="a.txt", text="Title\nBody line.\n")


@pytest.mark.parametrize("name", ["photo.png", "report.odt", "README"])
def test_other_types_are_refused_with_the_allowed_ones_named(tmp_path, name):
    with pytest.raises(CorpusError, match=r"only \.txt, \.md, \.html, \.htm, \.pdf, \.docx files"):
        read_upload(_file(tmp_path, name, b"x"))


def test_a_file_that_is_not_utf8_is_refused_with_what_to_do(tmp_path):
    path = _file(tmp_path, "latin.txt", "Café\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin\.txt is not UTF-8 .*0xe9.*save it with UTF-8"):
        read_upload(path)


def test_binary_and_empty_files_are_refused(tmp_path):
    with pytest.raises(CorpusError, match="binary"):
        read_upload(_file(tmp_path, "b.txt", b"abc\x00def"))
    with pytest.raises(CorpusError, match="has no text"):
        read_upload(_file(tmp_path, "e.md", b"  \n"))


def test_a_file_over_the_size_cap_is_refused(tmp_path):
    with pytest.raises(CorpusError, match="larger than 1 MB"):
        read_upload(_file(tmp_path, "big.txt", b"a" * (MAX_UPLOAD_BYTES + 1)))


def test_the_given_name_wins_over_the_stored_one(tmp_path):
    path = _file(tmp_path, "tmpab12", b"Title\nText.\n")
    assert read_upload(path, name="dir/Story.TXT").name == "Story.txt"


def test_an_html_upload_is_kept_as_html_and_read_for_its_main_text(tmp_path):
    data = b"<title>Page</title><script>alert(1)</script><p>Words here.</p>"
    article = read_upload(_file(tmp_path, "page.html", data))
    assert (article.name, article.data) == ("page.html", data)
    assert article.text == "Page\nWords here.\n", "the title first, no script"
    corpus = tmp_path / "corpus"
    save_article(article, corpus)
    assert (corpus / "page.html").read_bytes() == data


def test_saving_says_added_updated_or_unchanged_and_the_corpus_reads_it(tmp_path):
    corpus = tmp_path / "corpus"
    article = Article(name="a.txt", text="Title\nFirst text.\n")
    assert save_article(article, corpus) == "added"
    assert save_article(article, corpus) == "unchanged"
    changed = Article(name="a.txt", text="Title\nSecond text.\n")
    assert save_article(changed, corpus) == "updated"
    (doc,) = load_corpus(corpus)
    assert doc.text == "Title\nSecond text.\n"
    assert sorted(p.name for p in corpus.iterdir()) == ["a.txt"], "no temporary file left"
