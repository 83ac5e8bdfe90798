"""The Ray engine on a local Ray: the same report as the local engine, every file reported
once when a worker is killed mid-scan, the batches in flight capped, and a quiet stderr.

One local Ray (two CPUs) serves the whole module: the engine finds Ray initialised, uses it,
and leaves it running. ``address="local"`` starts a new instance, never one that another
process happens to run on this machine. All media is synthetic (noise, colour blocks, a
pan across scikit-image's sample photos): never real material.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ray = pytest.importorskip("ray")

from amparo import Amparo, BankInfo, load_settings  # noqa: E402
from amparo.scan import HashLimits, HashTask, ScanOptions, scan_paths, write_report  # noqa: E402
from amparo.scan.model import ItemRecord  # noqa: E402
from amparo.scan.ray_engine import RayEngine  # noqa: E402
from media_support import synthetic_jpeg, zip_bytes  # noqa: E402

TIMING_FIELDS = ("started_at", "finished_at", "elapsed_s")


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def sample_photo(name: str, fmt: str = "JPEG") -> bytes:
    skimage_data = pytest.importorskip("skimage.data")
    out = io.BytesIO()
    Image.fromarray(getattr(skimage_data, name)()).save(out, fmt)
    return out.getvalue()


def short_video() -> bytes:
    """Two seconds panning across the coffee photo (H.264 in MP4)."""
    av = pytest.importorskip("av")
    photo = pytest.importorskip("skimage.data").coffee()
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(20):
            window = Image.fromarray(photo[50:250, 10 * i : 10 * i + 260])
            pixels = np.asarray(window.resize((160, 120)))
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def tar_gz(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


KNOWN = [synthetic_jpeg(1), synthetic_jpeg(2)]


@pytest.fixture
def amparo(tmp_path: Path) -> Iterator[Amparo]:
    app = Amparo(load_settings(env={}, overrides={"home": tmp_path / "home"}))
    app.banks.create(BankInfo(name="known"))
    for media in (*KNOWN, sample_photo("astronaut")):
        app.banks.add_media("known", media, category="test-category")
    yield app
    app.close()


def mixed_folder(root: Path) -> Path:
    """Photos (three of them known), a video, nested archives, corrupt and empty files."""
    (root / "photos" / "deeper").mkdir(parents=True)
    (root / "photos" / "k1.jpg").write_bytes(KNOWN[0])
    (root / "photos" / "deeper" / "astro.jpg").write_bytes(sample_photo("astronaut"))
    (root / "photos" / "rocket.png").write_bytes(sample_photo("rocket", "PNG"))
    (root / "photos" / "chelsea.jpg").write_bytes(sample_photo("chelsea"))
    for seed in range(10, 16):
        (root / "photos" / f"u{seed}.jpg").write_bytes(synthetic_jpeg(seed))
    (root / "clip.mp4").write_bytes(short_video())
    inner = zip_bytes({"in/k2.jpg": KNOWN[1], "in/u.jpg": synthetic_jpeg(20), "notes.txt": b"hi"})
    (root / "a.zip").write_bytes(inner)
    (root / "b.tar.gz").write_bytes(tar_gz({"nested.zip": inner, "x/u.jpg": synthetic_jpeg(21)}))
    (root / "truncated.jpg").write_bytes(synthetic_jpeg(22)[:300])
    (root / "text.jpg").write_bytes(b"not a picture at all\n")
    (root / "empty.bin").write_bytes(b"")
    return root


def jsonl(result: object) -> list[str]:
    out = io.StringIO()
    write_report(result, out, "jsonl")  # type: ignore[arg-type]
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    for row in rows:
        for name in TIMING_FIELDS:
            row.pop(name, None)
    return sorted(json.dumps(row, sort_keys=True) for row in rows)


@pytest.mark.slow
def test_the_ray_report_equals_the_local_one(amparo: Amparo, tmp_path: Path):
    root = mixed_folder(tmp_path / "evidence")
    reports = {}
    for engine, workers in (("local", 2), ("ray", 0)):
        records: list[ItemRecord] = []
        options = ScanOptions(engine=engine, workers=workers, journal=tmp_path / engine)
        result = scan_paths(amparo, [root], options, on_record=records.append)
        reports[engine] = (
            sorted(records, key=lambda r: r.path),
            jsonl(result),
            sorted((i.path, i.code) for i in result.errors),
            sorted((i.path, i.code) for i in result.skipped),
            sorted((m.path, m.match["entry_id"]) for m in result.matches),
            result.exit_code,
        )
    assert reports["ray"] == reports["local"]
    records, _, errors, _, matches, exit_code = reports["ray"]
    matched = {path.rsplit("/", 1)[-1] for path, _ in matches}
    assert {"k1.jpg", "astro.jpg", "k2.jpg"} <= matched  # in folders and nested archives
    assert {path.rsplit("/", 1)[-1] for path, _ in errors} >= {"truncated.jpg", "text.jpg"}
    assert any(
        (r.media_type and "mp4" in r.media_type) or r.path.endswith("clip.mp4") for r in records
    )
    assert exit_code == 1


def _limits() -> HashLimits:
    return HashLimits(max_pixels=10_000_000, max_file_bytes=10_000_000)


def test_batches_in_flight_never_pass_the_cap():
    engine = RayEngine(_limits(), workers=2)
    assert engine.capacity == 2
    batches = [
        [
            HashTask(
                f"m{i}.zip!{j}.jpg", 0, 0, "jpeg", data=synthetic_jpeg(i * 10 + j), on_disk=False
            )
            for j in range(3)
        ]
        for i in range(8)
    ]
    futures, peak = [], 0
    for batch in batches:
        futures.append(engine.submit(batch))
        peak = max(peak, engine.in_flight)
    results = [f.result(timeout=300) for f in futures]
    engine.close()
    assert peak <= 2
    assert [[o.path for o in items] for items in results] == [
        [t.path for t in batch] for batch in batches
    ]
    assert ray.is_initialized()  # the test's Ray: used, not shut down
    default = RayEngine(_limits())
    default.close()
    assert default.capacity == 4  # 0 workers: two batches per CPU


def _hashing_workers() -> list[int]:
    """Pids of this test's Ray workers running a hashing task now (their process title)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"ray::_hash_batch_task"):
            found.append(pid)
    return found


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_killed_mid_scan_loses_and_doubles_nothing(amparo: Amparo, tmp_path: Path):
    root = tmp_path / "big"
    root.mkdir()
    rng = np.random.default_rng(7)
    for i in range(24):  # noise PNGs: slow to decode, so batches are still running when killed
        pixels = rng.integers(0, 256, (900, 900, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"n{i:02}.png", compress_level=1)
    records: list[ItemRecord] = []
    options = ScanOptions(engine="ray", workers=2, hash_batch=2, journal=tmp_path / "j")
    outcome: list[object] = []
    scan = threading.Thread(
        target=lambda: outcome.append(scan_paths(amparo, [root], options, on_record=records.append))
    )
    scan.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and scan.is_alive() and time.monotonic() < deadline:
        busy = _hashing_workers()
        if busy:
            killed = busy[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.01)
    scan.join(timeout=600)
    assert killed is not None, "no hashing worker was seen running"
    assert not scan.is_alive() and outcome
    result = outcome[0]
    counts = Counter(Path(r.path).name for r in records)
    assert counts == Counter(f"n{i:02}.png" for i in range(24))  # each exactly once
    assert result.files_seen == 24 and not result.errors  # type: ignore[attr-defined]


@pytest.mark.slow
def test_the_cli_keeps_rays_chatter_off_stderr(tmp_path: Path):
    root = tmp_path / "photos"
    root.mkdir()
    for seed in range(4):
        (root / f"u{seed}.jpg").write_bytes(synthetic_jpeg(seed + 40))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "amparo.cli.main",
            "--home",
            str(tmp_path / "home"),
            "scan",
            "--engine",
            "ray",
            "--workers",
            "2",
            str(root),
            "--report",
            str(tmp_path / "r.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    ours = ("amparo scan:", "Scanned ", "Report:", "Journal:")
    assert [line for line in proc.stderr.splitlines() if not line.startswith(ours)] == []
    assert "Scanned 4 files" in proc.stderr
