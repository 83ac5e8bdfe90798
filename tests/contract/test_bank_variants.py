"""Crop variants of media added to a bank (docs/detection.md), on SQLite and
PostgreSQL: stored with the photo's PDQ entry, matched as that entry (path ``variant``),
following its state, and never exported, shared, counted or listed.

Benign photos only: scikit-image's bundled samples."""

from __future__ import annotations

import io
import json
import secrets
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data
from sqlalchemy import text
from typer.testing import CliRunner

from amparo import Amparo, BankInfo, EntryRecord
from amparo.banks.model import EntryView
from amparo.clock import utc_now
from amparo.config import Settings
from amparo.curation import CurationService
from amparo.signals.pdq_variants import CROPS, side_crop
from amparo.store import Store

EXPECTED = ["mirror", *(c.name for c in CROPS)]
"""The variants of a photo without borders: its true mirror, then every crop."""


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


PHOTO = Image.fromarray(data.astronaut())
ORIGINAL = _png(PHOTO)


def _cropped(crop_name: str = "crop10-left") -> bytes:
    crop = next(c for c in CROPS if c.name == crop_name)
    out = io.BytesIO()
    PHOTO.crop(crop.box(PHOTO.width, PHOTO.height)).save(out, format="JPEG", quality=90)
    return out.getvalue()


@pytest.fixture
def amparo(settings: Settings) -> Amparo:
    app = Amparo(replace(settings, organisation_id="org-a"))
    yield app
    app.close()


def _matches(amparo: Amparo, media: bytes) -> list:
    (result,) = amparo.checks.match_hashes([amparo.checks.hash_bytes(media)])
    return [m for m in result.matches if m.signal_type == "pdq"]


def _variants(amparo: Amparo, parent: int) -> list[EntryView]:
    """Every stored variant row of ``parent`` (removed ones included)."""
    with amparo.store.engine.connect() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                text("SELECT id FROM bank_entries WHERE variant_of = :p"), {"p": parent}
            )
        ]
    return sorted(amparo.store.banks.get_entries(ids).values(), key=lambda e: e.id)


def _add(amparo: Amparo, bank: str = "known") -> tuple[int, list[str], int]:
    _, report = amparo.banks.add_media(bank, ORIGINAL, category="c1", source_id="astronaut")
    parent = amparo.banks.entry_ids(bank, report.signals.items())["pdq"]
    return parent, report.variants, report.variants_added


def test_variants_are_stored_and_match_as_their_entry(amparo: Amparo) -> None:
    amparo.banks.create(BankInfo(name="known"))
    # A 10%-a-side crop is too much for plain PDQ.
    assert _matches(amparo, _cropped()) == []
    parent, names, added = _add(amparo)
    assert names == EXPECTED and added == len(EXPECTED)
    rows = _variants(amparo, parent)
    assert [r.variant for r in rows] == names
    assert all(r.signal_type == "pdq" and len(r.signal) == 64 for r in rows)
    assert all(r.bank_name == "known" and r.variant_of == parent for r in rows)

    (match,) = _matches(amparo, _cropped("crop10-left"))
    assert (match.entry_id, match.bank, match.path, match.variant) == (
        parent,
        "known",
        "variant",
        "crop10-left",
    )
    assert match.category == "c1" and match.source_id == "astronaut"
    assert match.to_json()["variant"] == "crop10-left"
    # The original itself matches the entry plainly.
    (plain,) = _matches(amparo, ORIGINAL)
    assert (plain.entry_id, plain.path, plain.distance) == (parent, "plain", 0)

    # Adding the same media again duplicates nothing and keeps the rows' positions.
    before = [(r.id, r.signal) for r in rows]
    _, names_again, added_again = _add(amparo)
    assert names_again == names and added_again == 0
    assert [(r.id, r.signal) for r in _variants(amparo, parent)] == before


