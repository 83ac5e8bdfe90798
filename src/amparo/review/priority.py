"""How urgent a find is: the review queue's order.

Cases are ordered by (1) the most severe category among their waiting items, (2) how close the
closest match is, (3) how long the case has waited. The first two are folded into one integer,
``priority = category_rank * 1000 + (999 - distance)``, and the queue sorts by priority
(highest first) and then by when the case was opened (oldest first), which is exactly that
lexicographic order.

Category ranks, from the bank entry's category (compared case-insensitively):

====================  ====
category              rank
====================  ====
``A1``                4
``A2``                3
``B1``                2
``B2``, ``csam``      1
anything else, none   0
====================  ====

``A1``..``B2`` is the Tech Coalition industry classification; ``csam`` is what the Project VIC
category map calls its category 1 (known material without that finer classification).
"""

from __future__ import annotations

from typing import Any

CATEGORY_RANKS: dict[str, int] = {"a1": 4, "a2": 3, "b1": 2, "b2": 1, "csam": 1}
MAX_DISTANCE = 999


def category_rank(category: str | None) -> int:
    """The rank of a bank entry's category (0 for unknown or missing ones)."""
    if not category:
        return 0
    return CATEGORY_RANKS.get(category.strip().lower(), 0)


def priority_of(matches: list[dict[str, Any]]) -> int:
    """An item's priority from its matches (``Match.to_json()`` dicts)."""
    if not matches:
        return 0
    rank = max(category_rank(m.get("category")) for m in matches)
    distance = min(int(m.get("distance") or 0) for m in matches)
    return rank * 1000 + (MAX_DISTANCE - min(max(distance, 0), MAX_DISTANCE))


def merge_matches(
    old: list[dict[str, Any]], new: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], int]:
    """Merge the matches of a new sighting into an item's: one per (bank, entry, signal type),
    the closest kept. Returns the merged list (closest first) and the item's priority."""
    best: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    for m in [*old, *new]:
        key = (m.get("bank"), m.get("entry_id"), m.get("signal_type"))
        if key not in best or int(m.get("distance") or 0) < int(best[key].get("distance") or 0):
            best[key] = m
    merged = sorted(
        best.values(),
        key=lambda m: (
            int(m.get("distance") or 0),
            str(m.get("bank")),
            int(m.get("entry_id") or 0),
            str(m.get("signal_type")),
        ),
    )
    return merged, priority_of(merged)
