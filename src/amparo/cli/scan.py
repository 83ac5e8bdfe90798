"""``amparo scan``: scan folders and archives for known material (see docs/scan.md)."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.console import Console
from rich.filesize import decimal
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from amparo.cli.context import err_console, handle_errors, open_app
from amparo.cli.terminal import terminal_safe
from amparo.scan import (
    ScanOptions,
    ScanProgress,
    ScanResult,
    count_files,
    default_journal_path,
    format_for,
    scan_paths,
    write_report,
)
from amparo.scan.model import S3Options
from amparo.scan.s3 import count_objects, is_s3_url
from amparo.scan.scanner import s3_options

HELP = """Scan files, folders and archives (zip, tar, nested) for known material.

Every file is digested (MD5, SHA-1, SHA-256) and images are PDQ-hashed, in worker processes;
the hashes are looked up in every enabled bank (or the --bank ones) and forgotten unless they
matched. The report goes to --report FILE (format from --format or the file name: .jsonl,
.csv, .html), else to stdout; a summary goes to stderr. A journal records every file done,
so an interrupted scan continues with --resume. Matched files go through the action rules
(`amparo rules`: cases, webhooks, quarantine) unless --no-actions is given.

Exit 0: no match. 1: something matched (even if some files had errors). 2: no match, but
some file could not be checked. Example: amparo scan /mnt/evidence --report report.html
"""

PLAIN_PROGRESS_EVERY_S = 5.0


@handle_errors
def scan_command(
    ctx: typer.Context,
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Files, folders and s3://bucket/prefix URLs to scan.", show_default=False
        ),
    ],
    banks: Annotated[
        list[str] | None, typer.Option("--bank", "-b", help="Only these banks (repeatable).")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", "-o", help="Write the report here (default: stdout)."),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help="jsonl, csv or html (default: from --report)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-j",
            min=0,
            help="Hashing processes; 0 all cores, 1 none. With --engine ray: batches in "
            "flight (0: two per CPU of the cluster).",
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted scan from its journal.")
    ] = False,
    journal: Annotated[
        Path | None,
        typer.Option(
            "--journal", help="Journal file (default: <report>.journal, or under <home>/scans)."
        ),
    ] = None,
    max_depth: Annotated[
        int, typer.Option("--max-depth", min=1, help="How deep to look into nested archives.")
    ] = 5,
    no_actions: Annotated[
        bool,
        typer.Option("--no-actions", help="Report matches only; run no action rules."),
    ] = False,
    case: Annotated[
        str | None,
        typer.Option("--case", help="Also write the matches as this VICS JSON 2.0 case."),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="Where hashing runs: local (worker processes) or ray (a Ray cluster; "
            "pip install 'amparo[ray]'). Default: the scan_engine setting.",
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Ray cluster to join (host:port or auto); default: a local Ray for this scan.",
        ),
    ] = None,
    s3_endpoint: Annotated[
        str | None,
        typer.Option(
            "--s3-endpoint",
            help="Endpoint URL of an S3-compatible store (MinIO, Ceph, ...) for s3:// paths.",
        ),
    ] = None,
    report_language: Annotated[
        str | None,
        typer.Option(
            "--report-language",
            help="Language of the HTML report: es, pt-BR or en (default: from LANG).",
        ),
    ] = None,
    operator: Annotated[
        str | None,
        typer.Option(
            "--operator",
            help="Who ran the scan, as the report names them (default: the operating-system user).",
        ),
    ] = None,
    case_output: Annotated[
        Path | None,
        typer.Option(
            "--case-output", help="VICS case file (default: <report dir>/<ID>.vics.json)."
        ),
    ] = None,
) -> None:
    if case is not None:
        from amparo.reports.vics_case import validate_case_id

        validate_case_id(case)
    to_stdout = report is None or str(report) == "-"
    report_format = format_for("" if to_stdout else str(report), fmt)
    from amparo.scan.report_html import report_language as report_language_for

    language = report_language_for(report_language)  # a bad choice fails before scanning
    given = {
        "workers": workers,
        "scan_engine": engine,
        "ray_address": ray_address,
        "s3_endpoint": s3_endpoint,
    }
    overrides = {k: v for k, v in given.items() if v is not None}
    with open_app(ctx, **overrides) as amparo:
        if journal is None:
            journal = (
                default_journal_path(amparo.settings, paths, banks)
                if to_stdout
                else Path(f"{report}.journal")
            )
        options = ScanOptions(
            banks=banks or None,
            journal=journal,
            resume=resume,
            max_depth=max_depth,
            actions=not no_actions,
            operator=operator,
        )
        display = _ProgressDisplay([str(p) for p in paths], s3=s3_options(amparo.settings))
        with display:
            result = scan_paths(amparo, paths, options, progress=display.update)
    if to_stdout:
        write_report(result, sys.stdout, report_format, language=language)
        sys.stdout.flush()
    else:
        assert report is not None
        _write_file(report, result, report_format, language)
    _print_summary(result, None if to_stdout else report)
    if case is not None:
        from amparo.reports.vics_case import write_vics_case

        folder = Path(".") if to_stdout or report is None else report.parent
        case_path = case_output or folder / f"{case}.vics.json"
        media = write_vics_case(result, case, case_path)
        err_console.print(
            terminal_safe(f"VICS case {case}: {case_path} ({media:,} media)"), markup=False
        )
    if result.interrupted:
        raise typer.Exit(130)
    raise typer.Exit(result.exit_code)


def _write_file(path: Path, result: ScanResult, fmt: str, language: str | None = None) -> None:
    """Write the report atomically (temp file + rename), readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            write_report(result, fh, fmt, language=language)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _print_summary(result: ScanResult, report: Path | None) -> None:
    s = result
    resumed = f", {s.resumed:,} from an earlier run" if s.resumed else ""
    skipped = ", ".join(f"{k}: {v:,}" for k, v in sorted(s.skipped_by_reason.items()))
    colour = "red" if s.matches else ("yellow" if s.errors else "green")
    lines = [
        f"[bold]{'Interrupted' if s.interrupted else 'Scanned'}[/] {s.files_seen:,} files "
        f"({s.hashed:,} hashed{resumed}) in {s.elapsed_s:.1f} s: "
        f"[bold {colour}]{s.matched_files:,} matched[/] ({len(s.matches):,} matches), "
        f"{len(s.errors):,} errors, {len(s.skipped):,} skipped"
        + (f" ({skipped})" if skipped else ""),
    ]
    for issue in s.errors[:5]:
        # Names and messages are the scanned data's text: no control character reaches
        # the terminal (a file named with ESC sequences would drive it).
        path, message = terminal_safe(issue.path), terminal_safe(issue.message)
        lines.append(f"  [dim]error:[/] {escape(path)}: {escape(message)}")
    if len(s.errors) > 5:
        lines.append(f"  [dim]... and {len(s.errors) - 5:,} more errors in the report[/]")
    if report is not None:
        lines.append(f"Report: {escape(terminal_safe(report))}")
    if s.journal is not None:
        lines.append(f"Journal: {escape(terminal_safe(s.journal))}")
    if s.interrupted:
        lines.append("Run the same command with --resume to continue.")
    for line in lines:
        err_console.print(line, markup=True, soft_wrap=True, highlight=False)


