"""A ``kill -9`` of ``amparo scan`` leaves nothing behind: its hashing workers, the
forkserver and the resource tracker all exit with it (they ran on for minutes before)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from amparo import Amparo, BankInfo, load_settings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc"),
]


def group_members(pgid: int) -> list[tuple[int, str]]:
    """Live (not zombie) processes of a process group, with their command lines."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in ("Z", "X"):
            members.append((int(entry), cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return members


def poll(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_kill_9_of_the_scan_ends_its_workers(tmp_path: Path):
    home = tmp_path / "home"
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        amparo.banks.create(BankInfo(name="known"))
    root = tmp_path / "evidence"
    root.mkdir()
    for i in range(4):
        # Sparse: no disk used, but digesting each takes the workers many seconds.
        with open(root / f"big-{i}.bin", "wb") as fh:
            fh.truncate(64 * 1024**3)
    command = [sys.executable, "-m", "amparo.cli.main", "--home", str(home), "scan", str(root)]
    command += ["--workers", "2", "--no-actions", "--report", str(tmp_path / "r.jsonl")]
    # A session of its own: every process it starts shares its process group id.
    proc = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    pgid = proc.pid
    try:

        def worker_running() -> bool:
            # The scan, the resource tracker, the forkserver and at least one worker.
            return len(group_members(pgid)) >= 4 or proc.poll() is not None

        assert poll(worker_running, 60), group_members(pgid)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.kill()
        proc.wait(timeout=10)
        left: list[tuple[int, str]] = []

        def all_gone() -> bool:
            left[:] = group_members(pgid)
            return not left

        assert poll(all_gone, 10), f"left running after kill -9 of the scan: {left}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "polling"])
def test_a_worker_started_after_the_scan_died_exits_at_once(pidfd: bool):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its pid names no process now
    script = (
        "import os, time\n"
        + ("" if pidfd else "del os.pidfd_open  # a kernel or OS without pidfds\n")
        + "from amparo.scan.engine import die_with_scan\n"
        + f"die_with_scan({gone.pid})\n"
        + "time.sleep(60)\n"
    )
    worker = subprocess.run([sys.executable, "-c", script], timeout=30, capture_output=True)
    assert worker.returncode == 1, worker.stderr
