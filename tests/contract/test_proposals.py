"""Share-back proposals on SQLite and PostgreSQL: a confirmed item proposed to an outgoing
bank, published (with provenance) only once a curator approves it. Synthetic hashes only."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace

import pytest

from amparo.app import Amparo
from amparo.banks.model import BankInfo, EntryRecord
from amparo.config import Settings
from amparo.errors import BankNotFoundError, ConflictError, InputError, NotFoundError
from amparo.events import MatchedContent, Source
from amparo.exchanges.model import Provenance
from amparo.matching import Match

RNG = random.Random(14)
SHA = f"{RNG.getrandbits(256):064x}"
MD5 = f"{RNG.getrandbits(128):032x}"
PDQ = f"{RNG.getrandbits(256):064x}"


@pytest.fixture
def amparo(settings: Settings) -> Iterator[Amparo]:
    with Amparo(replace(settings, organisation_id="hotline-mx")) as core:
        core.banks.create(BankInfo(name="incoming"))
        core.banks.create(BankInfo(name="share"))
        core.banks.create(BankInfo(name="benign", kind="negative"))
        yield core


def item_id(amparo: Amparo) -> int:
    """A case item that matched the incoming bank's PDQ entry (distance 4)."""
    amparo.banks.add_entries("incoming", [EntryRecord("pdq", PDQ, category="A2")])
    (entry_id,) = amparo.banks.entry_ids("incoming", [("pdq", PDQ)]).values()
    match = Match("incoming", entry_id, "pdq", 4, category="A2")
    find = MatchedContent(sha256=SHA, md5=MD5, matches=(match,), source=Source(upload_id="p"))
    case_id = amparo.cases.open_or_extend(find)
    return amparo.cases.get(case_id).items[0].id


def test_only_a_confirmed_item_can_be_proposed(amparo: Amparo) -> None:
    item = item_id(amparo)
    with pytest.raises(ConflictError, match="not confirmed"):
        amparo.proposals.propose(item, "share", actor="rita")
    amparo.cases.decide(item, "escalate", reviewer="rita")
    with pytest.raises(ConflictError, match="escalate"):
        amparo.proposals.propose(item, "share", actor="rita")
    amparo.cases.decide(item, "confirm", classification="A1", reviewer="rita")
    with pytest.raises(InputError, match="negative"):
        amparo.proposals.propose(item, "benign", actor="rita")
    with pytest.raises(BankNotFoundError):
        amparo.proposals.propose(item, "nope", actor="rita")
    with pytest.raises(NotFoundError):
        amparo.proposals.propose(999_999, "share", actor="rita")
    with pytest.raises(InputError, match="jurisdiction"):
        amparo.proposals.propose(item, "share", actor="rita", jurisdiction="Mexico")
    proposal = amparo.proposals.propose(
        item, "share", actor="rita", note="clear", jurisdiction="mx"
    )
    assert (proposal.state, proposal.bank, proposal.jurisdiction) == ("pending", "share", "MX")
    assert proposal.proposed_by == "rita" and proposal.note == "clear"
    with pytest.raises(ConflictError, match="already proposed"):
        amparo.proposals.propose(item, "share", actor="sam")
    assert [p.id for p in amparo.proposals.list()] == [proposal.id]
    # Nothing is published before a curator approves.
    assert list(amparo.store.banks.iter_entries("share")) == []


def test_approval_adds_the_items_hashes_with_provenance(amparo: Amparo) -> None:
    item = item_id(amparo)
    decided = amparo.cases.decide(item, "confirm", classification="A1", reviewer="rita")
    proposal = amparo.proposals.propose(item, "share", actor="rita", jurisdiction="MX")
    approved = amparo.proposals.approve(proposal.id, actor="carla")
    assert approved.state == "approved" and approved.decided_by == "carla"
    # No preserved copy: only the SHA-256 that names the item. Never the MD5 a lookup
    # carried, nor the partner's PDQ it matched (neither is this organisation's to vouch for).
    assert list(approved.entries) == [("sha256", SHA)]
    entries = {(e.signal_type, e.signal): e for e in amparo.store.banks.iter_entries("share")}
    assert set(entries) == set(approved.entries)
    assert {e.category for e in entries.values()} == {"A1"}
    # The records the bank was given carry the provenance (stored once entries keep it).
    records = amparo.proposals.entries_for(amparo.cases.item(item), decided, jurisdiction="MX")
    provenance = Provenance.from_json(records[0].provenance or {})
    assert provenance == Provenance(
        origin="hotline-mx",
        verified_by="rita",
        classification="A1",
        jurisdiction="MX",
        at=decided.at.isoformat(),
    )
    with pytest.raises(ConflictError, match="already approved"):
        amparo.proposals.approve(proposal.id, actor="carla")
    with pytest.raises(ConflictError):
        amparo.proposals.reject(proposal.id, actor="carla")
    # Once decided, the item may be proposed again (to the same or another bank).
    assert amparo.proposals.propose(item, "share", actor="rita").state == "pending"
    actions = [e.action for e in amparo.audit.entries() if e.target.startswith("proposal:")]
    assert actions[:2] == ["proposal.create", "proposal.approve"]


