"""Crash safety: a process preserving a batch is killed (SIGKILL) part way. After a restart
nothing is half written, nothing confirmed is missing, orphans are cleaned up, and finishing
the batch leaves every file preserved exactly once."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from amparo.app import Amparo
from amparo.config import load_settings
from amparo.evidence.backends import blob_key, is_temp

FILES = 200
KILL_AFTER = 60

# The child preserves files[start:] in order and prints "<index> <item id>" once preserve
# has returned: that line is the confirmation the test holds it to.
CHILD = """
import sys
from pathlib import Path
from amparo.app import Amparo

src = Path(sys.argv[1])
with Amparo() as amparo:
    for i in range(int(sys.argv[2]), int(sys.argv[3])):
        item = amparo.evidence.preserve(src / f"{i:03}.bin", reason="rule:crash-test", actor="t")
        print(i, item.id, flush=True)
"""


def _content(i: int) -> bytes:
    # Mostly small files, every 20th one over two 1 MiB chunks, so some kills land mid-blob.
    size = 2_100_000 + i if i % 20 == 0 else 500 + 37 * i
    block = hashlib.sha256(f"file {i}".encode()).digest()
    return (block * (size // 32 + 1))[:size]


def _child(src: Path, env: dict[str, str], start: int, stop: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(src), str(start), str(stop)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


@pytest.mark.slow
def test_killed_batch_recovers_without_loss_or_duplicates(
    tmp_path: Path, database_url: str
) -> None:
    src = tmp_path / "batch"
    src.mkdir()
    contents = {i: _content(i) for i in range(FILES)}
    for i, data in contents.items():
        (src / f"{i:03}.bin").write_bytes(data)
    home = tmp_path / "home"
    env = {**os.environ, "AMPARO_HOME": str(home), "AMPARO_DATABASE_URL": database_url}
    settings = load_settings(env={}, overrides={"home": home, "database_url": database_url})

    child = _child(src, env, 0, FILES)
    assert child.stdout is not None
    confirmed: dict[int, int] = {}
    for line in child.stdout:
        index, item_id = map(int, line.split())
        confirmed[index] = item_id
        if len(confirmed) == KILL_AFTER:
            child.send_signal(signal.SIGKILL)
            break
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert len(confirmed) == KILL_AFTER

    with Amparo(settings) as amparo:
        evidence = amparo.evidence
        # Every confirmed item reads back byte-exact, before any recovery step.
        for index, item_id in confirmed.items():
            assert evidence.read(item_id, actor="t") == contents[index]
        # Every row has its complete blob (an item committed after the last confirmation is
        # fine, and must be whole too); leftovers are cleaned.
        report = evidence.verify(orphan_grace_seconds=0, repair=True)
        assert report.ok, (report.damaged, report.missing)
        assert report.checked in (KILL_AFTER, KILL_AFTER + 1)
        live = {s.uuid for batch in evidence.records.iter_live() for s in batch}
        listed = [key for key, _ in evidence.backend.list()]
        assert not [k for k in listed if is_temp(k)]
        assert sorted(listed) == sorted(blob_key(u) for u in live)

    # Finish the batch from the start: what is held already is recognised, not stored again.
    child = _child(src, env, 0, FILES)
    out, _ = child.communicate(timeout=300)
    assert child.returncode == 0
    finished = dict(tuple(map(int, line.split())) for line in out.splitlines())
    assert all(finished[i] == item_id for i, item_id in confirmed.items())

    with Amparo(settings) as amparo:
        evidence = amparo.evidence
        items = evidence.list(limit=1000)
        assert len(items) == FILES
        by_hash = {hashlib.sha256(data).hexdigest(): i for i, data in contents.items()}
        assert sorted(by_hash[item.sha256] for item in items) == list(range(FILES))
        for item in items:
            assert evidence.read(item.id, actor="t") == contents[by_hash[item.sha256]]
        report = evidence.verify(orphan_grace_seconds=0, repair=True)
        assert report.ok and report.checked == FILES and report.orphans.removed == []
        assert len(list(evidence.backend.list())) == FILES
