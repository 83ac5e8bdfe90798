"""The HTML scan report: a page a police analyst can read, print to PDF and hand over.

Summary first (totals, matched files by category and by bank as server-drawn SVG bars), then
one row per matched file with every match it made and how each was found, errors and skipped
files grouped by reason, and what the scan was made with (tool version, matching settings,
each bank's provenance, operator, start and end in UTC). Text comes from the ``scan`` gettext
domain in Spanish, Brazilian Portuguese or English.

Never media or thumbnails: the page names files and lists hashes only. No script and nothing
loaded (a Content-Security-Policy of ``default-src 'none'``), every value escaped. Written to
the stream piece by piece, so a scan of a million files renders in flat memory: every match is
listed, errors and skipped files past :data:`ISSUE_ROWS_PER_REASON` per reason are counted.
"""

from __future__ import annotations

import html
import itertools
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TextIO

from babel.numbers import format_decimal

from amparo.errors import InputError
from amparo.hotline.charts import bar_chart
from amparo.i18n import DEFAULT_LANGUAGE, Translate, supported, translator
from amparo.matching import MIRROR
from amparo.scan.paths import display_path, path_fields
from amparo.scan.result import EXIT_ERROR, EXIT_MATCH, FoundMatch, Issue, ScanResult

DOMAIN = "scan"
ISSUE_ROWS_PER_REASON = 1000
"""Errors (and skipped files) listed one by one per reason; the rest are counted (the JSONL
and CSV reports list every one)."""


def N_(message: str) -> str:
    """Marks a message for the catalogues; translated where it is shown."""
    return message


REASONS: dict[str, str] = {
    "bad_image": N_("Damaged or unreadable image"),
    "bad_video": N_("Damaged or unreadable video"),
    "hash_failed": N_("Hashing failed"),
    "not_an_image": N_("Named as an image, but not one"),
    "unreadable": N_("Could not be read"),
    "symlink_loop": N_("Symbolic link loop"),
    "broken_symlink": N_("Broken symbolic link"),
    "not_found": N_("Not found"),
    "archive_bomb": N_("Archive over the size limits"),
    "encrypted": N_("Encrypted archive member"),
    "corrupt_archive": N_("Damaged archive"),
    "worker_failed": N_("A hashing process failed"),
    "empty": N_("Empty file"),
    "too_large": N_("Too large to decode: digests checked"),
    "low_quality": N_("Low image quality: digests checked"),
    "too_deep": N_("Archive nested too deep: digested, not opened"),
    "duplicate": N_("Already scanned by another path"),
    "not_regular": N_("Not a regular file"),
}
"""A reader's name for each problem code (docs/scan.md lists them)."""

