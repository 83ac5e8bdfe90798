"""A bulk import streams: Python's peak memory does not grow with the list's length.

Issue #19: lists of 100 million hashes are imported with ``amparo bank import``. The file
is read line by line and passes through the staging table in batches (``Staging.load``), so
only a batch is ever held in Python. Measured with tracemalloc (allocations, not timing) on
two generated csv files, one six times longer than the other.
"""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

import pytest

from amparo.app import Amparo
from amparo.banks.model import BankInfo
from amparo.config import Settings
from amparo.store.staging import BATCH


def write_csv(path: Path, lines: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w") as fh:
        fh.write("signal_type,signal,category\n")
        for _ in range(lines):
            fh.write(f"pdq,{rng.getrandbits(256):064x},csam\n")


def peak_import_mb(amparo: Amparo, path: Path, bank: str) -> float:
    amparo.banks.create(BankInfo(name=bank))
    tracemalloc.start()
    try:
        with path.open() as stream:
            report = amparo.banks.import_entries(bank, stream, "csv", source_name=path.name)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.added == report.read
    return peak / 2**20


@pytest.mark.slow
def test_import_peak_memory_does_not_grow_with_the_list(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    write_csv(small, BATCH, seed=1)
    write_csv(large, 6 * BATCH, seed=2)
    with Amparo(sqlite_settings) as amparo:
        peak_small = peak_import_mb(amparo, small, "small")
        peak_large = peak_import_mb(amparo, large, "large")
    # Holding the large list would take over 6x the small one's peak (each entry is a
    # record of several strings); streaming keeps both at about one batch.
    assert peak_large < 1.5 * peak_small + 2.0, (peak_small, peak_large)
