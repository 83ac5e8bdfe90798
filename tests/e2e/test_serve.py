"""End to end: a real `amparo serve` on loopback, driven over HTTP like a deployment."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from test_api_support import photo, transformed

from amparo.app import Amparo
from amparo.config import load_settings
from amparo.keys import KeyService

AMPARO = [sys.executable, "-m", "amparo.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def amparo(home: Path, *args: str) -> str:
    done = subprocess.run(
        [*AMPARO, "--home", str(home), *args], capture_output=True, text=True, check=True
    )
    return done.stdout


_LOGS: dict[int, IO[bytes]] = {}


def server_log(proc: subprocess.Popen[bytes]) -> str:
    """What a server started by :func:`start` has written to its stderr so far."""
    log = _LOGS[proc.pid]
    log.seek(0)
    return log.read().decode(errors="replace")


def close_log(proc: subprocess.Popen[bytes]) -> None:
    """Let go of a stopped server's log file."""
    log = _LOGS.pop(proc.pid, None)
    if log is not None:
        log.close()


def start(
    home: Path, workers: int = 1, *, level: str = "INFO", env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """A real `amparo serve` on a free loopback port, once it answers /healthz; ``env`` adds
    settings (AMPARO_*) for this server."""
    port = free_port()
    env = {
        **os.environ,
        "AMPARO_LOG_LEVEL": level,
        "AMPARO_INDEX_REFRESH_SECONDS": "1",
        **(env or {}),
    }
    # The log goes to a file, not a pipe: a pipe nobody reads until the end fills up (64 KiB,
    # a few hundred access lines) and then blocks the server's next write, hanging it.
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close_log)
    proc = subprocess.Popen(
        [*AMPARO, "--home", str(home), "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    _LOGS[proc.pid] = log
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a first start compiles the index kernels
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(server_log(proc) or "exited")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("amparo serve did not start")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], subprocess.Popen[bytes]]]:
    home = tmp_path / "home"
    keys = {"curator": amparo(home, "keys", "create", "curator", "--scope", "curator").strip()}
    settings = load_settings(env={}, overrides={"home": home})
    with Amparo(settings) as core:  # the others in-process: each CLI run costs a second
        for scope in ("matcher", "hasher"):
            keys[scope] = KeyService(core.store).create(scope, [scope], actor="test").secret
    assert all(k.startswith("amp_") and "\n" not in k for k in keys.values())
    proc, base = start(home)
    try:
        yield base, keys, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        close_log(proc)


def test_serve_end_to_end(served: tuple[str, dict[str, str], subprocess.Popen[bytes]]) -> None:
    base, keys, proc = served
    cur = {"Authorization": f"Bearer {keys['curator']}"}
    mat = {"X-API-Key": keys["matcher"]}
    with httpx.Client(base_url=base, timeout=30) as c:
        assert c.post("/v1/banks", json={"name": "known"}, headers=cur).status_code == 201
        ids = {}
        for name in ("astronaut", "coffee", "chelsea"):
            r = c.post(
                "/v1/banks/known/media",
                files={"file": (f"{name}.jpg", photo(name), "image/jpeg")},
                params={"category": "test"},
                headers=cur,
            )
            assert r.status_code == 200, r.text
            ids[name] = r.json()["entry_ids"]["pdq"]

        r = c.post(
            "/v1/match", files={"file": ("q.jpg", transformed("coffee"), "image/jpeg")}, headers=mat
        )
        matches = r.json()["matches"]
        assert [(m["bank"], m["entry_id"]) for m in matches] == [("known", ids["coffee"])]
        assert r.headers["x-request-id"]

        # Unauthenticated and wrong-scope requests are refused.
        assert c.get("/v1/banks").status_code == 401
        assert c.get("/v1/banks", headers=mat).status_code == 403
        assert c.get("/v1/banks/known/export", headers=mat).status_code == 403
        hasher = {"X-API-Key": keys["hasher"]}
        assert (
            c.get(
                "/m/raw_lookup", params={"signal_type": "md5", "signal": "0" * 32}, headers=hasher
            ).status_code
            == 403
        )

        r = c.post("/v1/banks/known/entries/disable", json={"ids": [ids["coffee"]]}, headers=cur)
        assert r.json() == {"changed": 1}
        disabled_at = time.monotonic()
        while True:
            r = c.post(
                "/v1/match",
                files={"file": ("q.jpg", transformed("coffee"), "image/jpeg")},
                headers=mat,
            )
            if not r.json()["matches"]:
                break
            assert time.monotonic() - disabled_at < 1.0, "match still reported after 1 s"
            time.sleep(0.05)

        assert c.get("/readyz", headers=mat).json()["ready"] is True
        # Metrics are for auditors (and admins), as docs/api.md says.
        assert c.get("/metrics", headers=mat).status_code == 403
    proc.terminate()
    proc.wait(timeout=10)
    log = server_log(proc)
    assert '"logger": "amparo.access"' in log and '"request_id"' in log


