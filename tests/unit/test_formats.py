"""Hash-list import and export formats: round trips, bad-line reports, mapping, detection.

All hashes here are synthetic (random hex or the signal types' example values).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amparo.banks.formats import (
    FORMATS,
    MAX_PROBLEMS,
    PROJECT_VIC,
    ImportResult,
    detect_format,
    iter_entries,
    read_entries,
    write_entries,
)
from amparo.banks.model import EntryRecord
from amparo.errors import FormatError, InputError, UnknownSignalTypeError

HEX_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64}
MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"

FAST = settings(max_examples=40, deadline=None)

signal_types = st.sampled_from(sorted(HEX_LENGTHS))
plain_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30
)
stripped_text = plain_text.map(str.strip).filter(bool)
tag = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=10)


def _hex(signal_type: str) -> st.SearchStrategy[str]:
    return st.text("0123456789abcdef", min_size=HEX_LENGTHS[signal_type], max_size=64).map(
        lambda s: s[: HEX_LENGTHS[signal_type]]
    )


def _bare(signal_type: str) -> st.SearchStrategy[EntryRecord]:
    return _hex(signal_type).map(lambda h: EntryRecord(signal_type, h))


bare_entry = signal_types.flatmap(_bare)


def _round_trip(fmt: str, entries: list[EntryRecord], **read_options: Any) -> ImportResult:
    buffer = io.StringIO()
    assert write_entries(buffer, fmt, entries) == len(entries)
    buffer.seek(0)
    result = read_entries(buffer, fmt, strict=True, **read_options)
    assert result.problems == []
    return result


def _read(text: str, fmt: str, **options: Any) -> ImportResult:
    return read_entries(io.StringIO(text), fmt, **options)


# --- round trips ---------------------------------------------------------------------------


@FAST
@given(signal_types.flatmap(lambda t: st.tuples(st.just(t), st.lists(_bare(t), max_size=20))))
def test_text_round_trips_one_signal_type(case: tuple[str, list[EntryRecord]]) -> None:
    signal_type, entries = case
    assert _round_trip("text", entries, signal_type=signal_type).entries == entries


@st.composite
def full_entry(draw: st.DrawFn) -> EntryRecord:
    entry = draw(bare_entry)
    entry.category = draw(st.none() | stripped_text)
    entry.tags = draw(st.lists(tag, max_size=4))
    entry.source_id = draw(st.none() | stripped_text)
    entry.note = draw(st.none() | plain_text.filter(bool))
    entry.enabled = draw(st.booleans())
    return entry


@FAST
@given(st.lists(full_entry(), max_size=20))
def test_csv_round_trips_every_field(entries: list[EntryRecord]) -> None:
    assert _round_trip("csv", entries).entries == entries


@FAST
@given(st.lists(bare_entry, max_size=20))
def test_te_round_trips_types_and_hashes(entries: list[EntryRecord]) -> None:
    assert _round_trip("te", entries).entries == entries


@st.composite
def vics_entries(draw: st.DrawFn) -> list[EntryRecord]:
    entries = draw(st.lists(full_entry(), max_size=15))
    for number, entry in enumerate(entries, start=1):
        entry.category = draw(st.none() | st.sampled_from(sorted(set(PROJECT_VIC.values()))))
        entry.source_id = str(number)
        entry.enabled = True
    return entries


@FAST
@given(vics_entries())
def test_vics_round_trips_category_id_tags_and_note(entries: list[EntryRecord]) -> None:
    assert _round_trip("vics", entries).entries == entries


@FAST
@given(st.lists(full_entry(), max_size=10))
def test_raw_category_map_round_trips_numbers(entries: list[EntryRecord]) -> None:
    for number, entry in enumerate(entries):
        entry.category, entry.source_id, entry.enabled = str(number * 7), str(number), True
    buffer = io.StringIO()
    write_entries(buffer, "vics", entries, category_map="raw")
    buffer.seek(0)
    assert read_entries(buffer, "vics", category_map="raw").entries == entries


# --- bad lines -----------------------------------------------------------------------------


def test_text_reports_bad_lines_by_number_and_keeps_the_rest() -> None:
    text = f"# a comment\n\n{MD5}\nnot-a-hash\n  {SHA1.upper()}  \n{'z' * 32}\n"
    result = _read(text, "text")
    assert [e.signal for e in result.entries] == [MD5, SHA1]
    assert [number for number, _ in result.problems] == [4, 6]
    assert result.problem_count == 2
    assert "not a valid md5" in result.problems[1][1]


def test_csv_line_numbers_count_quoted_newlines() -> None:
    text = f'signal_type,signal,note\nmd5,{MD5},"two\nlines"\nmd5,bad\n\nsha1,{SHA1},\n'
    result = _read(text, "csv")
    assert [e.signal for e in result.entries] == [MD5, SHA1]
    assert result.entries[0].note == "two\nlines"
    assert [number for number, _ in result.problems] == [4]


def test_csv_reports_unknown_type_and_bad_enabled() -> None:
    text = f"type,hash,enabled\nphotodna,{MD5},\nmd5,{MD5},maybe\nMD5,{MD5},no\n"
    result = _read(text, "csv")
    assert [number for number, _ in result.problems] == [2, 3]
    assert "unknown signal type" in result.problems[0][1]
    assert result.entries == [EntryRecord("md5", MD5, enabled=False)]


def test_te_reports_unknown_types_and_missing_hashes() -> None:
    text = f"pdq {PDQ}\npqd {PDQ}\npdq\nvideo_md5 {MD5}\n"
    result = _read(text, "te")
    assert [number for number, _ in result.problems] == [2, 3]
    assert [e.signal_type for e in result.entries] == ["pdq", "md5"]


def test_vics_reports_bad_records_by_record_number() -> None:
    doc = {"value": [{"Media": [{"MediaID": 1, "MD5": MD5}, {"MediaID": 2, "MD5": "xyz"}]}]}
    doc["value"].append({"Media": [{"MediaID": 3, "Category": [1], "MD5": MD5}]})
    result = _read(json.dumps(doc), "vics")
    assert [number for number, _ in result.problems] == [2, 3]
    assert len(result.entries) == 1


def test_problem_list_is_capped_but_counted() -> None:
    result = _read("bad\n" * (MAX_PROBLEMS + 5), "text")
    assert len(result.problems) == MAX_PROBLEMS
    assert result.problem_count == MAX_PROBLEMS + 5


@pytest.mark.parametrize(
    ("fmt", "text", "line"),
    [
        ("text", f"{MD5}\n\nnope\n{MD5}\n", 3),
        ("csv", f"signal\n{MD5}\nnope\n", 3),
        ("te", f"md5 {MD5}\nmd5 nope\n", 2),
        ("vics", json.dumps({"value": [{"MD5": MD5}, {"MD5": "nope"}]}), 2),
    ],
)
def test_strict_mode_raises_at_the_first_bad_line(fmt: str, text: str, line: int) -> None:
    with pytest.raises(FormatError) as caught:
        _read(text, fmt, strict=True, source_name="list.txt")
    assert caught.value.problems[0][0] == line
    assert f"{line}" in caught.value.message
    assert "list.txt" in caught.value.message


def test_unreadable_files_raise_whatever_the_mode() -> None:
    with pytest.raises(FormatError, match="header"):
        _read(f"{MD5}\n{MD5}\n", "csv")
    with pytest.raises(FormatError, match="JSON") as caught:
        _read('{"value": [\n{"MD5": ', "vics")
    assert caught.value.problems[0][0] == 2
    with pytest.raises(FormatError, match="VICS"):
        _read('{"cases": 3}', "vics")


def test_unknown_format_and_signal_type_are_input_errors() -> None:
    with pytest.raises(InputError) as caught:
        _read("", "xml")
    assert all(name in str(caught.value) for name in FORMATS)
    with pytest.raises(UnknownSignalTypeError):
        _read(MD5, "text", signal_type="photodna")


# --- the text format's 64-hex ambiguity ----------------------------------------------------


def test_64_hex_text_needs_an_explicit_type() -> None:
    result = _read(f"{PDQ}\n{MD5}\n", "text")
    assert result.entries == [EntryRecord("md5", MD5)]
    assert result.problems[0][0] == 1
    assert "--type pdq" in result.problems[0][1] and "--type sha256" in result.problems[0][1]
    assert _read(f"{PDQ}\n", "text", signal_type="pdq").entries == [EntryRecord("pdq", PDQ)]
    assert _read(f"{SHA256}\n", "text", signal_type="sha256").entries[0].signal_type == "sha256"


def test_csv_without_type_column_infers_or_takes_the_option() -> None:
    assert _read(f"hash\n{SHA1}\n", "csv").entries == [EntryRecord("sha1", SHA1)]
    assert "--type" in _read(f"hash\n{PDQ}\n", "csv").problems[0][1]
    assert _read(f"hash\n{PDQ}\n", "csv", signal_type="pdq").entries[0].signal_type == "pdq"


def test_text_export_refuses_mixed_types() -> None:
    with pytest.raises(InputError, match="csv"):
        write_entries(io.StringIO(), "text", [EntryRecord("md5", MD5), EntryRecord("sha1", SHA1)])


# --- csv headers ---------------------------------------------------------------------------


def test_csv_header_aliases_case_and_unknown_columns() -> None:
    text = f"\ufeffHash,TYPE,Collab,Tags\n{MD5},video_md5,x,a|b\n"
    result = _read(text, "csv")
    assert result.entries == [EntryRecord("md5", MD5, tags=["a", "b"])]
    assert any("Collab" in warning for warning in result.warnings)


# --- te names ------------------------------------------------------------------------------


def test_te_maps_threatexchange_names_both_ways() -> None:
    text = (
        f"pdq {PDQ}\nvideo_md5 {MD5.upper()}\nvideo_sha256 {SHA256}\nsha1 {SHA1}\n"
        f"ROTATE90 pdq {PDQ}\npdq {PDQ} 'collab' metadata\nurl https://example.org\n"
    )
    result = _read(text, "te")
    assert [(e.signal_type, e.signal) for e in result.entries] == [
        ("pdq", PDQ),
        ("md5", MD5),
        ("sha256", SHA256),
        ("sha1", SHA1),
        ("pdq", PDQ),
        ("pdq", PDQ),
    ]
    assert result.problems == []
    assert any("url" in warning for warning in result.warnings)
    out = io.StringIO()
    write_entries(out, "te", result.entries[:4])
    assert [line.split()[0] for line in out.getvalue().splitlines()] == [
        "pdq",
        "video_md5",
        "video_sha256",
        "sha1",
    ]


def test_te_names_match_python_threatexchange() -> None:
    md5 = pytest.importorskip("threatexchange.signal_type.md5")
    sha256 = pytest.importorskip("threatexchange.signal_type.sha256")
    pdq = pytest.importorskip("threatexchange.signal_type.pdq.signal")
    assert md5.VideoMD5Signal.get_name() == "video_md5"
    assert sha256.VideoSHA256Signal.get_name() == "video_sha256"
    assert pdq.PdqSignal.get_name() == "pdq"


# --- VICS ----------------------------------------------------------------------------------


def _vics_case(*media: dict[str, object]) -> str:
    return json.dumps(
        {
            "odata.metadata": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/"
            "US/$metadata#Cases",
            "value": [{"CaseID": "synthetic", "Media": list(media)}],
        }
    )


def test_vics_record_yields_one_entry_per_hash_and_ignores_photodna() -> None:
    text = _vics_case(
        {"MediaID": 7, "Category": 1, "MD5": MD5.upper(), "SHA1": SHA1, "PhotoDNA": "AAAA"},
        {"MediaID": 8, "Category": 2, "pdq": PDQ, "Tags": "a; b", "Comments": "note"},
        {"MediaID": 9, "Category": 1, "PhotoDNA": "AAAA"},
    )
    result = _read(text, "vics")
    assert result.entries == [
        EntryRecord("md5", MD5, "csam", [], "7"),
        EntryRecord("sha1", SHA1, "csam", [], "7"),
        EntryRecord("pdq", PDQ, "exploitative", ["a", "b"], "8", "note"),
    ]
    assert any("PhotoDNA" in warning for warning in result.warnings)


def test_vics_category_maps_raw_custom_and_skip_ignored() -> None:
    text = _vics_case(
        {"MediaID": 1, "Category": 0, "MD5": MD5},
        {"MediaID": 2, "Category": 1, "MD5": MD5},
        {"MediaID": 3, "Category": 42, "MD5": MD5},
    )
    default = _read(text, "vics")
    assert [e.category for e in default.entries] == ["ignore", "csam", "42"]
    assert any("42" in warning for warning in default.warnings)
    assert [e.source_id for e in _read(text, "vics", skip_ignored=True).entries] == ["2", "3"]
    assert [e.category for e in _read(text, "vics", category_map="raw").entries] == [
        "0",
        "1",
        "42",
    ]
    custom = {"0": "ignore", "1": "cat_a", 42: "cat_c"}
    skipped = _read(text, "vics", category_map=custom, skip_ignored=True)
    assert [e.category for e in skipped.entries] == ["cat_a", "cat_c"]
    with pytest.raises(InputError, match="project_vic"):
        _read(text, "vics", category_map="caid")


def test_vics_accepts_hash_set_layout_top_level_media_and_any_key_case() -> None:
    record = {"mediaid": 5, "CATEGORY": "1", "Md5": MD5}
    expected = [EntryRecord("md5", MD5, "csam", [], "5")]
    assert _read(json.dumps({"@odata.context": "x#Media", "value": [record]}), "vics").entries == (
        expected
    )
    assert _read(json.dumps({"Media": [record]}), "vics").entries == expected
    assert _read(json.dumps([record]), "vics").entries == expected


def test_vics_export_is_a_vics_document_with_inverse_categories() -> None:
    entries = [
        EntryRecord("md5", MD5, "csam", ["x"], "7", "n"),
        EntryRecord("sha1", SHA1, "csam", ["x"], "7", "n"),
        EntryRecord("pdq", PDQ, "ignore"),
        EntryRecord("sha256", SHA256, "unmapped", source_id="abc"),
    ]
    out = io.StringIO()
    assert write_entries(out, "vics", entries) == 4
    doc = json.loads(out.getvalue())
    assert "VICSDATAMODEL/ProjectVic/DataModels/2.0.xml" in doc["@odata.context"]
    media = doc["value"]
    assert media[0] == {
        "MediaID": 7,
        "Category": 1,
        "MD5": MD5.upper(),
        "SHA1": SHA1.upper(),
        "Tags": "x",
        "Comments": "n",
    }
    assert media[1]["Category"] == 0 and media[1]["MediaID"] == 8
    assert "Category" not in media[2] and media[2]["MediaID"] == 9
    assert [(e.signal_type, e.source_id) for e in _read(out.getvalue(), "vics").entries] == [
        ("md5", "7"),
        ("sha1", "7"),
        ("pdq", "8"),
        ("sha256", "9"),
    ]


def test_vics_warns_about_other_national_schemes() -> None:
    text = json.dumps({"@odata.context": ".../2.0.xml/UK/$metadata#Cases", "value": []})
    assert _read(text, "vics").warnings
    assert not _read(text, "vics", category_map="raw").warnings


# --- streaming and detection ---------------------------------------------------------------


def test_iter_entries_streams_and_reports() -> None:
    report = ImportResult()
    lines = (MD5 + "\n" if i % 1000 else "bad\n" for i in range(1, 5001))
    stream = io.StringIO("".join(lines))
    count = sum(1 for _ in iter_entries(stream, "text", report=report))
    assert count == 4995
    assert [number for number, _ in report.problems] == [1000, 2000, 3000, 4000, 5000]
    assert report.entries == []


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b'\xef\xbb\xbf{"value": []}', "vics"),
        (b"  [\n", "vics"),
        (b"signal_type,signal\nmd5,abc\n", "csv"),
        (b"# list\npdq " + PDQ.encode() + b"\n", "te"),
        (b"ROTATE90 pdq " + PDQ.encode() + b"\n", "te"),
        (b"\n" + MD5.encode() + b"\n", "text"),
        (b"", "text"),
    ],
)
def test_detect_format_by_content(head: bytes, fmt: str) -> None:
    assert detect_format(head) == fmt


def test_detect_format_by_extension_then_content(tmp_path: Path) -> None:
    for name, fmt in (("a.json", "vics"), ("a.CSV", "csv"), ("a.te", "te")):
        (tmp_path / name).write_text("")
        assert detect_format(tmp_path / name) == fmt
    (tmp_path / "hashes.txt").write_text(f"video_md5 {MD5}\n")
    assert detect_format(str(tmp_path / "hashes.txt")) == "te"
