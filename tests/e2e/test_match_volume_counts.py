"""Match volume from the entry points: a scan counts its matched files with source ``scan``,
an API lookup with source ``api`` (HMA's lookups too, once each), and the console's "finds per
bank" chart and by-source table read the stored counts. Synthetic images only."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from test_api_support import QUIET, Api, sqlite_api
from test_console_pages import MD5, core, sign_in, with_bank
from typer.testing import CliRunner

from amparo import Amparo, BankInfo, load_settings
from amparo.banks.model import EntryRecord
from amparo.cli.main import app
from amparo.scan import ScanOptions, scan_paths
from media_support import synthetic_jpeg

__all__ = ["sqlite_api"]
pytestmark = QUIET
EPOCH = date(2000, 1, 1)


def volume(amparo: Amparo) -> list[tuple[str, str, int]]:
    return [(b, s, n) for _, b, s, n in amparo.tally.repository.since(EPOCH)]


def test_a_scan_counts_its_matched_files_with_source_scan(tmp_path: Path) -> None:
    known, other = synthetic_jpeg(21, 128), synthetic_jpeg(22, 128)
    root = tmp_path / "evidence"
    (root / "sub").mkdir(parents=True)
    (root / "a.jpg").write_bytes(known)
    (root / "b.jpg").write_bytes(known)
    (root / "sub" / "c.jpg").write_bytes(known)
    (root / "unrelated.jpg").write_bytes(other)
    settings = load_settings(env={}, overrides={"home": tmp_path / "home"})
    with Amparo(settings) as amparo:
        amparo.banks.create(BankInfo(name="known"))
        amparo.banks.add_media("known", known)
        result = scan_paths(
            amparo, [root], ScanOptions(workers=1, journal=tmp_path / "scan.journal")
        )
        assert len({m.path for m in result.matches}) == 3
        # Stored at the end of the scan, before the installation closes.
        assert volume(amparo) == [("known", "scan", 3)]


def test_api_lookups_count_with_source_api_and_the_console_charts_them(sqlite_api: Api) -> None:
    api, c = sqlite_api, sqlite_api.client
    with_bank(api)
    matcher = api.as_("matcher")
    for _ in range(2):
        r = c.get("/v1/lookup", params={"signal_type": "md5", "signal": MD5}, headers=matcher)
        assert r.is_success and r.json()["matches"]
    r = c.get("/v1/lookup", params={"signal_type": "md5", "signal": "0" * 32}, headers=matcher)
    assert r.is_success and not r.json()["matches"]
    r = c.get("/m/raw_lookup", params={"signal_type": "md5", "signal": MD5}, headers=matcher)
    assert r.is_success and r.json()["matches"]
    amparo = core(api)
    assert volume(amparo) == []  # counted in memory: no write per lookup
    amparo.flush_counts()
    assert volume(amparo) == [("known", "api", 3)]
    amparo.tally.add([[m] for m in amparo.checks.match_signals([("md5", MD5)])[0]], "cli")
    amparo.flush_counts()
    sign_in(c, api.keys["curator"])
    page = c.get("/console").text
    assert 'id="finds-0"' in page and "Finds per day in bank known" in page
    assert 'id="no-finds"' not in page and 'id="no-reviewed"' in page  # no rule sent any
    table = re.search(r'<table id="finds-by-source">.*?</table>', page, re.S)
    assert table is not None
    assert re.search(r'<th scope="col">api</th><th scope="col">cli</th>', table.group(0))
    assert re.search(
        r'<th scope="row">known</th><td class="num">3</td><td class="num">1</td>', table.group(0)
    )


def test_amparo_match_counts_with_source_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        amparo.banks.create(BankInfo(name="known"))
        amparo.banks.add_entries("known", [EntryRecord("md5", MD5)])
    result = CliRunner().invoke(
        app, ["--home", str(home), "match", "-"], input=f"{MD5}\n{'0' * 32}\n{MD5}\n"
    )
    assert result.exit_code == 1, result.output  # 1: something matched
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        assert volume(amparo) == [("known", "cli", 2)]
