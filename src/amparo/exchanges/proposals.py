"""The share-back path: a reviewer-confirmed item proposed to an outgoing bank, published
only once a curator approves it (with its provenance: this organisation, the reviewer's
verdict, classification and jurisdiction).

Why two steps: a reviewer's confirm is a verdict on one piece of content; publishing its
hashes to partners (a feed serves the bank) is a decision about what this organisation vouches
for, so a curator makes it. Every step is audit-logged with target ``proposal:<id>``.

What an approval adds to the bank, each entry with the item's classification as its category
and the provenance as JSON: only hashes this installation computed from the content itself.

* the content's SHA-256 (what names the item, always);
* when the item's media was preserved in the evidence store: its MD5 and perceptual hashes
  (PDQ, or vPDQ for a video), computed again from the decrypted copy at approval (the copy's
  SHA-256 must be the item's; the read is audit-logged).

Never a hash a caller sent with a lookup (``/v1/match/signals`` takes whatever signals a
matcher key sends: a hostile one could otherwise have a benign picture's PDQ published under
this organisation's name), and never the hashes of the entries the item matched (a partner's
hash, perhaps since withdrawn, is not this organisation's to vouch for).

Signals the bank already has a row for, in any state (active, disabled by a curator, removed)
are left alone: an approval never re-enables or rewrites an entry. Banks a collaboration fills
from a source are refused: share back into a bank of this organisation's own.
"""

from __future__ import annotations

import builtins
import hashlib
import re
from collections.abc import Callable
from typing import Protocol

from amparo.banks.model import BankInfo, EntryRecord
from amparo.banks.service import BankService
from amparo.clock import Clock, utc_now
from amparo.config import Settings
from amparo.errors import ConflictError, InputError, NotFoundError
from amparo.exchanges.model import Provenance
from amparo.hashing import MediaHashes
from amparo.review.model import CaseItem, Decision, check_note
from amparo.store import Store
from amparo.store.proposals import (
    PROPOSAL_STATES,
    Proposal,
    ProposalRepository,
    collaborations_feeding,
    signals_in_bank,
)

__all__ = ["PROPOSAL_STATES", "ItemReader", "Proposal", "ProposalService"]

_JURISDICTION = re.compile(r"[A-Z]{2}|INT")


class ItemReader(Protocol):
    """Reads a case item (:class:`amparo.review.CaseService`); NotFoundError if none."""

    def item(self, item_id: int) -> CaseItem: ...


class ContentReader(Protocol):
    """Decrypts a preserved item (:class:`amparo.evidence.EvidenceStore`), audit-logged."""

    def read(self, item_id: int, *, actor: str) -> bytes: ...


Hasher = Callable[[bytes], MediaHashes]


def organisation(settings: Settings) -> str:
    """The organisation provenance names as origin (``organisation_id``, else ``local``)."""
    return settings.organisation_id or "local"


