"""The evidence store's behaviour on a directory backend, the same on SQLite and PostgreSQL:
byte-exact round trips, tamper detection, key rotation, retention, legal hold and purge."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from amparo.app import Amparo
from amparo.config import Settings
from amparo.errors import (
    ConfigError,
    ConflictError,
    EvidenceIntegrityError,
    InputError,
    NotFoundError,
)
from amparo.events import MatchedContent, Source
from amparo.evidence.backends import blob_key
from amparo.evidence.crypto import CHUNK_SIZE, HEADER_BYTES
from amparo.evidence.service import EvidenceStore
from amparo.matching import Match


@pytest.fixture
def amparo(settings: Settings) -> Iterator[Amparo]:
    with Amparo(settings) as app:
        yield app


@pytest.fixture
def evidence(amparo: Amparo) -> EvidenceStore:
    return amparo.evidence


def _blob_path(evidence: EvidenceStore, item_id: int) -> Path:
    stored = evidence.records.get(item_id)
    assert stored is not None
    return evidence.settings.home / "evidence" / blob_key(stored.uuid)


def _blobs(evidence: EvidenceStore) -> list[str]:
    return sorted(k for k, _ in evidence.backend.list())


def _content(data: bytes, **source: str) -> MatchedContent:
    import hashlib

    match = Match(bank="known", entry_id=7, signal_type="md5", distance=0, category="A1")
    return MatchedContent(
        sha256=hashlib.sha256(data).hexdigest(),
        matches=(match,),
        source=Source(kind="api", **source),
        mime="image/png",
        media_kind="photo",
    )


@pytest.mark.parametrize(
    "size", [0, 1, 1000, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE + 17]
)
def test_round_trip_is_byte_exact(evidence: EvidenceStore, size: int) -> None:
    data = os.urandom(size)
    item = evidence.preserve(data, reason="manual", actor="t")
    assert (item.size, item.reason, item.legal_hold, item.purged_at) == (
        size,
        "manual",
        False,
        None,
    )
    assert evidence.read(item.id, actor="t") == data
    # Encrypted at rest: the blob holds no run of the plaintext.
    blob = _blob_path(evidence, item.id).read_bytes()
    assert len(blob) == item.size + HEADER_BYTES + 16 * max(1, -(-size // CHUNK_SIZE))
    if size >= 64:
        assert data[:64] not in blob


def test_file_is_preserved_with_its_match_and_source(
    evidence: EvidenceStore, tmp_path: Path
) -> None:
    path = tmp_path / "upload-1.png"
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(3 * CHUNK_SIZE)
    path.write_bytes(data)
    content = _content(data, account_id="acct-9", upload_id="up-1")
    item = evidence.preserve(path, content=content, reason="rule:block", case_id=3, actor="t")
    assert item.file_name == "upload-1.png"
    assert item.source == {
        "kind": "api",
        "account_id": "acct-9",
        "upload_id": "up-1",
        "file_name": "upload-1.png",
    }
    assert item.matches[0]["bank"] == "known" and item.matches[0]["entry_id"] == 7
    assert (item.case_id, item.mime, item.media_kind) == (3, "image/png", "photo")
    assert item.expires_at is not None
    assert item.expires_at - item.preserved_at == timedelta(days=365)
    assert evidence.read(item.id, actor="t") == data
    assert evidence.find(item.sha256) == item
    assert [i.id for i in evidence.list(case_id=3)] == [item.id]


def test_data_that_is_not_the_matched_content_is_refused(evidence: EvidenceStore) -> None:
    with pytest.raises(InputError, match="SHA-256"):
        evidence.preserve(b"other", content=_content(b"matched"), reason="rule:x")
    with pytest.raises(InputError, match="reason"):
        evidence.preserve(b"x", reason="  ")
    assert _blobs(evidence) == []


def test_same_content_is_kept_once_and_each_request_recorded(evidence: EvidenceStore) -> None:
    data = os.urandom(5000)
    first = evidence.preserve(data, reason="rule:a", actor="t", retention_days=10)
    again = evidence.preserve(
        data, reason="review", case_id=4, actor="r", source=Source(kind="api", account_id="x")
    )
    assert again.id == first.id and again.sightings == 2
    assert again.case_id == 4
    # The repeat asked for the default 365 days: retention grows, never shrinks.
    assert again.expires_at is not None and first.expires_at is not None
    assert again.expires_at > first.expires_at + timedelta(days=300)
    shorter = evidence.preserve(data, reason="x", actor="t", retention_days=1)
    assert shorter.expires_at == again.expires_at
    assert len(_blobs(evidence)) == 1
    sightings = evidence.sightings(first.id)
    assert [s["reason"] for s in sightings] == ["rule:a", "review", "x"]
    assert sightings[1]["source"] == {"kind": "api", "account_id": "x"}


def test_flipped_byte_is_detected_on_read(amparo: Amparo, evidence: EvidenceStore) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 100)
    item = evidence.preserve(data, reason="manual", actor="t")
    path = _blob_path(evidence, item.id)
    for offset in (
        3,
        HEADER_BYTES - 1,
        HEADER_BYTES + 5,
        CHUNK_SIZE + 900,
        path.stat().st_size - 1,
    ):
        original = path.read_bytes()
        damaged = bytearray(original)
        damaged[offset] ^= 0x01
        path.write_bytes(bytes(damaged))
        with pytest.raises(EvidenceIntegrityError, match=f"evidence item {item.id}"):
            evidence.read(item.id, actor="t")
        report = evidence.verify()
        assert [i for i, _ in report.damaged] == [item.id] and not report.ok
        path.write_bytes(original)
    assert evidence.read(item.id, actor="t") == data
    assert evidence.verify().ok
    actions = [e.action for e in amparo.audit.entries(200)]
    assert "evidence.integrity_error" in actions


def test_truncated_swapped_and_missing_blobs_are_detected(evidence: EvidenceStore) -> None:
    a = evidence.preserve(os.urandom(2 * CHUNK_SIZE), reason="manual", actor="t")
    b = evidence.preserve(os.urandom(2 * CHUNK_SIZE), reason="manual", actor="t")
    pa, pb = _blob_path(evidence, a.id), _blob_path(evidence, b.id)
    blob_a, blob_b = pa.read_bytes(), pb.read_bytes()

    pa.write_bytes(blob_a[: HEADER_BYTES + CHUNK_SIZE + 16])  # cut at a chunk boundary
    with pytest.raises(EvidenceIntegrityError):
        evidence.read(a.id, actor="t")
    pa.write_bytes(blob_b)  # another item's (valid) blob
    with pytest.raises(EvidenceIntegrityError, match="another item"):
        evidence.read(a.id, actor="t")
    pa.unlink()
    with pytest.raises(EvidenceIntegrityError, match="missing"):
        evidence.read(a.id, actor="t")
    report = evidence.verify(deep=False)
    assert report.missing == [a.id] and report.damaged == []
    pa.write_bytes(blob_a)
    assert evidence.verify().ok
    assert evidence.read(b.id, actor="t") == evidence.read(b.id, actor="t")


def test_every_read_is_logged_without_content(amparo: Amparo, evidence: EvidenceStore) -> None:
    item = evidence.preserve(b"content-bytes", reason="manual", actor="t")
    evidence.read(item.id, actor="key:rev")
    reads = [e for e in amparo.audit.entries(50) if e.action == "evidence.read"]
    assert [(e.actor, e.target) for e in reads] == [("key:rev", f"evidence:{item.id}")]
    assert "content-bytes" not in json.dumps(reads[0].details)
    assert reads[0].details["sha256"] == item.sha256


def test_read_to_writes_only_verified_content(evidence: EvidenceStore, tmp_path: Path) -> None:
    data = os.urandom(CHUNK_SIZE + 3)
    item = evidence.preserve(data, reason="manual", actor="t")
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "out.bin"
    evidence.read_to(item.id, out, actor="t")
    assert out.read_bytes() == data
    path = _blob_path(evidence, item.id)
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0xFF
    path.write_bytes(bytes(blob))
    bad = tmp_path / "out" / "bad.bin"
    with pytest.raises(EvidenceIntegrityError):
        evidence.read_to(item.id, bad, actor="t")
    assert not bad.exists() and os.listdir(tmp_path / "out") == ["out.bin"]


def test_rotation_rewraps_keys_and_leaves_content_untouched(
    settings: Settings, evidence: EvidenceStore
) -> None:
    items = {evidence.preserve(os.urandom(n), reason="manual", actor="t").id for n in (10, 20, 30)}
    blobs = {i: _blob_path(evidence, i).read_bytes() for i in items}
    contents = {i: evidence.read(i, actor="t") for i in items}
    old_ring = evidence.keyring()
    old_ids = set(old_ring.keys)

    report = evidence.rotate_key(actor="t")
    assert report.rewrapped == 3 and report.retired == []
    assert {i: _blob_path(evidence, i).read_bytes() for i in items} == blobs
    assert set(evidence.keyring().keys) == old_ids | {report.new_key}

    report2 = evidence.rotate_key(actor="t", retire=True)
    assert report2.rewrapped == 3 and set(report2.retired) == old_ids | {report.new_key}
    ring = json.loads(evidence.keyring_path.read_text())
    assert [k["id"] for k in ring["keys"]] == [report2.new_key] == [ring["current"]]
    assert stat.S_IMODE(evidence.keyring_path.stat().st_mode) == 0o600
    # A fresh process reads everything with the new keyring alone.
    with Amparo(settings) as again:
        assert {i: again.evidence.read(i, actor="t") for i in items} == contents
        assert again.evidence.verify().ok
    assert {i: _blob_path(evidence, i).read_bytes() for i in items} == blobs


def test_purge_removes_expired_items_but_not_those_on_hold(
    amparo: Amparo, evidence: EvidenceStore
) -> None:
    short = evidence.preserve(b"short", reason="manual", actor="t", retention_days=1)
    held = evidence.preserve(b"held", reason="manual", actor="t", retention_days=1)
    kept = evidence.preserve(b"kept", reason="manual", actor="t", retention_days=30)
    forever = evidence.preserve(b"forever", reason="manual", actor="t", retention_days=0)
    assert forever.expires_at is None
    evidence.hold(held.id, reason="preservation request 42", actor="admin")
    later = datetime.now(UTC) + timedelta(days=2)

    dry = evidence.purge(later, actor="t", dry_run=True)
    assert dry.purged == [short.id] and dry.held == 1
    assert evidence.read(short.id, actor="t") == b"short"

    report = evidence.purge(later, actor="job")
    assert report.purged == [short.id] and report.held == 1
    gone = evidence.get(short.id)
    assert gone.purged_at is not None and gone.purge_reason == "expired"
    assert gone.sha256 == short.sha256  # the record stays
    with pytest.raises(NotFoundError, match="content is gone"):
        evidence.read(short.id, actor="t")
    assert evidence.read(held.id, actor="t") == b"held"
    assert len(_blobs(evidence)) == 3
    assert [i.id for i in evidence.list()] == [forever.id, kept.id, held.id]
    assert short.id in [i.id for i in evidence.list(include_purged=True)]
    purges = [e for e in amparo.audit.entries(100) if e.action == "evidence.purge"]
    assert [(e.target, e.actor) for e in purges] == [(f"evidence:{short.id}", "job")]

    with pytest.raises(ConflictError, match="legal hold"):
        evidence.discard(held.id, reason="false positive", actor="t")
    released = evidence.release(held.id, actor="admin")
    assert not released.legal_hold and released.hold_reason is None
    assert evidence.purge(later, actor="job").purged == [held.id]
    far = evidence.purge(datetime.now(UTC) + timedelta(days=10_000), actor="job")
    assert far.purged == [kept.id]
    assert evidence.read(forever.id, actor="t") == b"forever"
    assert len(_blobs(evidence)) == 1
    # Content preserved again after its purge is a new item.
    again = evidence.preserve(b"short", reason="manual", actor="t")
    assert again.id != short.id and evidence.read(again.id, actor="t") == b"short"


def test_purge_pages_through_more_expired_items_than_one_batch(
    evidence: EvidenceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [
        evidence.preserve(bytes([n]), reason="manual", actor="t", retention_days=1).id
        for n in range(5)
    ]
    expired = evidence.records.expired
    monkeypatch.setattr(
        evidence.records, "expired", lambda now, **kw: expired(now, **{**kw, "limit": 2})
    )
    later = datetime.now(UTC) + timedelta(days=2)
    assert evidence.purge(later, actor="t", dry_run=True).purged == ids
    assert evidence.purge(later, actor="t").purged == ids
    assert _blobs(evidence) == []


def test_discard_deletes_content_early_and_keeps_the_record(evidence: EvidenceStore) -> None:
    item = evidence.preserve(b"not what we thought", reason="rule:x", actor="t")
    with pytest.raises(InputError):
        evidence.discard(item.id, reason="", actor="rev")
    gone = evidence.discard(item.id, reason="false positive", actor="rev")
    assert gone.purge_reason == "discarded: false positive" and gone.purged_at is not None
    assert _blobs(evidence) == []
    assert evidence.discard(item.id, reason="again", actor="rev") == gone
    with pytest.raises(NotFoundError):
        evidence.hold(item.id, reason="x", actor="a")
    with pytest.raises(NotFoundError):
        evidence.get(9999)


def test_a_discard_rolled_back_with_its_transaction_keeps_the_content(
    amparo: Amparo, evidence: EvidenceStore
) -> None:
    """A discard inside a larger change that fails rolls back with it: the record stays
    live and the blob is still there (it is deleted only after commit)."""
    data = b"kept after all"
    item = evidence.preserve(data, reason="rule:x", actor="t")
    with pytest.raises(RuntimeError), amparo.store.transaction(refresh=False):
        assert evidence.discard(item.id, reason="false positive", actor="rev").purged_at
        assert _blobs(evidence) != []  # not yet: the transaction may still roll back
        raise RuntimeError("a later step of the same change fails")
    assert evidence.get(item.id).held
    assert evidence.read(item.id, actor="t") == data
    assert not amparo.store.audit_log.entries(action="evidence.discard")
    with amparo.store.transaction(refresh=False):
        evidence.discard(item.id, reason="false positive", actor="rev")
    assert _blobs(evidence) == [] and not evidence.get(item.id).held


def test_orphans_are_removed_after_their_grace(evidence: EvidenceStore) -> None:
    item = evidence.preserve(b"owned", reason="manual", actor="t")
    stray = evidence.settings.home / "evidence" / "ab" / ("ab" + "0" * 30 + ".amev")
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"junk")
    leftover = stray.parent / ".tmp-crashed"
    leftover.write_bytes(b"half")
    young = evidence.verify(orphan_grace_seconds=3600)
    assert young.orphans.removed == [] and young.orphans.young == 2
    orphans = ["ab/.tmp-crashed", "ab/ab" + "0" * 30 + ".amev"]
    # A verify only reports them; removing needs repair (or a purge).
    reported = evidence.verify(orphan_grace_seconds=0)
    assert sorted(reported.orphans.removed) == orphans and stray.exists() and leftover.exists()
    swept = evidence.verify(orphan_grace_seconds=0, repair=True)
    assert sorted(swept.orphans.removed) == orphans and not stray.exists()
    assert _blobs(evidence) == [blob_key(evidence.records.get(item.id).uuid)]  # type: ignore[union-attr]


def test_keyring_is_created_private_and_must_not_go_missing(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="amparo.evidence"), Amparo(settings) as app:
        item = app.evidence.preserve(b"x", reason="manual", actor="t")
        path = app.evidence.keyring_path
    assert "Back it up" in caplog.text
    assert path == settings.home / "keys" / "evidence.keys"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.rename(path.with_suffix(".moved"))
    with Amparo(settings) as app, pytest.raises(ConfigError, match="restore"):
        app.evidence.read(item.id, actor="t")
    with Amparo(settings) as app, pytest.raises(ConfigError, match="restore"):
        app.evidence.preserve(b"y", reason="manual", actor="t")
    # An operator-supplied keyring file works the same way.
    moved = replace(settings, evidence_kek_file=str(path.with_suffix(".moved")))
    with Amparo(moved) as app:
        assert app.evidence.read(item.id, actor="t") == b"x"


def test_concurrent_preserves_of_the_same_content_keep_one_copy(evidence: EvidenceStore) -> None:
    data = os.urandom(300_000)
    with ThreadPoolExecutor(4) as pool:
        items = list(
            pool.map(lambda n: evidence.preserve(data, reason=f"rule:r{n}", actor="t"), range(4))
        )
    assert len({i.id for i in items}) == 1
    assert evidence.get(items[0].id).sightings == 4
    assert len(_blobs(evidence)) == 1
    assert evidence.read(items[0].id, actor="t") == data


def test_naive_times_are_refused(evidence: EvidenceStore) -> None:
    with pytest.raises(InputError, match="timezone"):
        evidence.purge(datetime(2030, 1, 1))


def test_losing_an_insert_race_keeps_the_winner_and_drops_its_own_blob(
    evidence: EvidenceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = evidence.preserve(b"raced content", reason="rule:a", actor="t")
    real = evidence.records.find_live
    calls: list[str] = []

    def stale_then_real(sha256: str):  # type: ignore[no-untyped-def]
        calls.append(sha256)
        return None if len(calls) == 1 else real(sha256)  # the first look misses the winner

    monkeypatch.setattr(evidence.records, "find_live", stale_then_real)
    second = evidence.preserve(b"raced content", reason="rule:b", actor="t")
    assert second.id == first.id and second.sightings == 2 and len(calls) == 2
    assert len(_blobs(evidence)) == 1
    assert evidence.read(first.id, actor="t") == b"raced content"
