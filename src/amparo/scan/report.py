"""Scan report writers: JSON lines, CSV and a self-contained HTML page
(:mod:`amparo.scan.report_html`), all with the same content: matches, errors, skipped files,
totals and counts, and (when the scan recorded it) the tool version, operator, matching
settings and bank provenance.

Reports name files and list hashes; they never contain media, thumbnails or links that load
anything. In HTML every value is escaped and a Content-Security-Policy forbids loading any
resource at all; in CSV, cells that a spreadsheet would run as a formula are quoted with '.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import TextIO

from amparo.errors import InputError
from amparo.scan.paths import display_path, path_fields
from amparo.scan.result import ScanResult

REPORT_FORMATS = ("jsonl", "csv", "html")

CSV_COLUMNS = (
    "kind",
    "path",
    "bank",
    "entry_id",
    "signal_type",
    "distance",
    "category",
    "tags",
    "source_id",
    "transform",
    "match_path",
    "variant",
    "media_type",
    "size",
    "md5",
    "sha1",
    "sha256",
    "pdq",
    "code",
    "message",
    "path_b64",
    "name",
    "value",
)
"""``path`` is the file's; ``match_path`` how the match was found (``Match.path``: plain,
trimmed, variant, dihedral) and ``variant`` which stored crop matched (variant matches).
``path_b64``: the exact bytes of a path that is not UTF-8 (``path`` then shows them as
``\\xNN``); empty otherwise. See :mod:`amparo.scan.paths`. ``name`` and ``value``: the
facts about the scan, in rows after the files (kinds ``summary``, ``setting``, ``bank``)."""


def format_for(name: str, given: str | None = None) -> str:
    """The report format: ``given``, else from the file name (.csv, .html/.htm), else jsonl."""
    fmt = (given or "").lower()
    if not fmt:
        lowered = name.lower()
        fmt = "csv" if lowered.endswith(".csv") else "jsonl"
        if lowered.endswith((".html", ".htm")):
            fmt = "html"
    if fmt not in REPORT_FORMATS:
        raise InputError(
            f"unknown report format {given!r}", hint="use " + ", ".join(REPORT_FORMATS)
        )
    return fmt


def write_report(
    result: ScanResult, stream: TextIO, fmt: str = "jsonl", *, language: str | None = None
) -> None:
    """Write the report of ``result`` to ``stream`` in ``fmt`` (jsonl, csv or html).
    ``language`` (es, pt-BR, en; default from the environment) is the HTML page's: the
    JSONL and CSV reports are for programs, with English keys."""
    fmt = format_for("", fmt)
    if fmt == "html":
        # On demand: the page's catalogues, Babel and the charts are not loaded for JSONL/CSV.
        from amparo.scan.report_html import report_language, write_html

        write_html(result, stream, report_language(language))
    else:
        (write_csv if fmt == "csv" else write_jsonl)(result, stream)


def iter_jsonl(result: ScanResult) -> Iterator[dict[str, object]]:
    """The report as records: matches, errors, skipped, then one summary."""
    for m in result.matches:
        yield m.to_json()
    for issue in (*result.errors, *result.skipped):
        yield issue.to_json()
    yield result.summary()


def write_jsonl(result: ScanResult, stream: TextIO) -> None:
    for record in iter_jsonl(result):
        stream.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")


def _csv_cell(key: str, value: object) -> str:
    # base64 may start with "+" but holds no parentheses or quotes, so no formula can run;
    # a "'" in front would break the exact bytes it is there for.
    return str(value) if key == "path_b64" else _csv_safe(value)


def _csv_safe(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        value = ";".join(str(v) for v in value)
    text = display_path(str(value))
    # A cell starting like a formula would be run by a spreadsheet: make it plain text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_csv(result: ScanResult, stream: TextIO) -> None:
    """One row per match, error and skipped file; then the totals and counts (``summary``
    rows), the matching settings (``setting``) and each bank's provenance (``bank``), one
    fact a row in ``name`` and ``value``."""
    writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for m in result.matches:
        row: dict[str, object] = {k: m.match.get(k) for k in CSV_COLUMNS if k in m.match}
        row.update(match_path=m.match.get("path"), variant=m.match.get("variant"))
        row.update(kind="match", media_type=m.media_type, size=m.size, **m.hashes)
        row.update(path_fields(m.path))
        writer.writerow({k: _csv_cell(k, v) for k, v in row.items()})
    for issue in (*result.errors, *result.skipped):
        row = {"kind": issue.kind, "code": issue.code, "message": issue.message}
        row.update(path_fields(issue.path))
        writer.writerow({k: _csv_cell(k, v) for k, v in row.items()})
    for kind, bank, name, value in _facts(result):
        row = {"kind": kind, "bank": bank, "name": name, "value": value}
        writer.writerow({k: _csv_cell(k, v) for k, v in row.items()})


def _facts(result: ScanResult) -> Iterator[tuple[str, str | None, str, object]]:
    """The summary record as ``(kind, bank, name, value)`` facts: counts by bank, category
    and reason as ``name.key``; settings and bank provenance in their own kinds."""
    for key, value in result.summary().items():
        if key in ("kind", "settings", "bank_provenance"):
            continue
        if isinstance(value, dict):
            for sub, count in value.items():
                yield "summary", None, f"{key}.{sub}", count
        else:
            yield "summary", None, key, _plain(value)
    if result.context is not None:
        for key, value in result.context.settings().items():
            yield "setting", None, key, _plain(value)
        for bank in result.context.banks:
            for key, value in bank.to_json().items():
                if key != "name":
                    yield "bank", bank.name, key, _plain(value)


def _plain(value: object) -> object:
    """A value as a spreadsheet reads it: true/false, empty for none, lists joined by ";"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
