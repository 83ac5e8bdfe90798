"""Amparo-to-Amparo federation, the publisher's side: banks published as signed feeds,
partner grants, opinions from subscribers, withdrawals acknowledged.

Storage in :mod:`amparo.store.feeds`; the subscriber's side is the ``amparo`` exchange type
(:mod:`amparo.exchanges.amparo_feed`); the canonical signed form in
:mod:`amparo.exchanges.signing`.

A page is the feed's bank's change log after the subscriber's cursor, signed with this
installation's feed key over its canonical JSON, with the subscriber's nonce inside: a
subscriber pinned to the key rejects a page altered in transit, signed by another key, or
replayed (an older page carries another nonce). Withdrawals travel the same log: an entry
removed or disabled on the publisher appears as ``{"id", "deleted": true, ...}``.

Who may read what: a ``curator`` key (or ``admin``) sees and manages every feed; a
``partner`` key reads only the feeds granted to it. A partner asking for a feed it holds no
grant to gets 403 whether the feed exists or not, so partners cannot probe for the names of
feeds they were not given.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from amparo.banks.service import BankService
from amparo.clock import Clock, as_utc, utc_now
from amparo.config import LOCAL_ACTOR, Settings
from amparo.errors import (
    ConflictError,
    FeedVerificationError,
    InputError,
    NotFoundError,
    OpinionVerificationError,
    PermissionDeniedError,
)
from amparo.exchanges.feed_model import (
    Feed,
    FeedCursor,
    FeedOpinion,
    Grant,
    OpinionCount,
    check_nonce,
)
from amparo.exchanges.model import OPINION_VERDICTS, Provenance
from amparo.exchanges.signing import (
    FeedSigner,
    canonical,
    key_id,
    load_public_key,
    organisation_id,
    public_key_pem,
    verify,
)
from amparo.names import validate_name
from amparo.store import Store
from amparo.store.feeds import ChangeRow, FeedRepository
from amparo.store.keys import KeyStore

MAX_REASON = 1000


@dataclass(frozen=True)
class SignedPage:
    """A feed page and its signature: ``{"page": page, "signature": signature}``."""

    page: dict[str, Any]
    signature: str

    def to_json(self) -> dict[str, Any]:
        return {"page": self.page, "signature": self.signature}

    def body(self) -> bytes:
        """The response body: the page in its canonical form (what was signed, encoded
        once), so a large page is not serialised twice."""
        return (
            b'{"page":' + canonical(self.page) + b',"signature":"' + self.signature.encode() + b'"}'
        )


class FeedService:
    """Publish banks as feeds, grant them to partner keys, serve signed pages, take opinions."""

    def __init__(
        self, settings: Settings, store: Store, banks: BankService, *, clock: Clock = utc_now
    ) -> None:
        self.settings = settings
        self.store = store
        self.banks = banks
        self.clock = clock
        self.repository = FeedRepository(store.db)
        self.signer = FeedSigner.of(settings)
        """This installation's feed key (created on first use)."""

    # -- identity ---------------------------------------------------------------------------

    @property
    def organisation(self) -> str:
        """This installation's organisation id (provenance names it)."""
        return organisation_id(self.settings, self.signer)

    def public_key(self) -> str:
        """PEM of the feed signing key: what subscribers pin (``amparo feeds key``)."""
        return self.signer.public_pem()

    def key_id(self) -> str:
        return self.signer.key_id

    # -- feeds and grants (curators) --------------------------------------------------------

    def publish(
        self, name: str, bank: str, *, description: str = "", actor: str = LOCAL_ACTOR
    ) -> Feed:
        """Publish ``bank`` as the feed ``name`` (granted to no one yet)."""
        validate_name(name, "feed")
        info = self.banks.get(bank)
        assert info.id is not None
        return self.repository.create(name, info.id, description, now=self.clock(), actor=actor)

    def unpublish(self, name: str, *, actor: str = LOCAL_ACTOR) -> None:
        """Stop publishing a feed (its grants and opinions go with it; the bank stays)."""
        self.repository.delete(name, actor=actor)

    def get(self, name: str) -> Feed:
        return self.repository.get(name)

    def list(self, *, partner: str | None = None) -> builtins.list[Feed]:
        """Every feed, or (``partner``: a key name) the feeds granted to that key, without
        the other partners' grants."""
        feeds = self.repository.list(key_name=partner)
        if partner is None:
            return feeds
        return [
            replace(f, grants=tuple(g for g in f.grants if g.key_name == partner)) for f in feeds
        ]

    def show(self, name: str) -> Feed:
        """The feed with each grant's acknowledgement: how many withdrawals the partner has
        not yet confirmed it applied."""
        feed = self.repository.get(name)
        grants = tuple(
            replace(
                g,
                unacknowledged_withdrawals=self.repository.withdrawals_after(
                    feed.bank_id, FeedCursor.parse(g.ack_cursor) if g.ack_cursor else None
                ),
            )
            for g in feed.grants
        )
        return replace(feed, grants=grants)

    def grant(
        self,
        name: str,
        key_name: str,
        *,
        public_key: str | None = None,
        actor: str = LOCAL_ACTOR,
    ) -> Grant:
        """Let the ``partner`` key ``key_name`` read the feed. ``public_key`` (PEM of the
        partner's feed key, from its ``amparo feeds key``) pins what its opinions must be
        signed with; without it opinions are taken on the strength of the API key alone."""
        feed = self.repository.get(name)
        stored = KeyStore(self.store).get(key_name)
        if stored.revoked:
            raise InputError(
                f"API key {key_name!r} is revoked", hint="create a new partner key first"
            )
        if "partner" not in stored.scopes:
            raise InputError(
                f"API key {key_name!r} does not have the partner scope",
                hint=f"feeds are granted to partner keys: amparo keys create {key_name}-partner "
                "--scope partner",
            )
        details: dict[str, Any] = {}
        pem = None
        if public_key is not None:
            key = load_public_key(public_key, what="the partner's public key")
            pem = public_key_pem(key)
            details["partner_key_id"] = key_id(key)
        return self.repository.grant(
            feed, key_name, pem, now=self.clock(), actor=actor, details=details
        )

    def revoke(self, name: str, key_name: str, *, actor: str = LOCAL_ACTOR) -> None:
        feed = self.repository.get(name)
        if not self.repository.revoke(feed, key_name, now=self.clock(), actor=actor):
            raise NotFoundError(
                f"key {key_name!r} holds no grant to feed {name!r}",
                hint=f"see `amparo feeds show {name}`",
            )

    def withdraw(self, name: str, entry_ids: Sequence[int], *, actor: str = LOCAL_ACTOR) -> int:
        """Remove entries of the feed's bank (the deletion reaches every subscriber through
        the feed); returns how many were removed."""
        feed = self.repository.get(name)
        return self.banks.remove_entry_ids(feed.bank, entry_ids, actor=actor)

    # -- pages (partners and curators) ------------------------------------------------------

    def access(self, name: str, partner: str | None) -> tuple[Feed, Grant | None]:
        """The feed and, for a partner key, its active grant. A partner without one gets
        :class:`PermissionDeniedError` whether the feed exists or not."""
        feed = self.repository.find(name)
        if partner is None:
            if feed is None:
                raise NotFoundError(f"no feed named {name!r}", hint="see `amparo feeds list`")
            return feed, None
        grant = None
        if feed is not None:
            grant = next((g for g in feed.grants if g.key_name == partner and g.active), None)
        if feed is None or grant is None or not feed.enabled:
            raise PermissionDeniedError(
                f"key {partner!r} holds no grant to a feed named {name!r}",
                hint="ask the publisher to grant it (`amparo feeds grant FEED KEY`); "
                "GET /v1/feeds lists the feeds granted to this key",
            )
        return feed, grant

    def page(
        self,
        name: str,
        *,
        cursor: str | None,
        nonce: str | None,
        limit: int | None = None,
        ack: str | None = None,
        partner: str | None = None,
    ) -> SignedPage:
        """The signed page of the feed after ``cursor``: at most ``min(limit,
        feed_page_size)`` entries. ``ack`` (the partner's committed cursor) is recorded on
        its grant. ``partner``: the partner key's name (None: a curator)."""
        feed, grant = self.access(name, partner)
        nonce = check_nonce(nonce)
        after = FeedCursor.parse(cursor)
        acked = FeedCursor.parse(ack, what="ack cursor") if ack else None
        size = (
            self.settings.feed_page_size
            if limit is None
            else min(limit, self.settings.feed_page_size)
        )
        if size < 1:
            raise InputError("limit must be at least 1", hint="omit it for the largest page")
        top = self.repository.current_seq()
        for what, c in (("cursor", after), ("ack cursor", acked)):
            if c is not None and c.seq > top:
                raise InputError(
                    f"{what} {c} is from the future: this feed's change log is at {top}",
                    hint="the subscriber's checkpoint does not belong to this publisher (or its "
                    "database was restored from an older backup); reset the collaboration's "
                    "checkpoint to fetch the feed again from 0.0",
                )
        _, rows = self.repository.changes(feed.bank_id, after, size + 1)
        more = len(rows) > size
        rows = rows[:size]
        org = self.organisation
        next_cursor = FeedCursor(rows[-1].seq, rows[-1].id) if rows else after
        page = {
            "feed": feed.name,
            "publisher": org,
            "key_id": self.signer.key_id,
            "cursor": str(after),
            "next_cursor": str(next_cursor),
            "nonce": nonce,
            "issued_at": self.clock().isoformat(),
            "entries": [_entry_json(r, org) for r in rows],
            "more": more,
        }
        if grant is not None and acked is not None and str(acked) != grant.ack_cursor:
            self.repository.record_ack(grant, str(acked), now=self.clock())
        return SignedPage(page, self.signer.sign(page))

    # -- opinions ---------------------------------------------------------------------------

    def receive_opinion(
        self, name: str, body: dict[str, Any], *, partner: str, actor: str
    ) -> FeedOpinion:
        """Store a partner's signed opinion on one of the feed's entries. When the grant
        pinned the partner's public key the signature must verify with it
        (:class:`OpinionVerificationError` otherwise; nothing is stored)."""
        feed, grant = self.access(name, partner)
        assert grant is not None
        raw = body.get("opinion")
        if not isinstance(raw, dict):
            raise InputError(
                "the body needs an 'opinion' object",
                hint='send {"opinion": {"entry_id", "verdict", "reason", "at", "partner"}, '
                '"signature", "key_id"}',
            )
        entry_id, verdict, reason, at, _claimed = _opinion_fields(raw)
        if datetime.fromisoformat(at) > self.clock() + timedelta(days=1):
            raise InputError(
                "the opinion's 'at' is in the future",
                hint="send the time the reviewer decided, in UTC",
            )
        signature = body.get("signature")
        verified = False
        if grant.partner_public_key:
            pinned = load_public_key(grant.partner_public_key)
            sent_id = body.get("key_id")
            hint = (
                "the opinion must be signed with the feed key whose public half was pinned "
                f"when the feed was granted (key id {key_id(pinned)}); nothing was stored"
            )
            if sent_id is not None and sent_id != key_id(pinned):
                raise OpinionVerificationError(
                    f"the opinion is signed by key {str(sent_id)[:40]!r}, not the partner key "
                    f"{key_id(pinned)} pinned for {partner!r}",
                    hint=hint,
                )
            try:
                verify(pinned, raw, signature, what="the opinion")
            except FeedVerificationError as exc:  # the sender's fault here: 400, not 502
                raise OpinionVerificationError(exc.message, hint=hint) from None
            verified = True
        if self.repository.entry_in_bank(feed.bank_id, entry_id) is None:
            raise NotFoundError(
                f"feed {name!r} has no entry {entry_id}",
                hint="send the entry id the feed page gave (the record id of the entry)",
            )
        opinion = FeedOpinion(
            feed=feed.name,
            entry_id=entry_id,
            key_name=partner,
            # The grant's key, not the organisation the body claims: a partner signs its own
            # claim, so the claim proves nothing about who it is.
            partner=partner,
            verdict=verdict,
            reason=reason,
            at=at,
            received_at=self.clock(),
            verified=verified,
        )
        stored = self.repository.record_opinion(
            feed, opinion, signature if isinstance(signature, str) else None, actor=actor
        )
        if not stored:
            raise ConflictError(
                f"partner {partner!r} already has an opinion on entry {entry_id} as new or "
                "newer than this one",
                hint="nothing was changed; send a later opinion to replace it",
            )
        return opinion

    def opinion_counts(self, name: str) -> builtins.list[OpinionCount]:
        """Per entry: how many partners said true or false positive, and who."""
        return self.repository.opinion_counts(self.repository.get(name))

    def opinions(self, name: str, entry_ids: Sequence[int] = ()) -> builtins.list[FeedOpinion]:
        return self.repository.opinions(self.repository.get(name), entry_ids)


