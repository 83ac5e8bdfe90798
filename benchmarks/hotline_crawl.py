"""Hotline verification crawl: how fast reported pages are crawled, their images fetched,
hashed, matched and recorded, and the crawler's peak memory.

A loopback site (a threaded ``http.server`` in a child process, so it does not share this
process's interpreter lock) serves N pages, each linking 5 of M distinct benign synthetic
images (a solid colour with a few random rectangles, 64x64 to 256x256, PNG and JPEG), all
made before timing starts and served from memory. Every page is reported as one URL report.

``--mode verify`` (default) runs the whole verification on a temporary Amparo (SQLite):
``Verifier.crawl_due`` per batch, a lease per report, each image fetched through the safe
fetcher, hashed (PDQ), looked up in a bank holding every 50th image, a known one recorded as
verified, an unknown one preserved (encrypted) as evidence and recorded for an analyst.
``--mode crawl`` runs the crawler, hashing and matching only (no writes).

    python benchmarks/hotline_crawl.py [--pages 10000] [--images 50000] [--mode verify]

Synthetic benign images only. Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from amparo.app import Amparo
from amparo.banks.model import BankInfo
from amparo.config import load_settings
from amparo.fetch import Fetched
from amparo.hotline.crawl import Crawler, CrawlLimits
from hotline_support import Route, Site, image_bytes

PER_PAGE = 5
KNOWN_EVERY = 50


def image(index: int) -> tuple[bytes, str]:
    """Image ``index`` of the site: every third one a JPEG."""
    if index % 3 == 2:
        return image_bytes(index, fmt="JPEG"), "image/jpeg"
    return image_bytes(index), "image/png"


def page_html(page: int, images: int) -> str:
    indices = [(page * PER_PAGE + k) % images for k in range(PER_PAGE)]
    links = "".join(
        f'<figure><img src="/img/{i}.{ext(i)}" alt="picture {k}"></figure>'
        for k, i in enumerate(indices)
    )
    return (
        f"<!doctype html><html><head><title>page {page}</title></head><body>"
        f'<h1>Gallery {page}</h1>{links}<a href="/page/{(page + 1) % 10**9}">next</a>'
        "</body></html>"
    )


def ext(index: int) -> str:
    return "jpg" if index % 3 == 2 else "png"


def serve(pages: int, images: int, port_out: multiprocessing.connection.Connection) -> None:
    """The site, in a child process: every image made up front, then served until killed."""
    bodies = [image(i) for i in range(images)]
    sizes = sum(len(b) for b, _ in bodies)

    def route(path: str) -> Route | None:
        if path.startswith("/img/"):
            index = int(path[5:].split(".")[0])
            body, kind = bodies[index]
            return Route(body, kind)
        if path.startswith("/page/"):
            return Route(page_html(int(path[6:]), images).encode())
        return None

    with Site(route) as site:
        port_out.send((site.port, sizes))
        threading.Event().wait()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--mode", choices=("verify", "crawl"), default="verify")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    started = time.perf_counter()
    receive, send = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.get_context("fork").Process(
        target=serve, args=(args.pages, args.images, send), daemon=True
    )
    server.start()
    port, image_bytes_total = receive.recv()
    base = f"http://127.0.0.1:{port}"
    print(
        f"site: {args.pages:,} pages, {args.images:,} images ({image_bytes_total / 2**20:.1f} MiB)"
        f" made in {time.perf_counter() - started:.1f} s",
        flush=True,
    )

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            env={},
            overrides={
                "home": Path(tmp) / "home",
                "url_allowlist": "127.0.0.1",
                "hotline_crawl_depth": 0,
                "log_level": "WARNING",
            },
        )
        with Amparo(settings) as amparo:
            amparo.banks.create(BankInfo(name="known"))
            for index in range(0, args.images, KNOWN_EVERY):
                amparo.banks.add_media("known", image(index)[0], category="A1")
            service = amparo.hotline
            verifier = service.verifier
            verifier.crawler = Crawler(
                service.context.fetcher,
                replace(verifier.limits, concurrency=args.concurrency),
            )
            urls = [f"{base}/page/{p}" for p in range(args.pages)]
            if args.mode == "verify":
                now = service.context.clock()
                for url in urls:
                    service.records.submit(url, url, "127.0.0.1", at=now, channel="cli")
            rss_before = rss_mib()
            samples: list[float] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(1.0):
                    samples.append(rss_mib())

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            cpu0 = time.process_time()
            t0 = time.perf_counter()
            images_done = errors = 0
            if args.mode == "verify":
                crawled = 0
                while True:
                    n = verifier.crawl_due(limit=200)
                    if not n:
                        break
                    crawled += n
                    print(
                        f"  {crawled:,} pages, {time.perf_counter() - t0:.0f} s, "
                        f"RSS {rss_mib():.0f} MiB",
                        flush=True,
                    )
                items = sum(len(service.records.items(i)) for i in range(1, args.pages + 1))
                images_done = items
                verified = sum(
                    1
                    for i in range(1, args.pages + 1)
                    for item in service.records.items(i)
                    if item.status == "verified"
                )
                statuses = {
                    s: service.records.count(statuses=[s])
                    for s in ("confirmed", "assessment", "closed", "unreachable", "new")
                }
            else:
                checks = amparo.checks
                crawler = Crawler(
                    service.context.fetcher,
                    replace(CrawlLimits.from_settings(settings), concurrency=args.concurrency),
                )
                verified = 0

                def handle(_url: str, fetched: Fetched) -> bool:
                    hashes = checks.hash_bytes(fetched.content)
                    return bool(checks.match_hashes([hashes])[0].matches)

                for url in urls:
                    result = crawler.crawl(url, handle)
                    images_done += sum(1 for m in result.media if m.ok)
                    verified += sum(1 for m in result.media if m.result)
                    errors += result.media_errors + (result.page_error is not None)
                statuses = {}
            wall = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            stop.set()
    server.kill()

    print()
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    print(f"mode {args.mode}, concurrency {args.concurrency}, statuses {statuses}")
    print(
        "| pages | images hashed | verified | errors | s | pages/s | images/s | CPU s | peak RSS |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.pages:,} | {images_done:,} | {verified:,} | {errors} | {wall:.1f} | "
        f"{args.pages / wall:.1f} | {images_done / wall:.1f} | {cpu:.1f} | "
        f"{peak_rss_mib():.0f} MiB (before {rss_before:.0f}, max sampled "
        f"{max(samples, default=rss_before):.0f}) |"
    )


if __name__ == "__main__":
    main()
