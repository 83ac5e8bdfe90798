"""Probe detection: near-identical matched queries from one key are a hash reconstruction."""

from __future__ import annotations

import random

import pytest

from amparo.errors import ProbeSuspectedError
from amparo.probes import (
    BAND_CEILING,
    ProbeDetector,
    distance_band,
    hma_distance,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _flip(value: int, bit: int) -> str:
    return f"{value ^ (1 << bit):064x}"


def test_bands_hide_the_distance() -> None:
    assert [distance_band(d) for d in (0, 1, 15, 16, 31, 63)] == [
        "exact", "close", "close", "near", "near", "near",
    ]  # fmt: skip
    assert hma_distance(7, exact=True) == "7"
    assert hma_distance(7, exact=False) == str(BAND_CEILING["close"])
    assert hma_distance(20, exact=False) == "31"


def test_a_bit_flip_walk_is_detected_and_throttled_until_the_cooldown_ends() -> None:
    clock = Clock()
    detector = ProbeDetector(max_near=20, cooldown_seconds=900, clock=clock)
    base = random.Random(1).getrandbits(256)
    alerts = []
    for bit in range(40):
        detector.check(7)
        alert = detector.observe(7, [_flip(base, bit)])
        if alert is not None:
            alerts.append((bit, alert))
            break
    assert alerts and alerts[0][0] < 25, "the walk must be caught within ~20 queries"
    with pytest.raises(ProbeSuspectedError) as refused:
        detector.check(7)
    assert refused.value.http_status == 429 and refused.value.retry_after == pytest.approx(900)
    detector.check(8)  # other keys are not affected
    clock.now += 901
    detector.check(7)


def test_one_alert_an_episode_and_alert_only_mode_does_not_refuse() -> None:
    clock = Clock()
    detector = ProbeDetector(max_near=5, throttle=False, clock=clock)
    base = random.Random(2).getrandbits(256)
    alerts = [detector.observe(1, [_flip(base, bit)]) for bit in range(30)]
    assert sum(a is not None for a in alerts) == 1
    detector.check(1)  # alert only


def test_normal_traffic_is_not_a_probe() -> None:
    clock = Clock()
    detector = ProbeDetector(clock=clock)
    rng = random.Random(3)
    # 1,000 different matched queries (unrelated content) ...
    for _ in range(1000):
        assert detector.observe(1, [f"{rng.getrandbits(256):064x}"]) is None
        clock.now += 0.01
    # ... and the same content re-checked again and again.
    same = f"{rng.getrandbits(256):064x}"
    for _ in range(1000):
        assert detector.observe(2, [same, same]) is None
    detector.check(1)
    detector.check(2)


def test_probe_steps_expire_after_the_period_and_memory_is_bounded() -> None:
    clock = Clock()
    detector = ProbeDetector(max_near=10, period_seconds=60, max_keys=3, clock=clock)
    base = random.Random(4).getrandbits(256)
    for bit in range(60):  # one step a minute never adds up to ten in a minute
        assert detector.observe(1, [_flip(base, bit)]) is None
        clock.now += 61
    for key in range(2, 10):
        detector.observe(key, [_flip(base, 0)])
    assert len(detector._keys) == 3
