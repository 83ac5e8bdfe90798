"""``amparo scan --engine ray`` on a Ray cluster of two nodes (two raylets on this machine):
the same report as the local engine, hashing on both nodes, a node lost mid-scan costs no
file, and a driver killed with ``kill -9`` resumes from its journal.

All media is synthetic (see :mod:`ray_support`); everything listens on loopback only.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from amparo import Amparo, load_settings
from amparo.scan import ItemRecord, ScanOptions, scan_paths
from ray_support import (
    add_node,
    comparable,
    make_home,
    make_mixed_folder,
    make_photos,
    poll,
    ray_cluster,
    tasks_by_node,
)

ray = pytest.importorskip("ray")
ray_constants = pytest.importorskip("ray._private.ray_constants")

pytestmark = pytest.mark.slow

NOT_TASKS = (b"ray::IDLE", b"ray::DashboardAgent", b"ray::RuntimeEnvAgent")
"""Titles of a raylet's child processes that are not running a task (every other child
titled ``ray::...`` runs one: only the scans run tasks on these clusters)."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Head node and a second node, one CPU each; every test leaves these two running."""
    started = time.monotonic()
    with ray_cluster(nodes=2, cpus_per_node=1) as c:
        print(f"two-node cluster up in {time.monotonic() - started:.1f} s")
        yield c


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def scan(home: Path, root: Path, journal: Path, **options: Any) -> tuple[Any, list[ItemRecord]]:
    records: list[ItemRecord] = []
    on_record = options.pop("on_record", records.append)
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        result = scan_paths(
            amparo,
            [root],
            ScanOptions(journal=journal, actions=False, **options),
            on_record=on_record,
        )
    return result, records


def test_two_nodes_report_as_the_local_engine_does_and_both_hash(
    cluster: Any, home: Path, tmp_path: Path
):
    root = tmp_path / "evidence"
    make_home(home, make_mixed_folder(root, photos=60))

    local, _ = scan(home, root, tmp_path / "local.journal", workers=1)
    started = time.monotonic()
    on_ray, records = scan(
        home,
        root,
        tmp_path / "ray.journal",
        engine="ray",
        ray_address=cluster.address,
        hash_batch=4,
    )
    print(f"two-node scan of {on_ray.files_seen} items: {time.monotonic() - started:.1f} s")

    assert comparable(on_ray) == comparable(local)
    matched = {m.path for m in on_ray.matches}
    assert matched == {  # one PNG, one JPEG, one zip member
        str(root / "png" / "d0" / "photo-0000.png"),
        str(root / "jpeg" / "img-000.jpg"),
        f"{root / 'album.zip'}!album/m0.jpg",
    }
    assert on_ray.matched_files == 3
    assert [i.path for i in on_ray.errors] == [str(root / "broken.jpg")]
    paths = [r.path for r in records]
    assert len(paths) == len(set(paths)) == on_ray.files_seen == 99  # 96 files, 6 members
    # Each node's raylet ran some of the scan's hashing tasks (Ray's state API says where).
    nodes = {n.node_id for n in (cluster.head_node, *cluster.worker_nodes)}
    ran: dict[str, int] = {}

    def both_ran() -> bool:
        ran.update(tasks_by_node(cluster.address))
        return set(ran) == nodes

    assert poll(both_ran, 20, 0.5), ran


def test_a_node_removed_mid_scan_costs_no_file(cluster: Any, home: Path, tmp_path: Path):
    root = tmp_path / "evidence"
    photos = make_photos(root, 240)
    make_home(home, [photos[7].read_bytes(), photos[200].read_bytes()])
    doomed = add_node(cluster, 1)
    cluster.wait_for_nodes()
    records: list[ItemRecord] = []
    removed_at: list[int] = []

    def on_record(record: ItemRecord) -> None:
        records.append(record)
        if len(records) >= 40 and not removed_at:
            removed_at.append(len(records))
            cluster.remove_node(doomed, allow_graceful=False)

    started = time.monotonic()
    result, _ = scan(
        home,
        root,
        tmp_path / "ray.journal",
        engine="ray",
        ray_address=cluster.address,
        hash_batch=4,
        match_batch=8,
        on_record=on_record,
    )
    print(f"scan of {len(photos)} files losing a node: {time.monotonic() - started:.1f} s")
    assert removed_at, "the scan ended before the node could be removed"
    ran_there = lambda: doomed.node_id in tasks_by_node(cluster.address)  # noqa: E731
    assert poll(ran_there, 20, 0.5), "no hashing task ran on the node removed"
    counts = collections.Counter(r.path for r in records)
    assert counts == {str(p): 1 for p in photos}
    assert not result.errors, result.errors
    assert {m.path for m in result.matches} == {str(photos[7]), str(photos[200])}
    assert result.files_seen == len(photos) and not result.interrupted


