"""Ingest the deterministic bad-input corpus (issue 20 section 7): no traceback, every bad
input rejected with its reason, every good one ingested, nothing outside the source
opened, no identifying value anywhere in the output."""
from __future__ import annotations

import pytest
from bad_corpus import build_corpus, run_corpus


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    c = build_corpus(tmp_path_factory.mktemp("corpus"))
    return c, run_corpus(c, tmp_path_factory.mktemp("corpus_out"))


def test_corpus_is_deterministic(tmp_path, corpus_run):
    c, _ = corpus_run
    again = build_corpus(tmp_path / "again")
    assert again.cases == c.cases
    for p in sorted((c.root / "folder").rglob("*")):
        q = tmp_path / "again" / p.relative_to(c.root)
        if p.is_file() and not p.is_symlink():  # the same bytes, but for the absolute paths of traversal rows
            a = p.read_bytes().replace(str(c.root).encode(), b"ROOT")
            assert q.read_bytes().replace(str(tmp_path / "again").encode(), b"ROOT") == a, p


def test_corpus_no_traceback_no_escape_no_leak(corpus_run):
    c, run = corpus_run
    assert run.tracebacks == {}
    assert run.opened_outside == []
    assert run.leaked == []
    assert run.mismatches == [], "\n".join(run.mismatches)
    counts = run.counts(c.cases)
    assert {k for k in counts} >= {"good", "corrupt", "empty", "text_as_image", "bomb", "odd_mode", "dicom", "junk",
                                   "label_row", "traversal_symlink", "identifier_in_name", "synthetic"}
    assert counts["good"]["ingested"] == counts["good"]["inputs"] >= 10
    assert counts["bomb"]["rejected"] == 5
