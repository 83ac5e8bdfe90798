"""Retroactive matching on SQLite and PostgreSQL: content checked before an entry arrived
becomes a find when it arrives, once per (content, entry), and nothing older than the window
is kept. Synthetic hashes only."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from amparo.actions import Rule
from amparo.app import Amparo
from amparo.banks.model import BankInfo, EntryRecord
from amparo.config import Settings
from amparo.events import Source
from amparo.exchanges.model import FetchResult
from clocks import ManualClock

DAY = 86_400.0


def pdq(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def flip(value: str, bits: int) -> str:
    """``value`` with its first ``bits`` bits flipped (a PDQ at that distance)."""
    n = int(value, 16) ^ ((1 << bits) - 1)
    return f"{n:064x}"


class Content:
    def __init__(self, rng: random.Random) -> None:
        self.sha256 = f"{rng.getrandbits(256):064x}"
        self.md5 = f"{rng.getrandbits(128):032x}"
        self.pdq = pdq(rng)

    def signals(self) -> list[tuple[str, str]]:
        return [("sha256", self.sha256), ("md5", self.md5), ("pdq", self.pdq)]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def amparo(settings: Settings, clock: ManualClock) -> Iterator[Amparo]:
    with Amparo(replace(settings, retro_match_days=7)) as core:
        core.retro.clock = clock
        core.banks.create(BankInfo(name="known"))
        core.actions.add_rule(
            Rule.from_json({"name": "to-review", "actions": ["review"]}), actor="t"
        )
        yield core


def check(amparo: Amparo, content: Content, **source: Any) -> None:
    source.setdefault("account_id", "u1")
    amparo.checks.check_signals(content.signals(), source=Source(**source), actor="platform")


def retro_actions(amparo: Amparo) -> list[Any]:
    return [r for r in amparo.actions.log() if r.source.get("kind") == "retro"]


def test_content_checked_before_an_entry_arrives_becomes_a_find(
    amparo: Amparo, clock: ManualClock
) -> None:
    rng = random.Random(1)
    seen, other = Content(rng), Content(rng)
    check(amparo, seen, upload_id="p1", file_name="a.jpg")
    check(amparo, other)
    assert amparo.actions.log() == []  # nothing matched at check time
    clock.advance(2 * DAY)
    # The arrival: a hash list imported into the bank, a PDQ 5 bits from the content's.
    amparo.banks.import_entries(
        "known", io.StringIO(flip(seen.pdq, 5) + "\n"), "text", signal_type="pdq"
    )
    result = amparo.retro.catch_up()
    assert (result.entries, result.finds, result.pairs) == (1, 1, 1)
    assert result.actions == 1
    # The match volume counts the new find once, as coming from retroactive matching.
    amparo.flush_counts()
    counted = [(b, s, n) for _, b, s, n in amparo.tally.repository.since(date(2000, 1, 1))]
    assert counted == [("known", "retro", 1)]
    (record,) = retro_actions(amparo)
    assert record.sha256 == seen.sha256 and record.action == "review"
    assert record.actor == "retro" and record.rule == "to-review"
    assert record.source == {
        "kind": "retro",
        "account_id": "u1",
        "upload_id": "p1",
        "file_name": "a.jpg",
    }
    (case,) = amparo.cases.queue()
    (item,) = case.items
    assert item.sha256 == seen.sha256 and item.md5 == seen.md5
    assert item.source["kind"] == "retro" and [m.distance for m in item.matches] == [5]
    entries = [e for e in amparo.audit.entries() if e.action == "retro.catch_up"]
    assert entries and entries[-1].details["finds"] == 1


def test_one_find_per_content_and_entry(amparo: Amparo) -> None:
    rng = random.Random(2)
    content = Content(rng)
    check(amparo, content)
    amparo.banks.add_entries("known", [EntryRecord("pdq", flip(content.pdq, 3))])
    assert amparo.retro.catch_up().finds == 1
    # Again, and after the entry changed (its change-log position moves): no second find.
    assert amparo.retro.catch_up().finds == 0
    amparo.banks.add_entries("known", [EntryRecord("pdq", flip(content.pdq, 3), category="A1")])
    assert amparo.retro.catch_up().finds == 0
    assert len(retro_actions(amparo)) == 1
    # A second entry (the content's MD5) is a new pair: one more find.
    amparo.banks.add_entries("known", [EntryRecord("md5", content.md5)])
    assert amparo.retro.catch_up().pairs == 1
    assert len(retro_actions(amparo)) == 2


def test_an_entry_the_check_itself_matched_is_not_found_again(amparo: Amparo) -> None:
    rng = random.Random(3)
    content = Content(rng)
    amparo.banks.add_entries("known", [EntryRecord("sha256", content.sha256)])
    amparo.retro.catch_up()
    check(amparo, content)
    assert len(amparo.actions.log()) == 1  # the ordinary find
    amparo.banks.set_signals_enabled("known", [("sha256", content.sha256)], False)
    amparo.banks.set_signals_enabled("known", [("sha256", content.sha256)], True)
    result = amparo.retro.catch_up()
    assert result.entries == 1 and result.finds == 0
    assert retro_actions(amparo) == []


def test_far_hashes_and_known_benign_content_are_not_found(amparo: Amparo) -> None:
    rng = random.Random(4)
    far, benign = Content(rng), Content(rng)
    amparo.banks.create(BankInfo(name="benign", kind="negative"))
    amparo.banks.add_entries("benign", [EntryRecord("md5", benign.md5)])
    check(amparo, far)
    check(amparo, benign)
    amparo.banks.add_entries(
        "known",
        [EntryRecord("pdq", flip(far.pdq, 40)), EntryRecord("sha256", benign.sha256)],
    )
    result = amparo.retro.catch_up()
    assert result.entries == 2 and result.finds == 0
    assert retro_actions(amparo) == []


def test_nothing_older_than_the_window_is_kept_or_found(amparo: Amparo, clock: ManualClock) -> None:
    rng = random.Random(5)
    old, recent = Content(rng), Content(rng)
    check(amparo, old)
    clock.advance(6 * DAY)
    check(amparo, recent)
    clock.advance(2 * DAY)  # old: checked 8 days ago; recent: 2
    amparo.banks.add_entries(
        "known", [EntryRecord("sha256", old.sha256), EntryRecord("sha256", recent.sha256)]
    )
    result = amparo.retro.catch_up()
    assert result.purged == 1 and result.finds == 1
    assert [r.sha256 for r in retro_actions(amparo)] == [recent.sha256]
    assert amparo.retro.repository.by_sha256(old.sha256) is None
    assert amparo.retro.repository.count() == 1
    clock.advance(6 * DAY)
    assert amparo.retro.purge() == 1
    assert amparo.retro.repository.count() == 0
    assert any(e.action == "retro.purge" for e in amparo.audit.entries())


def test_a_second_check_refreshes_the_time_and_source(amparo: Amparo, clock: ManualClock) -> None:
    rng = random.Random(6)
    content = Content(rng)
    check(amparo, content, upload_id="first")
    clock.advance(5 * DAY)
    check(amparo, content, upload_id="second")
    clock.advance(5 * DAY)  # 10 days after the first sighting, 5 after the second
    amparo.banks.add_entries("known", [EntryRecord("md5", content.md5)])
    assert amparo.retro.catch_up().finds == 1
    assert amparo.retro.repository.count() == 1
    (record,) = retro_actions(amparo)
    assert record.source["upload_id"] == "second"


def test_a_fetch_that_changed_entries_catches_up_at_once(amparo: Amparo) -> None:
    rng = random.Random(7)
    content = Content(rng)
    check(amparo, content)
    amparo.banks.add_entries("known", [EntryRecord("sha256", content.sha256)])
    amparo.retro.on_entries_changed(FetchResult("partner", added=0, upserts=0))
    assert retro_actions(amparo) == []  # nothing changed: no catch-up
    # What ExchangeService calls after a fetch (registered by the composition root).
    for callback in amparo.exchanges._after_fetch:
        callback(FetchResult("partner", added=1, upserts=1))
    assert [r.sha256 for r in retro_actions(amparo)] == [content.sha256]


def test_media_checks_are_kept_by_their_hashes(amparo: Amparo) -> None:
    from PIL import Image

    rng = random.Random(8)
    image = Image.frombytes("L", (64, 64), bytes(rng.getrandbits(8) for _ in range(64 * 64)))
    data = io.BytesIO()
    image.convert("RGB").save(data, "PNG")
    hashes = amparo.checks.hash_bytes(data.getvalue())
    amparo.checks.check_media(hashes, source=Source(kind="api", upload_id="u"), actor="p")
    kept = amparo.retro.repository.by_sha256(hashes.sha256)
    assert kept is not None and kept.signals["pdq"] == hashes.pdq
    assert kept.detail["size"] == hashes.size and kept.source == {"kind": "api", "upload_id": "u"}
    amparo.banks.add_entries("known", [EntryRecord("pdq", flip(hashes.pdq or "", 2))])
    assert amparo.retro.catch_up().finds == 1
    (item,) = amparo.cases.queue()[0].items
    assert item.media_kind == "photo" and item.size == hashes.size


def test_bare_hash_lookups_are_not_kept(amparo: Amparo) -> None:
    rng = random.Random(9)
    amparo.checks.check_signals([("pdq", pdq(rng))], source=Source(), actor="p")
    assert amparo.retro.repository.count() == 0


def test_off_keeps_nothing_and_finds_nothing(settings: Settings) -> None:
    rng = random.Random(10)
    content = Content(rng)
    with Amparo(settings) as amparo:
        assert settings.retro_match_days == 0
        amparo.banks.create(BankInfo(name="known"))
        amparo.actions.add_rule(Rule.from_json({"name": "r", "actions": ["review"]}), actor="t")
        check(amparo, content)
        assert amparo.retro.repository.count() == 0
        amparo.banks.add_entries("known", [EntryRecord("sha256", content.sha256)])
        result = amparo.retro.catch_up()
        assert not result.enabled and result.finds == 0
        assert amparo.actions.log() == []
    # Turned on, then off again: what was kept is forgotten at the next catch-up.
    with Amparo(replace(settings, retro_match_days=3)) as amparo:
        check(amparo, Content(rng))
        assert amparo.retro.repository.count() == 1
    with Amparo(settings) as amparo:
        assert amparo.retro.catch_up().purged == 1
        assert amparo.retro.repository.count() == 0
        assert amparo.retro.repository.cursor() is None


def test_a_scanned_file_becomes_a_find_when_its_hash_arrives(
    amparo: Amparo, clock: ManualClock, tmp_path: Any
) -> None:
    """A scan that acts keeps what it looked up (hashes only) like any other check."""
    from PIL import Image

    from amparo.scan import ScanOptions, scan_paths

    folder = tmp_path / "seized"
    folder.mkdir()
    rng = random.Random(9)
    pixels = bytes(rng.getrandbits(8) for _ in range(64 * 64 * 3))
    Image.frombytes("RGB", (64, 64), pixels).resize((256, 256)).save(folder / "p.png")
    scan_paths(amparo, [folder], ScanOptions(workers=1))
    scan_paths(amparo, [folder], ScanOptions(workers=1, actions=False))  # keeps nothing more
    assert amparo.actions.log() == []
    data = (folder / "p.png").read_bytes()
    hashes = amparo.checks.hash_bytes(data)
    clock.advance(DAY)
    amparo.banks.add_entries("known", [EntryRecord("md5", hashes.md5, category="A1")])
    result = amparo.retro.catch_up()
    assert result.finds == 1
    (record,) = retro_actions(amparo)
    assert record.source.get("file_name") == "p.png"


def test_kept_hashes_go_after_the_window_even_without_catch_ups(
    amparo: Amparo, clock: ManualClock
) -> None:
    """A lab that scans without `amparo serve` never runs a catch-up: checks purge too."""
    rng = random.Random(31)
    old, new = Content(rng), Content(rng)
    check(amparo, old)
    clock.advance(8 * DAY)
    check(amparo, new)
    assert amparo.retro.repository.by_sha256(old.sha256) is None
    assert amparo.retro.repository.by_sha256(new.sha256) is not None


@pytest.mark.parametrize(("form", "path"), [("pdq_mirror", "dihedral"), ("pdq_trimmed", "trimmed")])
def test_a_kept_content_is_found_again_by_its_other_forms(
    amparo: Amparo, form: str, path: str
) -> None:
    """The mirrored and trimmed PDQs a check looked up are kept with the content, so an
    entry near only one of them (not the content's own PDQ) is found retroactively, and
    the find says how."""
    from PIL import Image

    rng = random.Random(9)
    image = Image.frombytes("L", (64, 64), bytes(rng.getrandbits(8) for _ in range(64 * 64)))
    data = io.BytesIO()
    image.convert("RGB").save(data, "PNG")
    other = pdq(rng)
    hashes = replace(amparo.checks.hash_bytes(data.getvalue()), **{form: other})
    amparo.checks.check_media(hashes, source=Source(kind="api", upload_id="u"), actor="p")
    kept = amparo.retro.repository.by_sha256(hashes.sha256)
    assert kept is not None and kept.detail[form] == other
    amparo.banks.add_entries("known", [EntryRecord("pdq", flip(other, 3))])
    result = amparo.retro.catch_up()
    assert (result.candidates, result.finds) == (1, 1)
    (item,) = amparo.cases.queue()[0].items
    assert [(m.path, m.distance) for m in item.matches] == [(path, 3)]
