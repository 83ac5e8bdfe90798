"""`amparo index status|verify|compact|rebuild`, and the on-disk index across processes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from amparo import Amparo, BankInfo, EntryRecord, load_settings
from amparo.cli.main import app


def _entries(n: int) -> list[EntryRecord]:
    out = []
    for i in range(n):
        out.append(EntryRecord("pdq", f"{(i * 0x9E3779B97F4A7C15) % 2**256:064x}"))
        out.append(EntryRecord("md5", f"{i:032x}"))
    return out


def test_status_verify_compact_rebuild(tmp_path: Path) -> None:
    home = tmp_path / "home"
    amparo = Amparo(load_settings(env={}, overrides={"home": home}))
    amparo.banks.create(BankInfo(name="b"))
    amparo.banks.add_entries("b", _entries(200))
    amparo.checks.match_signals([("md5", f"{1:032x}")])  # opens (builds) the index
    amparo.banks.remove_signals("b", [("md5", f"{2:032x}")])
    amparo.close()

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, ["--home", str(home), "index", *args])

    status = json.loads(run("status", "--json").output)
    kinds = {k["kind"]: k for k in status["indexes"]}
    assert kinds["pdq"]["entries"] == 200 and kinds["md5"]["entries"] == 199
    assert kinds["md5"]["checkpoint"] == status["database_position"]
    assert run("verify").exit_code == 0
    assert run("compact").exit_code == 0
    status = json.loads(run("status", "--json").output)
    assert {k["kind"]: k["tombstones"] for k in status["indexes"]}["md5"] == 0

    # A damaged or deleted index is rebuilt from the database, which stays the source of truth.
    index_dir = Path(status["directory"])
    shutil.rmtree(index_dir / "md5")
    assert run("verify").exit_code == 0
    for segment in (index_dir / "pdq").glob("*.seg"):
        segment.write_bytes(b"garbage")
    assert run("rebuild").exit_code == 0
    assert run("verify").exit_code == 0


def test_verify_reports_a_difference(tmp_path: Path) -> None:
    home = tmp_path / "home"
    amparo = Amparo(load_settings(env={}, overrides={"home": home}))
    amparo.banks.create(BankInfo(name="b"))
    amparo.banks.add_entries("b", _entries(20))
    indexes = amparo.matcher.indexes
    # Drop an entry behind the change log's back: verify must notice.
    victim = int(indexes.pdq.items()[0][0])
    indexes.pdq.apply(remove_ids=np.array([victim]))
    differences = indexes.verify()
    amparo.close()
    assert differences and differences[0].missing == [victim]


def test_processes_share_the_index_files(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"home": tmp_path / "home"})
    first = Amparo(settings)
    first.banks.create(BankInfo(name="b"))
    first.banks.add_entries("b", _entries(50))
    assert first.checks.match_signals([("md5", f"{3:032x}")])[0]
    first.matcher.indexes.compact()
    second = Amparo(settings)
    # The second process maps the first one's segments: nothing to rebuild.
    second.matcher.refresh()
    assert second.matcher.indexes.status()[0].segments == 1
    assert second.checks.match_signals([("md5", f"{3:032x}")])[0]
    second.banks.add_entries("b", [EntryRecord("md5", "f" * 32)])
    second.matcher.indexes.compact()
    first.matcher.refresh()
    assert first.checks.match_signals([("md5", "f" * 32)])[0]
    first.close()
    second.close()
