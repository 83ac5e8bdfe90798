"""Retroactive matching (opt-in, ``retro_match_days``): the hashes (never the media) of
content checked in the last N days are kept; when new entries arrive from any source, those
hashes are matched again and new finds run the action rules with the source marked
``retro``. Expired hashes are purged on schedule.

Why this shape:

* What is kept: every check that may act and names its content (by SHA-256) passes through
  :meth:`amparo.checks.Checks.on_checked`: ``check_media`` (uploads, URLs, HMA lookups with
  content) and ``check_signals`` when the signals carry a ``sha256``. Bare lookups (a PDQ hash
  alone, HMA's raw-lookup fast lane, ``match_signals``/``match_hashes``) name no content a later
  find could be about, and are not kept. One row per content: a second check of the same
  content refreshes its time and source (the latest sighting).
* What is matched: only the entries that became active since the cursor (the change log,
  :mod:`amparo.store.changelog`: new, updated or re-enabled, from any source: exchanges,
  imports, ``bank add``), and only against contents checked within the window. Digests are
  compared by an indexed equality; PDQ by Hamming distance (numpy) under the largest bank
  threshold, as a pre-filter (the content's own PDQ and the other forms its check looked up:
  mirrored, trimmed, rotated); video signals make every retained video a candidate. Each
  candidate is then looked up by the ordinary matcher (per-bank thresholds, enablement,
  known-benign suppression), so a retro find is exactly what the check would find now.
* At most once: each (content, entry) pair found, by the original check or retroactively, is
  recorded (``retro_finds``); a content is acted on only for a match not recorded yet.
* A retro find has no media (none is kept): rules run as for any find (cases, reports,
  webhooks) with ``Source(kind="retro", ...)`` and the original sighting's ids, so the platform
  can act on the original upload; evidence is not preserved by Amparo for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from amparo.checks import CheckedContent, Checks
from amparo.clock import Clock, utc_now
from amparo.config import Settings
from amparo.events import MatchedContent, Source
from amparo.exchanges.model import FetchResult
from amparo.matching import Query
from amparo.media.sniff import MIME_TYPES, media_kind
from amparo.signals import get_signal_type
from amparo.signals.pdq import PdqSignal, hamming_matrix, hexes_to_array
from amparo.store import Store
from amparo.store.leases import LeaseRepository, default_holder
from amparo.store.retro import Retained, RetroRepository

_log = logging.getLogger(__name__)

RETRO_ACTOR = "retro"
"""Who the audit log and the actions-taken log name for retroactive finds."""
PAIR_LIMIT = 20_000_000
"""Above this many (retained PDQ x new PDQ) comparisons, every retained PDQ content is a
candidate instead (the matcher's index answers each of them faster than the pre-filter)."""
_NEW_CHUNK = 4096
_BATCH = 500
_PDQ_FORMS = ("pdq_mirror", "pdq_trimmed", "pdq_trimmed_mirror")
"""The PDQ forms besides the content's own a check looks up (``amparo.matching.Query``),
kept in a retained content's detail (with ``pdq_dihedral``)."""


_PURGE_EVERY = timedelta(hours=1)
_LEASE = "retro:catch-up"
_LEASE_SECONDS = 900.0
"""Longer than a catch-up takes; a holder that died lets go after it."""


@dataclass
class RetroResult:
    """What one catch-up did (counts only: this is what the audit log records)."""

    enabled: bool
    seq_from: int = 0
    seq_to: int = 0
    entries: int = 0
    """Entries that became active since the cursor."""
    candidates: int = 0
    """Retained contents the pre-filter sent to the matcher."""
    finds: int = 0
    """Retained contents with a new find (each acted on once)."""
    pairs: int = 0
    """(content, entry) pairs newly found."""
    actions: int = 0
    """Actions the rules took on them."""
    busy: bool = False
    """Another process was catching up (it holds the lease): this one did nothing."""
    purged: int = 0
    """Retained contents deleted (older than the window, or all when turned off)."""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class RetroService:
    """Keeps recent contents' hashes and matches them against entries that arrive later."""

    def __init__(
        self, settings: Settings, store: Store, checks: Checks, *, clock: Clock = utc_now
    ) -> None:
        self.settings = settings
        self.store = store
        self.checks = checks
        self.clock = clock
        self.repository = RetroRepository(store.db)
        self.leases = LeaseRepository(store.db, clock=clock)
        self._purged_at: datetime | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.retro_match_days > 0

    def window_start(self, now: datetime | None = None) -> datetime:
        """The oldest check time still kept."""
        return (now or self.clock()) - timedelta(days=self.settings.retro_match_days)

    # -- keeping ----------------------------------------------------------------------------

    def remember(self, content: CheckedContent) -> None:
        """Keep one checked content's hashes (a :meth:`Checks.on_checked` hook): one write
        per check; nothing when off, and never a retro find itself."""
        if not self.enabled or content.source.kind == "retro" or "sha256" not in content.signals:
            return
        detail: dict[str, Any] = {
            "size": content.size,
            "media_type": content.media_type,
            "pdq_quality": content.pdq_quality,
            "pdq_dihedral": list(content.pdq_dihedral) or None,
            # The other forms the check looked up, so a re-match looks them up too.
            **{key: getattr(content, key) for key in _PDQ_FORMS},
        }
        now = self.clock()
        self.repository.remember(
            content.sha256,
            content.signals,
            detail={k: v for k, v in detail.items() if v is not None},
            source=content.source.as_dict(),
            at=now,
            found=[m.entry_id for m in content.matches],
        )
        # Where nothing runs catch-ups (a lab scanning without `amparo serve`), what is kept
        # still goes once the window has passed: purge here too, at most hourly.
        if self._purged_at is None or now - self._purged_at >= _PURGE_EVERY:
            self._purged_at = now
            self.purge(now)

    # -- catching up ------------------------------------------------------------------------

    def on_entries_changed(self, result: FetchResult) -> None:
        """An :meth:`ExchangeService.after_fetch` callback: a fetch that changed entries
        catches up at once (the fetch is already committed: a failure here is logged and
        left to the next catch-up, never the fetch's)."""
        if not self.enabled or not result.fetched or not (result.added or result.upserts):
            return
        try:
            self.catch_up()
        except Exception:
            _log.exception(
                "retroactive matching after the fetch of %s failed", result.collaboration
            )

    def catch_up(self, now: datetime | None = None) -> RetroResult:
        """Match the retained hashes against the entries that became active since the
        cursor; act on each new find; purge what is older than the window; advance the
        cursor. When off, forget everything retained."""
        now = now or self.clock()
        if not self.enabled:
            if self.repository.cursor() is None:  # nothing was ever kept: no write
                return RetroResult(enabled=False)
            with self.store.transaction(refresh=False) as tx:
                purged = self.repository.forget_all(tx)
                if purged:
                    tx.audit(RETRO_ACTOR, "retro.purge", "", {"purged": purged, "enabled": False})
            return RetroResult(enabled=False, purged=purged)
        # One catch-up at a time across processes and machines (every serve worker runs
        # the loop): two at once could act on the same find twice.
        token = self.leases.acquire(_LEASE, default_holder(), _LEASE_SECONDS)
        if token is None:
            return RetroResult(enabled=True, busy=True)
        try:
            return self._catch_up(now)
        finally:
            self.leases.release(_LEASE, token)

    def _catch_up(self, now: datetime) -> RetroResult:
        since = self.window_start(now)
        result = RetroResult(enabled=True, purged=self.purge(now))
        cursor = self.repository.cursor()
        if cursor is None:  # nothing retained yet: nothing to match
            return result
        changes = self.store.changes.since(cursor)
        result.seq_from, result.seq_to = cursor, changes.seq
        if changes.seq <= cursor:
            return result
        result.entries = len(changes.upserts)
        candidates = self._candidates(changes.upserts, since)
        result.candidates = len(candidates)
        if candidates:
            self.checks.matcher.refresh()  # the index must hold every entry up to changes.seq
            ordered = sorted(candidates)
            for start in range(0, len(ordered), _BATCH):
                self._match(
                    self.repository.get(ordered[start : start + _BATCH]), since, now, result
                )
        with self.store.transaction(refresh=False) as tx:
            self.repository.set_cursor(tx, changes.seq)
            if result.entries:
                tx.audit(RETRO_ACTOR, "retro.catch_up", "", result.to_json())
        return result

    def purge(self, now: datetime | None = None) -> int:
        """Delete the hashes of contents checked before the window; audit-logged (a count)."""
        now = now or self.clock()
        with self.store.transaction(refresh=False) as tx:
            purged = self.repository.purge(tx, self.window_start(now))
            if purged:
                tx.audit(
                    RETRO_ACTOR,
                    "retro.purge",
                    "",
                    {"purged": purged, "days": self.settings.retro_match_days},
                )
        return purged

    def _candidates(self, upserts: Iterable[tuple[int, str, str]], since: datetime) -> set[int]:
        """Retained contents (checked since ``since``) that may match one of the new
        entries: a superset, which the matcher then decides."""
        by_type: dict[str, list[str]] = {}
        for _id, signal_type, signal in upserts:
            by_type.setdefault(signal_type, []).append(signal)
        out: set[int] = set()
        for signal_type, values in by_type.items():
            kind = get_signal_type(signal_type).index_kind
            if kind == "exact":
                out |= self.repository.with_signals(signal_type, values, since=since)
            elif kind == "hamming":
                out |= self._near(signal_type, values, since)
            else:  # video: compared frame by frame by the matcher itself
                out |= self._all(signal_type, since)
        return out

    def _all(self, signal_type: str, since: datetime) -> set[int]:
        return {
            i for batch in self.repository.iter_signal(signal_type, since=since) for i, _ in batch
        }

    def _near(self, signal_type: str, values: list[str], since: datetime) -> set[int]:
        """Retained PDQ hashes within the largest threshold of any new PDQ entry."""
        retained = self.repository.count(signal_type, since=since)
        if not retained:
            return set()
        if retained * len(values) > PAIR_LIMIT:
            return self._all(signal_type, since)
        banks = self.store.banks.list(with_counts=False)
        threshold = max(
            [self.checks.matcher.threshold(b) for b in banks] or [self.settings.pdq_threshold]
        )
        new = hexes_to_array(values)
        out: set[int] = set()
        for batch in self.repository.iter_signal(signal_type, since=since):
            kept = hexes_to_array([v for _, v in batch])
            near = np.zeros(len(batch), dtype=bool)
            for start in range(0, len(new), _NEW_CHUNK):
                distances = hamming_matrix(kept, new[start : start + _NEW_CHUNK])
                near |= (distances <= threshold).any(axis=1)
            out.update(batch[i][0] for i in np.flatnonzero(near))
            if signal_type == PdqSignal.name:
                far = [batch[i][0] for i in np.flatnonzero(~near)]
                out |= self._near_by_other_forms(far, new, threshold)
        return out

    def _near_by_other_forms(self, ids: list[int], new: np.ndarray, threshold: int) -> set[int]:
        """Of retained contents ``ids``, those whose other PDQ forms (mirrored, trimmed,
        rotated: kept in their detail, absent from what was kept before there were any) are
        within ``threshold`` of a new entry."""
        owners: list[int] = []
        forms: list[str] = []
        for start in range(0, len(ids), _BATCH):
            for r in self.repository.get(ids[start : start + _BATCH]):
                for value in _other_forms(r.detail):
                    owners.append(r.id)
                    forms.append(value)
        if not forms:
            return set()
        kept = hexes_to_array(forms)
        near = np.zeros(len(forms), dtype=bool)
        for start in range(0, len(new), _NEW_CHUNK):
            distances = hamming_matrix(kept, new[start : start + _NEW_CHUNK])
            near |= (distances <= threshold).any(axis=1)
        return {owners[i] for i in np.flatnonzero(near)}

    def _match(
        self, retained: list[Retained], since: datetime, now: datetime, result: RetroResult
    ) -> None:
        """Look candidates up with the ordinary matcher; act on each new find, recording
        its pairs in the same transaction (so a find is acted on once)."""
        retained = [r for r in retained if r.checked_at >= since]
        queries = [
            Query(
                signals=dict(r.signals),
                pdq_quality=r.detail.get("pdq_quality"),
                pdq_dihedral=list(r.detail.get("pdq_dihedral") or ()),
                pdq_mirror=r.detail.get("pdq_mirror"),
                pdq_trimmed=r.detail.get("pdq_trimmed"),
                pdq_trimmed_mirror=r.detail.get("pdq_trimmed_mirror"),
            )
            for r in retained
        ]
        for content, found in zip(retained, self.checks.matcher.match(queries), strict=True):
            new = [m for m in found.matches if m.entry_id not in content.found]
            if not new:
                continue
            self.checks.count([new], "retro")  # the match volume: a new find per bank
            find = self._find(content, found.matches)
            with self.store.transaction(refresh=False) as tx:
                actions = self.checks.act(find, actor=RETRO_ACTOR)
                RetroRepository.record_found(
                    tx.conn, [(content.id, m.entry_id) for m in found.matches], now
                )
            result.finds += 1
            result.pairs += len({m.entry_id for m in new})
            result.actions += len(actions)

    @staticmethod
    def _find(content: Retained, matches: Iterable[Any]) -> MatchedContent:
        """The find a retained content makes: its original sighting, marked ``retro``."""
        source = {k: v for k, v in content.source.items() if k != "kind"}
        known = set(Source.__dataclass_fields__)
        media_type = content.detail.get("media_type")
        return MatchedContent(
            sha256=content.sha256,
            md5=content.signals.get("md5"),
            size=content.detail.get("size"),
            media_kind=media_kind(media_type),
            mime=MIME_TYPES.get(media_type or ""),
            matches=tuple(matches),
            source=Source(kind="retro", **{k: v for k, v in source.items() if k in known}),
        )


def _other_forms(detail: dict[str, Any]) -> list[str]:
    """The PDQ hashes besides its own that a retained content's check looked up."""
    values = [detail.get(key) for key in _PDQ_FORMS]
    values += list(detail.get("pdq_dihedral") or ())
    return [v for v in values if isinstance(v, str) and len(v) == 64]
