"""The scan's matching stage: a batch of hashed items looked up in the banks, on the driver
(the bank index never leaves it), one :class:`ItemRecord` per item. Non-matching content is
forgotten here: only the hashes of matched content reach the record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from amparo.app import Amparo
from amparo.hashing import MediaHashes
from amparo.matching import Match
from amparo.scan.model import HashOutcome, ItemRecord
from amparo.signals import get_signal_type

__all__ = ["MatchCallback", "match_batch"]


def _report_signals(hashes: MediaHashes) -> dict[str, str]:
    # A video's vPDQ runs to kilobytes: reports and journals keep its digests only.
    return {k: v for k, v in hashes.signals().items() if not get_signal_type(k).long_value}


MatchCallback = Callable[[HashOutcome, list[Match]], None]


def match_batch(
    amparo: Amparo,
    outcomes: Sequence[HashOutcome],
    banks: Sequence[str] | None = None,
    on_match: MatchCallback | None = None,
    on_checked: MatchCallback | None = None,
) -> list[ItemRecord]:
    """Look a batch of hashed items up in the banks; one record per outcome, in order.
    ``on_match`` is called for each outcome that matched, ``on_checked`` for each outcome
    looked up (matched or not), before the records are returned."""
    matchable = [o.hashes for o in outcomes if o.hashes is not None]
    results = iter(amparo.checks.match_hashes(matchable, banks, source="scan") if matchable else [])
    records = []
    for o in outcomes:
        result = next(results) if o.hashes is not None else None
        found = result.matches if result is not None else []
        if result is not None and on_checked is not None:
            on_checked(o, found)
        if found and on_match is not None:
            on_match(o, found)
        matches = [m.to_json() for m in found]
        status, code, message = o.status, o.code, o.message
        if result is not None and result.pdq_skipped and status == "ok":
            # Checked by its digests only: the report must say so (README: "reported as such").
            status, code = "skipped", "low_quality"
            message = f"{result.pdq_skipped}; not matched on PDQ, digests checked"
        records.append(
            ItemRecord(
                path=o.path,
                size=o.size,
                mtime_ns=o.mtime_ns,
                media_type=o.media_type,
                status=status,
                code=code,
                message=message,
                matches=matches,
                hashes=_report_signals(o.hashes) if matches and o.hashes is not None else {},
                hashed=o.hashes is not None,
                on_disk=o.on_disk,
                etag=o.etag,
            )
        )
    return records
