"""Federation feeds against storage (SQLite and PostgreSQL): the change-log page of a
published bank, provenance carried and re-shared, withdrawals, acknowledgements, grants and
opinions; and the canonical signed form (pure)."""

from __future__ import annotations

import secrets
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from amparo.app import Amparo
from amparo.banks.model import BankInfo, EntryRecord
from amparo.config import Settings
from amparo.errors import (
    ConflictError,
    FeedVerificationError,
    InputError,
    NotFoundError,
    OpinionVerificationError,
    PermissionDeniedError,
)
from amparo.exchanges.feed_model import FeedCursor
from amparo.exchanges.signing import FeedSigner, canonical, key_id, sign, verify
from amparo.keys import KeyService


def _pdq() -> str:
    return secrets.token_hex(32)


def _nonce() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture
def amparo(settings: Settings) -> Amparo:
    app = Amparo(replace(settings, organisation_id="org-a", feed_page_size=3))
    yield app
    app.close()


def _partner(amparo: Amparo, name: str = "hotline-b") -> str:
    return KeyService(amparo.store).create(name, ["partner"], actor="test").secret


# -- the signed form ---------------------------------------------------------------------


def test_canonical_form_and_signature_round_trip(tmp_path: Path) -> None:
    signer = FeedSigner(tmp_path / "keys" / "feed.key")
    page = {"b": [1, "ü"], "a": {"z": None, "y": True}}
    assert canonical(page) == '{"a":{"y":true,"z":null},"b":[1,"ü"]}'.encode()
    signature = signer.sign(page)
    verify(signer.public_key, dict(reversed(page.items())), signature)  # key order is moot
    assert (tmp_path / "keys" / "feed.key").stat().st_mode & 0o777 == 0o600
    again = FeedSigner(tmp_path / "keys" / "feed.key")
    assert again.key_id == signer.key_id and len(signer.key_id) == 16


def test_tampered_or_foreign_signature_is_rejected(tmp_path: Path) -> None:
    signer = FeedSigner(tmp_path / "feed.key")
    page = {"entries": [{"id": 1, "signal": "ab" * 32}], "nonce": "n" * 16}
    signature = signer.sign(page)
    altered = {"entries": [{"id": 1, "signal": "ab" * 31 + "ac"}], "nonce": "n" * 16}
    with pytest.raises(FeedVerificationError, match="does not verify"):
        verify(signer.public_key, altered, signature)
    other = Ed25519PrivateKey.generate()
    with pytest.raises(FeedVerificationError, match=key_id(other.public_key())):
        verify(other.public_key(), page, signature)
    with pytest.raises(FeedVerificationError):
        verify(signer.public_key, page, sign(other, page))
    with pytest.raises(FeedVerificationError, match="no signature"):
        verify(signer.public_key, page, None)


def test_cursor_text_form() -> None:
    assert str(FeedCursor.parse("12.345")) == "12.345"
    assert FeedCursor.parse(None) == FeedCursor(0, 0)
    assert FeedCursor(1, 9) < FeedCursor(2, 0) < FeedCursor(2, 1)
    for bad in ("1", "a.b", "01.2", "-1.0", "1.2.3", "9" * 30 + ".0"):
        with pytest.raises(InputError):
            FeedCursor.parse(bad)


# -- provenance through the store ----------------------------------------------------------


def test_provenance_is_stored_and_a_change_of_it_alone_keeps_the_position(
    amparo: Amparo,
) -> None:
    amparo.banks.create(BankInfo(name="shared"))
    pdq = _pdq()
    prov = {"origin": "org-x", "path": ["org-x"], "classification": "A1"}
    amparo.banks.add_entries("shared", [EntryRecord("pdq", pdq, provenance=prov)])
    seq = amparo.store.changes.current_seq()
    assert next(amparo.store.banks.iter_entries("shared")).provenance == prov
    newer = {**prov, "verified_by": "analyst-3"}
    amparo.banks.add_entries("shared", [EntryRecord("pdq", pdq, provenance=newer)])
    # A plain re-import (no provenance) keeps what the entry had.
    amparo.banks.add_entries("shared", [EntryRecord("pdq", pdq)])
    entry = next(amparo.store.banks.iter_entries("shared"))
    assert entry.provenance == newer
    assert amparo.store.changes.since(seq).upserts == []  # no churn for the index
    ids = amparo.banks.entry_ids("shared", [("pdq", pdq)])
    view = amparo.store.banks.get_entries(ids.values())
    assert next(iter(view.values())).provenance == newer


