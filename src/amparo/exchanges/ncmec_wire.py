"""The wire side of the ``ncmec`` exchange (:mod:`amparo.exchanges.ncmec`): NCMEC's hash
sharing API v2 as data. Its constants, the checkpoint, and the reading of one XML page into
:class:`Update` and :class:`Malformed` records (entries parsed by python-threatexchange's
``NCMECEntryUpdate``), the record ids and the paging URLs. No HTTP and no storage here: the
exchange module does the requests and explains why python-threatexchange's client is not used.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from amparo.errors import ConfigError, InputError
from amparo.exchanges.model import Checkpoint, Malformed, Provenance, Update
from amparo.signals import get_signal_type

if TYPE_CHECKING:
    from threatexchange.exchanges.clients.ncmec.hash_api import NCMECEntryUpdate

PAGING_URL_TTL = timedelta(hours=12)
"""NCMEC: paging URLs are not to be kept; older than this, the window is read again."""
ENTRIES_PER_PAGE = 1000
MAX_WINDOW_ENTRIES = 100_000
"""A window estimated larger than this is split before it is read."""
MIN_QUARANTINE_WINDOW = 3600
"""A window whose first page does not parse is split down to this many seconds, then
quarantined whole."""
END_MARGIN_SECONDS = 5
"""Windows end this long before now: entries still being written land in the next fetch."""
NAMESPACE = "https://hashsharing.ncmec.org/hashsharing/v2"
_DATE = "%Y-%m-%dT%H:%M:%SZ"

FINGERPRINTS = {"md5": "md5", "sha1": "sha1", "pdq": "pdq"}
"""NCMEC fingerprint element (lower case) -> Amparo signal type."""
FEEDBACK_TYPES = {"md5": "MD5", "sha1": "SHA1", "pdq": "PDQ"}
"""Amparo signal type -> NCMEC's fingerprint type in feedback paths (``FingerprintType``)."""
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def hash_api() -> ModuleType:
    """python-threatexchange's NCMEC module, or a ConfigError saying how to install it."""
    try:
        from threatexchange.exchanges.clients.ncmec import hash_api as module
    except ImportError:
        raise ConfigError(
            "the ncmec exchange needs python-threatexchange, which is not installed",
            hint="pip install 'amparo[exchanges]' (or: pip install 'threatexchange>=1.2')",
        ) from None
    return module


def environments() -> dict[str, str]:
    """NCMEC environments by python-threatexchange's names (``Industry``, ``NGO``,
    ``test_Industry``, ...) -> base URL."""
    return {env.name: str(env.value) for env in hash_api().NCMECEnvironment}


