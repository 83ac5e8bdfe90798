"""The matcher against a brute-force model of the documented matching rules.

A seeded random walk changes banks and entries through the application core (create, delete,
enable, disable, re-threshold, turn dihedral matching on and off, switch a bank between
positive and negative, add, disable, enable, remove and re-add entries, compact the index)
and after each step looks a batch of queries up. A model that knows nothing of indexes computes
from first principles what docs/architecture.md ("Matching") and docs/review.md (negative
banks) say the answer is, and the test asserts the matcher returns exactly that:

- an entry matches when it is enabled and not removed, its bank is enabled and chosen (negative
  banks are always consulted), and the query's value is identical (MD5, SHA-256) or within the
  bank's PDQ threshold (the configured default when the bank sets none);
- a PDQ entry also matches through the query's rotations and flips when its bank opted in
  (``dihedral``), and through the query's horizontal mirror (``MIRROR``) in every bank when
  ``match_mirrored`` is on (the seed decides); the closest wins and ties go to the unrotated
  query, then to ``DIHEDRAL_NAMES`` order; a match through the query itself has path
  ``plain``, one through a rotation or flip path ``dihedral``;
- a PDQ hash below ``pdq_min_quality`` is not matched on and the result says why;
- a query that matches an entry of a negative bank has no matches: its negative-bank matches are
  ``benign`` and the rest ``suppressed``.

PDQ values come from the dihedral hashes (``pdq_dihedral_from_pixels``, what hashing uses) of
scikit-image's bundled photos and of their rotated and mirrored copies, with bits flipped around
the thresholds, so a rotated query meets its bank entry as it would in use. Runs on SQLite in
seconds; the ``slow`` variant walks longer over more seeds. A failure names the seed, the step,
the query and the last changes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np
import pytest
from skimage import data

from amparo import Amparo, BankInfo, EntryRecord
from amparo.config import Settings
from amparo.matching import MIRROR, Match, Query, QueryResult
from amparo.signals.pdq import DIHEDRAL_NAMES, PdqSignal, pdq_dihedral_from_pixels

FLIPS = (0, 1, 2, 5, 9, 10, 11, 19, 20, 21, 30, 31, 32, 33, 40, 62, 63, 64, 80)
"""Bits flipped between related hashes: on, just inside and just outside each threshold."""
THRESHOLDS = (None, None, 0, 10, 20, 31, 32, 63)
QUALITIES = (None, 100, 100, 100, 80, 50, 50, 49)
DIGESTS = {"md5": 32, "sha256": 64}

Found = tuple[str, str | None, str, int, str | None, str | None, str]
"""(bank, source_id, signal_type, distance, transform, category, path) of one match."""
MIRROR_AT = DIHEDRAL_NAMES.index(MIRROR) - 1
"""Where the mirror is in a query's ``pdq_dihedral`` (which leaves out ``original``)."""


@lru_cache(maxsize=1)
def dihedral_pool() -> tuple[tuple[str, ...], ...]:
    """The eight dihedral PDQ hashes (``DIHEDRAL_NAMES`` order) of a few photos and of their
    rotated and mirrored copies: a bank holds one copy, a query may be another, whose dihedral
    variants then bring it back within a few bits of the bank's (0-20 on these photos)."""
    sets = []
    for photo in (data.chelsea(), data.coffee(), data.astronaut()):
        side = min(photo.shape[:2])
        image = photo[:side, :side]
        for copy in (image, np.rot90(image), np.fliplr(image), np.rot90(image, 3)):
            hashes, _quality = pdq_dihedral_from_pixels(np.ascontiguousarray(copy))
            sets.append(tuple(hashes))
    return tuple(sets)


def flip(rng: random.Random, hex_hash: str, bits: int) -> str:
    value = int(hex_hash, 16)
    for bit in rng.sample(range(256), bits):
        value ^= 1 << bit
    return f"{value:064x}"


@dataclass
class ModelBank:
    name: str
    kind: str = "positive"
    enabled: bool = True
    threshold: int | None = None
    dihedral: bool = False


@dataclass
class ModelEntry:
    bank: str
    signal_type: str
    value: str
    source_id: str
    category: str
    enabled: bool = True
    removed: bool = False


@dataclass
class Expected:
    matches: set[Found] = field(default_factory=set)
    benign: set[Found] = field(default_factory=set)
    suppressed: set[Found] = field(default_factory=set)
    pdq_skipped: bool = False


