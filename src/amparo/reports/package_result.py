"""What checking a report package found: :class:`Verification` (each check's count, the
custody chain's span, every :class:`Problem`), in words and as JSON for the recipient's own
record. Filled by :func:`amparo.reports.package_verify.verify_package`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    where: str
    """The member (``files/3-….enc``, ``manifest.json``) or ``custody.jsonl line N``."""
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass
class Verification:
    """What was checked, and every problem found (none: the package is intact)."""

    package: str
    manifest_sha256: str = ""
    report_id: object = None
    case_id: object = None
    created_at: str = ""
    members_hashed: int = 0
    custody_entries: int = 0
    custody_first: dict[str, Any] = field(default_factory=dict)
    custody_last: dict[str, Any] = field(default_factory=dict)
    links_checked: int = 0
    gaps: int = 0
    files: int = 0
    encrypted: bool = False
    decrypted: int = 0
    missing_items: list[object] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "package": self.package,
            "manifest_sha256": self.manifest_sha256,
            "report_id": self.report_id,
            "case_id": self.case_id,
            "created_at": self.created_at,
            "members_hashed": self.members_hashed,
            "custody": {
                "entries": self.custody_entries,
                "first": self.custody_first,
                "last": self.custody_last,
                "links_checked": self.links_checked,
                "gaps": self.gaps,
            },
            "files": self.files,
            "encrypted": self.encrypted,
            "decrypted": self.decrypted,
            "missing_items": self.missing_items,
            "problems": [{"where": p.where, "what": p.what} for p in self.problems],
        }

    def summary(self) -> list[str]:
        """What was verified, in words a recipient can copy into their own record."""
        first, last = self.custody_first, self.custody_last
        lines = [
            f"package {self.package}: report {self.report_id} of case {self.case_id}, "
            f"made {self.created_at}",
            f"manifest.json SHA-256 {self.manifest_sha256} (compare it with the sender's)",
            f"{self.members_hashed} member(s) hashed: each equals its SHA-256 in the manifest, "
            "and no member is outside it",
        ]
        if self.custody_entries:
            lines.append(
                f"custody chain of {self.custody_entries} entries intact from seq "
                f"{first.get('seq')} ({first.get('at')}) to seq {last.get('seq')} "
                f"({last.get('at')}): every entry's hash recomputed, {self.links_checked} "
                f"link(s) checked, {self.gaps} gap(s) where entries about other matters are "
                "not included"
            )
        if not self.encrypted:
            lines.append(f"{self.files} file(s), not encrypted (a --plain package)")
        elif self.decrypted:
            lines.append(
                f"{self.decrypted} file(s) decrypted with the key (AES-256-GCM tag checked) "
                "and matching their original SHA-256"
            )
        else:
            lines.append(
                f"{self.files} encrypted file(s) not decrypted: give --key KEYFILE to check them"
            )
        if self.missing_items:
            items = ", ".join(map(str, self.missing_items))
            lines.append(f"not in the package (no preserved copy): item(s) {items}")
        return lines
