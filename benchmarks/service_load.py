"""Load test of `amparo serve` on loopback: raw PDQ lookups and image-upload matches.

Builds a bank of random PDQ hashes (default 1M) in a temporary home, starts
``amparo serve --workers N``, then drives it with keep-alive HTTP/1.1 connections and
samples each worker's resident memory once a second. The load comes from ``wrk`` (C, one
thread; Debian package ``wrk``) when ``--client wrk``, else from one asyncio process (raw
sockets). On a 2-core machine the generator shares the cores with the server, so the
lighter ``wrk`` leaves more of them to it.

    python benchmarks/service_load.py --entries 1000000 --duration 600 --workers 2
    python benchmarks/service_load.py --entries 1000000 --duration 600 --workers 2 --client wrk

Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from amparo.app import Amparo
from amparo.banks.model import BankInfo, EntryRecord
from amparo.config import load_settings
from amparo.keys import KeyService


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, float]:
        lat = np.array(self.latencies) * 1000 if self.latencies else np.zeros(1)
        return {
            "requests": len(self.latencies),
            "errors": self.errors,
            "per_second": round(len(self.latencies) / self.seconds, 1) if self.seconds else 0,
            "p50_ms": round(float(np.percentile(lat, 50)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2),
            "max_ms": round(float(lat.max()), 2),
        }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def random_hashes(entries: int, seed: int = 7) -> list[str]:
    """``entries`` random PDQ hashes (64 hex digits), the same for the same seed."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=(entries, 32), dtype=np.uint8)
    return [row.tobytes().hex() for row in raw]


def build_bank(home: Path, entries: int, hexes: list[str] | None = None) -> tuple[str, list[str]]:
    """A home with one bank ``bench`` of ``hexes`` (default ``entries`` random hashes) and a
    matcher + curator API key; the key and the hashes."""
    settings = load_settings(env={}, overrides={"home": home})
    if hexes is None:
        hexes = random_hashes(entries)
    entries = len(hexes)
    with Amparo(settings) as amparo:
        amparo.banks.create(BankInfo(name="bench"), actor="bench")
        start = time.perf_counter()
        amparo.banks.add_entries(
            "bench", (EntryRecord("pdq", h, category="bench") for h in hexes), actor="bench"
        )
        print(f"loaded {entries:,} hashes in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        key = (
            KeyService(amparo.store)
            .create(
                "bench", ["matcher", "curator"], rate_per_second=1e6, burst=1_000_000, actor="bench"
            )
            .secret
        )
    return key, hexes


def photo_640x480() -> bytes:
    import skimage.data

    image = Image.fromarray(skimage.data.astronaut()).resize((640, 480))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def sample_memory(pids: list[int], memory: list[list[int]], stop: threading.Event) -> None:
    """Each worker's RSS once a second until ``stop`` is set."""
    while not stop.is_set():
        memory.append([rss_kib(p) for p in pids])
        stop.wait(1)