EXACT_SIGNALS = frozenset({"md5", "sha1", "sha256"})

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#1d232a}
h1{font-size:1.6em;margin:0 0 .2em}h2{margin-top:1.6em;border-bottom:2px solid #24507a}
table{border-collapse:collapse;margin:.8em 0;width:100%}
th,td{border:1px solid #c9ced4;padding:4px 8px;text-align:left;vertical-align:top}
thead th,tbody th{background:#eef1f4}td.n{text-align:right;white-space:nowrap}
table.facts{width:auto}table.facts th{width:16em}table.files td.h{width:24%}
table.hits{margin:0;font-size:13px}table.hits th{background:#f7f8f9}
.h,.p{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
.b64{font-family:monospace;font-size:11px;color:#555}
.verdict{font-weight:600;padding:.5em .8em;border-left:6px solid #24507a;background:#eef1f4}
.verdict.found{border-color:#a00000}.verdict.errors{border-color:#b36b00}
.note,.more{color:#3f4852}.charts{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0;border:1px solid #c9ced4;padding:.5em}figcaption{font-weight:600}
svg.chart{display:block;max-width:100%;height:auto}.chart-bar{fill:#24507a}
.chart-label,.chart-value,.chart-empty{fill:#1d232a;font:13px system-ui,sans-serif}
@media print{
@page{size:A4;margin:14mm}
body{margin:0;font-size:9.5pt;color:#000}
h2{break-after:avoid}tr,figure{break-inside:avoid}thead{display:table-header-group}
.charts{display:block}figure{margin-bottom:.6em}
th,thead th,tbody th,.verdict{background:none}.chart-bar{fill:#555}
}
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def report_language(given: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The report's language: ``given`` (es, pt-BR, en), else the locale of the environment
    (``LC_ALL``, ``LC_MESSAGES``, ``LANG``), else English."""
    if given:
        chosen = supported(given)
        if chosen is None:
            raise InputError(
                f"no report language {given!r}", hint="use --report-language es, pt-BR or en"
            )
        return chosen
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value:
            return supported(value.split(".")[0]) or DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


class _Page:
    """Formatting in one language: numbers, times, yes/no; every value escaped."""

    def __init__(self, language: str) -> None:
        self.lang = supported(language) or DEFAULT_LANGUAGE
        self._: Translate = translator(self.lang, DOMAIN)

    def t(self, message: str, **values: object) -> str:
        """``message`` translated, its ``{name}`` placeholders filled, HTML-escaped."""
        text = self._(message)
        return html.escape(text.format(**values) if values else text)

    def n(self, value: float) -> str:
        return html.escape(format_decimal(value, locale=self.lang))

    def when(self, value: datetime | str | None) -> str:
        if value is None:
            return self.t("not recorded")
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return html.escape(value.strftime("%Y-%m-%d %H:%M:%S") + " UTC")

    def yes(self, value: bool) -> str:
        return self.t("yes") if value else self.t("no")

    def text(self, value: object) -> str:
        """Free text (a path, a message, a bank's source): shown as is, or a dash if empty."""
        if value is None or value == "":
            return "—"
        return html.escape(display_path(str(value)))

    def size(self, size: int) -> str:
        for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
            if size >= scale:
                return f"{self.n(round(size / scale, 1))} {unit}"
        return f"{self.n(size)} B"

    def reason(self, code: str) -> str:
        return self.t(REASONS[code]) if code in REASONS else html.escape(code)


def write_html(result: ScanResult, stream: TextIO, language: str = DEFAULT_LANGUAGE) -> None:
    """Write the report of ``result`` as one self-contained page in ``language``."""
    page = _Page(language)
    for piece in _document(result, page):
        stream.write(piece)


def _document(result: ScanResult, p: _Page) -> Iterator[str]:
    html_lang = p.lang.replace("_", "-")
    yield (
        f'<!DOCTYPE html>\n<html lang="{html_lang}"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{p.t('Amparo scan report')}</title>\n<style>{_STYLE}</style></head>\n<body>\n"
        f"<header><h1>{p.t('Amparo scan report')}</h1>\n"
        f'<p class="note">{p.t("This report names files and lists their hashes. It contains no images, videos or thumbnails.")}</p></header>\n'  # noqa: E501
    )
    yield from _summary(result, p)
    yield from _matches(result, p)
    yield from _issues(result.errors, "errors", p.t("Errors"), p)
    yield from _issues(result.skipped, "skipped", p.t("Skipped files"), p)
    yield from _about(result, p)
    yield "</body></html>\n"


def _verdict(result: ScanResult, p: _Page) -> str:
    if result.interrupted:
        return '<p class="verdict errors">' + p.t(
            "The scan was interrupted: not every file was checked. Run it again with --resume."
        )
    if result.exit_code == EXIT_MATCH:
        return '<p class="verdict found">' + p.t("Result: known material found.")
    if result.exit_code == EXIT_ERROR:
        return '<p class="verdict errors">' + p.t(
            "Result: no match, but some files could not be checked."
        )
    return '<p class="verdict">' + p.t("Result: no known material found.")


def _summary(result: ScanResult, p: _Page) -> Iterator[str]:
    ctx = result.context
    rows: list[tuple[str, str]] = [
        (p.t("Scanned"), "<br>".join(p.text(r) for r in result.roots)),
        (p.t("Started (UTC)"), p.when(result.started_at)),
        (p.t("Finished (UTC)"), p.when(result.finished_at)),
        (p.t("Elapsed"), _elapsed(result.elapsed_s, p)),
        (p.t("Operator"), p.text(ctx.operator) if ctx else p.t("not recorded")),
        (p.t("Files seen"), p.n(result.files_seen)),
        (p.t("Files hashed"), p.n(result.hashed)),
        (p.t("Matched files"), p.n(result.matched_files)),
        (p.t("Matches"), p.n(len(result.matches))),
        (p.t("Errors"), p.n(len(result.errors))),
        (p.t("Skipped files"), p.n(len(result.skipped))),
    ]
    if result.resumed:
        rows.append((p.t("Taken from an earlier, interrupted run"), p.n(result.resumed)))
    yield f'<section id="summary"><h2>{p.t("Summary")}</h2>\n{_verdict(result, p)}</p>\n'
    yield '<table class="facts"><tbody>\n'
    for label, value in rows:
        yield f'<tr><th scope="row">{label}</th><td>{value}</td></tr>\n'
    yield "</tbody></table>\n"
    no_category = p._("no category")
    categories = [(c or no_category, v) for c, v in result.matched_files_by("category").items()]
    banks = list(result.matched_files_by("bank").items())
    yield '<div class="charts">\n'
    for chart_id, title, bars in (
        ("by-category", p._("Matched files by category"), categories),
        ("by-bank", p._("Matched files by bank"), banks),
    ):
        svg = bar_chart(chart_id, title, title + ":", bars, empty=p._("no matched files"))
        yield f"<figure><figcaption>{html.escape(title)}</figcaption>{svg}</figure>\n"
    yield "</div></section>\n"


def _elapsed(seconds: float, p: _Page) -> str:
    whole = int(seconds)
    clock = f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
    return f"{clock} ({p.n(round(seconds, 1))} s)"


def _matches(result: ScanResult, p: _Page) -> Iterator[str]:
    thresholds = {b.name: b.pdq_threshold for b in result.context.banks} if result.context else {}
    yield (f'<section id="matches"><h2>{p.t("Matched files")} ({p.n(result.matched_files)})</h2>\n')
    if not result.matches:
        yield f'<p class="note">{p.t("No file matched.")}</p></section>\n'
        return
    yield (
        f'<p class="note">{p.t("A path with “!” names a file inside an archive: archive!member.")}</p>\n'  # noqa: E501
        f'<table class="files"><thead><tr><th scope="col">{p.t("File")}</th>'
        f'<th scope="col">{p.t("Matches")}</th><th scope="col">{p.t("Hashes")}</th>'
        "</tr></thead><tbody>\n"
    )
    # A file's matches are consecutive in the result (added per record): one row per file.
    for _path, group in itertools.groupby(result.matches, key=lambda m: m.path):
        yield _file_row(list(group), thresholds, p)
    yield "</tbody></table></section>\n"


def _file_row(matches: list[FoundMatch], thresholds: dict[str, int], p: _Page) -> str:
    first = matches[0]
    kind = p.text(first.media_type) if first.media_type else p.t("other")
    about = f'<br><span class="note">{kind}, {p.size(first.size)}</span>'
    head = (
        f'<table class="hits"><thead><tr><th scope="col">{p.t("Bank")}</th>'
        f'<th scope="col">{p.t("Entry")}</th><th scope="col">{p.t("Category")}</th>'
        f'<th scope="col">{p.t("Signal")}</th><th scope="col">{p.t("Distance")}</th>'
        f'<th scope="col">{p.t("How it was found")}</th></tr></thead><tbody>'
    )
    hits = []
    for m in matches:
        j = m.match
        entry = p.text(j.get("entry_id"))
        if j.get("source_id"):
            entry += f'<br><span class="note">{p.text(j["source_id"])}</span>'
        distance = j.get("distance")
        hits.append(
            f"<tr><td>{p.text(j.get('bank'))}</td><td>{entry}</td>"
            f"<td>{p.text(j.get('category'))}</td><td>{p.text(j.get('signal_type'))}</td>"
            f'<td class="n">{p.n(distance) if isinstance(distance, int) else "—"}</td>'
            f"<td>{_how(j, thresholds, p)}</td></tr>"
        )
    hashes = "<br>".join(f"{html.escape(k)}: {html.escape(v)}" for k, v in first.hashes.items())
    return (
        f'<tr class="file">{_path_cell(first.path, about)}<td>{head}{"".join(hits)}'
        f'</tbody></table></td><td class="h">{hashes or "—"}</td></tr>\n'
    )


def _how(match: Mapping[str, object], thresholds: dict[str, int], p: _Page) -> str:
    """How a match was made, in words: which signal, how close, which copy of the file."""
    signal = str(match.get("signal_type") or "")
    if signal in EXACT_SIGNALS:
        return p.t("Exact digest: the file is identical to the listed one.")
    if signal == "vpdq" and isinstance(match.get("video"), dict):
        video = match["video"]
        assert isinstance(video, dict)
        return p.t(
            "Video frames (vPDQ): {query}% of this video's frames, {bank}% of the listed video's.",
            query=p.n(round(100 * float(video.get("query_share") or 0), 1)),
            bank=p.n(round(100 * float(video.get("bank_share") or 0), 1)),
        )
    if signal == "pdq":
        limit = thresholds.get(str(match.get("bank")))
        text = (
            p.t("Perceptual hash (PDQ) within the bank's distance of {limit}.", limit=p.n(limit))
            if limit is not None
            else p.t("Perceptual hash (PDQ): a visually similar image.")
        )
        path = match.get("path")
        if match.get("transform") == MIRROR:
            text += " " + p.t("Matched as a mirrored copy (flipped left to right).")
        elif match.get("transform"):
            text += " " + p.t(
                "Matched as a rotated or mirrored copy ({transform}).",
                transform=match["transform"],
            )
        if path == "trimmed":
            text += " " + p.t("Matched once borders or bars around the picture were trimmed.")
        elif path == "variant":
            text += " " + p.t(
                "Matched a stored crop of the listed image ({variant}).",
                variant=match.get("variant") or "—",
            )
        return text
    return p.t("Signal {signal}.", signal=signal)


def _issues(issues: list[Issue], section: str, title: str, p: _Page) -> Iterator[str]:
    counts: dict[str, int] = {}
    for issue in issues:
        counts[issue.code] = counts.get(issue.code, 0) + 1
    yield f'<section id="{section}"><h2>{title} ({p.n(len(issues))})</h2>\n'
    if not issues:
        yield f'<p class="note">{p.t("None.")}</p></section>\n'
        return
    yield (
        f'<table class="reasons"><thead><tr><th scope="col">{p.t("Reason")}</th>'
        f'<th scope="col">{p.t("Code")}</th><th scope="col">{p.t("Files")}</th></tr></thead>'
        "<tbody>\n"
    )
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    for code, count in ordered:
        yield (
            f"<tr><td>{p.reason(code)}</td><td>{html.escape(code)}</td>"
            f'<td class="n">{p.n(count)}</td></tr>\n'
        )
    yield "</tbody></table>\n"
    for code, count in ordered:
        listed = itertools.islice((i for i in issues if i.code == code), ISSUE_ROWS_PER_REASON)
        yield from _issue_group(code, count, listed, p)
    yield "</section>\n"


def _issue_group(code: str, count: int, listed: Iterable[Issue], p: _Page) -> Iterator[str]:
    yield (
        f'<h3>{p.reason(code)} ({p.n(count)})</h3>\n<table class="issues"><thead><tr>'
        f'<th scope="col">{p.t("File")}</th><th scope="col">{p.t("Details")}</th></tr>'
        "</thead><tbody>\n"
    )
    for issue in listed:
        yield f"<tr>{_path_cell(issue.path)}<td>{p.text(issue.message)}</td></tr>\n"
    yield "</tbody></table>\n"
    if count > ISSUE_ROWS_PER_REASON:
        more = p.n(count - ISSUE_ROWS_PER_REASON)
        yield (
            '<p class="more">'
            + p.t("… and {count} more; the JSON lines and CSV reports list every one.", count=more)
            + "</p>\n"
        )


def _about(result: ScanResult, p: _Page) -> Iterator[str]:
    ctx = result.context
    yield f'<section id="about"><h2>{p.t("How this scan was made")}</h2>\n'
    if ctx is None:
        yield f'<p class="note">{p.t("Not recorded for this scan.")}</p></section>\n'
        return

    def pct(share: float) -> str:
        return p.n(round(100 * share, 1)) + " %"

    rows = [
        (p.t("Tool"), f"Amparo {p.text(ctx.version)}"),
        (p.t("Operator"), p.text(ctx.operator)),
        (p.t("Default PDQ distance threshold"), p.n(ctx.pdq_threshold)),
        (p.t("Minimum PDQ quality"), p.n(ctx.pdq_min_quality)),
        (p.t("Rotated and mirrored copies checked (dihedral)"), p.yes(ctx.dihedral)),
        (p.t("Video frames sampled per second"), p.n(ctx.video_sample_fps)),
        (p.t("Share of a video's frames that must match"), pct(ctx.video_query_share)),
        (p.t("Share of a listed video's frames to cover"), pct(ctx.video_bank_share)),
        (p.t("Clip mode (part of a longer video matches)"), p.yes(ctx.video_clip)),
        (p.t("Banks chosen"), ", ".join(p.text(b) for b in result.banks or []) or p.t("all")),
    ]
    yield '<table class="facts"><tbody>\n'
    for label, value in rows:
        yield f'<tr><th scope="row">{label}</th><td>{value}</td></tr>\n'
    yield f"</tbody></table>\n<h3>{p.t('Banks')}</h3>\n"
    columns = [N_("Bank"), N_("Kind"), N_("Source"), N_("Supplier"), N_("Imported (UTC)")]
    columns += [N_("Entries"), N_("PDQ threshold"), N_("Dihedral")]
    yield '<table class="banks"><thead><tr>'
    yield "".join(f'<th scope="col">{p.t(c)}</th>' for c in columns)
    yield "</tr></thead><tbody>\n"
    for b in ctx.banks:
        kind = p.t("known material") if b.kind == "positive" else p.t("known benign")
        yield (
            f"<tr><td>{p.text(b.name)}</td><td>{kind}</td><td>{p.text(b.source)}</td>"
            f"<td>{p.text(b.supplier)}</td><td>{p.when(b.imported_at)}</td>"
            f'<td class="n">{p.n(b.entry_count)}</td><td class="n">{p.n(b.pdq_threshold)}</td>'
            f"<td>{p.yes(b.dihedral)}</td></tr>\n"
        )
    yield "</tbody></table></section>\n"


def _path_cell(path: str, extra: str = "") -> str:
    """A path as a table cell: as text, and exactly (base64) when it is not UTF-8."""
    fields = path_fields(path)
    cell = f'<span class="p">{html.escape(fields["path"])}</span>'
    if "path_b64" in fields:
        cell += f'<br><span class="b64">path_b64: {html.escape(fields["path_b64"])}</span>'
    return f"<td>{cell}{extra}</td>"
