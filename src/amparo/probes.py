"""What a matcher key may learn about how close a match was, and who is probing for more.

A bank's hashes must stay with its curators. Two things keep a matcher from reading them
back through lookups:

- **Distance bands.** Matchers get a coarse band (``exact``, ``close``, ``near``) instead of
  the Hamming distance; exact distances go to curator and admin keys (who may read the lists
  anyway) and to keys given the ``distance`` scope. With exact distances, flipping one bit of
  a query at a time and watching the distance rise or fall recovers an entry's PDQ hash in 257
  lookups; a band changes on far fewer flips and gives away at most log2(3) bits a lookup.
- **Probe detection.** Bands still leak at their edges: a key can walk a query across the
  match threshold and learn one bit from each flip that moves it in or out (~256 lookups per
  entry, more with noise). That walk is a sequence of *different* queries a few bits apart that
  match. :class:`ProbeDetector` remembers each key's recent matched PDQ queries and counts
  those that land within ``probe_near_bits`` of an earlier one (a repeat of the same hash is
  not counted: platforms re-check the same content all the time). Past ``probe_max_near`` such
  queries within ``probe_period_seconds`` the key is suspected of probing: an alert goes out
  once per episode (audit log, metric, log line) and, with ``probe_throttle`` on, the key's
  lookups are refused for ``probe_cooldown_seconds``.

The detector is per process (each API worker keeps its own, bounded to ``max_keys`` keys and
``window`` hashes a key); with N workers a probe is seen N times more slowly. See
docs/security.md for what remains.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from amparo.config import DEFAULTS
from amparo.errors import ProbeSuspectedError
from amparo.keys import ApiKey

BANDS = ("exact", "close", "near")
CLOSE_MAX = 15
"""The largest distance still called ``close``; up to the threshold it is ``near``."""
BAND_CEILING = {"exact": 0, "close": CLOSE_MAX, "near": 31}
"""The distance HMA-shaped answers show a matcher for each band (HMA's ``distance`` field)."""
EXACT_DISTANCE_SCOPES = ("curator", "distance")
"""Scopes that see exact distances (admin holds every scope)."""
_PDQ_HEX = 64


def sees_distance(key: ApiKey) -> bool:
    """Whether ``key`` is told exact distances (otherwise only a band)."""
    return key.allows(*EXACT_DISTANCE_SCOPES)


def hma_distance(distance: int, exact: bool) -> str:
    """HMA's string ``distance`` field: the distance, or its band's ceiling for matchers."""
    return str(distance if exact else BAND_CEILING[distance_band(distance)])


def distance_band(distance: int) -> str:
    """The coarse band a matcher is told instead of a distance."""
    if distance <= 0:
        return "exact"
    return "close" if distance <= CLOSE_MAX else "near"


@dataclass
class _KeyState:
    recent: deque[int]
    near: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0
    alerted_until: float = 0.0


@dataclass(frozen=True)
class ProbeAlert:
    """One episode of suspected probing by one key (alerted once)."""

    key_id: int
    near_queries: int
    period_seconds: float


class ProbeDetector:
    """Per-key memory of recent matched PDQ queries; see the module docstring."""

    def __init__(
        self,
        *,
        window: int = DEFAULTS.probe_window,
        near_bits: int = DEFAULTS.probe_near_bits,
        max_near: int = DEFAULTS.probe_max_near,
        period_seconds: float = DEFAULTS.probe_period_seconds,
        cooldown_seconds: float = DEFAULTS.probe_cooldown_seconds,
        throttle: bool = DEFAULTS.probe_throttle,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window, self.near_bits, self.max_near = window, near_bits, max_near
        self.period, self.cooldown, self.throttle = period_seconds, cooldown_seconds, throttle
        self.max_keys, self.clock = max_keys, clock
        self._keys: OrderedDict[int, _KeyState] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, key_id: int) -> None:
        """Raise :class:`ProbeSuspectedError` while ``key_id`` is in its cool-down."""
        state = self._keys.get(key_id)
        if state is None or not self.throttle:
            return
        wait = state.blocked_until - self.clock()
        if wait > 0:
            raise ProbeSuspectedError(
                "this key's lookups are paused: it sent many different PDQ hashes a few bits "
                "apart that matched, which is how a bank's hashes are reconstructed",
                retry_after=wait,
                hint="if this is legitimate traffic (near-duplicate uploads of matched content), "
                "ask an admin to raise probe_max_near or set probe_throttle = false",
            )

    def observe(self, key_id: int, matched_pdq: Iterable[str]) -> ProbeAlert | None:
        """Record matched PDQ queries (hex) of one request; return an alert when they start
        an episode of suspected probing (then, throttling on, raise on the next check)."""
        values = [int(h, 16) for h in matched_pdq if len(h) == _PDQ_HEX]
        if not values:
            return None
        now = self.clock()
        with self._lock:
            state = self._state(key_id)
            for value in values:
                if value in state.recent:
                    continue
                if any(0 < (value ^ seen).bit_count() <= self.near_bits for seen in state.recent):
                    state.near.append(now)
                state.recent.append(value)
            while state.near and state.near[0] <= now - self.period:
                state.near.popleft()
            if len(state.near) < self.max_near:
                return None
            count = len(state.near)
            state.near.clear()
            state.blocked_until = now + self.cooldown
            if now < state.alerted_until:
                return None
            state.alerted_until = now + self.cooldown
            return ProbeAlert(key_id=key_id, near_queries=count, period_seconds=self.period)

    def _state(self, key_id: int) -> _KeyState:
        state = self._keys.get(key_id)
        if state is None:
            state = self._keys[key_id] = _KeyState(recent=deque(maxlen=self.window))
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(key_id)
        return state
