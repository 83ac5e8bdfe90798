"""The bank use cases: create and curate banks, import and export hash lists, add media.

The CLI, the ``/v1`` and HMA routes, the demo and the tests call these; they never reach the
bank repository themselves. Signals arriving from outside are normalised here (canonical
text) before anything is written or looked up.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from amparo.banks.formats import ImportResult, iter_entries, write_entries
from amparo.banks.model import BankInfo, EntryRecord, EntryView
from amparo.config import LOCAL_ACTOR, Settings
from amparo.errors import MediaError
from amparo.hashing import MediaHashes
from amparo.hashing import hash_bytes as hash_media_bytes
from amparo.media.decode import decode_image
from amparo.media.sniff import HEAD_BYTES, sniff
from amparo.signals import normalize_signal
from amparo.signals.pdq_variants import CROPS, crop_variants
from amparo.store import Store
from amparo.video_matching import video_entries

log = logging.getLogger("amparo")


@dataclass
class ImportReport:
    bank: str
    added: int = 0
    updated: int = 0
    removed: int = 0
    read: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)
    problem_count: int = 0
    warnings: list[str] = field(default_factory=list)
    signals: dict[str, str] = field(default_factory=dict)
    """Media added (``add_media``): signal type -> value of each entry written."""
    not_added: dict[str, str] = field(default_factory=dict)
    """Media added (``add_media``): signal type -> why that hash was computed but not added."""
    variants: list[str] = field(default_factory=list)
    """Photo added (``add_media``): the names of the crop variants stored with its PDQ entry
    (``crop5-left``...; docs/detection.md); empty when none were."""
    variants_added: int = 0
    """How many of ``variants`` are new (adding the same photo again adds none)."""


class BankService:
    """Banks and their entries, as curators and importers use them."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.repository = store.banks

    # -- banks ------------------------------------------------------------------------------

    def create(self, info: BankInfo, *, actor: str = LOCAL_ACTOR) -> BankInfo:
        return self.repository.create(info, actor=actor)

    def get(self, name: str) -> BankInfo:
        """The bank named ``name`` (:class:`~amparo.errors.BankNotFoundError` if none)."""
        return self.repository.get(name)

    def list(self, *, with_counts: bool = True) -> builtins.list[BankInfo]:
        """All banks by name; ``with_counts=False`` skips counting entries (cheap)."""
        return self.repository.list(with_counts=with_counts)

    def update(self, name: str, *, actor: str = LOCAL_ACTOR, **changes: Any) -> BankInfo:
        return self.repository.update(name, actor=actor, **changes)

    def delete(self, name: str, *, actor: str = LOCAL_ACTOR) -> None:
        self.repository.delete(name, actor=actor)

    # -- hash lists -------------------------------------------------------------------------

    def import_entries(
        self,
        bank: str,
        stream: TextIO,
        fmt: str,
        *,
        signal_type: str | None = None,
        strict: bool = False,
        category_map: Mapping[int | str, str] | str | None = None,
        skip_ignored: bool = False,
        replace: bool = False,
        source_name: str | None = None,
        actor: str = LOCAL_ACTOR,
    ) -> ImportReport:
        """Import a hash list into ``bank``: all or nothing (a strict failure changes nothing)."""
        self.repository.get(bank)
        result = ImportResult(entries=[], problems=[])
        counter = _Counter(
            iter_entries(
                stream,
                fmt,
                signal_type=signal_type,
                strict=strict,
                category_map=category_map,
                skip_ignored=skip_ignored,
                source_name=source_name,
                report=result,
                require_entries=True,  # nothing valid read: fail, change nothing
            )
        )
        counts = self.repository.add_entries(
            bank,
            counter,
            actor=actor,
            replace=replace,
            action="bank.import",
            details={"format": fmt, "source": source_name or ""},
            commit_rows=self.settings.import_commit_rows,
        )
        return ImportReport(
            bank=bank,
            added=counts.added,
            updated=counts.updated,
            removed=counts.removed,
            read=counter.count,
            problems=result.problems,
            problem_count=result.problem_count,
            warnings=result.warnings,
        )

    def export_entries(
        self,
        bank: str,
        stream: TextIO,
        fmt: str,
        *,
        category_map: Mapping[int | str, str] | str | None = None,
    ) -> int:
        """Write the bank's entries to ``stream`` in ``fmt``; returns how many."""
        entries = self.repository.iter_entries(bank)
        return write_entries(stream, fmt, entries, category_map=category_map)

    # -- entries ----------------------------------------------------------------------------

    def add_entries(
        self,
        bank: str,
        records: Iterable[EntryRecord],
        *,
        actor: str = LOCAL_ACTOR,
        variants: Mapping[tuple[str, str], Sequence[tuple[str, str]]] | None = None,
    ) -> ImportReport:
        """Add (or update) entries, their signals normalised first; one transaction.
        ``variants``: an entry's ``(type, signal)`` -> its variants ``(name, signal)``
        (computed here from media, never taken from outside)."""
        normalized = []
        for record in records:
            record.signal_type, record.signal = normalize_signal(record.signal_type, record.signal)
            normalized.append(record)
        counts = self.repository.add_entries(bank, normalized, actor=actor, variants=variants)
        return ImportReport(
            bank=bank,
            added=counts.added,
            updated=counts.updated,
            read=len(normalized),
            variants_added=counts.variants,
        )

    def add_media(
        self,
        bank: str,
        data: bytes,
        *,
        category: str | None = None,
        tags: Sequence[str] = (),
        source_id: str | None = None,
        note: str | None = None,
        actor: str = LOCAL_ACTOR,
        hashes: MediaHashes | None = None,
    ) -> tuple[MediaHashes, ImportReport]:
        """Hash media and add it to ``bank``: a photo's PDQ (when usable) and MD5; a video's
        vPDQ (sampled at ``video_bank_sample_fps``), MD5 and SHA-256. A photo's ``hashes``,
        when the caller has them already (from :func:`amparo.hashing.hash_bytes`), are used
        as they are.

        The report's ``signals`` are the entries written and ``not_added`` says why a
        perceptual hash that was computed (or tried) was left out: what to show a user.

        With ``bank_crop_variants`` (default on), a photo's PDQ entry also gets the PDQ hashes
        of a few crops of it as variants (``variants`` of the report), so that a cropped
        copy matches the entry (docs/detection.md)."""
        not_added: dict[str, str] = {}
        variants: dict[tuple[str, str], list[tuple[str, str]]] = {}
        if sniff(data[:HEAD_BYTES]) == "video":
            hashes, records = video_entries(
                data,
                self.settings,
                category=category,
                tags=tags,
                source_id=source_id,
                note=note,
                not_added=not_added,
            )
        else:
            if hashes is None:
                hashes = hash_media_bytes(data, self.settings)
            signals = [("md5", hashes.md5)]
            if hashes.pdq is not None:
                minimum = self.settings.pdq_min_quality
                if (hashes.pdq_quality or 0) < minimum:
                    log.warning("PDQ quality %s too low; adding the MD5 only", hashes.pdq_quality)
                    not_added["pdq"] = (
                        f"quality {hashes.pdq_quality} is below pdq_min_quality {minimum} "
                        "(too flat or small to match reliably)"
                    )
                else:
                    signals.insert(0, ("pdq", hashes.pdq))
                    wanted = self.media_variants(data, hashes)
                    if wanted:
                        variants[("pdq", hashes.pdq)] = wanted
            elif hashes.error:
                not_added["pdq"] = hashes.error
            records = [
                EntryRecord(
                    t,
                    v,
                    category=category,
                    tags=builtins.list(tags),
                    source_id=source_id,
                    note=note,
                )
                for t, v in signals
            ]
        report = self.add_entries(bank, records, actor=actor, variants=variants)
        report.signals = {r.signal_type: r.signal for r in records}
        report.not_added = not_added
        report.variants = [name for wanted in variants.values() for name, _ in wanted]
        return hashes, report

    def media_variants(self, data: bytes, hashes: MediaHashes) -> builtins.list[tuple[str, str]]:
        """``(name, PDQ)`` of the variants stored with the PDQ entry of a photo (``hashes``
        are its own): the picture with its borders or bars trimmed (``trimmed``, the same
        trim a query gets, when there was something to trim) and, with ``bank_crop_variants``,
        its crops. Empty for a video or a photo with no usable PDQ; what the hotline's
        share-back proposals store too (:mod:`amparo.exchanges.proposals`)."""
        if hashes.pdq is None or (hashes.pdq_quality or 0) < self.settings.pdq_min_quality:
            return []
        found: builtins.list[tuple[str, str]] = []
        if hashes.pdq_trimmed is not None:
            found.append(("trimmed", hashes.pdq_trimmed))
        if self.settings.match_mirrored or self.settings.bank_crop_variants:
            found += self._pixel_variants(data)
        return found

    def _pixel_variants(self, data: bytes) -> builtins.list[tuple[str, str]]:
        """``(name, PDQ)`` of the variants cut from the photo's pixels: its true mirror
        (``match_mirrored``; a query's mirror is PDQ's DCT flip, which textures move past the
        threshold) and its crops (``bank_crop_variants``); those below ``pdq_min_quality``
        are left out."""
        try:
            decoded = decode_image(
                data,
                mode="L",
                max_pixels=self.settings.max_image_pixels,
                max_memory=self.settings.max_decode_memory,
            )
        except MediaError as exc:  # it decoded for its own hash; not expected
            log.warning("no crop variants: %s", exc.message)
            return []
        found = crop_variants(
            decoded.pixels,
            min_quality=self.settings.pdq_min_quality,
            crops=CROPS if self.settings.bank_crop_variants else (),
            mirror=self.settings.match_mirrored,
        )
        return [(v.name, v.hex) for v in found]

    def remove_signals(
        self, bank: str, signals: Sequence[tuple[str, str]], *, actor: str = LOCAL_ACTOR
    ) -> int:
        """Remove the bank's entries of these ``(type, value)`` signals; how many were."""
        return self.repository.remove_entries(bank, _normalize_all(signals), actor=actor)

    def remove_entry_ids(self, bank: str, ids: Sequence[int], *, actor: str = LOCAL_ACTOR) -> int:
        """Remove entries of the bank by id; ids of other banks or unknown ids are ignored."""
        return self.repository.remove_entry_ids(bank, ids, actor=actor)

    def set_signals_enabled(
        self,
        bank: str,
        signals: Sequence[tuple[str, str]],
        enabled: bool,
        *,
        actor: str = LOCAL_ACTOR,
        ids: Sequence[int] = (),
    ) -> int:
        """Enable or disable the bank's entries named by signal or by id; how many changed."""
        return self.repository.set_entries_enabled(
            bank, _normalize_all(signals), enabled, actor=actor, ids=ids
        )

    def set_signals_disabled_until(
        self,
        bank: str,
        signals: Sequence[tuple[str, str]],
        until: datetime | None,
        *,
        actor: str = LOCAL_ACTOR,
        ids: Sequence[int] = (),
    ) -> int:
        """Pause matching of entries named by signal or by id until ``until`` (None lifts
        the pause); how many changed."""
        return self.repository.set_entries_disabled_until(
            bank, _normalize_all(signals), until, actor=actor, ids=ids
        )

    def entry(self, bank: str, entry_id: int) -> EntryView | None:
        """The bank's entry ``entry_id``; None when it is not there (or was removed, or is a
        variant of another entry: those are not shown on their own)."""
        entry = self.repository.get_entries([entry_id]).get(entry_id)
        if entry is None or entry.removed or entry.bank_name != bank:
            return None
        if entry.variant_of is not None:
            return None
        return entry

    def entry_ids(self, bank: str, signals: Iterable[tuple[str, str]]) -> dict[str, int]:
        """Signal type -> id of the bank's active entry for each ``(type, value)`` given
        (what an add reports back)."""
        ids: dict[str, int] = {}
        for signal_type, value in signals:
            for entry in self.repository.find_exact(signal_type, [value]):
                if entry.bank_name == bank:
                    ids[signal_type] = entry.id
        return ids

    def count_active(self, signal_type: str | None = None) -> int:
        """How many entries match (of one signal type, or of all), across banks."""
        return self.repository.count_active(signal_type)


def _normalize_all(signals: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    return [normalize_signal(t, v) for t, v in signals]


class _Counter:
    """Counts what passes through an iterator."""

    def __init__(self, it: Iterable[EntryRecord]) -> None:
        self._it = iter(it)
        self.count = 0

    def __iter__(self) -> _Counter:
        return self

    def __next__(self) -> EntryRecord:
        item = next(self._it)
        self.count += 1
        return item