def _entry_json(row: ChangeRow, org: str) -> dict[str, Any]:
    if not row.active:
        return {
            "id": row.id,
            "deleted": True,
            "signal_type": row.signal_type,
            "signal": row.signal,
        }
    return {
        "id": row.id,
        "deleted": False,
        "signal_type": row.signal_type,
        "signal": row.signal,
        "category": row.category,
        "tags": row.tags,
        "provenance": _provenance(row, org).to_json(),
    }


def _provenance(row: ChangeRow, org: str) -> Provenance:
    """The entry's provenance as this publisher re-shares it (its organisation appended to
    the path), or, for an entry of its own, one naming it as the origin."""
    stored = row.provenance
    if stored and isinstance(stored.get("origin"), str) and stored["origin"]:
        try:
            return Provenance.from_json(stored).through(org)
        except (TypeError, ValueError):
            pass
    return Provenance(
        origin=org,
        classification=row.category,
        at=row.added_at.isoformat(),
        path=(org,),
    )


def _opinion_fields(raw: dict[str, Any]) -> tuple[int, str, str | None, str, str]:
    entry_id = raw.get("entry_id")
    if isinstance(entry_id, str) and entry_id.isascii() and entry_id.isdigit():
        entry_id = int(entry_id)
    if not isinstance(entry_id, int) or isinstance(entry_id, bool) or not 0 < entry_id < 2**63:
        raise InputError("the opinion's entry_id must be a positive integer")
    verdict = raw.get("verdict")
    if verdict not in OPINION_VERDICTS:
        raise InputError(
            f"unknown verdict {str(verdict)[:40]!r}", hint="use true_positive or false_positive"
        )
    reason = raw.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise InputError(f"the opinion's reason must be text of at most {MAX_REASON} characters")
    at = raw.get("at")
    when = _iso_time(at) if isinstance(at, str) and len(at) <= 40 else None
    if when is None:
        raise InputError(
            "the opinion's 'at' must be an ISO 8601 time", hint="e.g. 2026-12-04T18:00:00+00:00"
        )
    # One form (UTC) for every stored time: newer-than compares them as text.
    at = when.isoformat()
    org = raw.get("partner")
    if not isinstance(org, str) or not org or len(org) > 200:
        raise InputError("the opinion must name its partner organisation (1-200 characters)")
    return entry_id, str(verdict), reason, at, org


def _iso_time(text: str) -> datetime | None:
    """The time in UTC (a time without a zone is taken as UTC); None when unreadable."""
    try:
        return as_utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        return None
