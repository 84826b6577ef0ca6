from __future__ import annotations

import pytest
from pydantic import ValidationError

from redbook_qa.config import Settings


def test_environment_variables_override_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("REDBOOK_QA_INDEX_DIR", str(tmp_path))
    monkeypatch.setenv("REDBOOK_QA_K", "7")
    settings = Settings()
    assert settings.index_dir == tmp_path
    assert settings.k == 7


def test_the_abstention_threshold_defaults_to_the_calibrated_one():
    assert Settings().min_support is None


@pytest.mark.parametrize(
    ("field", "value"), [("k", 0), ("store_schema", "Bad-Name"), ("min_support", 1.5)]
)
def test_out_of_range_settings_are_refused_naming_the_field(field, value):
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})


def test_settings_are_frozen():
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.k = 3  # type: ignore[misc]


def test_every_limit_on_untrusted_input_can_be_raised_from_the_environment(monkeypatch):
    monkeypatch.setenv("REDBOOK_QA_MAX_PDF_PAGES", "5000")
    monkeypatch.setenv("REDBOOK_QA_PARSE_MEMORY_MB", "4096")
    monkeypatch.setenv("REDBOOK_QA_MAX_REQUEST_BYTES", "2000000")
    monkeypatch.setenv("REDBOOK_QA_ALLOWED_HOSTS", "qa.example.com, 10.0.0.5")
    settings = Settings()
    assert settings.read_limits.max_pages == 5_000
    assert settings.read_limits.memory_mb == 4_096
    assert settings.max_request_bytes == 2_000_000
    assert settings.allowed_hosts == ("qa.example.com", "10.0.0.5")
    assert Settings(allowed_hosts=["a.example"]).allowed_hosts == ("a.example",)
