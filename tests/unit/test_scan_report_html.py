"""The scan report for people: one HTML row per matched file with every match it made and
how, totals equal to the JSONL summary's, errors grouped by reason, no Python value in the
visible text, the scan's context (version, operator, settings, bank provenance) in every
format, three languages from complete catalogues, and a million-file-sized scan rendered in
bounded size and memory. Synthetic records only: no media."""

from __future__ import annotations

import csv
import io
import json
import re
import tracemalloc
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from amparo import __version__
from amparo.errors import InputError
from amparo.matching import MIRROR
from amparo.scan import ItemRecord, Problem, ScanResult, iter_jsonl, report_html, write_report
from amparo.scan.report_context import BankProvenance, ScanContext
from amparo.scan.report_html import ISSUE_ROWS_PER_REASON, report_language

SRC = Path(report_html.__file__).resolve().parents[1]
IMPORTED = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)
CONTEXT = ScanContext(
    version=__version__,
    operator="analyst.rivera",
    pdq_threshold=31,
    pdq_min_quality=50,
    dihedral=True,
    banks=(
        BankProvenance(
            "known",
            source="NCMEC hash sharing",
            supplier="Hotline Alpha",
            imported_at=IMPORTED,
            entry_count=1234,
            pdq_threshold=20,
            dihedral=True,
        ),
        BankProvenance("benign", kind="negative", entry_count=3),
    ),
)
HASHES = {"md5": "a" * 32, "sha256": "b" * 64, "pdq": "f" * 64}


def _match(signal: str, distance: int, **more: object) -> dict[str, object]:
    return {"bank": "known", "entry_id": 7, "signal_type": signal, "distance": distance} | more


def _result(context: ScanContext | None = CONTEXT) -> ScanResult:
    r = ScanResult(roots=["/evidence"], context=context)
    r.started_at = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)
    r.finished_at = datetime(2026, 12, 1, 9, 1, 30, tzinfo=UTC)
    three = [
        _match("md5", 0, category="A1"),
        _match("sha256", 0, category="A1"),
        _match("pdq", 0, category="A1"),
    ]
    r.add_record(ItemRecord("/evidence/k.jpg", 2048, 1, "jpeg", "ok", matches=three, hashes=HASHES))
    turned = [_match("pdq", 6, category="B2", transform="rotate90", source_id="ext-9")]
    member = "/evidence/a.zip!inside/k2.jpg"
    r.add_record(ItemRecord(member, 900, 1, "jpeg", "ok", matches=turned, hashes=HASHES))
    video = {"query_share": 0.91, "bank_share": 0.85, "query_ranges": [], "bank_ranges": []}
    clip = [_match("vpdq", 12, video=video)]
    r.add_record(ItemRecord("/evidence/c.mp4", 90_000, 1, "video", "ok", matches=clip, hashes={}))
    r.add_record(ItemRecord("/evidence/fine.jpg", 5, 1, "jpeg", "ok"))
    r.add_record(ItemRecord("/evidence/t1.jpg", 5, 1, "jpeg", "error", "bad_image", "truncated"))
    r.add_record(ItemRecord("/evidence/t2.jpg", 5, 1, "jpeg", "error", "bad_image", "truncated"))
    r.add_problem(Problem("/evidence/bad.zip", "error", "corrupt_archive", "cannot open"))
    r.add_problem(Problem("/evidence/empty", "skipped", "empty", "empty file (0 bytes)"))
    r.add_record(ItemRecord("/evidence/x.bin", 5, 1, None, "error", "new_code", "something new"))
    return r


def _render(result: ScanResult, fmt: str = "html", language: str = "en") -> str:
    out = io.StringIO()
    write_report(result, out, fmt, language=language)
    return out.getvalue()


class _Page(HTMLParser):
    """The visible text of a page (not its stylesheet or the charts' title/desc), and the
    matched-file rows with the number of matches in each."""

    HIDDEN = frozenset({"style", "title", "desc", "script", "head"})

    def __init__(self, text: str) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: list[str] = []
        self.rows: list[int] = []
        self.cells: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "meta", "rect"):
            return
        self.stack.append(tag)
        if tag == "tr" and ("class", "file") in attrs:
            self.rows.append(0)
        elif tag == "tr" and self.rows and "tbody" in self.stack[-3:-1]:
            self.rows[-1] += self.stack.count("table") == 2  # a match in the file's table

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        if not self.HIDDEN & set(self.stack) and data.strip():
            self.text.append(data.strip())


def _facts(page: str) -> dict[str, str]:
    """The summary table: label -> value."""
    found = re.findall(r'<tr><th scope="row">([^<]+)</th><td>(.*?)</td></tr>', page)
    return dict(found)


