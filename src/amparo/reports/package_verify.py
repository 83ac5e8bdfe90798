"""Checking a report package as its recipient: no database, no Amparo home, no settings.

A hotline or police unit receives the zip that ``amparo reports package`` wrote (see
:mod:`amparo.reports.package`) and, by another channel, its key. :func:`verify_package`
checks, in this order, and collects every problem instead of stopping at the first:

1. the zip itself: readable, no member name that could escape a folder (absolute, ``..``,
   backslashes, drive letters), no name twice, sizes and compression ratios bounded (a zip
   bomb is refused before anything is inflated);
2. ``manifest.json``: this format and version;
3. every member's SHA-256 equals the manifest's, and no member is missing from or outside it;
4. ``custody.jsonl``: each entry's chain hash recomputed from its fields, ``seq`` increasing,
   and each link (``prev_hash``) where two entries are consecutive in the sender's chain;
5. with the key: each encrypted file decrypts (its GCM tag checks, under its member name) and
   its plaintext's SHA-256 equals the original's in the manifest.

This module imports nothing of the store, so it runs from a plain ``pip install amparo``.
The format constants are restated here rather than imported from
:mod:`amparo.reports.package` (which pulls in SQLAlchemy); tests check that both agree. The
chain hash is the audit log's own (:func:`amparo.audit_chain.line_hash`, pure).
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from amparo.audit_chain import line_hash
from amparo.errors import InputError
from amparo.reports.package_result import Problem, Verification

PACKAGE_FORMAT = "amparo-report-package"
PACKAGE_VERSION = 1
NONCE_BYTES = 12
GENESIS = "0" * 64
METADATA = ("report.xml", "report.json", "custody.jsonl")

MAX_MEMBERS = 100_000
MAX_METADATA_BYTES = 256 * 2**20
"""manifest.json, report.*, custody.jsonl: read whole, so bounded."""
MAX_FILE_BYTES = 8 * 2**30
"""One file: decrypted in memory (AES-GCM checks its tag over the whole file)."""
MAX_TOTAL_BYTES = 512 * 2**30
MAX_RATIO = 200
"""Inflated/stored size above which a member over :data:`RATIO_FLOOR` is called a bomb."""
RATIO_FLOOR = 8 * 2**20
CHUNK = 2**20

_FILE_NAME = re.compile(r"files/([0-9]{1,19})-([0-9a-f]{64})(\.enc)?")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")

_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)
"""What reading a damaged member raises (RuntimeError: an encrypted one, refused before)."""
_NOT_JSON = (UnicodeDecodeError, ValueError, RecursionError)
"""What ``json.loads`` raises on hostile text: bad JSON, an integer over Python's digit
limit (ValueError), arrays nested deeper than the interpreter's stack (RecursionError)."""

Sink = Callable[[str, bytes], None]
"""Receives each verified member's output name (relative, safe) and its bytes."""


