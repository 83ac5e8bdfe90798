"""Turning lookup results into finds (:class:`~amparo.events.MatchedContent`) for the rules.

A find is named by the SHA-256 of its content. Media lookups have it; a lookup by signals has
it only when the caller sent it: a request whose signals include exactly one ``sha256`` is one
piece of content (all its matches are one find); otherwise each matched ``sha256`` signal is a
find of its own, and matches of other signals cannot be acted on (nothing names their content).
"""

from __future__ import annotations

from collections.abc import Sequence

from amparo.events import MatchedContent, Source
from amparo.hashing import MediaHashes
from amparo.matching import Match
from amparo.media.sniff import MIME_TYPES, media_kind

UNNAMED = (
    "matched signals ran no rules: include the content's sha256 signal in the request so "
    "the find can be named (send one content's signals per request)"
)


def media_find(hashes: MediaHashes, matches: Sequence[Match], source: Source) -> MatchedContent:
    """The find for hashed media that matched."""
    return MatchedContent(
        sha256=hashes.sha256,
        md5=hashes.md5,
        size=hashes.size,
        media_kind=media_kind(hashes.media_type),
        mime=MIME_TYPES.get(hashes.media_type or ""),
        matches=tuple(matches),
        source=source,
    )


def signal_finds(
    pairs: Sequence[tuple[str, str]], results: Sequence[Sequence[Match]], source: Source
) -> tuple[list[MatchedContent], str | None]:
    """Finds for a lookup by signals, and why matches were left out (None: none were)."""
    sha256s = [v for t, v in pairs if t == "sha256"]
    md5s = [v for t, v in pairs if t == "md5"]
    matched = [(p, list(ms)) for p, ms in zip(pairs, results, strict=True) if ms]
    if not matched:
        return [], None
    if len(sha256s) == 1:
        matches = tuple(m for _, ms in matched for m in ms)
        md5 = md5s[0] if len(md5s) == 1 else None
        return [MatchedContent(sha256=sha256s[0], md5=md5, matches=matches, source=source)], None
    finds = [
        MatchedContent(sha256=value, matches=tuple(ms), source=source)
        for (kind, value), ms in matched
        if kind == "sha256"
    ]
    unnamed = any(kind != "sha256" for (kind, _), _ in matched)
    return finds, UNNAMED if unnamed else None
