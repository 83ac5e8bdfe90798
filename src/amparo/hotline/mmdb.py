"""The operator's address databases: MaxMind-format ``.mmdb`` files (``hotline_mmdb_files``)
that map an address to its network (ASN), provider and country.

Three record layouts are read: GeoLite2 and DB-IP Lite (``autonomous_system_number``,
``autonomous_system_organization``, ``country.iso_code``, else
``registered_country.iso_code``) and IPinfo Lite (``asn`` as ``"AS13335"``, ``as_name``,
``country_code``; its ``country`` is the country's name). Each database consulted is named
with its build date and type. Pure: no storage, no network.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import maxminddb

from amparo.errors import ConfigError


@dataclass(frozen=True)
class NetworkFacts:
    """What the databases say about one address."""

    asn: int | None = None
    provider: str | None = None
    country: str | None = None

    def merged(self, other: NetworkFacts) -> NetworkFacts:
        """These facts, completed by ``other``'s where these are missing."""
        return NetworkFacts(
            asn=self.asn if self.asn is not None else other.asn,
            provider=self.provider or other.provider,
            country=self.country or other.country,
        )

    @property
    def empty(self) -> bool:
        return self.asn is None and not self.provider and not self.country


def parse_asn(value: Any) -> int | None:
    """An ASN from ``13335``, ``"13335"`` or ``"AS13335"``; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        text = value.strip().upper().removeprefix("AS")
        if text.isdigit():
            return int(text)
    return None


def _country_code(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("iso_code")
    if isinstance(value, str) and len(value) == 2 and value.isalpha():
        return value.upper()
    return None


def facts_of(record: Any) -> NetworkFacts:
    """Read one database record in any of the layouts the module's docstring names."""
    if not isinstance(record, dict):
        return NetworkFacts()
    asn = parse_asn(record.get("autonomous_system_number"))
    if asn is None:
        asn = parse_asn(record.get("asn"))
    provider = None
    for key in ("autonomous_system_organization", "as_name", "as_org", "organization"):
        if isinstance(record.get(key), str) and record[key].strip():
            provider = record[key].strip()
            break
    country = None
    # IPinfo's "country" is the country's name; its code is "country_code".
    for key in ("country", "country_code", "registered_country"):
        country = _country_code(record.get(key))
        if country:
            break
    return NetworkFacts(asn=asn, provider=provider, country=country)


class MmdbDatabases:
    """The operator's .mmdb files, opened once and reopened when a file changes (an
    operator replaces them monthly)."""

    def __init__(self, spec: str) -> None:
        self.paths = [Path(p.strip()).expanduser() for p in spec.split(",") if p.strip()]
        self._lock = threading.Lock()
        self._open: dict[Path, tuple[tuple[int, int], maxminddb.Reader, dict[str, Any]]] = {}

    def _reader(self, path: Path) -> tuple[maxminddb.Reader, dict[str, Any]]:
        try:
            stat = path.stat()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the database {path} named in hotline_mmdb_files: "
                f"{exc.strerror or exc}",
                hint="download it (GeoLite2, DB-IP Lite or IPinfo Lite .mmdb) or fix the path",
            ) from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            held = self._open.get(path)
            if held is not None and held[0] == stamp:
                return held[1], held[2]
            try:
                reader = maxminddb.open_database(str(path))
                meta = reader.metadata()
                info = {
                    "file": path.name,
                    "build": datetime.fromtimestamp(meta.build_epoch, UTC).date().isoformat(),
                    "type": str(meta.database_type),
                }
            except (OSError, ValueError, RuntimeError) as exc:
                raise ConfigError(
                    f"{path} named in hotline_mmdb_files is not a readable .mmdb database: {exc}",
                    hint="download the database again; it must be in MaxMind's .mmdb format",
                ) from None
            # The replaced reader is not closed here: a lookup on another thread may still be
            # reading it; it is closed when nothing refers to it any more.
            self._open[path] = (stamp, reader, info)
            return reader, info

    def lookup(self, address: str) -> tuple[NetworkFacts, list[dict[str, Any]]]:
        """The facts every database gives for ``address`` (the first database to name a
        fact wins), and each database consulted."""
        facts = NetworkFacts()
        consulted: list[dict[str, Any]] = []
        for path in self.paths:
            reader, info = self._reader(path)
            consulted.append(dict(info))
            try:
                record = reader.get(address)
            except (ValueError, RuntimeError) as exc:
                raise ConfigError(
                    f"looking {address} up in {path} failed: {exc}",
                    hint="the database may be damaged; download it again",
                ) from None
            facts = facts.merged(facts_of(record))
        return facts, consulted

    def close(self) -> None:
        with self._lock:
            for _stamp, reader, _info in self._open.values():
                reader.close()
            self._open.clear()


__all__ = ["MmdbDatabases", "NetworkFacts", "facts_of", "parse_asn"]
