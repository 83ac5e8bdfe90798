"""Load a PDQ hash list into Meta's HMA (Open Media Match) PostgreSQL database as one bank.

The same file ``benchmarks/lookup_load.py --hashes FILE`` writes and loads into Amparo, so
both services answer from the same hashes. Rows go straight in with COPY (HMA's own
``bank_add_content`` adds one row at a time); the bank content ids are the line numbers
(1-based), which ``lookup_load.py --check-ids line`` relies on for its correctness check.
HMA then needs its index built: ``flask --app OpenMediaMatch.app build_indices``.

    python benchmarks/hma_load_bank.py --hashes /work/hma-run/hashes-1m.txt \
        --db postgresql://postgres@127.0.0.1:5432/hma --bank BENCH

Needs psycopg 3 (Amparo's venv has it). The database must already have HMA's schema
(``flask db upgrade``); an existing bank of that name is replaced.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import psycopg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hashes", type=Path, required=True, help="one 64-hex PDQ a line")
    parser.add_argument("--db", default="postgresql://postgres@127.0.0.1:5432/hma")
    parser.add_argument("--bank", default="BENCH", help="HMA bank names are UPPER_SNAKE")
    args = parser.parse_args()
    start = time.perf_counter()
    with psycopg.connect(args.db) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM bank_content")
        row = cur.fetchone()
        if row and row[0]:
            cur.execute("DELETE FROM bank WHERE name = %s", (args.bank,))
            cur.execute("SELECT count(*) FROM bank_content")
            row = cur.fetchone()
            if row and row[0]:
                sys.exit("other banks hold content: load into an empty HMA database")
        cur.execute(
            "INSERT INTO bank (name, enabled_ratio) VALUES (%s, 1.0) RETURNING id", (args.bank,)
        )
        bank_row = cur.fetchone()
        assert bank_row is not None
        bank_id = bank_row[0]
        count = 0
        contents = "COPY bank_content (id, bank_id, disable_until_ts) FROM STDIN"
        with cur.copy(contents) as copy, args.hashes.open() as f:
            for count, _line in enumerate(f, 1):
                copy.write_row((count, bank_id, 1))  # 1 = BankContentConfig.ENABLED
        signals = "COPY content_signal (content_id, signal_type, signal_val) FROM STDIN"
        with cur.copy(signals) as copy, args.hashes.open() as f:
            for i, line in enumerate(f, 1):
                copy.write_row((i, "pdq", line.strip().lower()))
        cur.execute("SELECT setval('bank_content_id_seq', %s)", (count,))
    print(f"loaded {count:,} hashes into bank {args.bank} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
