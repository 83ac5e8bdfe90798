"""Federation feeds as plain data: a feed (a bank published to partners), a grant (one
partner key's right to read it, with what it acknowledged), an opinion a partner sent back,
and the cursor that says how far into a bank's change log a page reached.

No storage: :mod:`amparo.store.feeds` returns these, :mod:`amparo.exchanges.feeds` serves
them, and the subscriber's exchange (:mod:`amparo.exchanges.amparo_feed`) parses cursors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from amparo.errors import InputError

NONCE = re.compile(r"[A-Za-z0-9_-]{16,128}")
"""What a subscriber's nonce looks like (e.g. ``secrets.token_urlsafe(24)``)."""

_CURSOR = re.compile(r"(0|[1-9][0-9]{0,18})\.(0|[1-9][0-9]{0,18})")


@dataclass(frozen=True, order=True)
class FeedCursor:
    """A position in a bank's change log: entries after ``(seq, id)`` in ``(seq, id)``
    order. ``seq`` is the change-log position (:mod:`amparo.store.changelog`); ``id``
    orders the many entries one import stamps with the same position. Text form ``seq.id``
    (``0.0``: the beginning)."""

    seq: int = 0
    id: int = 0

    def __str__(self) -> str:
        return f"{self.seq}.{self.id}"

    @classmethod
    def parse(cls, text: str | None, *, what: str = "cursor") -> FeedCursor:
        """The cursor ``text`` names; None or empty: the beginning."""
        if text is None or text == "":
            return cls()
        match = _CURSOR.fullmatch(text)
        if match is None:
            raise InputError(
                f"malformed {what} {text[:40]!r}",
                hint="pass back the next_cursor of the previous page, or 0.0 for the beginning",
            )
        seq, ident = int(match.group(1)), int(match.group(2))
        if seq >= 2**63 or ident >= 2**63:
            raise InputError(f"malformed {what} {text[:40]!r}", hint="the numbers are too large")
        return cls(seq, ident)


def check_nonce(nonce: str | None) -> str:
    """The subscriber's nonce, checked: what makes a replayed older page detectable."""
    if not nonce or NONCE.fullmatch(nonce) is None:
        raise InputError(
            "a feed page needs a nonce of 16 to 128 characters [A-Za-z0-9_-]",
            hint="send a fresh random nonce with every request (e.g. secrets.token_urlsafe(24)); "
            "the signed page echoes it",
        )
    return nonce


@dataclass(frozen=True)
class Grant:
    """One partner key's right to read a feed."""

    id: int
    feed: str
    key_name: str
    granted_at: datetime
    partner_public_key: str | None = None
    """PEM of the partner's feed signing key: its opinions must verify with it (None: the
    partner's opinions are taken unverified, on the strength of its API key)."""
    ack_cursor: str | None = None
    """The last cursor the partner said it committed (its ``ack``)."""
    acked_at: datetime | None = None
    revoked_at: datetime | None = None
    unacknowledged_withdrawals: int = 0
    """Withdrawals (entries removed or disabled) after ``ack_cursor``: what the partner has
    not yet confirmed it applied (filled by ``FeedService.show``)."""

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Feed:
    """A bank published to partners."""

    id: int
    name: str
    bank: str
    bank_id: int
    description: str
    created_at: datetime
    enabled: bool = True
    grants: tuple[Grant, ...] = field(default=())


@dataclass(frozen=True)
class FeedOpinion:
    """A partner's verdict on one of a feed's entries (the latest it sent)."""

    feed: str
    entry_id: int
    key_name: str
    partner: str
    """The partner's organisation id, as its signed opinion names it."""
    verdict: str
    reason: str | None
    at: str
    received_at: datetime
    verified: bool
    """Whether the signature was checked against the grant's pinned partner key."""


@dataclass(frozen=True)
class OpinionCount:
    """Opinions on one entry: how many partners said what, and who."""

    entry_id: int
    signal_type: str | None
    true_positive: int
    false_positive: int
    partners: dict[str, str]
    """Key name -> its verdict."""