class Banks:
    """The bank use cases the walk drives, in one place (the core's API for them)."""

    def __init__(self, amparo: Amparo) -> None:
        self.amparo = amparo

    def create(self, bank: ModelBank) -> None:
        info = BankInfo(
            name=bank.name,
            kind=bank.kind,
            enabled=bank.enabled,
            pdq_threshold=bank.threshold,
            dihedral=bank.dihedral,
        )
        self.amparo.banks.create(info)

    def delete(self, name: str) -> None:
        self.amparo.banks.delete(name)

    def update(self, name: str, **changes: Any) -> None:
        self.amparo.banks.update(name, **changes)

    def add(self, bank: str, entries: Sequence[ModelEntry]) -> None:
        records = [
            EntryRecord(
                e.signal_type,
                e.value,
                category=e.category,
                source_id=e.source_id,
                enabled=e.enabled,
            )
            for e in entries
        ]
        self.amparo.banks.add_entries(bank, records)

    def set_enabled(self, bank: str, entries: Sequence[ModelEntry], enabled: bool) -> None:
        self.amparo.banks.set_signals_enabled(
            bank, [(e.signal_type, e.value) for e in entries], enabled
        )

    def remove(self, bank: str, entries: Sequence[ModelEntry]) -> None:
        self.amparo.banks.remove_signals(bank, [(e.signal_type, e.value) for e in entries])