def test_serve_with_two_workers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = amparo(home, "keys", "create", "m", "--scope", "matcher", "--scope", "curator").strip()
    listed = amparo(home, "keys", "list", "--json")
    assert '"name": "m"' in listed and key not in listed
    proc, base = start(home, workers=2)
    try:
        h = {"X-API-Key": key}
        with httpx.Client(base_url=base, timeout=30) as c:
            assert c.post("/v1/banks", json={"name": "b"}, headers=h).status_code == 201
            r = c.post(
                "/v1/banks/b/entries",
                json={"entries": [{"signal_type": "md5", "signal": "0" * 32}]},
                headers=h,
            )
            assert r.status_code == 200
            for _ in range(6):  # whichever worker answers sees the database's state
                r = c.get(
                    "/v1/lookup", params={"signal_type": "md5", "signal": "0" * 32}, headers=h
                )
                assert len(r.json()["matches"]) == 1
        amparo(home, "keys", "revoke", "m")
        # The workers are other processes: their key caches (api_key_cache_seconds, 2 s) run
        # on their own clocks, so this waits them out for real.
        time.sleep(2.2)
        with httpx.Client(base_url=base, timeout=30) as c:
            assert c.get("/v1/banks", headers=h).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        close_log(proc)


def test_serve_on_a_busy_port_exits_2_before_serving(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [*AMPARO, "--home", str(tmp_path / "h"), "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2, done.stderr
    assert "serving on" not in done.stderr and "Traceback" not in done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr


@pytest.mark.slow
def test_serve_logs_requests_and_aggregates_metrics_across_workers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = load_settings(env={}, overrides={"home": home})
    with Amparo(settings) as core:
        audit = KeyService(core.store).create("aud", ["auditor"], actor="t").secret
        hasher = KeyService(core.store).create("has", ["hasher"], actor="t").secret
    stale = home / "run" / "metrics"
    stale.mkdir(parents=True)
    (stale / "counter_1.db").write_bytes(b"stale figures from an earlier run")
    # The default log level (WARNING) still logs every request at INFO.
    proc, base = start(home, workers=3, level="WARNING")
    try:
        aud = {"Authorization": f"Bearer {audit}"}
        with httpx.Client(base_url=base, timeout=30) as c:
            assert c.get("/metrics", headers={"X-API-Key": hasher}).status_code == 403
            seen = []
            for _ in range(12):
                text = c.get("/metrics", headers=aud).text
                line = next(
                    (
                        ln
                        for ln in text.splitlines()
                        if ln.startswith("amparo_http_request_duration_seconds_count")
                        and 'route="/metrics"' in ln
                        and 'status="200"' in ln
                    ),
                    None,
                )
                seen.append(0 if line is None else round(float(line.rsplit(" ", 1)[1])))
            secret = "0" * 32
            c.get("/v1/lookup", params={"signal_type": "md5", "signal": secret}, headers=aud)
        # Each scrape counts all earlier ones, whichever worker answers: 0, 1, 2, ...
        assert seen == list(range(12)), seen
        assert oct((home / "run" / "metrics").stat().st_mode & 0o777) == "0o700"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    log = server_log(proc)
    close_log(proc)
    lines = [json.loads(ln) for ln in log.splitlines() if '"amparo.access"' in ln]
    # Each worker writes its lines in batches (and the rest at shutdown), so the lookup's
    # line need not be the last of the log: find it.
    lookups = [ln for ln in lines if ln.get("route") == "/v1/lookup"]
    assert len(lookups) == 1, log
    entry = lookups[0]
    assert entry["level"] == "info" and entry["method"] == "GET" and entry["key"] == "aud"
    assert entry["route"] == "/v1/lookup" and entry["status"] == 403
    assert isinstance(entry["duration_ms"], float | int)
    assert secret not in log and audit not in log