class ProposalService:
    """Propose (reviewers, curators), approve and reject (curators) share-back proposals."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        banks: BankService,
        cases: ItemReader,
        *,
        evidence: ContentReader | None = None,
        hasher: Hasher | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.store = store
        self.banks = banks
        self.cases = cases
        self.evidence = evidence
        self.hasher = hasher
        self.clock = clock
        self.repository = ProposalRepository(store.db)

    # -- reading ----------------------------------------------------------------------------

    def get(self, proposal_id: int) -> Proposal:
        found = self.repository.get(proposal_id)
        if found is None:
            raise NotFoundError(
                f"no proposal {proposal_id}", hint="see `amparo bank proposals --state all`"
            )
        return found

    def list(
        self, *, state: str | None = "pending", bank: str | None = None, limit: int = 100
    ) -> list[Proposal]:
        """Proposals oldest first; ``state`` None or ``all`` lists every state."""
        if state == "all":
            state = None
        if state is not None and state not in PROPOSAL_STATES:
            raise InputError(
                f"unknown proposal state {state!r}",
                hint="use " + ", ".join(PROPOSAL_STATES) + " or all",
            )
        bank_id = self.banks.get(bank).id if bank else None
        return self.repository.list(state=state, bank_id=bank_id, limit=max(1, min(limit, 1000)))

    # -- the steps --------------------------------------------------------------------------

    def propose(
        self,
        item_id: int,
        bank: str,
        *,
        actor: str,
        note: str | None = None,
        jurisdiction: str | None = None,
    ) -> Proposal:
        """Propose a confirmed item to ``bank`` (a positive bank); audit-logged as
        ``proposal.create``. ConflictError when the item is not confirmed or already waits
        for a curator in that bank."""
        item = self.cases.item(item_id)
        self._confirmed(item)
        info = self._outgoing(bank)
        assert info.id is not None
        note = check_note(note)
        jurisdiction = _jurisdiction(jurisdiction)
        with self.store.transaction(refresh=False) as tx:
            proposal_id = self.repository.create(
                tx,
                item_id=item.id,
                bank_id=info.id,
                proposed_by=actor,
                at=self.clock(),
                note=note,
                jurisdiction=jurisdiction,
            )
            tx.audit(
                actor,
                "proposal.create",
                f"proposal:{proposal_id}",
                {"item": item.id, "bank": info.name, "jurisdiction": jurisdiction},
            )
        return self.get(proposal_id)

    def approve(self, proposal_id: int, *, actor: str) -> Proposal:
        """Publish a pending proposal: the item's hashes added to the bank with provenance
        (see the module docstring), in the transaction that marks it approved; audit-logged
        as ``proposal.approve`` (and ``bank.add`` by the bank). ConflictError when it is no
        longer pending or the item's decision is no longer a confirm."""
        proposal = self._pending(proposal_id)
        item = self.cases.item(proposal.item_id)
        decision = self._confirmed(item)
        info = self._outgoing(proposal.bank)
        variants: dict[tuple[str, str], builtins.list[tuple[str, str]]] = {}
        records = self.entries_for(
            item, decision, jurisdiction=proposal.jurisdiction, actor=actor, variants=variants
        )
        assert info.id is not None
        present = signals_in_bank(
            self.store.db, info.id, [(r.signal_type, r.signal) for r in records]
        )
        records = [r for r in records if (r.signal_type, r.signal) not in present]
        note = f"share-back proposal {proposal.id} (case item {item.id})"
        for record in records:
            record.note = note
        with self.store.transaction() as tx:
            if records:
                self.banks.add_entries(info.name, records, actor=actor, variants=variants)
            self.repository.decide(
                tx,
                proposal.id,
                state="approved",
                by=actor,
                at=self.clock(),
                entries=[(r.signal_type, r.signal) for r in records],
            )
            tx.audit(
                actor,
                "proposal.approve",
                f"proposal:{proposal.id}",
                {
                    "item": item.id,
                    "bank": info.name,
                    "entries": len(records),
                    "already_in_bank": len(present),
                },
            )
        return self.get(proposal.id)

    def reject(self, proposal_id: int, *, actor: str, reason: str | None = None) -> Proposal:
        """Reject a pending proposal (nothing is published); audit-logged as
        ``proposal.reject`` with the reason."""
        proposal = self._pending(proposal_id)
        reason = check_note(reason)
        with self.store.transaction(refresh=False) as tx:
            self.repository.decide(
                tx, proposal.id, state="rejected", by=actor, at=self.clock(), reason=reason
            )
            tx.audit(
                actor,
                "proposal.reject",
                f"proposal:{proposal.id}",
                {"item": proposal.item_id, "bank": proposal.bank, "reason": reason or ""},
            )
        return self.get(proposal.id)

    # -- what is published ------------------------------------------------------------------

    def entries_for(
        self,
        item: CaseItem,
        decision: Decision,
        *,
        jurisdiction: str | None = None,
        actor: str = "local",
        variants: dict[tuple[str, str], builtins.list[tuple[str, str]]] | None = None,
    ) -> builtins.list[EntryRecord]:
        """The entries an approval adds for ``item`` (see the module docstring); reading the
        preserved copy to hash it is audit-logged under ``actor``. ``variants``, when given,
        receives the photo's PDQ variants (its trim and crops, as media added to a bank gets:
        docs/detection.md) keyed by its PDQ entry."""
        provenance = Provenance(
            origin=organisation(self.settings),
            verified_by=decision.reviewer,
            classification=decision.classification,
            jurisdiction=jurisdiction,
            at=decision.at.isoformat(),
        ).to_json()
        signals: builtins.list[tuple[str, str]] = [("sha256", item.sha256)]
        signals += self._hashed_again(item, actor, variants)
        unique = list(dict.fromkeys(signals))
        return [
            EntryRecord(
                signal_type=t,
                signal=v,
                category=decision.classification,
                provenance=dict(provenance),
            )
            for t, v in unique
        ]

    def _hashed_again(
        self,
        item: CaseItem,
        actor: str,
        variants: dict[tuple[str, str], builtins.list[tuple[str, str]]] | None = None,
    ) -> builtins.list[tuple[str, str]]:
        """The preserved copy's own hashes (not the SHA-256, already there), or none; its
        PDQ's variants into ``variants`` when given."""
        if item.evidence_id is None or self.evidence is None or self.hasher is None:
            return []
        data = self.evidence.read(item.evidence_id, actor=actor)
        if hashlib.sha256(data).hexdigest() != item.sha256.lower():
            raise ConflictError(
                f"the preserved copy of case item {item.id} is not the item's content",
                hint="run `amparo evidence verify`; nothing was published",
            )
        hashes = self.hasher(data)
        hashed = hashes.signals()
        if variants is not None and hashes.pdq is not None:
            wanted = self.banks.media_variants(data, hashes)
            if wanted:
                variants[("pdq", hashes.pdq)] = wanted
        return [(t, v) for t, v in sorted(hashed.items()) if t not in ("sha256", "sha1")]

    # -- checks -----------------------------------------------------------------------------

    def _pending(self, proposal_id: int) -> Proposal:
        proposal = self.get(proposal_id)
        if proposal.state != "pending":
            raise ConflictError(
                f"proposal {proposal_id} is already {proposal.state}",
                hint="only a pending proposal can be approved or rejected",
            )
        return proposal

    @staticmethod
    def _confirmed(item: CaseItem) -> Decision:
        decision = item.decision
        if decision is None or decision.kind != "confirm":
            state = decision.kind if decision else "not decided"
            raise ConflictError(
                f"case item {item.id} is {state}, not confirmed",
                hint="only an item a reviewer confirmed can be shared: decide it first",
            )
        return decision

    def _outgoing(self, bank: str) -> BankInfo:
        info = self.banks.get(bank)
        if info.kind == "negative":
            raise InputError(
                f"bank {bank!r} is a negative (known-benign) bank",
                hint="propose confirmed abuse material to a positive bank",
            )
        assert info.id is not None
        feeding = collaborations_feeding(self.store.db, info.id)
        if feeding:
            raise InputError(
                f"bank {bank!r} is filled from a source (collaboration "
                f"{', '.join(feeding)}): it is not this organisation's to share into",
                hint="propose to a bank of your own (e.g. `amparo bank create outgoing`) and "
                "publish that one (`amparo feeds publish`)",
            )
        return info


def _jurisdiction(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    code = value.strip().upper()
    if not _JURISDICTION.fullmatch(code):
        raise InputError(
            f"{value!r} is not a jurisdiction",
            hint="use an ISO 3166 two-letter code (MX, BR) or INT (illegal internationally)",
        )
    return code
