"""The recipient's side of a report package: a package made by `amparo reports package` from
a real confirmed case (a synthetic photo matched, preserved, reviewed, reported) is verified
and opened by `amparo package` with no Amparo home, and refused, naming the file, once one
byte of it is changed."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from test_api_support import QUIET, make_keys
from typer.testing import CliRunner

from amparo.api import create_app
from amparo.app import Amparo
from amparo.banks.model import BankInfo
from amparo.cli.main import app
from amparo.config import load_settings
from amparo.reports import package as package_module
from amparo.reports import package_verify
from amparo.store import audit

pytestmark = [QUIET, pytest.mark.slow]


@dataclass(frozen=True)
class Built:
    zip: Path
    plain: Path
    key_file: Path
    photo: bytes
    report_id: int
    manifest_sha256: str


def _photo(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:480, 0:640].astype(np.float32)
    channels = [
        127
        + 120
        * np.sin(x / rng.uniform(20, 90) + rng.uniform(0, 6))
        * np.cos(y / rng.uniform(20, 90) + rng.uniform(0, 6))
        for _ in range(3)
    ]
    pixels = np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=92)
    return out.getvalue()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """One confirmed case with one preserved photo, packaged through the CLI."""
    root = tmp_path_factory.mktemp("sender")
    config = root / "amparo.toml"
    config.write_text('reporter_org_name = "Example Platform"\nreporter_email = "s@example.org"\n')
    settings = load_settings(config_file=config, env={}, overrides={"home": root / "home"})
    keys = {k: {"Authorization": f"Bearer {v}"} for k, v in make_keys(settings).items()}
    photo = _photo(7)
    with TestClient(create_app(settings)) as tc:
        amparo: Amparo = tc.app.state.service.amparo
        amparo.banks.create(BankInfo(name="known"))
        amparo.banks.add_media("known", photo, category="A1")
        rule = {
            "name": "review-and-report",
            "conditions": {"banks": ["known"], "max_distance": 31},
            "actions": [{"type": "review"}, {"type": "report"}],
        }
        assert tc.post("/v1/rules", json=rule, headers=keys["curator"]).status_code == 201
        hit = tc.post(
            "/v1/match", files={"file": ("holiday.jpg", photo)},
            params={"account_id": "acct-9", "upload_id": "up-1"}, headers=keys["matcher"],
        )  # fmt: skip
        assert hit.status_code == 200, hit.text
        (case,) = tc.get("/v1/cases", headers=keys["reviewer"]).json()
        (item,) = tc.get(f"/v1/cases/{case['id']}", headers=keys["reviewer"]).json()["items"]
        amparo.cases.record_reveal(item["id"], "reviewer")
        decided = tc.post(
            f"/v1/cases/items/{item['id']}/decision",
            json={"kind": "confirm", "classification": "A1"}, headers=keys["reviewer"],
        )  # fmt: skip
        assert decided.status_code == 200, decided.text
        (draft,) = tc.get("/v1/reports", headers=keys["auditor"]).json()
        built = tc.post(f"/v1/reports/{draft['id']}/build", headers=keys["reviewer"])
        assert built.status_code == 200, built.text
    out = root / "report.zip"
    args = [
        "--home",
        str(settings.home),
        "--config",
        str(config),
        "reports",
        "package",
        str(draft["id"]),
        "-o",
        str(out),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    found = re.search(r"package key \(shown once[^)]*\):\s*([0-9a-f]{64})", result.stderr)
    assert found, result.stderr
    shown = re.search(r"manifest.json SHA-256[^:]*:\s*([0-9a-f]{64})", result.stderr)
    assert shown, result.stderr
    key_file = root / "report.key"
    key_file.write_text(f"\n  {found.group(1)}  \n")  # as pasted from a message
    plain = root / "plain.zip"
    result = CliRunner().invoke(app, [*args[:-1], str(plain), "--plain"])
    assert result.exit_code == 0, result.output
    yield Built(out, plain, key_file, photo, draft["id"], shown.group(1))


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["package", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def _rewrite(src: Path, dst: Path, change: Callable[[str, bytes], bytes]) -> None:
    """Copy the zip member by member through ``change`` (a tamperer who rebuilds the zip)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in zin.namelist():
            zout.writestr(name, change(name, zin.read(name)))


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def test_open_round_trips_a_package_made_by_reports_package(built: Built, tmp_path: Path) -> None:
    code, out, err = _run("verify", built.zip, "--key", built.key_file)
    assert code == 0, err
    assert "custody chain of" in out and "intact" in out
    assert "1 file(s) decrypted with the key" in out
    assert f"manifest.json SHA-256 {built.manifest_sha256}" in out  # as the sender was told

    dest = tmp_path / "opened"
    code, out, err = _run("open", built.zip, "--key", built.key_file, "--out", dest)
    assert code == 0, err
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    assert stat.S_IMODE((dest / "files").stat().st_mode) == 0o700
    sha = hashlib.sha256(built.photo).hexdigest()
    (opened,) = (dest / "files").iterdir()
    assert re.fullmatch(rf"[0-9]+-{sha}\.jpg", opened.name)
    assert opened.read_bytes() == built.photo
    for path in dest.rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert {p.name for p in dest.iterdir()} == {
        "files", "manifest.json", "report.json", "report.xml", "custody.jsonl",
    }  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["opened"]  # no temporary folder left

    code, out, _ = _run("verify", built.zip, "--json")
    summary = json.loads(out)
    assert code == 0 and summary["ok"] and summary["decrypted"] == 0 and summary["files"] == 1
    assert summary["custody"]["entries"] >= 4