class _ProgressDisplay:
    """A Rich progress bar when stderr is a terminal; otherwise a plain line now and then.

    The same display for both engines: files and bytes a second, matches, errors, the
    hashing workers alive (processes, or CPUs of a Ray cluster's live nodes: it drops when
    a node dies) and an ETA once the background count of the roots is in (files on disk
    and objects in buckets, added up; no ETA when a count fails)."""

    def __init__(
        self,
        roots: list[str],
        stream: TextIO | None = None,
        *,
        s3: S3Options | None = None,
        console: Console | None = None,
    ) -> None:
        self.roots = roots
        self.s3 = s3 or S3Options()
        self.console = console or err_console
        self.interactive = self.console.is_terminal
        self.stream = stream or sys.stderr
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.total: int | None = None
        self.counter: threading.Thread | None = None
        self.last_line = time.monotonic()

    def __enter__(self) -> _ProgressDisplay:
        if self.interactive:
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} files/s"),
                TextColumn("{task.fields[bytes_rate]}"),
                TextColumn("[red]{task.fields[matches]} matches[/]"),
                TextColumn("{task.fields[errors]} errors"),
                TextColumn("{task.fields[workers]} workers"),
                TimeElapsedColumn(),
                TextColumn("ETA {task.fields[eta]}"),
                console=self.console,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(
                "scanning",
                total=None,
                rate="-",
                bytes_rate="- B/s",
                matches=0,
                errors=0,
                workers="-",
                eta="-:--:--",
            )
            # Count in the background: the bar is indeterminate until the count is in.
            self.counter = threading.Thread(target=self._count, daemon=True)
            self.counter.start()
        return self

    def count_total(self) -> int | None:
        """Files on disk plus objects in buckets under the roots; None when a count fails
        (an unreachable bucket: the scan itself says so; the bar just shows no ETA)."""
        local = [r for r in self.roots if not is_s3_url(r)]
        buckets = [r for r in self.roots if is_s3_url(r)]
        try:
            total = count_files(local) if local else 0
            if buckets:
                total += count_objects(buckets, self.s3)
        except Exception:  # progress only: never let a count break the scan
            return None
        return total

    def _count(self) -> None:
        self.total = self.count_total()
        if self.progress is not None and self.task is not None and self.total is not None:
            self.progress.update(self.task, total=self.total)

    def update(self, p: ScanProgress) -> None:
        rate = p.files_done / p.elapsed_s if p.elapsed_s > 0 else 0.0
        byte_rate = p.bytes_done / p.elapsed_s if p.elapsed_s > 0 else 0.0
        if self.progress is not None and self.task is not None:
            self.progress.update(
                self.task,
                completed=p.files_done,
                rate=f"{rate:,.0f}",
                bytes_rate=f"{decimal(round(byte_rate))}/s",
                matches=p.matches,
                errors=p.errors,
                workers=p.workers,
                eta=_eta(self.total, p.files_done, rate),
            )
            return
        now = time.monotonic()
        if now - self.last_line >= PLAIN_PROGRESS_EVERY_S:
            self.last_line = now
            self.stream.write(
                f"amparo scan: {p.files_done:,} files ({p.items_done:,} with archive members), "
                f"{p.matches:,} matches, {p.errors:,} errors, {rate:,.0f} files/s, "
                f"{decimal(round(byte_rate))}/s, {p.workers:,} workers\n"
            )
            self.stream.flush()

    def __exit__(self, *_exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def _eta(total: int | None, done: int, rate: float) -> str:
    """Time left at the scan's average rate so far (steadier than a moving window when
    batches come back in bursts from a cluster); unknown before the count is in."""
    if total is None or rate <= 0 or done > total:
        return "-:--:--"
    seconds = round((total - done) / rate)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
