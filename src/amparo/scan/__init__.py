"""Batch scanning of folders and archives for known material.

    from amparo import Amparo
    from amparo.scan import ScanOptions, scan_paths, write_report

    with Amparo() as amparo:
        result = scan_paths(amparo, ["/mnt/evidence"], ScanOptions(workers=4))
        with open("report.html", "w", encoding="utf-8") as fh:
            write_report(result, fh, "html")
        print(result.summary(), result.exit_code)

The pipeline is walk -> :func:`hash_batch` (worker processes) -> :func:`match_batch` (this
process) -> journal and :class:`ScanResult`; see ``docs/scan.md``.
"""

from amparo.scan.engine import HashEngine, InProcessEngine, ProcessPoolEngine, make_engine
from amparo.scan.journal import ScanJournal
from amparo.scan.matchstage import match_batch
from amparo.scan.model import (
    ArchiveLimits,
    HashLimits,
    HashOutcome,
    HashTask,
    ItemRecord,
    Problem,
)
from amparo.scan.report import REPORT_FORMATS, format_for, iter_jsonl, write_report
from amparo.scan.result import EXIT_ERROR, EXIT_MATCH, EXIT_OK, FoundMatch, Issue, ScanResult
from amparo.scan.scanner import (
    ProgressCallback,
    RecordCallback,
    ScanOptions,
    ScanProgress,
    default_journal_path,
    scan_paths,
)
from amparo.scan.walk import count_files, walk_paths
from amparo.scan.worker import hash_batch

__all__ = [
    "EXIT_ERROR",
    "EXIT_MATCH",
    "EXIT_OK",
    "REPORT_FORMATS",
    "ArchiveLimits",
    "FoundMatch",
    "HashEngine",
    "HashLimits",
    "HashOutcome",
    "HashTask",
    "InProcessEngine",
    "Issue",
    "ItemRecord",
    "Problem",
    "ProcessPoolEngine",
    "ProgressCallback",
    "RecordCallback",
    "ScanJournal",
    "ScanOptions",
    "ScanProgress",
    "ScanResult",
    "count_files",
    "default_journal_path",
    "format_for",
    "hash_batch",
    "iter_jsonl",
    "make_engine",
    "match_batch",
    "scan_paths",
    "walk_paths",
    "write_report",
]
