"""Checking content against the banks, and acting on what matched.

These are the use cases every entry point calls: the ``/v1`` routes, HMA's ``/m`` routes,
``amparo match``, ``amparo scan`` (both engines) and the demo. A lookup that finds a match
runs the action rules the same way wherever it came from; the shells only translate their
input (an upload, a URL, a form, a line of stdin, a scanned file) and their output.

A find must name its content (by SHA-256) to be acted on (see :mod:`amparo.actions.finds`):
media always does; a lookup by signals does when the caller sent the content's ``sha256``.
Matches of other signals (a bare PDQ hash) are answered but run no rules: nothing names the
content a case, a report or a webhook would be about.

Every check that may act (``check_media``, ``check_signals``) and names its content also tells
the hooks registered with :meth:`Checks.on_checked` what it looked up (a
:class:`CheckedContent`: hashes and source, never media): retroactive matching
(:mod:`amparo.exchanges.retro`) keeps them to match again when new entries arrive. Bare
lookups (``match_signals``, ``match_hashes``, HMA's raw-lookup fast lane) name no content and
are not passed on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from amparo.actions import Actioner, TakenAction
from amparo.actions.finds import media_find, signal_finds
from amparo.config import Settings
from amparo.events import MatchedContent, Source
from amparo.hashing import MediaHashes, hash_bytes, hash_file
from amparo.matching import Match, Matcher, Query, QueryResult
from amparo.signals import normalize_signal
from amparo.tally import LOOKUP, MatchTally

Media = bytes | Path | None
"""The content itself, when the caller has it: used only to preserve evidence or quarantine."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckedContent:
    """One piece of content a check looked up, as the :meth:`Checks.on_checked` hooks get
    it: its hashes (never the media), where it was seen and what it matched."""

    signals: dict[str, str]
    """Signal type -> canonical value; always includes ``sha256`` (what names the content)."""
    source: Source
    matches: tuple[Match, ...] = ()
    size: int | None = None
    media_type: str | None = None
    pdq_quality: int | None = None
    pdq_dihedral: tuple[str, ...] = ()
    pdq_mirror: str | None = None
    """The other PDQ forms the check looked up (``amparo.matching.Query``): mirrored,
    trimmed, trimmed and mirrored; None when not computed."""
    pdq_trimmed: str | None = None
    pdq_trimmed_mirror: str | None = None

    @property
    def sha256(self) -> str:
        return self.signals["sha256"]


CheckedHook = Callable[[CheckedContent], None]


@dataclass
class MediaCheck:
    """One piece of media checked: its hashes, what matched, what the rules did."""

    hashes: MediaHashes
    result: QueryResult
    actions: list[TakenAction] = field(default_factory=list)

    @property
    def matches(self) -> list[Match]:
        return self.result.matches


@dataclass
class SignalsCheck:
    """Signals checked: one list of matches per signal, what the rules did, and why matches
    ran no rules (None when every match could be acted on)."""

    results: list[list[Match]]
    actions: list[TakenAction] = field(default_factory=list)
    actions_skipped: str | None = None