# -- pages --------------------------------------------------------------------------------


def _all_pages(amparo: Amparo, feed: str, cursor: str = "0.0", **kw: object) -> tuple[list, str]:
    entries: list = []
    while True:
        page = amparo.feeds.page(feed, cursor=cursor, nonce=_nonce(), **kw).page
        assert page["cursor"] == cursor
        entries.extend(page["entries"])
        cursor = page["next_cursor"]
        if not page["more"]:
            return entries, cursor


def test_pages_walk_the_change_log_and_carry_withdrawals(amparo: Amparo) -> None:
    amparo.banks.create(BankInfo(name="verified"))
    amparo.banks.create(BankInfo(name="other"))
    signals = sorted(_pdq() for _ in range(7))  # an import inserts in signal order
    amparo.banks.add_entries("verified", [EntryRecord("pdq", s, category="A1") for s in signals])
    amparo.banks.add_entries("other", [EntryRecord("pdq", _pdq())])
    amparo.feeds.publish("shared", "verified", description="test")
    entries, cursor = _all_pages(amparo, "shared")
    assert [e["signal"] for e in entries] == signals  # (seq, id) order
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
    first = entries[0]
    assert first["deleted"] is False and first["category"] == "A1"
    assert first["provenance"]["origin"] == "org-a"
    assert first["provenance"]["path"] == ["org-a"]
    assert first["provenance"]["classification"] == "A1"

    # Nothing new: an empty page at the same cursor.
    page = amparo.feeds.page("shared", cursor=cursor, nonce=_nonce()).page
    assert page["entries"] == [] and page["next_cursor"] == cursor and page["more"] is False

    removed_id = first["id"]
    assert amparo.feeds.withdraw("shared", [removed_id]) == 1
    amparo.banks.add_entries("other", [EntryRecord("pdq", _pdq())])  # not this feed's bank
    later, cursor2 = _all_pages(amparo, "shared", cursor)
    assert later == [
        {"id": removed_id, "deleted": True, "signal_type": "pdq", "signal": signals[0]}
    ]
    # A disabled entry is withdrawn too.
    amparo.banks.set_signals_enabled("verified", [("pdq", signals[1])], False)
    later, _ = _all_pages(amparo, "shared", cursor2)
    assert [(e["signal"], e["deleted"]) for e in later] == [(signals[1], True)]


def test_page_signature_nonce_and_size(amparo: Amparo) -> None:
    amparo.banks.create(BankInfo(name="verified"))
    amparo.banks.add_entries("verified", [EntryRecord("md5", secrets.token_hex(16))])
    amparo.feeds.publish("shared", "verified")
    nonce = _nonce()
    signed = amparo.feeds.page("shared", cursor=None, nonce=nonce, limit=1000)
    assert signed.page["nonce"] == nonce and signed.page["publisher"] == "org-a"
    assert signed.page["key_id"] == amparo.feeds.key_id()
    verify(amparo.feeds.signer.public_key, signed.page, signed.signature)
    import json

    assert json.loads(signed.body()) == signed.to_json()
    for bad in (None, "short", "x" * 129, "has space" + "x" * 16):
        with pytest.raises(InputError, match="nonce"):
            amparo.feeds.page("shared", cursor=None, nonce=bad)
    with pytest.raises(InputError, match="limit"):
        amparo.feeds.page("shared", cursor=None, nonce=nonce, limit=0)


def test_cursor_from_the_future_is_refused(amparo: Amparo) -> None:
    amparo.banks.create(BankInfo(name="verified"))
    amparo.feeds.publish("shared", "verified")
    top = amparo.store.changes.current_seq()
    with pytest.raises(InputError, match="from the future"):
        amparo.feeds.page("shared", cursor=f"{top + 1}.0", nonce=_nonce())
    with pytest.raises(InputError, match="from the future"):
        amparo.feeds.page("shared", cursor="0.0", nonce=_nonce(), ack=f"{top + 5}.1")
    with pytest.raises(InputError, match="malformed"):
        amparo.feeds.page("shared", cursor="abc", nonce=_nonce())


