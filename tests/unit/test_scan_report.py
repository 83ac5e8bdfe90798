"""Scan reports: every format carries the matches, errors, skipped files and totals; HTML is
self-contained, escapes every name and never embeds media; CSV cannot run formulas."""

from __future__ import annotations

import base64
import csv
import io
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amparo.errors import InputError
from amparo.scan import ItemRecord, Problem, ScanResult, format_for, write_report
from amparo.scan.paths import is_text, path_fields, path_from_fields

EVIL = "<script>alert(1)</script>&\"'.jpg"
FORMULA = '=HYPERLINK("http://x")!m.jpg'


def _result() -> ScanResult:
    result = ScanResult(roots=["/evidence"])
    match = {"bank": "known", "entry_id": 7, "signal_type": "pdq", "distance": 3, "category": "c"}
    result.add_record(
        ItemRecord(
            path=f"/evidence/{EVIL}",
            size=10,
            mtime_ns=1,
            media_type="jpeg",
            status="ok",
            matches=[match],
            hashes={"md5": "0" * 32, "pdq": "f" * 64},
        )
    )
    result.add_record(ItemRecord(FORMULA, 5, 1, None, "error", "bad_image", "<b>truncated</b>"))
    result.add_record(ItemRecord("/evidence/fine.jpg", 5, 1, "jpeg", "ok"))
    result.add_problem(Problem("/evidence/empty", "skipped", "empty", "empty file (0 bytes)"))
    return result


def _render(fmt: str) -> str:
    out = io.StringIO()
    write_report(_result(), out, fmt)
    return out.getvalue()


def test_jsonl_has_one_record_per_line_and_the_summary_last():
    records = [json.loads(line) for line in _render("jsonl").splitlines()]
    assert [r["kind"] for r in records] == ["match", "error", "skipped", "summary"]
    assert records[0]["path"] == f"/evidence/{EVIL}" and records[0]["entry_id"] == 7
    assert records[0]["hashes"]["pdq"] == "f" * 64
    assert records[1] == {
        "kind": "error",
        "path": FORMULA,
        "code": "bad_image",
        "message": "<b>truncated</b>",
    }
    assert records[2]["reason"] == "empty file (0 bytes)"
    summary = records[-1]
    assert (summary["files_seen"], summary["hashed"], summary["matched_files"]) == (4, 3, 1)
    assert (summary["errors"], summary["skipped_by_reason"], summary["exit_code"]) == (
        1,
        {"empty": 1},
        1,
    )


def test_csv_rows_for_matches_errors_and_skipped_and_no_formulas():
    rows = list(csv.DictReader(io.StringIO(_render("csv"))))
    # The files first, then the facts about the scan (one a row: name, value).
    assert [r["kind"] for r in rows[:3]] == ["match", "error", "skipped"]
    assert {r["kind"] for r in rows[3:]} == {"summary"}
    assert rows[0]["bank"] == "known" and rows[0]["distance"] == "3" and rows[0]["pdq"] == "f" * 64
    assert rows[1]["path"] == "'" + FORMULA  # a spreadsheet shows it as text
    assert rows[2]["code"] == "empty"


def test_html_is_self_contained_escaped_and_has_no_media():
    page = _render("html")
    lowered = page.lower()
    assert "<img" not in lowered and "data:" not in lowered and "<script" not in lowered
    assert "src=" not in lowered and "href=" not in lowered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#x27;.jpg" in page
    assert "&lt;b&gt;truncated&lt;/b&gt;" in page
    assert "default-src 'none'" in page
    assert "f" * 64 in page and "known" in page


def test_format_from_name_or_flag():
    assert format_for("r.HTML") == "html"
    assert format_for("r.csv") == "csv"
    assert format_for("r.jsonl") == format_for("r.txt") == format_for("") == "jsonl"
    assert format_for("r.csv", "html") == "html"
    with pytest.raises(InputError):
        format_for("r", "xml")


@given(st.binary(min_size=1, max_size=64).filter(lambda b: b"\0" not in b))
@settings(max_examples=300, deadline=None)
def test_any_path_bytes_survive_the_journal_and_the_report(raw: bytes):
    path = os.fsdecode(raw)  # how the walk holds a name: bytes that are not UTF-8 as surrogates
    fields = path_fields(path)
    assert path_from_fields(fields) == path
    assert fields["path"].encode("utf-8")  # always writable text
    assert ("path_b64" in fields) == (not is_text(path))
    if "path_b64" in fields:
        assert base64.b64decode(fields["path_b64"]) == raw
    record = ItemRecord(path, 1, 2, None, "error", "unreadable", f"cannot read {path}")
    line = json.dumps(record.to_json(), ensure_ascii=False).encode("utf-8")
    assert ItemRecord.from_json(json.loads(line)).path == path


def test_a_name_that_is_not_utf8_is_written_in_every_format():
    name = os.fsdecode(b"/evidence/caf\xe9=.jpg")
    result = ScanResult(roots=["/evidence"])
    result.add_record(ItemRecord(name, 5, 1, None, "error", "bad_image", f"bad: {name}"))
    exact = base64.b64encode(b"/evidence/caf\xe9=.jpg").decode()
    for fmt in ("jsonl", "csv", "html"):
        out = io.StringIO()
        write_report(result, out, fmt)
        text = out.getvalue()
        text.encode("utf-8")  # no lone surrogate left: any file or terminal takes it
        if fmt == "jsonl":
            text = json.loads(text.splitlines()[0])["path"]
        assert "/evidence/caf\\xe9=.jpg" in text and (fmt == "jsonl" or exact in text)
    out = io.StringIO()
    write_report(result, out, "csv")
    [row] = [r for r in csv.DictReader(io.StringIO(out.getvalue())) if r["kind"] == "error"]
    assert base64.b64decode(row["path_b64"]) == b"/evidence/caf\xe9=.jpg"


def test_how_a_match_was_found_has_its_own_columns_and_keeps_the_file_path() -> None:
    """A match's ``path`` (how it was found) is ``match_path`` in the report: ``path`` stays
    the file's."""
    result = ScanResult(roots=["/evidence"])
    match = {"bank": "known", "entry_id": 7, "signal_type": "pdq", "distance": 5}
    match |= {"path": "variant", "variant": "crop5-left"}
    result.add_record(
        ItemRecord("/evidence/a.jpg", 10, 1, "jpeg", "ok", matches=[match], hashes={})
    )
    out = io.StringIO()
    write_report(result, out, "jsonl")
    record = json.loads(out.getvalue().splitlines()[0])
    assert record["path"] == "/evidence/a.jpg"
    assert (record["match_path"], record["variant"]) == ("variant", "crop5-left")
    out = io.StringIO()
    write_report(result, out, "csv")
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["path"] == "/evidence/a.jpg"
    assert (row["match_path"], row["variant"], row["transform"]) == ("variant", "crop5-left", "")
