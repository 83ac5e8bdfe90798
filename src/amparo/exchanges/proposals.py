"""The share-back path: a reviewer-confirmed item proposed to an outgoing bank, published
only once a curator approves it (with its provenance: this organisation, the reviewer's
verdict, classification and jurisdiction).

Why two steps: a reviewer's confirm is a verdict on one piece of content; publishing its
hashes to partners (a feed serves the bank) is a decision about what this organisation vouches
for, so a curator makes it. Every step is audit-logged with target ``proposal:<id>``.

What an approval adds to the bank, each entry with the item's classification as its category
and the provenance as JSON:

* the content's SHA-256 (always) and MD5 (when the find carried it);
* the content's own PDQ (and other perceptual signals) when retroactive matching still keeps
  its hashes (:mod:`amparo.exchanges.retro`);
* the perceptual signals (PDQ, vPDQ) of the entries it matched: the hash the reviewer saw
  matched, which partners match their copies against. Digest entries it matched are not
  copied (the content's own digests are added instead).
"""

from __future__ import annotations

import builtins
import re
from typing import Protocol

from amparo.banks.model import BankInfo, EntryRecord
from amparo.banks.service import BankService
from amparo.clock import Clock, utc_now
from amparo.config import Settings
from amparo.errors import ConflictError, InputError, NotFoundError
from amparo.exchanges.model import Provenance
from amparo.review.model import CaseItem, Decision, check_note
from amparo.signals import get_signal_type
from amparo.store import Store
from amparo.store.proposals import PROPOSAL_STATES, Proposal, ProposalRepository
from amparo.store.retro import RetroRepository

__all__ = ["PROPOSAL_STATES", "ItemReader", "Proposal", "ProposalService"]

_JURISDICTION = re.compile(r"[A-Z]{2}|INT")


class ItemReader(Protocol):
    """Reads a case item (:class:`amparo.review.CaseService`); NotFoundError if none."""

    def item(self, item_id: int) -> CaseItem: ...


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
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.store = store
        self.banks = banks
        self.cases = cases
        self.clock = clock
        self.repository = ProposalRepository(store.db)
        self.retained = RetroRepository(store.db)

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
        records = self.entries_for(item, decision, jurisdiction=proposal.jurisdiction)
        note = f"share-back proposal {proposal.id} (case item {item.id})"
        for record in records:
            record.note = note
        with self.store.transaction() as tx:
            self.banks.add_entries(info.name, records, actor=actor)
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
                {"item": item.id, "bank": info.name, "entries": len(records)},
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
        self, item: CaseItem, decision: Decision, *, jurisdiction: str | None = None
    ) -> builtins.list[EntryRecord]:
        """The entries an approval adds for ``item`` (see the module docstring)."""
        provenance = Provenance(
            origin=organisation(self.settings),
            verified_by=decision.reviewer,
            classification=decision.classification,
            jurisdiction=jurisdiction,
            at=decision.at.isoformat(),
        ).to_json()
        signals: builtins.list[tuple[str, str]] = [("sha256", item.sha256)]
        if item.md5:
            signals.append(("md5", item.md5))
        kept = self.retained.by_sha256(item.sha256)
        if kept is not None:
            signals += [
                (t, v) for t, v in sorted(kept.signals.items()) if not get_signal_type(t).exact
            ]
        perceptual = [m.entry_id for m in item.matches if not get_signal_type(m.signal_type).exact]
        entries = self.store.banks.get_entries(perceptual)
        signals += [(entries[i].signal_type, entries[i].signal) for i in perceptual if i in entries]
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