def test_reshared_entry_keeps_its_provenance_with_the_path_extended(amparo: Amparo) -> None:
    amparo.banks.create(BankInfo(name="from-x"))
    prov = {"origin": "org-x", "path": ["org-x"], "jurisdiction": "MX", "at": "2026-01-01"}
    amparo.banks.add_entries("from-x", [EntryRecord("pdq", _pdq(), provenance=prov)])
    amparo.feeds.publish("reshared", "from-x")
    entries, _ = _all_pages(amparo, "reshared")
    assert entries[0]["provenance"]["origin"] == "org-x"
    assert entries[0]["provenance"]["jurisdiction"] == "MX"
    assert entries[0]["provenance"]["path"] == ["org-x", "org-a"]


# -- grants, acknowledgements, opinions ------------------------------------------------------


def test_grants_scope_partners_and_record_acknowledgements(amparo: Amparo) -> None:
    amparo.banks.create(BankInfo(name="verified"))
    amparo.banks.create(BankInfo(name="private"))
    amparo.banks.add_entries("verified", [EntryRecord("pdq", _pdq()) for _ in range(4)])
    amparo.feeds.publish("shared", "verified")
    amparo.feeds.publish("internal", "private")
    with pytest.raises(ConflictError):
        amparo.feeds.publish("shared", "private")
    _partner(amparo)
    KeyService(amparo.store).create("matcher-1", ["matcher"], actor="test")
    with pytest.raises(InputError, match="partner scope"):
        amparo.feeds.grant("shared", "matcher-1")
    with pytest.raises(NotFoundError):
        amparo.feeds.grant("shared", "nobody")
    amparo.feeds.grant("shared", "hotline-b")

    assert [f.name for f in amparo.feeds.list(partner="hotline-b")] == ["shared"]
    for feed in ("internal", "does-not-exist"):  # same answer: no probing for names
        with pytest.raises(PermissionDeniedError, match="no grant"):
            amparo.feeds.page(feed, cursor=None, nonce=_nonce(), partner="hotline-b")
    with pytest.raises(NotFoundError):
        amparo.feeds.page("does-not-exist", cursor=None, nonce=_nonce())

    entries, cursor = _all_pages(amparo, "shared", partner="hotline-b")
    assert len(entries) == 4
    amparo.feeds.withdraw("shared", [entries[0]["id"], entries[1]["id"]])
    amparo.feeds.page("shared", cursor=cursor, nonce=_nonce(), ack=cursor, partner="hotline-b")
    grant = amparo.feeds.show("shared").grants[0]
    assert grant.ack_cursor == cursor and grant.acked_at is not None
    assert grant.unacknowledged_withdrawals == 2
    _, newest = _all_pages(amparo, "shared", cursor, partner="hotline-b")
    amparo.feeds.page("shared", cursor=newest, nonce=_nonce(), ack=newest, partner="hotline-b")
    assert amparo.feeds.show("shared").grants[0].unacknowledged_withdrawals == 0

    amparo.feeds.revoke("shared", "hotline-b")
    with pytest.raises(PermissionDeniedError):
        amparo.feeds.page("shared", cursor=None, nonce=_nonce(), partner="hotline-b")
    with pytest.raises(NotFoundError):
        amparo.feeds.revoke("shared", "hotline-b")
    assert amparo.feeds.list(partner="hotline-b") == []
    actions = [e.action for e in amparo.audit.entries(limit=100)]
    assert {"feed.publish", "feed.grant", "feed.revoke"} <= set(actions)


def _opinion(signer: FeedSigner, entry_id: int | str, verdict: str, at: str, org: str) -> dict:
    body = {"entry_id": entry_id, "verdict": verdict, "reason": "not_illegal", "at": at,
            "partner": org}  # fmt: skip
    return {"opinion": body, "signature": signer.sign(body), "key_id": signer.key_id}