def test_one_row_per_matched_file_with_all_its_matches_and_how_they_were_found() -> None:
    page = _render(_result())
    parsed = _Page(page)
    assert parsed.rows == [3, 1, 1]
    text = " ".join(parsed.text)
    assert "Exact digest: the file is identical to the listed one." in text
    assert "Perceptual hash (PDQ) within the bank's distance of 20." in text
    assert "Matched as a rotated or mirrored copy (rotate90)." in text
    assert "91% of this video's frames, 85% of the listed video's" in text
    assert "/evidence/a.zip!inside/k2.jpg" in text and "ext-9" in text
    assert "f" * 64 in page and "b" * 64 in page


def test_summary_counts_equal_the_jsonl_summary() -> None:
    result = _result()
    summary = list(iter_jsonl(result))[-1]
    facts = _facts(_render(result))
    for label, key in [
        ("Files seen", "files_seen"),
        ("Files hashed", "hashed"),
        ("Matched files", "matched_files"),
        ("Matches", "matches"),
        ("Errors", "errors"),
        ("Skipped files", "skipped"),
    ]:
        assert facts[label] == f"{summary[key]:,}", label
    assert (summary["matched_files"], summary["matches"], summary["errors"]) == (3, 5, 4)
    assert facts["Started (UTC)"] == "2026-12-01 09:00:00 UTC"
    assert facts["Elapsed"] == "0:01:30 (90 s)"
    assert facts["Operator"] == "analyst.rivera"


@pytest.mark.parametrize("language", ["en", "es", "pt-BR"])
@pytest.mark.parametrize("with_context", [True, False])
def test_no_python_literals_in_the_visible_text(language: str, with_context: bool) -> None:
    result = _result(CONTEXT if with_context else None)
    result.finished_at = None if not with_context else result.finished_at
    text = " ".join(_Page(_render(result, language=language)).text)
    assert re.findall(r"\b(None|True|False)\b|[{}\[\]]", text) == []
    assert re.findall(r"(?<!\w)'|'(?!\w)", text) == []  # no repr()'d strings


def test_errors_and_skipped_files_are_grouped_by_reason() -> None:
    page = _render(_result())
    errors = page[page.index('<section id="errors">') : page.index('<section id="skipped">')]
    assert "<h2>Errors (4)</h2>" in errors
    # The reasons, most files first, each with its own list.
    headings = re.findall(r"<h3>([^<]+)</h3>", errors)
    assert headings == ["Damaged or unreadable image (2)", "Damaged archive (1)", "new_code (1)"]
    assert errors.count("/evidence/t1.jpg") == 1 and "cannot open" in errors
    assert "Empty file (1)" in page


def test_the_context_is_in_every_format() -> None:
    result = _result()
    page = _render(result)
    about = page[page.index('<section id="about">') :]
    for shown in (f"Amparo {__version__}", "NCMEC hash sharing", "Hotline Alpha", "1,234"):
        assert shown in about, shown
    assert "2026-11-30 08:15:00 UTC" in about and "known benign" in about
    summary = list(iter_jsonl(result))[-1]
    assert summary["tool_version"] == __version__ and summary["operator"] == "analyst.rivera"
    assert summary["settings"] == CONTEXT.settings()
    [known, _] = summary["bank_provenance"]  # type: ignore[misc]
    assert known["supplier"] == "Hotline Alpha"
    assert known["imported_at"] == "2026-11-30T08:15:00+00:00"
    assert summary["matched_files_by_bank"] == {"known": 3}
    assert summary["matched_files_by_category"] == {"": 1, "A1": 1, "B2": 1}
    assert summary["errors_by_reason"] == {"bad_image": 2, "corrupt_archive": 1, "new_code": 1}
    rows = list(csv.DictReader(io.StringIO(_render(result, "csv"))))
    facts = {(r["kind"], r["bank"], r["name"]): r["value"] for r in rows if r["name"]}
    assert facts[("summary", "", "tool_version")] == __version__
    assert facts[("summary", "", "errors_by_reason.bad_image")] == "2"
    assert facts[("setting", "", "dihedral")] == "true"
    assert facts[("bank", "known", "source")] == "NCMEC hash sharing"
    assert facts[("bank", "known", "entry_count")] == "1234"


def test_charts_are_inline_svg_and_nothing_is_loaded() -> None:
    page = _render(_result())
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 2
    assert "no category: 1; A1: 1; B2: 1" in page
    lowered = page.lower()
    for banned in ("<script", "<img", "src=", "href=", "url(", "@import", "data:"):
        assert banned not in lowered, banned
    assert "default-src 'none'" in page and "@media print" in page


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("es", ["Informe de análisis de Amparo", "Archivos con coincidencias", "Proveedor"]),
        ("pt-BR", ["Relatório de varredura do Amparo", "Correspondências", "Fornecedor"]),
    ],
)
def test_the_report_speaks_spanish_and_portuguese(language: str, words: list[str]) -> None:
    page = _render(_result(), language=language)
    assert f'<html lang="{language}">' in page
    assert all(word in page for word in words)
    assert "Matched files" not in page and "Summary" not in page
    assert "1.234" in page  # numbers in the language's own way