class Checks:
    """Hash, look up, act. Built by the composition root (:class:`amparo.app.Amparo`)."""

    def __init__(
        self,
        settings: Settings,
        matcher: Matcher,
        actions: Actioner,
        tally: MatchTally | None = None,
    ) -> None:
        self.settings = settings
        self.matcher = matcher
        self.actions = actions
        self.tally = tally
        """Counts the matches of every lookup by bank, day and source (the console's match
        volume); None: not counted."""
        self._checked: list[CheckedHook] = []

    def count(self, results: Sequence[Sequence[Match]], source: str) -> None:
        """Count lookups' matches (one list per lookup) for the match volume, as coming from
        ``source``; in memory, never a database write. The lookups below count their own;
        retroactive matching, which asks the matcher itself, counts its new finds here."""
        if self.tally is not None:
            self.tally.add(results, source)

    def on_checked(self, hook: CheckedHook) -> None:
        """Call ``hook`` with every content a check that may act looked up (named by its
        sha256), matched or not; a hook that fails is logged, never fails the check."""
        self._checked.append(hook)

    @property
    def keeps_checked(self) -> bool:
        """Whether anything listens for checked content (retroactive matching is on)."""
        return bool(self._checked)

    def checked_media(self, hashes: MediaHashes, matches: Sequence[Match], source: Source) -> None:
        """Tell the :meth:`on_checked` hooks about media looked up and able to act, matched
        or not; what :meth:`check_media` does itself, and a scan's batched lookups call."""
        if not self._checked or source.kind == "retro" or "sha256" not in hashes.signals():
            return
        self._tell_checked(
            CheckedContent(
                hashes.signals(),
                source,
                tuple(matches),
                size=hashes.size,
                media_type=hashes.media_type,
                pdq_quality=hashes.pdq_quality,
                pdq_dihedral=tuple(hashes.pdq_dihedral),
                pdq_mirror=hashes.pdq_mirror,
                pdq_trimmed=hashes.pdq_trimmed,
                pdq_trimmed_mirror=hashes.pdq_trimmed_mirror,
            )
        )

    def _tell_checked(self, content: CheckedContent) -> None:
        for hook in self._checked:
            try:
                hook(content)
            except Exception:  # a check never fails because a hook did
                _log.exception("a checked-content hook failed")

    def _tell_signals(
        self,
        pairs: Sequence[tuple[str, str]],
        results: Sequence[Sequence[Match]],
        source: Source,
        one_content: bool,
    ) -> None:
        """Pass on the contents a lookup by signals named: one content when it carried
        exactly one sha256 (all its signals), else each sha256 on its own."""
        sha256s = [v for t, v in pairs if t == "sha256"]
        if one_content and len(sha256s) == 1:
            matches = tuple(m for ms in results for m in ms)
            self._tell_checked(CheckedContent(dict(pairs), source, matches))
            return
        for (kind, value), ms in zip(pairs, results, strict=True):
            if kind == "sha256":
                self._tell_checked(CheckedContent({"sha256": value}, source, tuple(ms)))

    # -- hashing ----------------------------------------------------------------------------

    def hash_bytes(self, data: bytes, *, dihedral: bool = False) -> MediaHashes:
        """Hash media: a photo gets PDQ, a video vPDQ (sampled at ``video_sample_fps``)."""
        return hash_bytes(data, self.settings, dihedral=dihedral)

    def hash_file(self, path: Path, *, dihedral: bool = False) -> MediaHashes:
        """Hash a file under this installation's limits (see :func:`amparo.hashing.hash_file`)."""
        return hash_file(path, self.settings, dihedral=dihedral)

    def wants_dihedral(self, banks: Sequence[str] | None = None) -> bool:
        """Whether any chosen bank matches mirrored and rotated copies (hash those too)."""
        return self.matcher.wants_dihedral(banks)

    # -- lookups (answers only) -------------------------------------------------------------

    def match_signals(
        self,
        signals: Sequence[tuple[str, str]],
        banks: Sequence[str] | None = None,
        *,
        source: str | None = LOOKUP,
    ) -> list[list[Match]]:
        """Look up bare signals (``(type, value)``); one list of matches per signal.
        ``source``: where the lookup came from, for the match counts (a source kind; each
        signal counts as one lookup); None: the caller counts them itself."""
        results = self._match_normalized([normalize_signal(t, v) for t, v in signals], banks)
        if source is not None:
            self.count(results, source)
        return results

    def _match_normalized(
        self, pairs: Sequence[tuple[str, str]], banks: Sequence[str] | None
    ) -> list[list[Match]]:
        queries = [Query(signals={t: v}) for t, v in pairs]
        return [r.matches for r in self.matcher.match(queries, banks)]

    def match_hashes(
        self,
        hashes: Sequence[MediaHashes],
        banks: Sequence[str] | None = None,
        *,
        source: str = LOOKUP,
    ) -> list[QueryResult]:
        """Look up the signals of hashed media; one result per item. ``source``: where the
        lookup came from, for the match counts (a source kind: ``scan``, ``hotline``...)."""
        results = self._match_hashes(hashes, banks)
        self.count([r.matches for r in results], source)
        return results

    def _match_hashes(
        self, hashes: Sequence[MediaHashes], banks: Sequence[str] | None
    ) -> list[QueryResult]:
        queries = [
            Query(
                signals=h.signals(),
                pdq_quality=h.pdq_quality,
                pdq_dihedral=h.pdq_dihedral,
                pdq_mirror=h.pdq_mirror,
                pdq_trimmed=h.pdq_trimmed,
                pdq_trimmed_mirror=h.pdq_trimmed_mirror,
            )
            for h in hashes
        ]
        return self.matcher.match(queries, banks)

    # -- checks (lookups that act) ----------------------------------------------------------

    def rules_active(self) -> bool:
        """Whether any action rule is enabled (callers skip reading media when none is)."""
        return self.actions.active()

    def recheck_rules(self) -> None:
        """Re-read the rule set's generation now (the service's background refresh), so
        :meth:`rules_known_inactive` keeps answering from the cache."""
        self.actions.current_rules(recheck=True)

    def rules_known_inactive(self) -> bool:
        """True only when the cached rule set says no rule is enabled (no database read:
        what a caller on an event loop asks before answering there)."""
        return self.actions.known_active() is False

    def act(
        self, content: MatchedContent, *, media: Media | Callable[[], Media] = None, actor: str
    ) -> list[TakenAction]:
        """Run the action rules on one find. ``media`` may be a function that reads it: it is
        called only when a rule runs (so an upload is re-read only for a match)."""
        if not content.matches or not self.actions.active():
            return []
        data = media() if callable(media) else media
        return self.actions.handle(content, media=data, actor=actor)

    def check_media(
        self,
        hashes: MediaHashes,
        *,
        source: Source,
        actor: str,
        banks: Sequence[str] | None = None,
        media: Media | Callable[[], Media] = None,
        act: bool = True,
        counted: bool = False,
    ) -> MediaCheck:
        """Look hashed media up and, when it matched, run the rules on it. ``counted``: the
        caller already counted this content's matches (a second lookup of the same content)."""
        result = self._match_hashes([hashes], banks)[0]
        if not counted:
            self.count([result.matches], source.kind)
        check = MediaCheck(hashes, result)
        if act:
            self.checked_media(hashes, result.matches, source)
        if act and result.matches:
            check.actions = self.act(
                media_find(hashes, result.matches, source), media=media, actor=actor
            )
        return check

    def check_signals(
        self,
        signals: Sequence[tuple[str, str]],
        *,
        source: Source,
        actor: str,
        banks: Sequence[str] | None = None,
        one_content: bool = True,
        act: bool = True,
    ) -> SignalsCheck:
        """Look signals up and run the rules on each find they name.

        ``one_content``: the signals describe one piece of content (a request that carries
        exactly one ``sha256`` is then one find with all its matches); otherwise (a stream of
        unrelated hashes, as ``amparo match`` reads) each matched ``sha256`` is a find."""
        pairs = [normalize_signal(t, v) for t, v in signals]
        results = self._match_normalized(pairs, banks)
        if one_content and sum(t == "sha256" for t, _ in pairs) == 1:
            self.count([[m for ms in results for m in ms]], source.kind)  # one content
        else:
            self.count(results, source.kind)
        check = SignalsCheck(results)
        if act and self._checked and source.kind != "retro":
            self._tell_signals(pairs, results, source, one_content)
        # active() first: it also keeps the cached rule set fresh, which the event-loop callers
        # read through rules_known_inactive() (a lookup that matched nothing still refreshes).
        if not act or not self.actions.active() or not any(results):
            return check
        if one_content:
            finds, check.actions_skipped = signal_finds(pairs, results, source)
        else:
            finds = []
            for pair, matches in zip(pairs, results, strict=True):
                found, skipped = signal_finds([pair], [matches], source)
                finds.extend(found)
                check.actions_skipped = check.actions_skipped or skipped
        for content in finds:
            check.actions.extend(self.actions.handle(content, actor=actor))
        return check
