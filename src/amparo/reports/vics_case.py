"""Scan results as a VICS JSON 2.0 case, for forensic tools (Griffeye, Magnet, ...) to import.

One ``Case`` (``CaseID``, ``CaseNumber``, source application) holds one ``Media`` record per
distinct matched content (``MD5``, ``SHA1``, ``SHA256``, ``PDQ``, ``MediaSize``, ``Category``)
with a ``MediaFiles`` entry for each place it was found (``FileName``, ``FilePath``, ``FileSize``
and, for files still on disk, ``Created`` where the platform records it, ``Modified``,
``Accessed``). ``Category`` is the Project VIC number of the matched bank entries' category (the
most severe when entries disagree); content whose matches carry no known category has none.
Amparo's own VICS reader (``bank import --format vics``) reads the file back.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amparo import __version__
from amparo.banks.formats.base import IGNORE
from amparo.banks.formats.vics import PROJECT_VIC
from amparo.errors import InputError
from amparo.scan.model import MEMBER_SEPARATOR
from amparo.scan.paths import display_path
from amparo.scan.result import FoundMatch, ScanResult

CASE_CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Cases"
_CASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def validate_case_id(case_id: str) -> str:
    """A case id is also a file name: letters, digits, ``_``, ``-``, ``.``."""
    if not _CASE_ID.fullmatch(case_id):
        raise InputError(
            f"invalid case id {case_id!r}",
            hint="use up to 100 letters, digits, '_', '-' or '.', starting with a letter or digit",
        )
    return case_id


def _severity(category_map: Mapping[int | str, str]) -> dict[str, int]:
    """Category name -> Project VIC number (ignored categories have none)."""
    numbers: dict[str, int] = {}
    for key, name in category_map.items():
        if isinstance(key, int) and name != IGNORE and name not in numbers:
            numbers[name] = key
    return numbers


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _file_record(m: FoundMatch) -> dict[str, Any]:
    outer, _, member = m.path.partition(MEMBER_SEPARATOR)
    name = (member.rsplit(MEMBER_SEPARATOR, 1)[-1] if member else outer).replace("\\", "/")
    record: dict[str, Any] = {
        # A name that is not UTF-8 as text, its odd bytes as \xNN (VICS has no bytes field).
        "FileName": display_path(name.rsplit("/", 1)[-1]),
        "FilePath": display_path(m.path),
        "FileSize": m.size,
    }
    if not member:
        try:
            st = os.stat(outer)
        except OSError:
            return record
        birth = getattr(st, "st_birthtime", None)
        if birth:
            record["Created"] = _time(birth)
        record["Modified"] = _time(st.st_mtime)
        record["Accessed"] = _time(st.st_atime)
    return record


def vics_case(
    case_id: str,
    matches: Iterable[FoundMatch],
    *,
    category_map: Mapping[int | str, str] = PROJECT_VIC,
) -> dict[str, Any]:
    """The VICS case document for the given scan matches."""
    validate_case_id(case_id)
    numbers = _severity(category_map)
    media: dict[str, dict[str, Any]] = {}
    paths: dict[str, set[str]] = {}
    for m in matches:
        key = m.hashes.get("sha256") or m.hashes.get("md5") or m.path
        record = media.get(key)
        if record is None:
            record = media[key] = {"MediaID": len(media) + 1, "MediaSize": m.size}
            for vics_key, signal in (("MD5", "md5"), ("SHA1", "sha1"), ("SHA256", "sha256")):
                if m.hashes.get(signal):
                    record[vics_key] = m.hashes[signal].upper()
            if m.hashes.get("pdq"):
                record["PDQ"] = m.hashes["pdq"]
            record["MediaFiles"] = []
            paths[key] = set()
        number = numbers.get(str(m.match.get("category") or ""))
        if number is not None and (record.get("Category") is None or number < record["Category"]):
            record["Category"] = number
        if m.path not in paths[key]:
            paths[key].add(m.path)
            record["MediaFiles"].append(_file_record(m))
    return {
        "@odata.context": CASE_CONTEXT,
        "value": [
            {
                "CaseID": case_id,
                "CaseNumber": case_id,
                "SourceApplicationName": "Amparo",
                "SourceApplicationVersion": __version__,
                "ExportDate": datetime.now(UTC)
                .isoformat(timespec="seconds")
                .replace("+00:00", "Z"),
                "Media": list(media.values()),
            }
        ],
    }


def write_vics_case(
    result: ScanResult,
    case_id: str,
    out: Path,
    *,
    category_map: Mapping[int | str, str] = PROJECT_VIC,
) -> int:
    """Write the scan's matches as a VICS case to ``out`` atomically (temp file + rename,
    readable by its owner only); returns the number of Media records."""
    doc = vics_case(case_id, result.matches, category_map=category_map)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return len(doc["value"][0]["Media"])