def test_variants_follow_their_entry(amparo: Amparo) -> None:
    amparo.banks.create(BankInfo(name="known"))
    parent, _, _ = _add(amparo)
    copy = _cropped("crop5-top")
    assert [m.path for m in _matches(amparo, copy)] == ["variant"]

    # Disabled: the variants are disabled with it (and leave the index).
    amparo.banks.set_signals_enabled("known", [], False, ids=[parent])
    assert not any(v.enabled for v in _variants(amparo, parent))
    assert _matches(amparo, copy) == []
    amparo.banks.set_signals_enabled("known", [], True, ids=[parent])
    assert all(v.enabled for v in _variants(amparo, parent))
    assert len(_matches(amparo, copy)) == 1

    # Paused: no match until the pause is lifted.
    amparo.banks.set_signals_disabled_until(
        "known", [], utc_now() + timedelta(days=1), ids=[parent]
    )
    assert _matches(amparo, copy) == []
    amparo.banks.set_signals_disabled_until("known", [], None, ids=[parent])
    assert len(_matches(amparo, copy)) == 1

    # A variant cannot be changed on its own (by id or by its hash).
    variant = _variants(amparo, parent)[0]
    assert amparo.banks.remove_entry_ids("known", [variant.id]) == 0
    assert amparo.banks.remove_signals("known", [("pdq", variant.signal)]) == 0

    # Removed: the variants are removed with it; adding the media again brings them back.
    assert amparo.banks.remove_entry_ids("known", [parent]) == 1
    assert all(v.removed for v in _variants(amparo, parent))
    assert _matches(amparo, copy) == []
    again, _, added = _add(amparo)
    assert again == parent and added == len(EXPECTED)
    assert not any(v.removed for v in _variants(amparo, parent))
    assert len(_matches(amparo, copy)) == 1

    # A hash list replacing the bank's entries keeps the entry's variants when it keeps the
    # entry, and removes them with it when it does not.
    pdq = amparo.banks.entry("known", parent)
    assert pdq is not None
    amparo.banks.import_entries(
        "known", io.StringIO(f"signal_type,signal\npdq,{pdq.signal}\n"), "csv", replace=True
    )
    assert not any(v.removed for v in _variants(amparo, parent))
    other = secrets.token_hex(32)
    amparo.banks.import_entries(
        "known", io.StringIO(f"signal_type,signal\npdq,{other}\n"), "csv", replace=True
    )
    assert all(v.removed for v in _variants(amparo, parent))
    assert _matches(amparo, copy) == []

    # Deleting the bank deletes them (and the index drops them).
    amparo.banks.delete("known")
    assert _variants(amparo, parent) == []


def test_variants_are_not_exported_shared_counted_or_listed(amparo: Amparo) -> None:
    amparo.banks.create(BankInfo(name="known"))
    parent, _, _ = _add(amparo)
    variant = _variants(amparo, parent)[0]
    assert amparo.banks.get("known").entry_count == 2  # pdq + md5
    assert [b.entry_count for b in amparo.banks.list()] == [2]
    assert amparo.banks.count_active("pdq") == 1
    out = io.StringIO()
    assert amparo.banks.export_entries("known", out, "csv") == 2
    assert variant.signal not in out.getvalue()
    assert amparo.banks.entry("known", variant.id) is None
    assert amparo.banks.entry("known", parent) is not None
    console = CurationService(amparo)
    assert console.search_entries(str(variant.id)) == []
    assert console.search_entries(variant.signal) == []
    assert {e.signal_type for e in console.search_entries("astronaut")} == {"pdq", "md5"}

    amparo.feeds.publish("shared", "known", description="test")
    page = amparo.feeds.page("shared", cursor="0.0", nonce=secrets.token_hex(16)).page
    assert sorted(e["signal_type"] for e in page["entries"]) == ["md5", "pdq"]
    amparo.banks.remove_entry_ids("known", [parent])
    later = amparo.feeds.page("shared", cursor=page["next_cursor"], nonce=secrets.token_hex(16))
    assert [(e["id"], e["deleted"]) for e in later.page["entries"]] == [(parent, True)]


