"""Lookups while the database does not answer (issue #19).

The database is stalled (thirty seconds at most: a loaded machine is slow): on PostgreSQL by
another connection holding ``LOCK TABLE bank_entries, api_keys IN ACCESS EXCLUSIVE MODE``; on
SQLite (whose WAL readers no lock blocks) by holding every statement of the service's engine
at the cursor. Lookups whose
entries are in memory must be answered while the stall is still held (no timing: a timer
lifts the stall after thirty seconds, and the test asserts it had not); lookups that need the
database (an index refresh due) must end with a 503 JSON error and a hint, not hang or 500.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event
from test_api_support import QUIET, make_keys

from amparo import Amparo, BankInfo, EntryRecord
from amparo.api import create_app
from amparo.api.service import Service
from amparo.config import Settings, load_settings

pytestmark = QUIET
SIGNALS = [f"{i:032x}" for i in range(1, 41)]
STALL_SECONDS = 30.0


@pytest.fixture
def stall_settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(
        env={},
        overrides={
            "home": tmp_path / "home",
            "database_url": database_url,
            # No refresh falls due by itself during the test: the test says when one is.
            "index_refresh_seconds": 3600,
            "index_max_age_seconds": 7200,
            "lookup_database_timeout_seconds": 1,
            # The matcher key stays cached; a key not in the cache is read in a thread.
            "api_key_cache_seconds": 3600,
        },
    )


@contextmanager
def stalled(service: Service, url: str) -> Iterator[threading.Event]:
    """Stall the database; yields an event set when the safety timer had to lift it."""
    lifted_by_timer = threading.Event()
    release = threading.Event()
    if url.startswith("postgresql"):
        engine = create_engine(url)
        conn = engine.connect()
        conn.begin()
        conn.exec_driver_sql("LOCK TABLE bank_entries, api_keys IN ACCESS EXCLUSIVE MODE")
        lock = threading.Lock()

        def lift() -> None:
            with lock:
                if not release.is_set():
                    release.set()
                    conn.rollback()
                    conn.close()
                    engine.dispose()

        def lift_by_timer() -> None:
            lifted_by_timer.set()
            lift()

        timer = threading.Timer(STALL_SECONDS, lift_by_timer)
        timer.start()
        try:
            yield lifted_by_timer
        finally:
            timer.cancel()
            lift()
        return

    # Left listening (removing a listener while a held statement iterates them fails);
    # once released it holds nothing.
    def hold(*_args: object) -> None:
        release.wait(STALL_SECONDS + 1)

    def lift_sqlite_by_timer() -> None:
        lifted_by_timer.set()
        release.set()

    event.listen(service.amparo.store.engine, "before_cursor_execute", hold)
    timer = threading.Timer(STALL_SECONDS, lift_sqlite_by_timer)
    timer.start()
    try:
        yield lifted_by_timer
    finally:
        timer.cancel()
        release.set()


def _entry_table_loaded(service: Service) -> None:
    """Wait for the entry table a service loads in a thread as it starts."""
    deadline = time.monotonic() + 120
    while service.amparo.matcher._entry_table.table is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert service.amparo.matcher._entry_table.table is not None


def _md5(i: int) -> dict[str, str]:
    return {"signal": SIGNALS[i], "signal_type": "md5"}


def test_known_entries_are_answered_while_the_database_stalls(
    stall_settings: Settings,
) -> None:
    keys = make_keys(stall_settings)
    with Amparo(stall_settings) as amparo:
        amparo.banks.create(BankInfo(name="b"))
        amparo.banks.add_entries(
            "b",
            [
                EntryRecord("md5", s, category=f"c{i % 3}", tags=["t"])
                for i, s in enumerate(SIGNALS)
            ],
        )
        ids = amparo.banks.entry_ids("b", [("md5", s) for s in SIGNALS[:1]])
    first_id = ids["md5"]
    auth = {"Authorization": f"Bearer {keys['matcher']}"}
    with TestClient(create_app(stall_settings)) as client:
        service: Service = client.app.state.service  # type: ignore[attr-defined]
        matcher = service.amparo.matcher
        _entry_table_loaded(service)
        # Authenticate once (the key is then cached) and look one entry up.
        r = client.get(
            "/m/raw_lookup", params={"signal": SIGNALS[0], "signal_type": "md5"}, headers=auth
        )
        assert r.json() == {"matches": [first_id]}
        with stalled(service, str(stall_settings.database_url)) as lifted_by_timer:
            # Entries never looked up before, from every lookup route: from memory.
            for i in range(1, 10):
                r = client.get(
                    "/m/raw_lookup",
                    params={"signal": SIGNALS[i], "signal_type": "md5"},
                    headers=auth,
                )
                assert r.status_code == 200 and r.json() == {"matches": [first_id + i]}
            r = client.get(
                "/v1/lookup", params={"signal": SIGNALS[30], "signal_type": "md5"}, headers=auth
            )
            assert r.status_code == 200, r.text
            assert [(m["entry_id"], m["category"], m["tags"]) for m in r.json()["matches"]] == [
                (first_id + 30, "c0", ["t"])
            ]
            r = client.get(
                "/m/lookup", params={"signal": SIGNALS[31], "signal_type": "md5"}, headers=auth
            )
            assert r.status_code == 200 and r.json() == {
                "b": [{"bank_content_id": first_id + 31, "distance": "0"}]
            }
            assert not lifted_by_timer.is_set(), "a lookup waited for the database"

            # A key not in the cache is read in a thread, which gives up cleanly; the cached
            # key is answered meanwhile.
            other = {"Authorization": f"Bearer {keys['curator']}"}
            for path in ("/m/raw_lookup", "/v1/lookup", "/m/lookup"):
                r = client.get(path, params=_md5(11), headers=other)
                assert r.status_code == 503, r.text
                assert r.json()["error"]["code"] == "database_slow"
                r = client.get(path, params=_md5(12), headers=auth)
                assert r.status_code == 200, r.text
            assert not lifted_by_timer.is_set(), "a lookup waited for the database"

            # A refresh falls due: the lookup needs the database, and gives up cleanly.
            matcher._refreshed_at = time.monotonic() - 4000
            r = client.get("/v1/lookup", params=_md5(32), headers=auth)
            assert r.status_code == 503, r.text
            error = r.json()["error"]
            assert error["code"] == "database_slow" and "retry" in error["hint"]
            # That refresh is still waiting: lookups answer from memory meanwhile...
            r = client.get("/v1/lookup", params=_md5(33), headers=auth)
            assert r.status_code == 200 and r.json()["matches"][0]["entry_id"] == first_id + 33
            r = client.get("/m/raw_lookup", params=_md5(34), headers=auth)
            assert r.status_code == 200 and r.json() == {"matches": [first_id + 34]}
            # ...but not from memory older than index_max_age_seconds.
            matcher._refreshed_at = time.monotonic() - 10_000
            for path in ("/v1/lookup", "/m/raw_lookup", "/m/lookup"):
                r = client.get(path, params=_md5(35), headers=auth)
                assert r.status_code == 503, r.text
                assert r.json()["error"]["code"] == "database_slow"
            assert not lifted_by_timer.is_set(), "a lookup waited for the database"
        # The database answers again: so do the lookups that need it.
        deadline = time.monotonic() + 30
        while matcher._refreshing and time.monotonic() < deadline:
            time.sleep(0.05)
        matcher._refreshed_at = time.monotonic() - 10_000
        r = client.get(
            "/v1/lookup", params={"signal": SIGNALS[35], "signal_type": "md5"}, headers=auth
        )
        assert r.status_code == 200 and r.json()["matches"][0]["entry_id"] == first_id + 35


def test_the_v1_lane_answers_as_the_route_does(stall_settings: Settings) -> None:
    keys = make_keys(stall_settings)
    with Amparo(stall_settings) as amparo:
        amparo.banks.create(BankInfo(name="b"))
        amparo.banks.add_entries(
            "b", [EntryRecord("md5", SIGNALS[0], category="c", tags=["x", "y"], source_id="s")]
        )
    with TestClient(create_app(stall_settings)) as client:
        _entry_table_loaded(client.app.state.service)  # type: ignore[attr-defined]
        for who in ("matcher", "admin"):  # a band only, and the distance too
            auth = {"Authorization": f"Bearer {keys[who]}"}
            params = {"signal": SIGNALS[0], "signal_type": "md5"}
            lane = client.get("/v1/lookup", params=params, headers=auth)
            # A bank named: the lane hands the request to the full route.
            route = client.get("/v1/lookup", params={**params, "bank": "b"}, headers=auth)
            assert lane.status_code == route.status_code == 200
            assert lane.content == route.content
            assert lane.json()["matches"][0]["category"] == "c"
