"""A hostile report package: crafted zips whose manifest, custody log and member names are
built to break the recipient's terminal or `amparo package` itself. Each is refused (exit
2, every problem named) or printed harmlessly; never "unexpected error (a bug in amparo)"."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from amparo.cli.main import app
from amparo.reports.package_verify import GENESIS, PACKAGE_FORMAT, PACKAGE_VERSION, entry_hash

ESC = "\x1b]0;OWNED\x07\x1b[31m"
PHOTO = b"synthetic bytes standing in for a preserved file"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _custody() -> bytes:
    entry: dict[str, Any] = {
        "kind": "entry",
        "seq": 1,
        "at": "2026-01-01T00:00:00.000000Z",
        "actor": "reviewer",
        "action": "report.packaged",
        "target": "report:1",
        "details": "{}",
        "prev_hash": GENESIS,
    }
    entry["hash"] = entry_hash(entry)
    return (json.dumps(entry) + "\n").encode()


def _build(
    path: Path,
    *,
    custody: bytes | None = None,
    manifest: dict[str, Any] | None = None,
    raw_manifest: bytes | None = None,
    extra: dict[str, bytes] | None = None,
) -> Path:
    """A plain (unencrypted) package, valid unless an argument makes it otherwise."""
    file_member = f"files/1-{_sha(PHOTO)}"
    members = {file_member: PHOTO, "custody.jsonl": custody if custody is not None else _custody()}
    members.update(extra or {})
    body: dict[str, Any] = {
        "format": PACKAGE_FORMAT,
        "version": PACKAGE_VERSION,
        "report_id": 1,
        "case_id": 1,
        "created_at": "2026-01-01T00:00:00Z",
        "encryption": None,
        "members": {name: _sha(data) for name, data in members.items()},
        "files": [{"member": file_member, "item_id": 1, "sha256": _sha(PHOTO)}],
        "missing_items": [],
    }
    body.update(manifest or {})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("manifest.json", raw_manifest or json.dumps(body).encode())
    return path


def _run(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["package", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def _refused(path: Path, tmp_path: Path, says: str) -> None:
    for args in (("verify", path), ("open", path, "--out", tmp_path / "out")):
        code, out, err = _run(*args)
        assert code == 2, (args, out, err)
        assert says in err, err
        assert "a bug in amparo" not in err + out
        assert "\x1b" not in err + out
    assert not (tmp_path / "out").exists()


def test_the_crafted_package_itself_is_intact(tmp_path: Path) -> None:
    path = _build(tmp_path / "ok.zip")
    code, _out, err = _run("open", path, "--out", tmp_path / "out")
    assert code == 0, err
    assert (tmp_path / "out" / f"files/1-{_sha(PHOTO)}").read_bytes() == PHOTO


def test_hostile_manifest_fields_reach_the_terminal_as_text(tmp_path: Path) -> None:
    fields = {"report_id": f"1{ESC}", "case_id": ESC, "created_at": ESC, "missing_items": [ESC]}
    path = _build(tmp_path / "p.zip", manifest=fields)
    for args in (("verify", path), ("open", path, "--out", tmp_path / "out")):
        code, out, err = _run(*args)
        assert code == 0, err
        assert "\x1b" not in out + err and "\x07" not in out + err
        assert "\\x1b]0;OWNED\\x07" in out


def test_hostile_member_names_are_named_without_their_escapes(tmp_path: Path) -> None:
    path = _build(tmp_path / "p.zip", extra={f"report{ESC}.xml": b"<x/>"})
    _refused(path, tmp_path, "report\\x1b]0;OWNED\\x07\\x1b[31m.xml")


def test_a_manifest_nested_too_deep_is_refused(tmp_path: Path) -> None:
    path = _build(tmp_path / "p.zip", raw_manifest=b"[" * 200_000)
    _refused(path, tmp_path, "manifest.json: not JSON")


def test_a_manifest_with_a_huge_integer_is_refused(tmp_path: Path) -> None:
    path = _build(tmp_path / "p.zip", raw_manifest=b'{"version": ' + b"9" * 5000 + b"}")
    _refused(path, tmp_path, "manifest.json: not JSON")


def test_custody_lines_nested_too_deep_or_with_a_huge_seq_are_refused(tmp_path: Path) -> None:
    custody = _custody() + b"[" * 200_000 + b"\n" + b'{"seq": ' + b"1" * 5000 + b"}\n"
    path = _build(tmp_path / "p.zip", custody=custody)
    _refused(path, tmp_path, "custody.jsonl line 2: not a chain entry")
    _refused(path, tmp_path, "custody.jsonl line 3: not a chain entry")


def test_a_password_protected_member_is_refused(tmp_path: Path) -> None:
    plain = _build(tmp_path / "plain.zip")
    path = tmp_path / "p.zip"
    # Set the encryption flag (bit 0) of custody.jsonl in both its headers: zipfile would
    # then ask for a password instead of reading it.
    data = bytearray(plain.read_bytes())
    name = b"custody.jsonl"
    for signature, flag_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        start = 0
        while (at := data.find(signature, start)) >= 0:
            if data[at + name_at : at + name_at + len(name)] == name:
                data[at + flag_at] |= 0x01
            start = at + 4
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("custody.jsonl").flag_bits & 0x1
    _refused(path, tmp_path, "custody.jsonl: password-protected")


def test_a_member_listed_twice_in_files_is_refused(tmp_path: Path) -> None:
    entry = {"member": f"files/1-{_sha(PHOTO)}", "item_id": 1, "sha256": _sha(PHOTO)}
    path = _build(tmp_path / "p.zip", manifest={"files": [entry, entry]})
    _refused(path, tmp_path, "files entry 2 repeats")
