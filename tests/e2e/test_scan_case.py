"""``amparo scan --case ID``: the matches also become a VICS JSON 2.0 case that forensic tools
import, and that Amparo's own VICS reader reads back. Synthetic images only."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amparo import Amparo, BankInfo, load_settings
from amparo.banks.formats import iter_entries
from amparo.cli.main import app
from media_support import synthetic_jpeg

CSAM_LIKE = synthetic_jpeg(11)  # stands in for a known image (benign noise)
EXPLOITATIVE_LIKE = synthetic_jpeg(12)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        amparo.banks.create(BankInfo(name="known"))
        amparo.banks.add_media("known", CSAM_LIKE, category="csam")
        amparo.banks.add_media("known", EXPLOITATIVE_LIKE, category="exploitative")
    return home


@pytest.fixture
def evidence(tmp_path: Path) -> Path:
    root = tmp_path / "evidence"
    (root / "sub").mkdir(parents=True)
    (root / "a.jpg").write_bytes(CSAM_LIKE)
    (root / "sub" / "copy.jpg").write_bytes(CSAM_LIKE)
    (root / "b.jpg").write_bytes(EXPLOITATIVE_LIKE)
    (root / "other.jpg").write_bytes(synthetic_jpeg(13))
    with zipfile.ZipFile(root / "c.zip", "w") as zf:
        zf.writestr("in/b.jpg", EXPLOITATIVE_LIKE)
    return root


def test_scan_writes_a_vics_case_that_reimports(home: Path, evidence: Path, tmp_path: Path):
    report = tmp_path / "out" / "report.jsonl"
    result = CliRunner().invoke(
        app,
        [
            *("--home", str(home), "scan", "-j", "1", str(evidence), "-o", str(report)),
            *("--case", "OP-2026-7"),
        ],
    )
    assert result.exit_code == 1, result.output
    case_file = tmp_path / "out" / "OP-2026-7.vics.json"
    assert "OP-2026-7" in result.stderr and case_file.is_file()
    doc = json.loads(case_file.read_text())
    assert doc["@odata.context"].endswith("$metadata#Cases")
    [case] = doc["value"]
    assert case["CaseID"] == "OP-2026-7"
    media = {m["MD5"].lower(): m for m in case["Media"]}
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        csam_md5 = amparo.checks.hash_bytes(CSAM_LIKE).md5
        expl = amparo.checks.hash_bytes(EXPLOITATIVE_LIKE)
    assert set(media) == {csam_md5, expl.md5}  # the unmatched file is not in the case
    assert media[csam_md5]["Category"] == 1 and media[expl.md5]["Category"] == 2
    paths = {f["FilePath"] for f in media[csam_md5]["MediaFiles"]}
    assert paths == {f"{evidence}/a.jpg", f"{evidence}/sub/copy.jpg"}
    on_disk = next(f for f in media[csam_md5]["MediaFiles"] if f["FileName"] == "a.jpg")
    assert on_disk["FileSize"] == len(CSAM_LIKE) and on_disk["Modified"].endswith("Z")
    member = next(f for f in media[expl.md5]["MediaFiles"] if "!" in f["FilePath"])
    assert member["FileName"] == "b.jpg" and member["FilePath"] == f"{evidence}/c.zip!in/b.jpg"
    assert media[expl.md5]["PDQ"] == expl.pdq and len(media[expl.md5]["SHA256"]) == 64

    # Amparo's own VICS reader takes the case back, hashes and categories intact.
    with case_file.open(encoding="utf-8") as fh:
        records = list(iter_entries(fh, "vics"))
    read_back = {(r.signal_type, r.signal): r.category for r in records}
    assert read_back[("md5", csam_md5)] == "csam"
    assert read_back[("md5", expl.md5)] == "exploitative"
    assert read_back[("pdq", expl.pdq)] == "exploitative"
    assert {t for t, _ in read_back} == {"md5", "sha1", "sha256", "pdq"}


def test_case_output_path_and_bad_case_id(home: Path, evidence: Path, tmp_path: Path):
    out = tmp_path / "cases" / "x.json"
    args = ["--home", str(home), "scan", "-j", "1", str(evidence / "a.jpg")]
    result = CliRunner().invoke(app, [*args, "--case", "K1", "--case-output", str(out)])
    assert result.exit_code == 1 and json.loads(out.read_text())["value"][0]["CaseID"] == "K1"
    bad = CliRunner().invoke(app, [*args, "--case", "../etc/passwd"])
    assert bad.exit_code == 2 and "invalid case id" in bad.stderr
