"""Named leases in the database (store/leases.py), on SQLite and PostgreSQL: one holder at a
time across processes, a dead holder's lease expires, only the holder renews or releases."""

from __future__ import annotations

import threading
from datetime import timedelta

from amparo.config import Settings
from amparo.store import Store
from amparo.store.leases import LeaseRepository
from clocks import ManualClock


def test_one_holder_then_expiry_and_takeover(settings: Settings) -> None:
    store = Store(settings.resolved_database_url)
    try:
        clock = ManualClock()
        leases = LeaseRepository(store.db, clock=clock)
        first = leases.acquire("job", "host-a:1", 60)
        assert first is not None
        assert leases.acquire("job", "host-b:2", 60) is None
        assert leases.acquire("other-job", "host-b:2", 60) is not None
        held = leases.get("job")
        assert held is not None and held.holder == "host-a:1"
        assert held.expires_at == clock.now + timedelta(seconds=60)
        # Renewing pushes the expiry; the lease is still not free when the old one would end.
        clock.advance(50)
        assert leases.renew("job", first, 60)
        clock.advance(30)
        assert leases.acquire("job", "host-b:2", 60) is None
        # The holder stops renewing (it died): after the expiry another takes over.
        clock.advance(31)
        assert leases.get("job") is None
        second = leases.acquire("job", "host-b:2", 60)
        assert second is not None and second != first
        # The old holder wakes up: it can neither renew nor release the new lease.
        assert not leases.renew("job", first, 60)
        assert not leases.release("job", first)
        assert leases.get("job").holder == "host-b:2"  # type: ignore[union-attr]
        assert leases.release("job", second)
        assert leases.get("job") is None
        assert leases.acquire("job", "host-c:3", 60) is not None
    finally:
        store.close()


def test_racing_acquirers_get_it_once(settings: Settings) -> None:
    """Many stores (as separate processes would have) race for one free lease and, after
    it expires, for the take-over: exactly one wins each time."""
    url = settings.resolved_database_url
    Store(url).close()  # migrated once
    stores = [Store(url) for _ in range(6)]
    try:
        clock = ManualClock()
        for round_ in range(2):
            barrier = threading.Barrier(len(stores))
            won: list[str] = []

            def take(store: Store, n: int, barrier: threading.Barrier, won: list[str]) -> None:
                leases = LeaseRepository(store.db, clock=clock)
                barrier.wait(10)
                token = leases.acquire("race", f"p{n}", 30)
                if token is not None:
                    won.append(token)

            threads = [
                threading.Thread(target=take, args=(s, n, barrier, won))
                for n, s in enumerate(stores)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert len(won) == 1, f"round {round_}: {len(won)} winners"
            clock.advance(31)  # the winner "dies"; the next round races for the take-over
    finally:
        for s in stores:
            s.close()