def test_no_variants_when_turned_off_for_hash_lists_or_weak_crops(
    amparo: Amparo, settings: Settings
) -> None:
    amparo.banks.create(BankInfo(name="known"))
    # Hash-only additions have no media to crop.
    report = amparo.banks.add_entries("known", [EntryRecord("pdq", secrets.token_hex(32))])
    assert report.variants == [] and report.variants_added == 0
    # A flat photo has no usable PDQ: no variants either.
    _, flat = amparo.banks.add_media("known", _png(Image.new("RGB", (256, 256), (9, 9, 9))))
    assert "pdq" in flat.not_added and flat.variants == []

    off = Amparo(replace(settings, bank_crop_variants=False, match_mirrored=False))
    try:
        parent, names, added = _add(off)
        assert names == [] and added == 0 and _variants(off, parent) == []
        assert _matches(off, _cropped()) == []
    finally:
        off.close()


def test_quality_floor_and_custom_crops() -> None:
    from amparo.signals.pdq_variants import crop_variants

    pixels = np.asarray(PHOTO)
    found = crop_variants(pixels, crops=(side_crop(7, "left"),))
    assert [v.name for v in found] == ["crop7-left"]
    assert crop_variants(pixels, min_quality=101) == []


def test_migration_adds_the_columns_to_an_existing_database(database_url: str) -> None:
    """0013 -> head keeps entries, ids and the never-reused id sequence."""
    from alembic import command

    from amparo.store.db import _alembic_config, make_engine

    engine = make_engine(database_url)
    cfg = _alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0013")
        conn.execute(
            text(
                "INSERT INTO banks (id, name, description, source, supplier, terms, enabled,"
                " dihedral, kind, created_at, updated_at) VALUES (1, 'old', '', '', '', '',"
                " :t, :f, 'positive', :now, :now)"
            ),
            {"t": True, "f": False, "now": utc_now()},
        )
        for entry_id in (5, 9):
            conn.execute(
                text(
                    "INSERT INTO bank_entries (id, bank_id, signal_type, signal, signal_key,"
                    " tags, enabled, added_at, seq) VALUES (:id, 1, 'md5', :s, :k, '', :t,"
                    " :now, 1)"
                ),
                {"id": entry_id, "s": f"{entry_id:032x}", "k": f"{entry_id:032x}", "t": True}
                | {"now": utc_now()},
            )
        conn.execute(text("DELETE FROM bank_entries WHERE id = 9"))
        conn.execute(
            text("INSERT INTO entry_tombstones (entry_id, signal_type, seq) VALUES (9, 'md5', 1)")
        )
    engine.dispose()
    store = Store(database_url)
    try:
        (old,) = store.banks.find_exact("md5", [f"{5:032x}"])
        assert (old.id, old.variant_of, old.variant) == (5, None, None)
        store.banks.add_entries("old", [EntryRecord("md5", "a" * 32)], actor="t")
        (new,) = store.banks.find_exact("md5", ["a" * 32])
        if database_url.startswith("sqlite"):
            assert new.id > 9  # the rebuilt table kept its sequence (ids never reused)
    finally:
        store.close()


def test_bank_add_prints_the_variants(tmp_path: Path) -> None:
    from amparo.cli.main import app

    photo = tmp_path / "astronaut.png"
    photo.write_bytes(ORIGINAL)
    home = ["--home", str(tmp_path / "home")]
    runner = CliRunner()
    assert runner.invoke(app, [*home, "bank", "create", "b"]).exit_code == 0
    result = runner.invoke(app, [*home, "bank", "add", "b", str(photo)])
    assert result.exit_code == 0, result.output
    row = json.loads(next(line for line in result.output.splitlines() if line.startswith("{")))
    assert set(row["added"]) == {"pdq", "md5"}
    assert row["variants"] == EXPECTED
    listed = runner.invoke(app, [*home, "bank", "list"])
    assert listed.exit_code == 0 and "2" in listed.output