def test_opinions_verified_counted_per_partner_and_replays_ignored(
    amparo: Amparo, tmp_path: Path
) -> None:
    amparo.banks.create(BankInfo(name="verified"))
    amparo.banks.add_entries("verified", [EntryRecord("pdq", _pdq()) for _ in range(2)])
    amparo.feeds.publish("shared", "verified")
    b_key, c_key = FeedSigner(tmp_path / "b.key"), FeedSigner(tmp_path / "c.key")
    _partner(amparo, "hotline-b")
    _partner(amparo, "hotline-c")
    amparo.feeds.grant("shared", "hotline-b", public_key=b_key.public_pem())
    amparo.feeds.grant("shared", "hotline-c")  # no pinned key: taken on the API key alone
    entries, _ = _all_pages(amparo, "shared")
    one, two = entries[0]["id"], entries[1]["id"]

    t1, t2 = "2026-12-01T10:00:00+00:00", "2026-12-02T10:00:00+00:00"
    got = amparo.feeds.receive_opinion(
        "shared", _opinion(b_key, one, "false_positive", t1, "org-b"), partner="hotline-b",
        actor="key:hotline-b",
    )  # fmt: skip
    assert got.verified
    amparo.feeds.receive_opinion(
        "shared", _opinion(c_key, one, "false_positive", t1, "org-c"), partner="hotline-c",
        actor="key:hotline-c",
    )  # fmt: skip
    amparo.feeds.receive_opinion(
        "shared", _opinion(b_key, two, "true_positive", t1, "org-b"), partner="hotline-b",
        actor="key:hotline-b",
    )  # fmt: skip
    # Signed by another key than the one pinned for hotline-b: refused, nothing stored.
    with pytest.raises(OpinionVerificationError):
        amparo.feeds.receive_opinion(
            "shared", _opinion(c_key, two, "false_positive", t2, "org-b"), partner="hotline-b",
            actor="key:hotline-b",
        )  # fmt: skip
    tampered = _opinion(b_key, two, "true_positive", t2, "org-b")
    tampered["opinion"]["verdict"] = "false_positive"
    tampered["key_id"] = None
    with pytest.raises(OpinionVerificationError, match="does not verify"):
        amparo.feeds.receive_opinion("shared", tampered, partner="hotline-b", actor="k")
    with pytest.raises(NotFoundError):
        amparo.feeds.receive_opinion(
            "shared", _opinion(b_key, 10**9, "true_positive", t2, "org-b"), partner="hotline-b",
            actor="k",
        )  # fmt: skip
    with pytest.raises(InputError, match="verdict"):
        amparo.feeds.receive_opinion(
            "shared", _opinion(b_key, one, "maybe", t2, "org-b"), partner="hotline-b", actor="k"
        )

    counts = {c.entry_id: c for c in amparo.feeds.opinion_counts("shared")}
    assert counts[one].false_positive == 2 and counts[one].true_positive == 0
    assert counts[one].partners == {"hotline-b": "false_positive", "hotline-c": "false_positive"}
    assert counts[two].true_positive == 1 and counts[two].false_positive == 0
    assert amparo.feeds.opinion_counts("shared")[0].entry_id == one  # most FPs first

    # A partner changing its mind replaces its opinion; an older one replayed does not.
    amparo.feeds.receive_opinion(
        "shared", _opinion(b_key, two, "false_positive", t2, "org-b"), partner="hotline-b",
        actor="k",
    )  # fmt: skip
    with pytest.raises(ConflictError, match="as new or newer"):  # the replay: a clear 409
        amparo.feeds.receive_opinion(
            "shared", _opinion(b_key, two, "true_positive", t1, "org-b"), partner="hotline-b",
            actor="k",
        )  # fmt: skip
    # A time in another zone is compared in UTC (06:00 UTC is older than 10:00 UTC), and a
    # time far in the future is refused (it would freeze the entry's opinion for good).
    with pytest.raises(ConflictError):
        amparo.feeds.receive_opinion(
            "shared", _opinion(b_key, two, "true_positive", "2026-12-02T11:00:00+05:00",
                               "org-b"), partner="hotline-b", actor="k",
        )  # fmt: skip
    with pytest.raises(InputError, match="future"):
        amparo.feeds.receive_opinion(
            "shared", _opinion(b_key, two, "true_positive", "9999-12-31T00:00:00+00:00",
                               "org-b"), partner="hotline-b", actor="k",
        )  # fmt: skip
    with pytest.raises(InputError, match="entry_id"):
        amparo.feeds.receive_opinion(
            "shared", _opinion(b_key, "\u00b2", "true_positive", t2, "org-b"),
            partner="hotline-b", actor="k",
        )  # fmt: skip
    counts = {c.entry_id: c for c in amparo.feeds.opinion_counts("shared")}
    assert counts[two].false_positive == 1 and counts[two].true_positive == 0