def journal_items(path: Path) -> list[dict[str, Any]]:
    """The journal's complete item lines (a line cut short by the kill is not one)."""
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            record = json.loads(line)
            if record.get("kind") == "item":
                items.append(record)
    return items


def hashing_workers(cluster: Any) -> list[int]:
    """Worker processes of this cluster's raylets that are running a hashing task now."""
    raylets = set()
    for node in (cluster.head_node, *cluster.worker_nodes):
        for info in node.all_processes.get(ray_constants.PROCESS_TYPE_RAYLET, []):
            raylets.add(info.process.pid)
    busy = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            title = Path(f"/proc/{entry}/cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid in raylets and title.startswith(b"ray::") and not title.startswith(NOT_TASKS):
            busy.append(int(entry))
    return busy


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_driver_killed_mid_scan_resumes_from_its_journal(
    cluster: Any, home: Path, tmp_path: Path
):
    root = tmp_path / "evidence"
    photos = make_photos(root, 480)
    known = [photos[3], photos[470]]
    make_home(home, [p.read_bytes() for p in known])
    report = tmp_path / "report.jsonl"
    journal = Path(f"{report}.journal")
    command = [sys.executable, "-m", "amparo.cli.main", "--home", str(home), "scan", str(root)]
    command += ["--engine", "ray", "--ray-address", cluster.address, "--no-actions"]
    command += ["--report", str(report)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "AMPARO_HOME": str(home)}

    def start(*extra: str) -> subprocess.Popen[bytes]:
        log = open(tmp_path / "driver.log", "ab")  # noqa: SIM115 (closed with the process)
        try:
            return subprocess.Popen(
                [*command, *extra], env=env, stdout=log, stderr=log, start_new_session=True
            )
        finally:
            log.close()

    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(first := start())
        busy: set[int] = set()  # hashing workers seen at work (the check below is not vacuous)

        def journal_started() -> bool:
            busy.update(hashing_workers(cluster))
            return journal.exists() and bool(journal_items(journal))

        # The first batch of records lands in the journal while most files are still to do.
        assert poll(journal_started, 120, 0.01)
        assert first.poll() is None, (tmp_path / "driver.log").read_text()
        first.kill()  # kill -9 of the driver
        first.wait(timeout=10)
        done_before = {r["path"] for r in journal_items(journal)}
        print(f"driver killed with {len(done_before)} of {len(photos)} files in its journal")
        assert 0 < len(done_before) < len(photos)
        # Ray ends the dead driver's tasks: none of its hashing goes on for ever.
        assert busy
        assert poll(lambda: not hashing_workers(cluster), 60), hashing_workers(cluster)

        procs.append(second := start("--resume"))
        started = time.monotonic()
        assert second.wait(timeout=120) == 1, (tmp_path / "driver.log").read_text()  # 1: matched
        print(f"resumed two-node scan: {time.monotonic() - started:.1f} s (process included)")
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)

    items = journal_items(journal)
    counts = collections.Counter(r["path"] for r in items)
    assert counts == {str(p): 1 for p in photos}  # nothing done twice, nothing left out
    assert all(r["status"] == "ok" for r in items)
    lines = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    summary = lines[-1]
    assert summary["kind"] == "summary"
    assert summary["files_seen"] == len(photos) and summary["errors"] == 0
    assert summary["resumed"] == len(done_before)
    assert not summary["interrupted"]
    matches = [r for r in lines if r["kind"] == "match"]
    assert {m["path"] for m in matches} == {str(p) for p in known}
    by_entry = collections.Counter((m["path"], m["bank"], m["entry_id"]) for m in matches)
    assert set(by_entry.values()) == {1}, by_entry  # every match reported once