def ncmec_time(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime(_DATE)


def parse_time(value: Any) -> int:
    if isinstance(value, bool):
        raise InputError("start_time must be a date (ISO 8601) or a Unix timestamp")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return int(parsed.timestamp())
    raise InputError(
        f"start_time {value!r} is not a date",
        hint="give an ISO 8601 date such as 2024-01-01T00:00:00Z, or a Unix timestamp",
    )


@dataclass
class NCMECCheckpoint(Checkpoint):
    """Everything updated before ``window_start`` has been read. While a window is being
    paged, ``window_end`` and ``paging_url`` (received at ``paging_url_at``) say where in it.

    Never stale in the runner's sense (a full re-fetch of millions of entries): an expired
    paging URL only restarts its window, which :meth:`~amparo.exchanges.ncmec.NCMECExchange.fetch`
    does itself."""

    window_start: int = 0
    window_end: int | None = None
    paging_url: str | None = None
    paging_url_at: str | None = None

    def paging_expired(self, now: datetime) -> bool:
        if not self.paging_url or not self.paging_url_at:
            return False
        received = datetime.fromisoformat(self.paging_url_at)
        return now - received > PAGING_URL_TTL


@dataclass
class Page:
    """One page of entries as read: its records, its quarantined entries and the next
    page's URL (``""`` on the last page)."""

    updates: list[Update] = field(default_factory=list)
    malformed: list[Malformed] = field(default_factory=list)
    next: str = ""
    entries: int = 0
    broken: str | None = None
    """Why the page could not be read at all (then nothing else is set)."""
    raw: bytes = b""


def parse_page(api: ModuleType, content: bytes, members: list[int] | None) -> Page:
    """One page of ``GET /v2/entries`` as updates and quarantined entries, with ``api``
    (python-threatexchange's ``hash_api`` module, :func:`hash_api`) parsing each entry;
    entries of members not in ``members`` (when given) are left out. A page that does not
    parse comes back ``broken``."""
    try:
        root = strip_namespaces(ET.fromstring(content))
    except ET.ParseError as exc:
        return Page(broken=f"not XML ({exc})", raw=content)
    if root.tag != "queryResult":
        return Page(broken=f"<{root.tag}> where <queryResult> was expected", raw=content)
    page = Page()
    wrapper = api._XMLWrapper
    for group in ("images", "videos"):
        for element in root.findall(group):
            for child in element:
                page.entries += 1
                try:
                    entry = api.NCMECEntryUpdate.from_xml(wrapper(child))
                except Exception as exc:  # python-threatexchange raises anything
                    entry_id = child.findtext("id")
                    page.malformed.append(
                        Malformed(
                            reason=f"NCMEC entry could not be read: "
                            f"{type(exc).__name__} {exc}".strip(),
                            raw=Malformed.cut(ET.tostring(child, encoding="unicode")),
                            record_id=entry_id,
                        )
                    )
                    continue
                if members and entry.member_id not in members:
                    continue
                entry_updates(entry, child, page)
    next_element = root.find("paging/next")
    page.next = (next_element.text or "").strip() if next_element is not None else ""
    return page


def entry_updates(entry: NCMECEntryUpdate, element: ET.Element, page: Page) -> None:
    """Add one parsed entry's records to ``page``: a deletion of every record it can have
    produced for a tombstone, else one upsert per fingerprint Amparo matches."""
    key = f"{entry.member_id}-{entry.id}"
    if entry.deleted:
        page.updates.extend(
            Update(record_id=f"{key}:{name}", deleted=True) for name in FINGERPRINTS.values()
        )
        return
    member = element.find("member")
    member_name = (member.text or "").strip() if member is not None else ""
    provenance = Provenance(
        origin="ncmec",
        verified_by=f"{member_name} ({entry.member_id})" if member_name else None,
        classification=entry.classification,
        jurisdiction="US",
        at=_iso(element.findtext("timestamp")),
    )
    for fingerprint, value in entry.fingerprints.items():
        name = FINGERPRINTS.get(fingerprint.lower())
        if name is None:
            continue  # PhotoDNA, vendor video hashes: not matched by Amparo
        record = f"{key}:{name}"
        try:
            signal = get_signal_type(name).normalize(value.strip())
        except InputError as exc:
            page.malformed.append(
                Malformed(reason=str(exc), raw=Malformed.cut(value), record_id=record)
            )
            continue
        page.updates.append(
            Update(
                record_id=record,
                signal_type=name,
                signal=signal,
                category=entry.classification,
                tags=(entry.entry_type.value,),
                source_ids=(f"member:{entry.member_id}", f"entry:{entry.id}"),
                provenance=provenance,
            )
        )


def split_record_id(record_id: str) -> tuple[str, str, str]:
    """``"42-image1:md5"`` -> ``("42", "image1", "MD5")`` (member, entry, NCMEC fingerprint)."""
    key, _, signal_type = record_id.rpartition(":")
    member_id, _, entry_id = key.partition("-")
    fingerprint = FEEDBACK_TYPES.get(signal_type)
    if not member_id.isdigit() or not entry_id or fingerprint is None:
        raise InputError(
            f"{record_id!r} is not an NCMEC record id",
            hint="NCMEC record ids look like <member id>-<entry id>:<md5|sha1|pdq>",
        )
    return member_id, entry_id, fingerprint


def estimated_entries(page: Page) -> int:
    """How many entries the window holds, by the first page's ``next`` (``max - start``)."""
    query = parse_qs(urlsplit(page.next).query)
    try:
        return int(query["max"][0]) - int(query["start"][0]) + page.entries
    except (KeyError, ValueError, IndexError):
        return page.entries + 1


def next_page_after(url: str) -> str | None:
    """The paging URL after ``url`` (a paging URL whose page could not be read), from its
    ``start``, ``size`` and ``max``; None when it was the last page or is no paging URL."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    try:
        start, size, top = (int(query[k][0]) for k in ("start", "size", "max"))
    except (KeyError, ValueError, IndexError):
        return None
    if start + size > top:
        return None
    query["start"] = [str(start + size)]
    path = parts.path
    # paging URLs are relative to the environment's base (they start at /v2/)
    at = path.find("/v2/")
    relative = path[at:] if at >= 0 else path
    return urlunsplit(("", "", relative, urlencode(query, doseq=True), ""))


def strip_namespaces(root: ET.Element) -> ET.Element:
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root


def _iso(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return datetime.strptime(value.strip(), _DATE).replace(tzinfo=UTC).isoformat()
    except ValueError:
        return value.strip()
