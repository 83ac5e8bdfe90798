"""Bulk import speed: a hash list of N random MD5 entries (CSV with a category) imported into
a new bank, on SQLite and, when reachable, PostgreSQL; then the same list again (all updates).

    python benchmarks/import_bench.py [--entries 1000000] [--postgres URL]

Synthetic hashes only. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import io
import random
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from amparo.app import Amparo
from amparo.banks.model import BankInfo
from amparo.config import load_settings


def listing(n: int) -> str:
    rng = random.Random(7)
    rows = ["signal_type,signal,category"]
    rows += [f"md5,{rng.getrandbits(128):032x},c{i % 4}" for i in range(n)]
    return "\n".join(rows) + "\n"


def run(url: str, data: str, label: str) -> list[str]:
    home = Path(tempfile.mkdtemp(prefix="amparo-import-"))
    amparo = Amparo(load_settings(env={}, overrides={"home": home, "database_url": url}))
    amparo.banks.create(BankInfo(name="bench"))
    rows = []
    for attempt in ("new bank", "same list again"):
        start = time.perf_counter()
        report = amparo.banks.import_entries("bench", io.StringIO(data), "csv")
        seconds = time.perf_counter() - start
        rows.append(
            f"| {label} | {attempt} | {report.read:,} | {report.added:,} | {report.updated:,} "
            f"| {seconds:.1f} | {report.read / seconds:,.0f} |"
        )
    amparo.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    data = listing(args.entries)
    rows = run("", data, "SQLite")
    schema = "bench_" + uuid.uuid4().hex[:8]
    admin = create_engine(args.postgres)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # the PostgreSQL half is optional
        print(f"PostgreSQL skipped: {exc}")
    else:
        url = make_url(args.postgres).update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            rows += run(url.render_as_string(hide_password=False), data, "PostgreSQL")
        finally:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    print("| database | import | read | added | updated | seconds | entries/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
