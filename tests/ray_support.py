"""Helpers for the Ray engine's tests: a benign mixed folder, a home with a bank of some of its
photos, a Ray cluster of several nodes on this machine, and reports made comparable.

All media is synthetic (random colour blocks made here), never real material. Ray keeps unix
sockets under its temp dir, whose path must stay short (about 100 bytes): hence mkdtemp in
/tmp, not pytest's tmp_path.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from amparo import Amparo, BankInfo, load_settings
from amparo.scan import ScanResult, iter_jsonl
from media_support import zip_bytes

LOOPBACK = "127.0.0.2"
_VOLATILE = ("started_at", "finished_at", "elapsed_s")


def synthetic_photo(seed: int, fmt: str = "PNG", size: int = 256) -> bytes:
    """Random colour blocks, smoothly upscaled: a distinct, PDQ-hashable image per seed."""
    rng = np.random.default_rng(seed)
    blocks = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
    image = Image.fromarray(blocks).resize((size, size), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def make_photos(root: Path, count: int, *, first_seed: int = 1000, size: int = 256) -> list[Path]:
    """``count`` PNG photos in ``root`` (spread over a few sub-folders)."""
    paths = []
    for i in range(count):
        path = root / f"d{i % 4}" / f"photo-{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(synthetic_photo(first_seed + i, size=size))
        paths.append(path)
    return paths


def make_mixed_folder(root: Path, photos: int = 40) -> list[bytes]:
    """PNG and JPEG photos, a zip of photos, a corrupt JPEG and a text file; returns the bytes
    of the photos a bank should know (one on disk of each format, one inside the zip)."""
    make_photos(root / "png", photos)
    jpegs = root / "jpeg"
    jpegs.mkdir(parents=True)
    for i in range(photos // 2):
        (jpegs / f"img-{i:03d}.jpg").write_bytes(synthetic_photo(2000 + i, "JPEG"))
    member = synthetic_photo(3000, "JPEG")
    members = {f"album/m{i}.jpg": synthetic_photo(3000 + i, "JPEG") for i in range(1, 6)}
    (root / "album.zip").write_bytes(zip_bytes({"album/m0.jpg": member, **members}))
    (root / "broken.jpg").write_bytes(synthetic_photo(4000, "JPEG")[:300])
    (root / "notes.txt").write_text("nothing to see here\n")
    known_png = (root / "png" / "d0" / "photo-0000.png").read_bytes()
    return [known_png, (jpegs / "img-000.jpg").read_bytes(), member]


def make_home(home: Path, known: list[bytes]) -> None:
    """An Amparo home whose bank ``known`` holds ``known``."""
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        amparo.banks.create(BankInfo(name="known"))
        for data in known:
            amparo.banks.add_media("known", data, category="test-category")


def comparable(result: ScanResult) -> list[str]:
    """The report's records without timings, sorted: equal for equal scans on any engine."""
    records = []
    for record in iter_jsonl(result):
        kept = {k: v for k, v in record.items() if k not in _VOLATILE and k != "roots"}
        records.append(repr(sorted(kept.items())))
    return sorted(records)


def short_temp_dir() -> str:
    return tempfile.mkdtemp(prefix="r", dir="/tmp")


@contextlib.contextmanager
def ray_cluster(nodes: int = 2, cpus_per_node: int = 1) -> Iterator[Any]:
    """A ``ray.cluster_utils.Cluster`` of ``nodes`` nodes on loopback, each a raylet of its
    own; shut down (every process it started) and its temp dir removed on leaving.

    Why 127.0.0.2: Ray rewrites a bootstrap address of 127.0.0.1 (or localhost) to the
    machine's outward address, where nothing listens; any other loopback address is kept.
    Why RAY_TMPDIR: the cluster writes its address to ``<that>/ray/ray_current_cluster``
    (and deletes the file at shutdown), where every ``ray.init()`` without an address on
    this machine would find it and join this test's cluster.
    """
    import ray
    from ray.cluster_utils import Cluster

    temp_dir = short_temp_dir()
    saved_tmpdir = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = temp_dir
    os.mkdir(os.path.join(temp_dir, "ray"))
    cluster = None
    try:
        cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": cpus_per_node,
                "node_ip_address": LOOPBACK,
                "temp_dir": temp_dir,
                "include_dashboard": True,  # the state API (which task ran where) needs it
                "dashboard_host": LOOPBACK,
                "dashboard_port": 0,
                # A node killed is known dead in about 2 s (default: 15 s), so the tasks it
                # ran are retried sooner; a slow but live node still answers within the
                # (default) timeout of each check, so it is not taken for dead.
                "_system_config": {
                    "health_check_period_ms": 500,
                    "health_check_failure_threshold": 4,
                },
            },
        )
        for _ in range(nodes - 1):
            add_node(cluster, cpus_per_node)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        if saved_tmpdir is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = saved_tmpdir
        shutil.rmtree(temp_dir, ignore_errors=True)


def add_node(cluster: Any, cpus: int = 1) -> Any:
    return cluster.add_node(num_cpus=cpus, node_ip_address=LOOPBACK)


def tasks_by_node(address: str) -> dict[str, int]:
    """How many task attempts each node of the cluster ran (from Ray's state API)."""
    from ray.util.state import list_tasks

    counts: dict[str, int] = {}
    for task in list_tasks(address=address, filters=[("type", "=", "NORMAL_TASK")], limit=10_000):
        if task.node_id:
            counts[task.node_id] = counts.get(task.node_id, 0) + 1
    return counts


def poll(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