def worker_pids(parent: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True)
    pids = [int(p) for p in out.stdout.split()]
    # uvicorn's multiprocess manager spawns a resource tracker too; keep the workers only
    return [p for p in pids if "spawn_main" in _cmdline(p)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


async def one_connection(
    port: int,
    make_request: callable,
    phase: Phase,
    stop_at: float,  # type: ignore[valid-type]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            request = make_request()
            start = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            phase.latencies.append(time.perf_counter() - start)
            if not status_line.startswith(b"HTTP/1.1 200"):
                phase.errors += 1
    finally:
        writer.close()


async def run_phase(
    port: int,
    phase: Phase,
    make_request: callable,
    seconds: float,
    connections: int,  # type: ignore[valid-type]
) -> None:
    start = time.perf_counter()
    stop_at = start + seconds
    await asyncio.gather(
        *(one_connection(port, make_request, phase, stop_at) for _ in range(connections))
    )
    phase.seconds = time.perf_counter() - start


# wrk's Lua script: requests cycle through pre-made paths (each wrk thread from a random
# start); done() prints the totals and latency percentiles as one JSON line.
WRK_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("AMPARO_WRK_PATHS")) do paths[#paths + 1] = line end
local body_file = os.getenv("AMPARO_WRK_BODY")
local i = 0
wrk.headers["X-API-Key"] = os.getenv("AMPARO_WRK_KEY")
if body_file and body_file ~= "" then
  local f = io.open(body_file, "rb")
  wrk.method = "POST"
  wrk.body = f:read("*all")
  f:close()
  wrk.headers["Content-Type"] = os.getenv("AMPARO_WRK_TYPE")
end
init = function(args) i = math.random(#paths) end
request = function()
  i = i + 1
  if i > #paths then i = 1 end
  return wrk.format(nil, paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"errors":%d,"status_errors":%d,'
    .. '"p50_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f}\\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout,
    e.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
"""


def run_wrk(
    port: int,
    key: str,
    paths: list[str],
    seconds: float,
    connections: int,
    body: bytes | None = None,
    content_type: str = "",
) -> dict[str, float]:
    """One phase driven by wrk (one thread, ``connections`` keep-alive connections)."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp, "load.lua")
        script.write_text(WRK_SCRIPT)
        Path(tmp, "paths").write_text("\n".join(paths) + "\n")
        env = {
            **os.environ,
            "AMPARO_WRK_PATHS": str(Path(tmp, "paths")),
            "AMPARO_WRK_KEY": key,
            "AMPARO_WRK_BODY": "",
            "AMPARO_WRK_TYPE": content_type,
        }
        if body is not None:
            Path(tmp, "body").write_bytes(body)
            env["AMPARO_WRK_BODY"] = str(Path(tmp, "body"))
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "10s",
             "-s", str(script), f"http://127.0.0.1:{port}"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
    line = [x for x in out.stdout.splitlines() if x.startswith("{")][-1]
    raw = json.loads(line)
    return {
        "requests": raw["requests"],
        "errors": raw["errors"] + raw["status_errors"],
        "per_second": round(raw["requests"] / raw["seconds"], 1),
        "p50_ms": raw["p50_ms"],
        "p99_ms": raw["p99_ms"],
        "max_ms": raw["max_ms"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--duration", type=float, default=600, help="seconds, split over phases")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--client", choices=["python", "wrk"], default="python", help="load generator"
    )
    args = parser.parse_args()
    if args.client == "wrk" and shutil.which("wrk") is None:
        parser.error("--client wrk needs wrk on PATH (Debian: apt-get install wrk)")

    home = Path(tempfile.mkdtemp(prefix="amparo-bench-"))
    key, hexes = build_bank(home, args.entries)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "amparo.cli.main", "--home", str(home), "serve",
         "--port", str(port), "--workers", str(args.workers)],
        env={**os.environ, "AMPARO_INDEX_MAX_AGE_SECONDS": "600"},
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    auth = f"X-API-Key: {key}\r\n".encode()
    try:
        import httpx

        start = time.perf_counter()
        while True:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/readyz", headers={"X-API-Key": key}, timeout=120
                )
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        ready_s = time.perf_counter() - start
        workers = worker_pids(server.pid) or [server.pid]
        memory: list[list[int]] = []
        sampling = True

        async def sample() -> None:
            while sampling:
                memory.append([rss_kib(p) for p in workers])
                await asyncio.sleep(1)

        rng = random.Random(3)

        stop = threading.Event()

        def lookup_path() -> str:
            # Half known hashes with a few bits flipped, half random: hits and misses.
            value = rng.choice(hexes) if rng.random() < 0.5 else f"{rng.getrandbits(256):064x}"
            if rng.random() < 0.5:
                as_int = int(value, 16) ^ (1 << rng.randrange(256)) ^ (1 << rng.randrange(256))
                value = f"{as_int:064x}"
            return f"/m/raw_lookup?signal_type=pdq&signal={value}"

        def lookup_request() -> bytes:
            return f"GET {lookup_path()} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode() + auth + b"\r\n"

        jpeg = photo_640x480()
        boundary = b"amparobenchboundary"
        body = (
            b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; '
            b'filename="q.jpg"\r\nContent-Type: image/jpeg\r\n\r\n' + jpeg
            + b"\r\n--" + boundary + b"--\r\n"
        )  # fmt: skip
        upload = (
            b"POST /v1/match HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth
            + b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )  # fmt: skip

        if args.client == "wrk":
            sampler = threading.Thread(target=sample_memory, args=(workers, memory, stop))
            sampler.start()
            paths = [lookup_path() for _ in range(50_000)]
            lookup_result = run_wrk(port, key, paths, args.duration / 2, args.connections)
            upload_result = run_wrk(
                port, key, ["/v1/match"], args.duration / 2, args.connections, body,
                "multipart/form-data; boundary=" + boundary.decode(),
            )  # fmt: skip
            stop.set()
            sampler.join()
        else:
            lookups, uploads = Phase("raw_lookup"), Phase("upload_match")

            async def drive() -> None:
                nonlocal sampling
                sampler = asyncio.create_task(sample())
                await run_phase(port, lookups, lookup_request, args.duration / 2, args.connections)
                await run_phase(port, uploads, lambda: upload, args.duration / 2, args.connections)
                sampling = False
                await sampler

            asyncio.run(drive())
            lookup_result, upload_result = lookups.summary(), uploads.summary()
        mem = np.array(memory) / 1024 if memory else np.zeros((1, 1))
        result = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores, {platform.python_version()}",
            "entries": args.entries,
            "workers": args.workers,
            "connections": args.connections,
            "duration_s": args.duration,
            "ready_after_s": round(ready_s, 1),
            "client": args.client,
            "raw_lookup": lookup_result,
            "upload_match": upload_result,
            "worker_rss_mib": {
                "start": [round(float(x)) for x in mem[0]],
                "end": [round(float(x)) for x in mem[-1]],
                "max": [round(float(x)) for x in mem.max(axis=0)],
                # Each worker's RSS at the end of every minute (the lookup phase is the
                # first half, uploads the second).
                "per_minute": [[round(float(x)) for x in row] for row in mem[59::60]],
            },
        }
        print(json.dumps(result, indent=2))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