def test_the_custody_hash_is_the_audit_chains(built: Built) -> None:
    """The recipient's restated hash and constants agree with the store's."""
    assert package_verify.PACKAGE_FORMAT == package_module.PACKAGE_FORMAT
    assert package_verify.PACKAGE_VERSION == package_module.PACKAGE_VERSION
    assert package_verify.NONCE_BYTES == package_module.NONCE_BYTES
    assert package_verify.GENESIS == audit.GENESIS
    lines = _members(built.zip)["custody.jsonl"].decode().splitlines()
    for line in lines:
        data = json.loads(line)
        entry = audit.ChainEntry.from_json(data)
        assert package_verify.entry_hash(data) == entry.recompute() == data["hash"]


def _refused(path: Path, key: Path, tmp_path: Path, names: str) -> None:
    """`verify --key` and `open` both exit 2 naming ``names``; `open` writes nothing."""
    code, _, err = _run("verify", path, "--key", key)
    assert code == 2 and names in err, err
    dest = tmp_path / "out"
    code, _, err = _run("open", path, "--key", key, "--out", dest)
    assert code == 2 and names in err, err
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in tmp_path.iterdir() if not p.name.startswith(".out.")
    )


def test_one_byte_changed_in_the_zip_is_refused_naming_the_file(
    built: Built, tmp_path: Path
) -> None:
    """A byte flipped where it lies in the zip: the file's own data region."""
    with zipfile.ZipFile(built.zip) as zf:
        (info,) = [i for i in zf.infolist() if i.filename.startswith("files/")]
    raw = built.zip.read_bytes()
    header = 30 + len(info.filename.encode()) + len(info.extra)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(_flip(raw, info.header_offset + header + info.compress_size // 2))
    _refused(bad, built.key_file, tmp_path, info.filename)


@pytest.mark.parametrize("member", ["files/", "report.json", "custody.jsonl", "manifest.json"])
def test_one_byte_changed_in_a_member_is_refused_naming_it(
    built: Built, tmp_path: Path, member: str
) -> None:
    """The zip rebuilt with one byte of one member changed (CRCs valid)."""
    name = next(n for n in _members(built.zip) if n.startswith(member))

    def change(n: str, data: bytes) -> bytes:
        return _flip(data, len(data) // 2) if n == name else data

    bad = tmp_path / "bad.zip"
    _rewrite(built.zip, bad, change)
    _refused(bad, built.key_file, tmp_path, name)


def test_a_rewritten_custody_line_is_found_even_with_a_matching_manifest(
    built: Built, tmp_path: Path
) -> None:
    """A tamperer who also fixes the manifest's hash: the chain names the line."""
    members = _members(built.zip)
    lines = members["custody.jsonl"].decode().splitlines(keepends=True)
    entry = json.loads(lines[1])
    entry["actor"] = "someone-else"
    lines[1] = json.dumps(entry, sort_keys=True) + "\n"
    custody = "".join(lines).encode()
    manifest = json.loads(members["manifest.json"])
    manifest["members"]["custody.jsonl"] = hashlib.sha256(custody).hexdigest()
    replaced = {"custody.jsonl": custody, "manifest.json": json.dumps(manifest).encode()}
    bad = tmp_path / "bad.zip"
    _rewrite(built.zip, bad, lambda n, data: replaced.get(n, data))
    _refused(bad, built.key_file, tmp_path, "custody.jsonl line 2")


def test_a_wrong_or_malformed_key_is_refused(built: Built, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.key"
    wrong.write_text("ab" * 32)
    _refused(built.zip, wrong, tmp_path, "not this package's key")
    malformed = tmp_path / "bad.key"
    malformed.write_text("secret-" + "cd" * 20)
    code, _, err = _run("verify", built.zip, "--key", malformed)
    assert code == 2 and "does not hold a package key" in err
    assert "cd" * 20 not in err  # a key file's content is never echoed


def test_a_member_name_leaving_the_folder_is_refused(built: Built, tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    shutil.copy(built.zip, bad)
    with zipfile.ZipFile(bad, "a") as zf:
        zf.writestr("../escape.txt", b"x")
    _refused(bad, built.key_file, tmp_path, "'../escape.txt'")
    assert not (tmp_path.parent / "escape.txt").exists()


def test_a_zip_bomb_and_a_duplicate_name_are_refused(built: Built, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    shutil.copy(built.zip, bomb)
    with zipfile.ZipFile(bomb, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("report.xml.pad", b"\0" * (64 * 2**20))
    _refused(bomb, built.key_file, tmp_path, "zip bomb")
    bomb.unlink()
    twice = tmp_path / "twice.zip"
    shutil.copy(built.zip, twice)
    with pytest.warns(UserWarning), zipfile.ZipFile(twice, "a") as zf:
        zf.writestr("report.json", b"{}")
    _refused(twice, built.key_file, tmp_path, "report.json: appears twice")


def test_open_refuses_a_folder_that_is_not_empty(built: Built, tmp_path: Path) -> None:
    dest = tmp_path / "case"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    code, _, err = _run("open", built.zip, "--key", built.key_file, "--out", dest)
    assert code == 2 and "not an empty folder" in err
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o755)
    code, _, err = _run("open", built.zip, "--key", built.key_file, "--out", empty)
    assert code == 0, err
    assert stat.S_IMODE(empty.stat().st_mode) == 0o700


def test_an_encrypted_package_needs_the_key_to_open(built: Built, tmp_path: Path) -> None:
    code, _, err = _run("open", built.zip, "--out", tmp_path / "out")
    assert code == 2 and "--key" in err
    assert list(tmp_path.iterdir()) == []


def test_a_recipient_needs_no_amparo_home(built: Built, tmp_path: Path) -> None:
    """`amparo package` as its own process in an empty folder, no settings: nothing but the
    opened folder appears (no amparo-data, no database)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPARO_")}
    env["HOME"] = str(tmp_path)
    command = [sys.executable, "-m", "amparo.cli.main", "package", "open", str(built.zip)]
    done = subprocess.run(
        [*command, "--key", str(built.key_file), "--out", "case"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case"]


def test_a_plain_package_opens_without_a_key(built: Built, tmp_path: Path) -> None:
    code, out, err = _run("open", built.plain, "--out", tmp_path / "plain")
    assert code == 0, err
    assert "not encrypted" in out
    (opened,) = (tmp_path / "plain" / "files").iterdir()
    assert opened.read_bytes() == built.photo and opened.suffix == ".jpg"


def test_an_emptied_custody_log_is_refused(built: Built, tmp_path: Path) -> None:
    members = _members(built.zip)
    manifest = json.loads(members["manifest.json"])
    manifest["members"]["custody.jsonl"] = hashlib.sha256(b"").hexdigest()
    replaced = {"custody.jsonl": b"", "manifest.json": json.dumps(manifest).encode()}
    bad = tmp_path / "bad.zip"
    _rewrite(built.zip, bad, lambda n, data: replaced.get(n, data))
    _refused(bad, built.key_file, tmp_path, "custody.jsonl: holds no entry")