def test_the_language_comes_from_the_option_else_the_environment() -> None:
    assert report_language("pt-BR") == "pt_BR" and report_language("es-MX") == "es"
    assert report_language(None, {"LANG": "pt_BR.UTF-8"}) == "pt_BR"
    assert report_language(None, {"LC_ALL": "es_ES.UTF-8", "LANG": "en_US.UTF-8"}) == "es"
    assert report_language(None, {"LANG": "C.UTF-8"}) == report_language(None, {}) == "en"
    with pytest.raises(InputError) as raised:
        report_language("fr")
    assert "pt-BR" in (raised.value.hint or "")


def _messages() -> set[str]:
    source = (SRC / "scan" / "report_html.py").read_text(encoding="utf-8")
    pattern = r"""(?:\.t|\._|\bN_)\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')"""
    return {a or b for a, b in re.findall(pattern, source)}


@pytest.mark.parametrize("language", ["es", "pt_BR"])
def test_the_catalogues_translate_every_report_message(language: str) -> None:
    messages = _messages()
    assert len(messages) > 80
    with (SRC / "locale" / language / "LC_MESSAGES" / "scan.po").open("rb") as handle:
        catalogue = read_po(handle, locale=language, domain="scan")
    translated = {str(m.id): str(m.string) for m in catalogue if m.id and not m.fuzzy}
    assert sorted(m for m in messages if not translated.get(m, "").strip()) == []
    for message in messages:
        wanted = sorted(re.findall(r"\{\w+\}", message))
        assert sorted(re.findall(r"\{\w+\}", translated[message])) == wanted, message


class _Sink(io.TextIOBase):
    """Counts what is written and keeps none of it."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, text: str) -> int:
        self.size += len(text.encode("utf-8"))
        return len(text)


def test_a_huge_scan_renders_in_bounded_size_and_memory() -> None:
    result = ScanResult(roots=["/big"], context=CONTEXT)
    errors = 3 * ISSUE_ROWS_PER_REASON
    for i in range(200_000):
        path = f"/big/folder-{i // 1000:04d}/file-{i:07d}.jpg"
        if i % 50_000 == 7:
            matches = [_match("md5", 0, category="A1"), _match("pdq", 4, category="A1")]
            result.add_record(ItemRecord(path, 10, 1, "jpeg", "ok", matches=matches, hashes=HASHES))
        elif 100 <= i < 100 + errors:
            result.add_record(ItemRecord(path, 10, 1, "jpeg", "error", "bad_image", "truncated"))
        else:
            result.add_record(ItemRecord(path, 10, 1, "jpeg", "ok"))
    sink = _Sink()
    tracemalloc.start()
    try:
        write_report(result, sink, "html", language="en")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.size < 1_000_000  # about 200 bytes a listed error: 1,000 of them, not 3,000
    assert peak < 2_000_000, peak  # streamed: nothing like the page is held at once
    page = _render(result)
    assert len(_Page(page).rows) == result.matched_files == 4
    assert page.count("truncated") == ISSUE_ROWS_PER_REASON
    assert "… and 2,000 more; the JSON lines and CSV reports list every one." in page
    assert _facts(page)["Files seen"] == "200,000"
    jsonl = _render(result, "jsonl")
    assert sum(1 for line in jsonl.splitlines() if '"kind": "error"' in line) == errors
    assert json.loads(jsonl.splitlines()[-1])["files_seen"] == 200_000


def test_how_found_names_trimmed_crop_and_mirrored_matches() -> None:
    r = ScanResult(roots=["/evidence"], context=CONTEXT)
    found = [
        _match("pdq", 4, path="trimmed"),
        _match("pdq", 5, path="variant", variant="crop5-<left>"),
        _match("pdq", 6, path="dihedral", transform=MIRROR),
        _match("pdq", 7, path="dihedral", transform="rotate90"),
    ]
    r.add_record(ItemRecord("/evidence/m.jpg", 10, 1, "jpeg", "ok", matches=found, hashes=HASHES))
    page = _render(r)
    text = " ".join(_Page(page).text)
    assert "Matched once borders or bars around the picture were trimmed." in text
    assert "Matched a stored crop of the listed image (crop5-<left>)." in text
    assert "crop5-&lt;left&gt;" in page and "crop5-<left>" not in page
    assert "Matched as a mirrored copy (flipped left to right)." in text
    assert "Matched as a rotated or mirrored copy (rotate90)." in text
    spanish = " ".join(_Page(_render(r, language="es")).text)
    assert "recorte guardado" in spanish and "reflejada" in spanish