class Walk:
    """Random changes applied to the core and to the model alike, and random queries."""

    def __init__(self, amparo: Amparo, settings: Settings, seed: int) -> None:
        self.amparo = amparo
        self.api = Banks(amparo)
        self.settings = settings
        self.rng = random.Random(seed)
        self.banks: dict[str, ModelBank] = {}
        self.entries: list[ModelEntry] = []
        self.serial = 0
        self.digests = {
            name: [f"{self.rng.getrandbits(4 * width):0{width}x}" for _ in range(6)]
            for name, width in DIGESTS.items()
        }
        self.log: list[str] = []

    def _next(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    # -- values ------------------------------------------------------------------------------

    def pdq_value(self) -> str:
        rng = self.rng
        if rng.random() < 0.2:
            return f"{rng.getrandbits(256):064x}"
        base = rng.choice(dihedral_pool())[rng.randrange(8) if rng.random() < 0.2 else 0]
        return flip(rng, base, rng.choice(FLIPS))

    def new_entry(self, bank: str) -> ModelEntry | None:
        rng = self.rng
        signal_type = rng.choice(("pdq", "pdq", "pdq", "md5", "sha256"))
        taken = {e.value for e in self.entries if e.bank == bank and e.signal_type == signal_type}
        for _ in range(5):
            if signal_type == "pdq":
                value = self.pdq_value()
            else:
                value = rng.choice(self.digests[signal_type])
            if value not in taken:
                return ModelEntry(
                    bank,
                    signal_type,
                    value,
                    source_id=self._next("s"),
                    category=rng.choice(("c1", "c2", "benign")),
                    enabled=rng.random() < 0.85,
                )
        return None

    def query(self) -> Query:
        rng = self.rng
        signals: dict[str, str] = {}
        dihedral: list[str] = []
        mirror = None
        quality = None
        if rng.random() < 0.8:
            if rng.random() < 0.8:
                hashes = rng.choice(dihedral_pool())
                signals["pdq"] = flip(rng, hashes[0], rng.choice(FLIPS))
                if rng.random() < 0.7:
                    dihedral = [flip(rng, h, rng.choice(FLIPS[:12])) for h in hashes[1:]]
                elif rng.random() < 0.5:  # only the mirror (what hashing gives without dihedral)
                    mirror = flip(rng, hashes[MIRROR_AT + 1], rng.choice(FLIPS[:12]))
            else:  # a near copy of an entry
                pdq = [e for e in self.entries if e.signal_type == "pdq"]
                base = rng.choice(pdq).value if pdq else f"{rng.getrandbits(256):064x}"
                signals["pdq"] = flip(rng, base, rng.choice(FLIPS))
            quality = rng.choice(QUALITIES)
        for name, width in DIGESTS.items():
            if rng.random() < 0.5:
                known = rng.random() < 0.7
                value = rng.choice(self.digests[name]) if known else None
                signals[name] = value or f"{rng.getrandbits(4 * width):0{width}x}"
        return Query(signals=signals, pdq_quality=quality, pdq_dihedral=dihedral, pdq_mirror=mirror)

    # -- changes -----------------------------------------------------------------------------

    def _live(self, bank: str) -> list[ModelEntry]:
        return [e for e in self.entries if e.bank == bank and not e.removed]

    def step(self) -> None:
        rng = self.rng
        ops = [self.create_bank, self.add, self.add, self.toggle_entries, self.remove]
        ops += [self.update_bank, self.readd]
        if len(self.banks) > 2:
            ops.append(self.delete_bank)
        if rng.random() < 0.1:
            ops = [self.compact]
        if not self.banks:
            ops = [self.create_bank]
        for _ in range(rng.randint(1, 3)):
            rng.choice(ops)()

    def create_bank(self) -> None:
        rng = self.rng
        bank = ModelBank(
            name=self._next("bank"),
            kind="negative" if rng.random() < 0.2 else "positive",
            enabled=rng.random() < 0.9,
            threshold=rng.choice(THRESHOLDS),
            dihedral=rng.random() < 0.4,
        )
        self.api.create(bank)
        self.banks[bank.name] = bank
        self.log.append(f"create {bank}")
        self.add(bank.name)

    def delete_bank(self) -> None:
        name = self.rng.choice(sorted(self.banks))
        self.api.delete(name)
        del self.banks[name]
        self.entries = [e for e in self.entries if e.bank != name]
        self.log.append(f"delete {name}")

    def update_bank(self) -> None:
        rng = self.rng
        bank = self.banks[rng.choice(sorted(self.banks))]
        change = rng.choice(("enabled", "pdq_threshold", "dihedral", "kind"))
        if change == "enabled":
            bank.enabled = not bank.enabled
            self.api.update(bank.name, enabled=bank.enabled)
        elif change == "pdq_threshold":
            bank.threshold = rng.choice(THRESHOLDS)
            self.api.update(bank.name, pdq_threshold=bank.threshold)
        elif change == "dihedral":
            bank.dihedral = not bank.dihedral
            self.api.update(bank.name, dihedral=bank.dihedral)
        else:
            bank.kind = "negative" if bank.kind == "positive" else "positive"
            self.api.update(bank.name, kind=bank.kind)
        self.log.append(f"update {bank}")

    def add(self, name: str | None = None) -> None:
        bank = name or self.rng.choice(sorted(self.banks))
        added: list[ModelEntry] = []
        for _ in range(self.rng.randint(1, 6)):
            entry = self.new_entry(bank)
            if entry is not None and all(entry.value != a.value for a in added):
                added.append(entry)
        if added:
            self.api.add(bank, added)
            self.entries.extend(added)
            self.log.append(f"add {bank}: {[e.source_id for e in added]}")

    def toggle_entries(self) -> None:
        bank = self.rng.choice(sorted(self.banks))
        live = self._live(bank)
        if not live:
            return
        chosen = self.rng.sample(live, self.rng.randint(1, min(3, len(live))))
        enabled = self.rng.random() < 0.5
        self.api.set_enabled(bank, chosen, enabled)
        for entry in chosen:
            entry.enabled = enabled
        self.log.append(f"enabled={enabled} {bank}: {[e.source_id for e in chosen]}")

    def remove(self) -> None:
        bank = self.rng.choice(sorted(self.banks))
        live = self._live(bank)
        if not live:
            return
        chosen = self.rng.sample(live, self.rng.randint(1, min(2, len(live))))
        self.api.remove(bank, chosen)
        for entry in chosen:
            entry.removed = True
        self.log.append(f"remove {bank}: {[e.source_id for e in chosen]}")

    def readd(self) -> None:
        """Add a removed or disabled entry again: it is active again, with the new metadata."""
        gone = [e for e in self.entries if e.removed or not e.enabled]
        if not gone:
            return
        entry = self.rng.choice(gone)
        entry.source_id, entry.enabled, entry.removed = self._next("s"), True, False
        self.api.add(entry.bank, [entry])
        self.log.append(f"re-add {entry.bank}: {entry.source_id}")

    def compact(self) -> None:
        """Move the index's in-memory delta and tombstones into segment files."""
        self.amparo.matcher.indexes.compact()
        self.log.append("compact")

    # -- the model ---------------------------------------------------------------------------

    def expected(self, query: Query, chosen: Sequence[str] | None) -> Expected:
        banks = {
            b.name: b
            for b in self.banks.values()
            if b.enabled and (chosen is None or b.name in chosen or b.kind == "negative")
        }
        if not banks:
            return Expected()  # nothing is looked up, so no low quality to report either
        pdq = query.signals.get("pdq")
        floor = self.settings.pdq_min_quality
        skipped = pdq is not None and query.pdq_quality is not None and query.pdq_quality < floor
        found: set[Found] = set()
        for entry in self.entries:
            bank = banks.get(entry.bank)
            if bank is None or not entry.enabled or entry.removed:
                continue
            if entry.signal_type == "pdq":
                if pdq is None or skipped:
                    continue
                candidates: list[tuple[int, str | None]] = [
                    (PdqSignal.distance(pdq, entry.value), None)
                ]
                variants = list(zip(DIHEDRAL_NAMES[1:], query.pdq_dihedral, strict=False))
                if query.pdq_mirror is not None and not variants:
                    variants = [(MIRROR, query.pdq_mirror)]
                if not bank.dihedral:  # only the mirror, when mirrored copies are matched
                    mirrored = self.settings.match_mirrored
                    variants = [v for v in variants if v[0] == MIRROR and mirrored]
                candidates += [
                    (PdqSignal.distance(variant, entry.value), name)
                    for name, variant in variants  # none when the query has no variants
                ]
                threshold = (
                    self.settings.pdq_threshold if bank.threshold is None else bank.threshold
                )
                within = [c for c in candidates if c[0] <= threshold]
                if not within:
                    continue
                distance, transform = min(within, key=lambda c: c[0])
            elif query.signals.get(entry.signal_type) == entry.value:
                distance, transform = 0, None
            else:
                continue
            path = "plain" if transform is None else "dihedral"
            found.add(
                (
                    bank.name,
                    entry.source_id,
                    entry.signal_type,
                    distance,
                    transform,
                    entry.category,
                    path,
                )
            )
        benign = {f for f in found if banks[f[0]].kind == "negative"}
        if benign:
            return Expected(set(), benign, found - benign, skipped)
        return Expected(found, set(), set(), skipped)


def _found(matches: Sequence[Match]) -> Iterator[Found]:
    for m in matches:
        yield (m.bank, m.source_id, m.signal_type, m.distance, m.transform, m.category, m.path)


def _check(walk: Walk, step: int, query: Query, chosen: list[str] | None, got: QueryResult) -> None:
    want = walk.expected(query, chosen)
    where = f"step {step}, banks={chosen}, query={query}; recent changes: {walk.log[-6:]}"
    for name, matches, expected in (
        ("matches", got.matches, want.matches),
        ("benign", got.benign, want.benign),
        ("suppressed", got.suppressed, want.suppressed),
    ):
        actual = list(_found(matches))
        assert len(actual) == len(set(actual)), f"{name} has duplicates at {where}"
        assert set(actual) == expected, (
            f"{name} at {where}\n  missing: {expected - set(actual)}\n"
            f"  unexpected: {set(actual) - expected}"
        )
    assert [(m.distance, m.bank) for m in got.matches] == sorted(
        (m.distance, m.bank) for m in got.matches
    )
    assert (got.pdq_skipped is not None) == want.pdq_skipped, where


def run_walk(settings: Settings, seed: int, steps: int) -> None:
    settings = replace(settings, match_mirrored=seed % 3 != 1)
    amparo = Amparo(settings)
    try:
        walk = Walk(amparo, settings, seed)
        walk.create_bank()
        for step in range(steps):
            walk.step()
            queries = [walk.query() for _ in range(walk.rng.randint(1, 6))]
            chosen = None
            if walk.banks and walk.rng.random() < 0.3:
                names = sorted(walk.banks)
                chosen = walk.rng.sample(names, walk.rng.randint(1, len(names)))
            results = amparo.matcher.match(queries, chosen)
            assert len(results) == len(queries)
            for query, result in zip(queries, results, strict=True):
                _check(walk, step, query, chosen, result)
    finally:
        amparo.close()


@pytest.mark.parametrize("seed", range(3))
def test_matcher_agrees_with_the_model(sqlite_settings: Settings, seed: int) -> None:
    run_walk(sqlite_settings, seed, steps=20)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 11))
def test_matcher_agrees_with_the_model_long(sqlite_settings: Settings, seed: int) -> None:
    run_walk(sqlite_settings, seed, steps=60)
