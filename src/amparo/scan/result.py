"""What a scan found: matches, per-file errors, skipped files and totals.

Exit codes (the ClamAV convention, with one rule for the mixed case):
0 nothing matched and nothing went wrong; 1 something matched (this wins over per-file
errors: a match is what an operator must act on, and a script testing for 1 must never miss
one); 2 no match, but some file could not be checked (or the scan could not run at all).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from amparo.scan.model import ItemRecord, Problem
from amparo.scan.paths import display_path, path_fields
from amparo.scan.report_context import ScanContext

EXIT_OK = 0
EXIT_MATCH = 1
EXIT_ERROR = 2


@dataclass(frozen=True)
class FoundMatch:
    """One bank entry matched by one scanned file or archive member."""

    path: str
    size: int
    media_type: str | None
    match: dict[str, object]
    """``Match.to_json()``: bank, entry_id, signal_type, distance, category (+tags, ...)."""
    hashes: dict[str, str]
    """The scanned content's own signals (md5, sha1, sha256, pdq when computed)."""

    def to_json(self) -> dict[str, object]:
        """The report's record: the match's own ``path`` (how it was found) is
        ``match_path`` here, as ``path`` names the file."""
        match = {("match_path" if k == "path" else k): v for k, v in self.match.items()}
        return {
            "kind": "match",
            **path_fields(self.path),
            "size": self.size,
            "media_type": self.media_type,
            **match,
            "hashes": self.hashes,
        }


@dataclass(frozen=True)
class Issue:
    """A file (or folder, or archive) that was not fully checked, and why."""

    kind: str
    """``error`` or ``skipped``."""
    path: str
    code: str
    message: str

    def to_json(self) -> dict[str, object]:
        key = "reason" if self.kind == "skipped" else "message"
        # A message may quote a name that is not UTF-8: written with \xNN escapes too.
        message = display_path(self.message)
        return {"kind": self.kind, **path_fields(self.path), "code": self.code, key: message}


@dataclass
class ScanResult:
    """Everything a scan reports. Built up as items complete; see :func:`scan_paths`."""

    roots: list[str]
    banks: list[str] | None = None
    matches: list[FoundMatch] = field(default_factory=list)
    errors: list[Issue] = field(default_factory=list)
    skipped: list[Issue] = field(default_factory=list)
    files_seen: int = 0
    hashed: int = 0
    matched_files: int = 0
    resumed: int = 0
    """Items taken from the journal of an earlier, interrupted run (not hashed again)."""
    skipped_by_reason: Counter[str] = field(default_factory=Counter)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    journal: Path | None = None
    interrupted: bool = False
    context: ScanContext | None = None
    """Version, operator, matching settings and bank provenance (the reports state them)."""

    @property
    def exit_code(self) -> int:
        if self.matches:
            return EXIT_MATCH
        return EXIT_ERROR if self.errors or self.interrupted else EXIT_OK

    @property
    def elapsed_s(self) -> float:
        end = self.finished_at or datetime.now(UTC)
        return (end - self.started_at).total_seconds()

    def add_record(self, record: ItemRecord, *, resumed: bool = False) -> None:
        self.files_seen += 1
        self.resumed += resumed
        self.hashed += record.hashed
        if record.matches:
            self.matched_files += 1
            for m in record.matches:
                self.matches.append(
                    FoundMatch(record.path, record.size, record.media_type, m, record.hashes)
                )
        if record.status != "ok":
            self._issue(record.status, record.path, record.code or record.status, record.message)

    def add_problem(self, problem: Problem) -> None:
        self.files_seen += problem.is_file
        self._issue(problem.status, problem.path, problem.code, problem.message)

    def _issue(self, kind: str, path: str, code: str, message: str | None) -> None:
        issue = Issue(kind, path, code, message or code)
        if kind == "error":
            self.errors.append(issue)
        else:
            self.skipped.append(issue)
            self.skipped_by_reason[code] += 1

    def matched_files_by(self, key: str) -> dict[str, int]:
        """Matched files per ``bank`` or ``category`` (a file counts once per value, and
        in every bank or category it matched); "" when a match has no category."""
        counts: Counter[str] = Counter()
        path: str | None = None
        seen: set[str] = set()
        for m in self.matches:  # a file's matches are consecutive (added per record)
            if m.path != path:
                counts.update(seen)
                path, seen = m.path, set()
            value = m.match.get(key)
            seen.add("" if value is None else str(value))
        counts.update(seen)
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def errors_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(e.code for e in self.errors).items()))

    def summary(self) -> dict[str, object]:
        """Totals, counts by bank, category and reason, and (when known) the context."""
        return {
            "kind": "summary",
            "roots": [display_path(r) for r in self.roots],
            "banks": self.banks,
            "files_seen": self.files_seen,
            "hashed": self.hashed,
            "matched_files": self.matched_files,
            "matches": len(self.matches),
            "errors": len(self.errors),
            "skipped": len(self.skipped),
            "skipped_by_reason": dict(sorted(self.skipped_by_reason.items())),
            "resumed": self.resumed,
            "interrupted": self.interrupted,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "finished_at": (
                self.finished_at.isoformat(timespec="seconds") if self.finished_at else None
            ),
            "elapsed_s": round(self.elapsed_s, 3),
            "exit_code": self.exit_code,
            "matched_files_by_bank": self.matched_files_by("bank"),
            "matched_files_by_category": self.matched_files_by("category"),
            "errors_by_reason": self.errors_by_reason(),
            **(self.context.to_json() if self.context is not None else {}),
        }