def read_key(path: Path) -> bytes:
    """The package key from a file holding its hex text as ``amparo reports package``
    printed it. The key's text never appears in an error."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(4097)
    except OSError as exc:
        raise InputError(
            f"cannot read the key file {path}: {exc.strerror or exc}",
            hint="give the file holding the key the sender gave you",
        ) from None
    text = raw.decode("ascii", errors="replace").strip().lower()
    if len(raw) > 4096 or not _HEX64.fullmatch(text):
        raise InputError(
            f"{path} does not hold a package key",
            hint="the key is 64 hexadecimal characters, as printed by `amparo reports "
            "package`; put only it in the file",
        )
    return bytes.fromhex(text)


def verify_package(path: Path, key: bytes | None = None, sink: Sink | None = None) -> Verification:
    """Check ``path`` (see the module's docstring). ``sink``, when given, receives every
    member's verified content as it is checked (decrypted files as ``files/<item>-<sha256>``
    plus the original name's extension); the caller discards it all unless the result is
    ok. Raises :class:`InputError` only when the file is not a zip at all."""
    result = Verification(package=path.name)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(
            f"{path} is not a readable zip: {exc}",
            hint="give the .zip file written by `amparo reports package`",
        ) from None
    with zf:
        infos = _check_zip(zf, result.problems)
        if result.problems:
            return result
        manifest = _manifest(zf, infos, result)
        if manifest is None:
            return result
        members: dict[str, str] = manifest["members"]
        metadata = _hash_members(zf, infos, members, result)
        files = _file_entries(manifest, members, result)
        if "custody.jsonl" in metadata:
            _check_custody(metadata["custody.jsonl"], result)
            if not result.custody_entries:  # a package's own making is always in it
                result.problems.append(Problem("custody.jsonl", "holds no entry"))
        elif "custody.jsonl" not in members:
            result.problems.append(Problem("custody.jsonl", "not in the manifest"))
        if result.encrypted and key is not None and not result.problems:
            _decrypt_files(zf, files, key, result, sink)
        elif sink is not None and not result.problems and not result.encrypted:
            for name, original in files:
                _emit(sink, _output_name(name, original), zf.read(name), original["sha256"])
        if sink is not None and not result.problems:
            _emit(sink, "manifest.json", zf.read("manifest.json"), result.manifest_sha256)
            for name, data in metadata.items():
                sink(name, data)
    return result


def _emit(sink: Sink, name: str, data: bytes, sha256: str) -> None:
    """Hand ``data`` on only if it is still what was hashed (the zip re-read from disk)."""
    if hashlib.sha256(data).hexdigest() != sha256:
        raise InputError(f"{name} changed while it was being read", hint="copy the zip first")
    sink(name, data)


def _check_zip(zf: zipfile.ZipFile, problems: list[Problem]) -> dict[str, zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        problems.append(Problem("the zip", f"{len(infos)} members, more than {MAX_MEMBERS}"))
        return {}
    seen: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = info.filename
        parts = name.split("/")
        if (
            not name
            or name.startswith("/")
            or "\\" in name
            or "\x00" in name
            or ":" in name
            or any(p in ("", ".", "..") for p in parts)
        ):
            problems.append(Problem(repr(name), "a member name that could escape a folder"))
            continue
        if name in seen:
            problems.append(Problem(name, "appears twice in the zip"))
            continue
        if info.flag_bits & 0x1:  # zipfile would ask for a password; a package never has one
            problems.append(Problem(name, "password-protected in the zip (packages never are)"))
            continue
        seen[name] = info
        limit = MAX_FILE_BYTES if name.startswith("files/") else MAX_METADATA_BYTES
        if info.file_size > limit:
            problems.append(Problem(name, f"{info.file_size} bytes, over the {limit} limit"))
        elif info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(
            info.compress_size, 1
        ):
            problems.append(Problem(name, "compressed more than any real file is (a zip bomb)"))
        total += info.file_size
    if total > MAX_TOTAL_BYTES:
        problems.append(Problem("the zip", f"{total} bytes inflated, over {MAX_TOTAL_BYTES}"))
    return seen


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, problems: list[Problem]) -> bytes | None:
    try:
        return zf.read(info)
    except _DAMAGED as exc:
        problems.append(Problem(info.filename, f"damaged in the zip ({exc})"))
        return None


def _manifest(
    zf: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], result: Verification
) -> dict[str, Any] | None:
    problems = result.problems
    if "manifest.json" not in infos:
        problems.append(Problem("manifest.json", "missing: this is not a report package"))
        return None
    raw = _read(zf, infos["manifest.json"], problems)
    if raw is None:
        return None
    result.manifest_sha256 = hashlib.sha256(raw).hexdigest()
    try:
        manifest = json.loads(raw)
    except _NOT_JSON as exc:
        problems.append(Problem("manifest.json", f"not JSON ({type(exc).__name__}: {exc})"))
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != PACKAGE_FORMAT:
        problems.append(Problem("manifest.json", f"not an {PACKAGE_FORMAT} manifest"))
        return None
    if manifest.get("version") != PACKAGE_VERSION:
        problems.append(
            Problem(
                "manifest.json",
                f"version {manifest.get('version')!r}; this amparo reads version "
                f"{PACKAGE_VERSION} (upgrade amparo)",
            )
        )
        return None
    members = manifest.get("members")
    if not isinstance(members, dict) or not all(
        isinstance(v, str) and _HEX64.fullmatch(v) for v in members.values()
    ):
        problems.append(Problem("manifest.json", "`members` is not a map of name to SHA-256"))
        return None
    result.report_id = manifest.get("report_id")
    result.case_id = manifest.get("case_id")
    result.created_at = str(manifest.get("created_at", ""))
    result.encrypted = manifest.get("encryption") is not None
    missing = manifest.get("missing_items") or []
    result.missing_items = list(missing) if isinstance(missing, list) else [missing]
    return manifest


def _hash_members(
    zf: zipfile.ZipFile,
    infos: dict[str, zipfile.ZipInfo],
    members: dict[str, str],
    result: Verification,
) -> dict[str, bytes]:
    """Hash every member against the manifest; return the metadata members' bytes."""
    problems = result.problems
    metadata: dict[str, bytes] = {}
    for name in sorted(set(infos) - set(members) - {"manifest.json"}):
        problems.append(Problem(name, "in the zip but not in the manifest"))
    for name, expected in sorted(members.items()):
        if name not in infos:
            problems.append(Problem(name, "in the manifest but not in the zip"))
            continue
        if name not in METADATA and not _FILE_NAME.fullmatch(name):
            problems.append(Problem(name, "not a member a report package has"))
            continue
        digest = hashlib.sha256()
        kept: list[bytes] | None = [] if name in METADATA else None
        try:
            with zf.open(infos[name]) as fh:
                while chunk := fh.read(CHUNK):
                    digest.update(chunk)
                    if kept is not None:
                        kept.append(chunk)
        except _DAMAGED as exc:
            problems.append(Problem(name, f"damaged in the zip ({exc})"))
            continue
        if digest.hexdigest() != expected:
            problems.append(
                Problem(name, f"SHA-256 {digest.hexdigest()} differs from the manifest's")
            )
            continue
        result.members_hashed += 1
        if kept is not None:
            metadata[name] = b"".join(kept)
    return metadata


def _file_entries(
    manifest: dict[str, Any], members: dict[str, str], result: Verification
) -> list[tuple[str, dict[str, Any]]]:
    """The manifest's ``files``, each checked against its member's name."""
    files = manifest.get("files")
    if not isinstance(files, list):
        result.problems.append(Problem("manifest.json", "`files` is not a list"))
        return []
    out: list[tuple[str, dict[str, Any]]] = []
    listed: set[str] = set()
    suffix = ".enc" if result.encrypted else ""
    for n, f in enumerate(files, start=1):
        name = f.get("member") if isinstance(f, dict) else None
        match = _FILE_NAME.fullmatch(name) if isinstance(name, str) else None
        if (
            not isinstance(f, dict)
            or match is None
            or name not in members
            or match.group(1) != str(f.get("item_id"))
            or match.group(2) != f.get("sha256")
            or (match.group(3) or "") != suffix
        ):
            result.problems.append(
                Problem("manifest.json", f"files entry {n} does not name its member as packaged")
            )
            continue
        if name in listed:  # verify would pass it; open would write the member twice
            result.problems.append(Problem("manifest.json", f"files entry {n} repeats {name}"))
            continue
        listed.add(name)
        out.append((name, f))
    for name in members:
        if name.startswith("files/") and name not in listed:
            result.problems.append(Problem(name, "a file member with no entry in `files`"))
    result.files = len(out)
    return out


def entry_hash(entry: dict[str, Any]) -> str:
    """The chain hash of one custody line (its ``at`` is already the canonical time text)."""
    return line_hash(
        entry["seq"],
        entry["at"],
        entry["actor"],
        entry["action"],
        entry["target"],
        entry["details"],
        entry["prev_hash"],
    )


def _check_custody(raw: bytes, result: Verification) -> None:
    problems = result.problems
    prev: dict[str, Any] | None = None
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
        where = f"custody.jsonl line {number}"
        try:
            entry = json.loads(line)
            ok = (
                isinstance(entry, dict)
                and entry.get("kind") == "entry"
                and isinstance(entry.get("seq"), int)
                and all(
                    isinstance(entry.get(k), str)
                    for k in ("at", "actor", "action", "target", "details", "prev_hash", "hash")
                )
            )
        except _NOT_JSON:
            ok = False
        if not ok:
            problems.append(Problem(where, "not a chain entry"))
            prev = None
            continue
        if entry_hash(entry) != entry["hash"]:
            problems.append(Problem(where, f"seq {entry['seq']}: hash does not match its fields"))
        if prev is not None and entry["seq"] <= prev["seq"]:
            problems.append(Problem(where, f"seq {entry['seq']} does not follow {prev['seq']}"))
        elif prev is not None and entry["seq"] == prev["seq"] + 1:
            result.links_checked += 1
            if entry["prev_hash"] != prev["hash"]:
                problems.append(Problem(where, f"seq {entry['seq']}: link to the entry before"))
        elif prev is not None:
            result.gaps += 1
        if entry["seq"] == 1 and entry["prev_hash"] != GENESIS:
            problems.append(Problem(where, "seq 1 does not start the chain"))
        if prev is None and not result.custody_first:
            result.custody_first = {"seq": entry["seq"], "at": entry["at"]}
        result.custody_last = {"seq": entry["seq"], "at": entry["at"]}
        result.custody_entries += 1
        prev = entry


def _output_name(member: str, original: dict[str, Any]) -> str:
    """``files/<item>-<sha256>`` and the original name's extension when it is a plain one
    (the original name itself is the uploader's text: never a path on the recipient's disk)."""
    base = member.removesuffix(".enc")
    suffix = Path(str(original.get("original_file_name") or "")).suffix
    return base + suffix.lower() if _SAFE_SUFFIX.fullmatch(suffix) else base


def _decrypt_files(
    zf: zipfile.ZipFile,
    files: list[tuple[str, dict[str, Any]]],
    key: bytes,
    result: Verification,
    sink: Sink | None,
) -> None:
    aes = AESGCM(key)
    failed = 0
    for name, original in files:
        blob = zf.read(name)
        try:
            plain = aes.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], name.encode())
        except InvalidTag:
            failed += 1
            result.problems.append(
                Problem(name, "does not decrypt with this key (its GCM tag fails)")
            )
            continue
        if hashlib.sha256(plain).hexdigest() != original["sha256"]:
            result.problems.append(Problem(name, "decrypts, but not to the original's SHA-256"))
            continue
        result.decrypted += 1
        if sink is not None:
            sink(_output_name(name, original), plain)
    if failed and failed == len(files):  # one cause, said once
        result.problems[-failed:] = [
            Problem("the key", f"opens none of the {failed} file(s): not this package's key")
        ]
