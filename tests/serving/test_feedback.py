from __future__ import annotations

import json
import threading

import pytest

from redbook_qa.errors import LimitError
from redbook_qa.models import Citation
from redbook_qa.serving.feedback import Feedback, FeedbackLog


def _feedback(rating="up", question="Who makes Labubu?"):
    citation = Citation(
        number=1, source="a.txt", title="A", section="S", text="Pop Mart.", start=3, end=12,
        score=0.5,
    )  # fmt: skip
    return Feedback(
        question=question,
        searched_for=question,
        answer_markdown="Pop Mart. [1]",
        citations=(citation,),
        rating=rating,
        mode="extractive",
    )


def test_records_are_appended_as_json_lines_and_read_back(tmp_path):
    log = FeedbackLog(tmp_path / "deep" / "feedback.jsonl")
    assert log.read() == []
    log.append(_feedback("up"))
    log.append(_feedback("down", "Why?"))
    lines = log.path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert set(first) == {
        "time", "question", "searched_for", "answer_markdown", "citations", "rating", "mode",
    }  # fmt: skip
    assert first["citations"][0]["text"] == "Pop Mart."
    assert [f.rating for f in log.read()] == ["up", "down"]


@pytest.mark.faults
def test_concurrent_appends_never_interleave(tmp_path):
    log = FeedbackLog(tmp_path / "feedback.jsonl")
    long_question = "why " * 5_000  # bigger than one pipe buffer

    def write_five():
        for _ in range(5):
            log.append(_feedback(question=long_question))

    threads = [threading.Thread(target=write_five) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = log.read()
    assert len(records) == 20
    assert all(r.question == long_question for r in records)


def test_a_record_over_the_size_limit_is_refused_and_nothing_written(tmp_path):
    log = FeedbackLog(tmp_path / "feedback.jsonl")
    with pytest.raises(LimitError, match=r"too long to keep as feedback \([\d,]+ bytes, at most"):
        log.append(_feedback(question="why " * 20_000))
    assert log.read() == []


def test_the_file_stops_growing_at_its_limit_and_says_what_to_do(tmp_path):
    record = _feedback()
    size = len(record.model_dump_json()) + 1
    log = FeedbackLog(tmp_path / "feedback.jsonl", max_bytes=3 * size + size // 2)
    for _ in range(3):
        log.append(record)
    with pytest.raises(LimitError, match=r"reached its [\d,]+-byte limit; move it away"):
        log.append(record)
    assert len(log.read()) == 3
    assert log.path.stat().st_size == 3 * size
