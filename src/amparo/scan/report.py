"""Scan report writers: JSON lines, CSV and a self-contained HTML page.

Reports name files and list hashes; they never contain media, thumbnails or links that load
anything. In HTML every value is escaped and a Content-Security-Policy forbids loading any
resource at all; in CSV, cells that a spreadsheet would run as a formula are quoted with '.
"""

from __future__ import annotations

import csv
import html
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
    "media_type",
    "size",
    "md5",
    "sha1",
    "sha256",
    "pdq",
    "code",
    "message",
    "path_b64",
)
"""``path_b64``: the exact bytes of a path that is not UTF-8 (``path`` then shows them as
``\\xNN``); empty otherwise. See :mod:`amparo.scan.paths`."""


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


def write_report(result: ScanResult, stream: TextIO, fmt: str = "jsonl") -> None:
    """Write the report of ``result`` to ``stream`` in ``fmt`` (jsonl, csv or html)."""
    writers = {"jsonl": write_jsonl, "csv": write_csv, "html": write_html}
    writers[format_for("", fmt)](result, stream)


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
    """One row per match, error and skipped file; the totals are in the JSONL/HTML reports
    and in the summary printed at the end of the scan."""
    writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for m in result.matches:
        row: dict[str, object] = {k: m.match.get(k) for k in CSV_COLUMNS if k in m.match}
        row.update(kind="match", media_type=m.media_type, size=m.size, **m.hashes)
        row.update(path_fields(m.path))
        writer.writerow({k: _csv_cell(k, v) for k, v in row.items()})
    for issue in (*result.errors, *result.skipped):
        row = {"kind": issue.kind, "code": issue.code, "message": issue.message}
        row.update(path_fields(issue.path))
        writer.writerow({k: _csv_cell(k, v) for k, v in row.items()})


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0;width:100%}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.h{font-family:monospace;font-size:12px;word-break:break-all}
.match{color:#a00}.b64{font-family:monospace;font-size:11px;color:#555}
"""


def write_html(result: ScanResult, stream: TextIO) -> None:
    """A self-contained page: totals, then tables of matches, errors and skipped files."""
    e = html.escape
    summary = result.summary()
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="referrer" content="no-referrer">',
        "<title>Amparo scan report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Amparo scan report</h1>",
        "<table><tbody>",
    ]
    for key, value in summary.items():
        if key == "kind":
            continue
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value
        out.append(f"<tr><th>{e(key)}</th><td>{e(str(shown))}</td></tr>")
    out.append("</tbody></table>")

    out.append(f'<h2 class="match">Matches ({len(result.matches)})</h2>')
    if result.matches:
        out.append(
            "<table><thead><tr><th>Path</th><th>Bank</th><th>Entry</th><th>Signal</th>"
            "<th>Distance</th><th>Category</th><th>Hashes</th></tr></thead><tbody>"
        )
        for m in result.matches:
            hashes = "<br>".join(f"{e(k)}: {e(v)}" for k, v in sorted(m.hashes.items()))
            cells = [m.match.get("bank"), m.match.get("entry_id")]
            cells += [m.match.get("signal_type"), m.match.get("distance")]
            cells.append(m.match.get("category"))
            row = "".join(f"<td>{e(_text(c))}</td>" for c in cells)
            out.append(f'<tr>{_path_cell(m.path)}{row}<td class="h">{hashes}</td></tr>')
        out.append("</tbody></table>")

    for title, issues, label in (
        ("Errors", result.errors, "Message"),
        ("Skipped", result.skipped, "Reason"),
    ):
        out.append(f"<h2>{title} ({len(issues)})</h2>")
        if not issues:
            continue
        out.append(
            f"<table><thead><tr><th>Path</th><th>Code</th><th>{label}</th></tr></thead><tbody>"
        )
        for issue in issues:
            out.append(
                f"<tr>{_path_cell(issue.path)}<td>{e(issue.code)}</td>"
                f"<td>{e(display_path(issue.message))}</td></tr>"
            )
        out.append("</tbody></table>")
    out.append("</body></html>")
    stream.write("\n".join(out) + "\n")


def _path_cell(path: str) -> str:
    """A path as a table cell: as text, and exactly (base64) when it is not UTF-8."""
    fields = path_fields(path)
    cell = html.escape(fields["path"])
    if "path_b64" in fields:
        cell += f'<br><span class="b64">path_b64: {html.escape(fields["path_b64"])}</span>'
    return f"<td>{cell}</td>"


def _text(value: object) -> str:
    return "" if value is None else display_path(str(value))
