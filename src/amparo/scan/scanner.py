"""The scan pipeline: walk -> hash (worker processes, in batches) -> match (this process, in
batches) -> journal + result.

Each stage is a function over a batch: :func:`amparo.scan.worker.hash_batch` turns tasks into
outcomes, :func:`match_batch` turns outcomes into records. Non-matching content is hashed and
forgotten; only the hashes of matched content reach the journal and the report.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from os import PathLike, fspath
from pathlib import Path

from amparo.actions.finds import media_find
from amparo.app import Amparo
from amparo.config import LOCAL_ACTOR, Settings
from amparo.errors import AmparoError
from amparo.events import Source
from amparo.matching import Match
from amparo.scan.archives import WalkItem
from amparo.scan.engine import HashEngine, make_engine
from amparo.scan.journal import ScanJournal
from amparo.scan.matchstage import match_batch
from amparo.scan.model import (
    MEMBER_SEPARATOR,
    ArchiveLimits,
    HashLimits,
    HashOutcome,
    HashTask,
    ItemRecord,
    Problem,
    S3Options,
    WorkerItem,
)
from amparo.scan.paths import display_path
from amparo.scan.report_context import scan_context
from amparo.scan.result import ScanResult
from amparo.scan.s3 import (
    PreviousObject,
    check_access,
    is_s3_url,
    object_media,
    object_path,
    walk_s3,
)
from amparo.scan.walk import walk_paths

log = logging.getLogger("amparo.scan")

CHUNK_BYTES = 64 * 1024 * 1024
"""Archive members travel to workers as bytes: a batch is sent once it carries this much."""


@dataclass(frozen=True)
class ScanOptions:
    """How to scan. Limits (file size, archive guards, pixels) come from the settings."""

    banks: Sequence[str] | None = None
    """Match against these banks only (default: every enabled bank)."""
    workers: int | None = None
    """Hashing processes: None = the ``workers`` setting, 0 = one per core, 1 = in-process."""
    journal: Path | None = None
    """Journal file (default: under ``<home>/scans/``, named after the paths and banks)."""
    resume: bool = False
    """Skip items the journal records as done (same size and mtime) and report them as is."""
    max_depth: int = 5
    """How many archives deep to look inside nested archives."""
    match_batch: int = 256
    hash_batch: int | None = None
    """Files per hashing batch; None = the engine's own (``batch_size``: 16 for worker
    processes, 64 on Ray, where each batch is a task with a round trip of its own)."""
    actions: bool = True
    """Run the action rules on each matched file (``amparo scan --no-actions``: off)."""
    engine: str | None = None
    """Where hashing runs: ``local`` (worker processes) or ``ray`` (a Ray cluster); None =
    the ``scan_engine`` setting."""
    ray_address: str | None = None
    """The Ray cluster to join (None = the ``ray_address`` setting; empty: a local one)."""
    operator: str | None = None
    """Who ran the scan, as the report names them (None: the operating-system user)."""


@dataclass(frozen=True)
class ScanProgress:
    files_done: int
    """Files on disk done (the number a pre-walk of the folders would count)."""
    items_done: int
    """Files and archive members done."""
    matches: int
    errors: int
    elapsed_s: float
    current: str
    bytes_done: int = 0
    """Bytes of the files done (objects and files on disk; members are inside them)."""
    workers: int = 0
    """Hashing workers alive now (processes, or CPUs of a Ray cluster's live nodes)."""


ProgressCallback = Callable[[ScanProgress], None]
RecordCallback = Callable[[ItemRecord], None]


def default_journal_path(
    settings: Settings, paths: Sequence[str | PathLike[str]], banks: Sequence[str] | None
) -> Path:
    """``<home>/scans/scan-<key>.journal``, the key derived from the paths and banks, so the
    same scan run again with ``--resume`` finds its journal."""
    roots = [str(p) if is_s3_url(str(p)) else str(Path(p).resolve()) for p in paths]
    key = json.dumps([roots, sorted(banks) if banks else None]).encode()
    return settings.home / "scans" / f"scan-{hashlib.sha256(key).hexdigest()[:16]}.journal"


def scan_paths(
    amparo: Amparo,
    paths: Sequence[str | PathLike[str]],
    options: ScanOptions | None = None,
    progress: ProgressCallback | None = None,
    on_record: RecordCallback | None = None,
) -> ScanResult:
    """Scan files, folders and archives; return what was found.

    Per-file problems are in the result, never raised. Raises only when the scan cannot run
    at all (an unknown bank, a journal from another scan). ``progress`` is called a few times
    a second; ``on_record`` once for every file and member checked (matching or not, resumed
    ones included). Ctrl-C stops the scan cleanly:
    the result has ``interrupted`` set and the journal holds everything done so far.
    """
    opts = options or ScanOptions()
    settings = amparo.settings
    banks = list(opts.banks) if opts.banks else None
    roots = [fspath(p) for p in paths]
    s3 = s3_options(settings)
    buckets = [r for r in roots if is_s3_url(r)]
    if buckets:
        check_access(buckets, s3)  # a bad credential or bucket: a clear error, before starting
    limits = HashLimits(
        max_pixels=settings.max_image_pixels,
        max_file_bytes=settings.max_file_bytes,
        dihedral=amparo.checks.wants_dihedral(banks),  # also checks that the banks exist
        mirror=settings.match_mirrored,
        trim=settings.trim_borders,
        video_sample_fps=settings.video_sample_fps,
        video_max_file_bytes=settings.video_max_file_bytes,
        video_max_duration_seconds=float(settings.video_max_duration_seconds),
        video_timeout_seconds=float(settings.video_timeout_seconds),
        max_decode_memory=settings.max_decode_memory,
        s3=s3,
        archives=archive_limits(settings, opts),
        max_spool_bytes=settings.s3_max_spool_bytes,
    )
    journal_path = opts.journal or default_journal_path(settings, roots, banks)
    journal = ScanJournal(journal_path, banks=banks, resume=opts.resume)
    result = ScanResult(roots=roots, banks=banks, journal=journal_path)
    result.context = scan_context(amparo, banks, opts.operator)
    run = _Run(amparo, opts, banks, journal, result, progress, on_record)
    engine = make_engine(
        settings.workers if opts.workers is None else opts.workers,
        limits,
        engine=opts.engine or settings.scan_engine,
        ray_address=(settings.ray_address if opts.ray_address is None else opts.ray_address)
        or None,
    )
    try:
        run.execute(engine, roots, limits)
    except KeyboardInterrupt:
        result.interrupted = True
        run.flush_matches()
    finally:
        engine.close()
        journal.close()
        amparo.flush_counts()  # the scan's matches reach the console's match volume now
        result.finished_at = datetime.now(UTC)
        run.report_progress(force=True)
    return result


def s3_options(settings: Settings) -> S3Options:
    """How this scan's workers reach buckets (``s3_endpoint``, ``s3_region``, ``s3_profile``)."""
    return S3Options(
        endpoint_url=settings.s3_endpoint or None,
        region=settings.s3_region or None,
        profile=settings.s3_profile or None,
    )


def archive_limits(settings: Settings, opts: ScanOptions) -> ArchiveLimits:
    return ArchiveLimits(
        max_member_bytes=settings.max_archive_member_bytes,
        max_ratio=settings.max_archive_ratio,
        max_depth=opts.max_depth,
    )


def walk_roots(
    roots: Sequence[str],
    limits: HashLimits,
    previous: PreviousObject | None,
) -> Iterator[WalkItem]:
    """Every item under the roots: folders and files on disk, then objects in buckets."""
    local = [r for r in roots if not is_s3_url(r)]
    buckets = [r for r in roots if is_s3_url(r)]
    assert limits.archives is not None
    if local:
        yield from walk_paths(local, limits.archives, previous)
    if buckets:
        yield from walk_s3(buckets, limits.s3 or S3Options(), previous)


class _Run:
    """The state of one scan while it runs."""

    def __init__(
        self,
        amparo: Amparo,
        opts: ScanOptions,
        banks: list[str] | None,
        journal: ScanJournal,
        result: ScanResult,
        progress: ProgressCallback | None,
        on_record: RecordCallback | None,
    ) -> None:
        self.on_record = on_record
        self.amparo = amparo
        self.opts = opts
        self.banks = banks
        self.journal = journal
        self.result = result
        self.progress = progress
        self.outcomes: list[HashOutcome] = []
        self.files_done = 0
        self.bytes_done = 0
        self.engine: HashEngine | None = None
        self.current = ""
        self.started = time.monotonic()
        self.last_report = 0.0
        self.scan_id = journal.path.stem
        # Archive members' bytes, kept until matched so the rules can preserve them.
        self.act = opts.actions and amparo.checks.rules_active()
        self.member_data: dict[str, bytes] = {}
        self.member_bytes = 0

    def execute(self, engine: HashEngine, roots: list[str], limits: HashLimits) -> None:
        self.engine = engine
        batch_size = self.opts.hash_batch or engine.batch_size
        lookup = self.journal.lookup if self.opts.resume else None
        pending: deque[tuple[list[HashTask], Future[list[WorkerItem]]]] = deque()
        chunk: list[HashTask] = []
        chunk_bytes = 0

        def send() -> None:
            nonlocal chunk, chunk_bytes
            pending.append((chunk, engine.submit(chunk)))
            chunk, chunk_bytes = [], 0
            while pending and (pending[0][1].done() or len(pending) > engine.capacity):
                self.collect(engine, *pending.popleft())

        for item in walk_roots(roots, limits, lookup):
            if isinstance(item, HashTask):
                chunk.append(item)
                chunk_bytes += len(item.data or b"")
                if len(chunk) >= batch_size or chunk_bytes >= CHUNK_BYTES:
                    send()
                continue
            if isinstance(item, Problem):
                self.result.add_problem(item)
                self.files_done += item.is_file and item.on_disk
                self.current = item.path
            else:
                self.resumed(item.record)
            self.report_progress()
        if chunk:
            send()
        while pending:
            self.collect(engine, *pending.popleft())
        self.flush_matches()

    def resumed(self, record: ItemRecord) -> None:
        """An item an earlier run of this scan did: reported as it was, not checked again."""
        self.result.add_record(record, resumed=True)
        if self.on_record is not None:
            self.on_record(record)
        self.files_done += record.on_disk
        self.bytes_done += record.size if record.on_disk else 0
        self.current = record.path

    def collect(
        self, engine: HashEngine, tasks: list[HashTask], future: Future[list[WorkerItem]]
    ) -> None:
        items: list[WorkerItem]
        try:
            items = future.result()
        except BrokenProcessPool:
            engine.reset()
            items = [_failed(t, "a hashing worker crashed on this batch") for t in tasks]
        except Exception as exc:
            items = [_failed(t, f"hashing failed: {exc!r}") for t in tasks]
        outcomes: list[HashOutcome] = []
        for item in items:
            if isinstance(item, Problem):
                self.result.add_problem(item)
                continue
            done = self._done_before(item)
            if done is not None:
                self.resumed(done)
                continue
            outcomes.append(item)
            self.files_done += item.on_disk
            self.bytes_done += item.size if item.on_disk else 0
        self.outcomes.extend(outcomes)
        if self.act:
            for t in tasks:
                if t.data is not None:
                    self.member_data[t.path] = t.data
                    self.member_bytes += len(t.data)
        if outcomes:
            self.current = outcomes[-1].path
        if len(self.outcomes) >= self.opts.match_batch or self.member_bytes >= CHUNK_BYTES:
            self.flush_matches()
        self.report_progress()

    def _done_before(self, outcome: HashOutcome) -> ItemRecord | None:
        """On resume, the record of an item a worker found again (a member of an archive in a
        bucket, re-read because its members are not listed) that an earlier run finished."""
        if not self.opts.resume or outcome.etag is None:
            return None
        return self.journal.lookup(outcome.path, outcome.size, outcome.mtime_ns, outcome.etag)

    def flush_matches(self) -> None:
        if not self.outcomes:
            return
        # Rules act before the journal records the items: a crash in between means acting
        # again on resume (cases and receivers dedupe), never not acting at all.
        on_match = self.act_on if self.act else None
        # Retroactive matching keeps the hashes of what a scan that acts looked up.
        on_checked = self.keep_checked if self.act and self.amparo.checks.keeps_checked else None
        records = match_batch(self.amparo, self.outcomes, self.banks, on_match, on_checked)
        self.outcomes = []
        self.member_data, self.member_bytes = {}, 0
        self.journal.append(records)
        for record in records:
            self.result.add_record(record)
            if self.on_record is not None:
                self.on_record(record)

    def _source(self, outcome: HashOutcome) -> Source:
        # The file is read by its exact path; cases, events and webhooks get it as text.
        shown = display_path(outcome.path)
        name = shown.rsplit(MEMBER_SEPARATOR, 1)[-1]
        return Source(kind="scan", path=shown, scan_id=self.scan_id, file_name=Path(name).name)

    def keep_checked(self, outcome: HashOutcome, matches: list[Match]) -> None:
        """Pass a looked-up file's hashes (never its bytes) on to retroactive matching."""
        assert outcome.hashes is not None
        self.amparo.checks.checked_media(outcome.hashes, matches, self._source(outcome))

    def act_on(self, outcome: HashOutcome, matches: list[Match]) -> None:
        """Run the action rules on one matched file or archive member."""
        assert outcome.hashes is not None
        media: bytes | Path | Callable[[], bytes | None] | None
        if outcome.obj is not None:  # read again from the bucket, only if a rule runs
            prefix = object_path(outcome.obj.bucket, outcome.obj.key) + MEMBER_SEPARATOR
            member = outcome.path[len(prefix) :] if outcome.path.startswith(prefix) else None
            settings = self.amparo.settings
            read = object_media(
                outcome.obj,
                member,
                s3_options(settings),
                archive_limits(settings, self.opts),
                settings.max_file_bytes,
                settings.s3_max_spool_bytes,
            )
            media = _or_none(read, outcome.path)
        elif outcome.on_disk:
            media = Path(outcome.path)
        else:
            media = self.member_data.get(outcome.path)
        find = media_find(outcome.hashes, matches, self._source(outcome))
        self.amparo.checks.act(find, media=media, actor=LOCAL_ACTOR)

    def report_progress(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.progress is None or (not force and now - self.last_report < 0.1):
            return
        self.last_report = now
        r = self.result
        self.progress(
            ScanProgress(
                files_done=self.files_done,
                items_done=r.files_seen + len(self.outcomes),
                matches=len(r.matches),
                errors=len(r.errors),
                elapsed_s=now - self.started,
                current=self.current,
                bytes_done=self.bytes_done,
                workers=self.engine.workers_alive() if self.engine is not None else 0,
            )
        )


def _or_none(read: Callable[[], bytes], path: str) -> Callable[[], bytes | None]:
    """An object read again for the rules: when that fails (deleted or changed since it was
    hashed, a network error), the rules run without media and the scan goes on."""

    def media() -> bytes | None:
        try:
            return read()
        except AmparoError as exc:
            log.warning("%s: %s", display_path(path), exc.message)
            return None

    return media


def _failed(task: HashTask, message: str) -> HashOutcome:
    return HashOutcome(
        path=task.path,
        size=task.size,
        mtime_ns=task.mtime_ns,
        media_type=task.media_type,
        hashes=None,
        status="error",
        code="worker_failed",
        message=message,
        on_disk=task.on_disk,
        etag=task.etag,
        obj=task.obj,
    )