def test_rejection_publishes_nothing(amparo: Amparo) -> None:
    item = item_id(amparo)
    amparo.cases.decide(item, "confirm", classification="B2", reviewer="rita")
    proposal = amparo.proposals.propose(item, "share", actor="rita")
    rejected = amparo.proposals.reject(proposal.id, actor="carla", reason="not ours to share")
    assert (rejected.state, rejected.reason, rejected.decided_by) == (
        "rejected",
        "not ours to share",
        "carla",
    )
    assert list(amparo.store.banks.iter_entries("share")) == []
    assert amparo.proposals.list() == []
    assert [p.id for p in amparo.proposals.list(state="all")] == [proposal.id]
    with pytest.raises(InputError):
        amparo.proposals.list(state="maybe")
    audit = [e for e in amparo.audit.entries() if e.action == "proposal.reject"]
    assert audit and audit[-1].details["reason"] == "not ours to share"


def test_an_item_no_longer_confirmed_is_not_published(amparo: Amparo) -> None:
    item = item_id(amparo)
    amparo.cases.decide(item, "confirm", classification="A2", reviewer="rita")
    proposal = amparo.proposals.propose(item, "share", actor="rita")
    amparo.cases.decide(item, "false_positive", reviewer="sam")
    with pytest.raises(ConflictError, match="not confirmed"):
        amparo.proposals.approve(proposal.id, actor="carla")
    assert list(amparo.store.banks.iter_entries("share")) == []
    assert amparo.proposals.get(proposal.id).state == "pending"


def _png(seed: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:240, 0:320].astype(np.float32)
    channels = [127 + 120 * np.sin(x / rng.uniform(15, 80)) * np.cos(y / 25) for _ in range(3)]
    out = io.BytesIO()
    Image.fromarray(np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8)).save(out, "PNG")
    return out.getvalue()


def test_approval_hashes_the_preserved_copy_and_leaves_existing_entries_alone(
    amparo: Amparo,
) -> None:
    """The hashes published are computed again from the preserved copy, never taken from
    what a lookup sent; an entry the bank already has (here disabled by a curator) is not
    re-enabled or rewritten; a bank a source fills is refused."""
    from amparo.actions import Rule
    from amparo.exchanges.model import Collaboration

    photo = _png(3)
    hashes = amparo.checks.hash_bytes(photo)
    amparo.banks.add_media("incoming", photo, category="A2")
    amparo.actions.add_rule(
        Rule.from_json({"name": "review-all", "actions": [{"type": "review"}]}), actor="t"
    )
    check = amparo.checks.check_media(
        hashes, source=Source(upload_id="u9"), actor="platform", media=photo
    )
    assert check.actions
    item = amparo.cases.queue()[0].items[0]
    assert item.evidence_id is not None
    amparo.cases.decide(item.id, "confirm", classification="A1", reviewer="rita")
    # The share bank already holds the MD5, disabled by a curator.
    amparo.banks.add_entries("share", [EntryRecord("md5", hashes.md5, category="B2")])
    amparo.banks.set_signals_enabled("share", [("md5", hashes.md5)], False)
    proposal = amparo.proposals.propose(item.id, "share", actor="rita")
    approved = amparo.proposals.approve(proposal.id, actor="carla")
    assert hashes.pdq is not None
    assert sorted(approved.entries) == sorted([("sha256", hashes.sha256), ("pdq", hashes.pdq)])
    (md5_entry,) = [e for e in amparo.store.banks.iter_entries("share") if e.signal_type == "md5"]
    assert (md5_entry.enabled, md5_entry.category) == (False, "B2")
    reads = [e for e in amparo.audit.entries() if e.action == "evidence.read"]
    assert reads and reads[-1].actor == "carla"
    # A bank a collaboration fills is not this organisation's to share into.
    amparo.exchanges.add(
        Collaboration(
            name="partner",
            exchange="file",
            bank="incoming",
            settings={"path": str(amparo.settings.home / "lists" / "x.csv")},
        ),
        actor="t",
    )
    with pytest.raises(InputError, match="filled from a source"):
        amparo.proposals.propose(item.id, "incoming", actor="rita")
