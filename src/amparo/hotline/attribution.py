"""Hosting attribution: where a reported host's content lives and whom to tell.

For a host, :meth:`Attributor.attribute` finds

* its **addresses** (the installation's resolver; an IP literal needs no lookup; a name that
  does not resolve gives an :class:`Attribution` with ``error`` set, not an exception);
* per address, the **network (ASN), provider and country** the operator's MaxMind-format
  databases (``hotline_mmdb_files``, read by :mod:`amparo.hotline.mmdb`) name. Every
  database consulted is recorded with its build date and type, so a notice can say which
  data said so;
* the **abuse contact**: the operator's overrides first (``hotline_contacts_file``: by domain,
  the host or a parent domain, then by ASN), then RDAP (``hotline_rdap_url``; the answer is
  cached in the database for ``hotline_rdap_cache_days``);
* whether the provider is a **CDN** (``hotline_cdn_asns``): the CDN is then asked for the
  origin.

Entirely offline unless ``hotline_rdap_url`` is set. A missing or unreadable database or
overrides file is a :class:`~amparo.errors.ConfigError` that names it.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from amparo.config import SYSTEM_ACTOR
from amparo.errors import AmparoError, ConfigError
from amparo.hotline.context import HotlineContext
from amparo.hotline.mmdb import MmdbDatabases, NetworkFacts, parse_asn
from amparo.hotline.model import Attribution, UrlReport
from amparo.hotline.rdap import RdapAnswer, RdapClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContactOverrides:
    """The operator's abuse contacts by ASN and by domain (``hotline_contacts_file``)."""

    by_asn: dict[int, str]
    by_domain: dict[str, str]

    @classmethod
    def load(cls, path: str) -> ContactOverrides:
        if not path:
            return cls({}, {})
        try:
            data = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(
                f"cannot read hotline_contacts_file {path}: {exc.strerror or exc}",
                hint="fix the path or leave the setting empty",
            ) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(
                f"hotline_contacts_file {path} is not valid JSON: {exc}",
                hint='write {"asn": {"64500": "abuse@…"}, "domain": {"example.net": "abuse@…"}}',
            ) from None
        if not isinstance(data, dict):
            raise ConfigError(
                f"hotline_contacts_file {path} must hold a JSON object",
                hint='write {"asn": {"64500": "abuse@…"}, "domain": {"example.net": "abuse@…"}}',
            )
        by_asn: dict[int, str] = {}
        for key, email in _mapping(data, "asn", path).items():
            asn = parse_asn(key)
            if asn is None:
                raise ConfigError(
                    f"hotline_contacts_file {path}: {key!r} is not an ASN",
                    hint='key the "asn" overrides by number, e.g. "64500" or "AS64500"',
                )
            by_asn[asn] = email
        by_domain = {
            key.strip().lower().rstrip("."): email
            for key, email in _mapping(data, "domain", path).items()
        }
        return cls(by_asn, by_domain)

    def for_domain(self, host: str) -> str | None:
        """The override for ``host`` or its nearest parent domain."""
        labels = host.lower().rstrip(".").split(".")
        for start in range(len(labels)):
            email = self.by_domain.get(".".join(labels[start:]))
            if email:
                return email
        return None


def _mapping(data: dict[str, Any], key: str, path: str) -> dict[str, str]:
    value = data.get(key) or {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and "@" in v for k, v in value.items()
    ):
        raise ConfigError(
            f'hotline_contacts_file {path}: "{key}" must map names to email addresses',
            hint='write {"asn": {"64500": "abuse@…"}, "domain": {"example.net": "abuse@…"}}',
        )
    return {k: v.strip() for k, v in value.items()}


def parse_asns(spec: str) -> frozenset[int]:
    """``hotline_cdn_asns``: ASNs, comma-separated (``AS`` prefixes allowed)."""
    asns: set[int] = set()
    for item in spec.split(","):
        if not item.strip():
            continue
        asn = parse_asn(item)
        if asn is None:
            raise ConfigError(
                f"hotline_cdn_asns: {item.strip()!r} is not an ASN",
                hint="list AS numbers separated by commas, e.g. 13335,54113",
            )
        asns.add(asn)
    return frozenset(asns)


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class Attributor:
    """Attributes hosts (see the module's docstring) and stores the answer on reports."""

    def __init__(self, ctx: HotlineContext) -> None:
        self.ctx = ctx
        self.databases = MmdbDatabases(ctx.settings.hotline_mmdb_files)
        self._overrides: tuple[object, ContactOverrides] | None = None
        self.cdn_asns = parse_asns(ctx.settings.hotline_cdn_asns)

    def _operator_files(self) -> tuple[ContactOverrides, frozenset[int]]:
        """The contact overrides (read again only when the file changed: an operator may edit
        it while Amparo runs; a bad file is a ConfigError) and the CDN networks."""
        path = self.ctx.settings.hotline_contacts_file
        try:
            stat = Path(path).expanduser().stat() if path else None
            stamp: object = (stat.st_mtime_ns, stat.st_size) if stat else None
        except OSError:
            stamp = "missing"  # ContactOverrides.load says what is wrong
        if self._overrides is None or self._overrides[0] != stamp:
            self._overrides = (stamp, ContactOverrides.load(path))
        return self._overrides[1], self.cdn_asns

    def attribute(self, host: str) -> Attribution:
        """Where ``host`` is hosted: addresses, ASN, provider, country (.mmdb), abuse contact
        (overrides, then RDAP, cached), CDN flag."""
        settings = self.ctx.settings
        now = self.ctx.clock()
        host = host.lower().rstrip(".")
        overrides, cdn_asns = self._operator_files()
        addresses, error = self._addresses(host)
        # IPv4 first: the address most visitors reach, and the one registries document best.
        ordered = sorted(addresses, key=lambda a: (ipaddress.ip_address(a).version, a))
        facts = NetworkFacts()
        databases: list[dict[str, Any]] = []
        primary = ordered[0] if ordered else None
        for address in ordered:
            found, consulted = self.databases.lookup(address)
            if not databases:
                databases = consulted
            if not found.empty:
                facts, primary = found, address
                break
        abuse, source = None, None
        domain_email = overrides.for_domain(host)
        if domain_email:
            abuse, source = domain_email, "override:domain"
        elif facts.asn is not None and facts.asn in overrides.by_asn:
            abuse, source = overrides.by_asn[facts.asn], "override:asn"
        if primary is not None and settings.hotline_rdap_url and (abuse is None or facts.empty):
            answer = self._rdap(primary, facts.asn, now)
            if answer is not None:
                if abuse is None and answer.abuse_email:
                    abuse, source = answer.abuse_email, "rdap"
                facts = facts.merged(NetworkFacts(provider=answer.name, country=answer.country))
        return Attribution(
            host=host,
            addresses=tuple(ordered),
            asn=facts.asn,
            provider=facts.provider,
            country=facts.country,
            abuse_email=abuse,
            abuse_source=source,
            cdn=facts.asn is not None and facts.asn in cdn_asns,
            databases=tuple(databases),
            resolved_at=now,
            error=error,
        )

    def attribute_report(self, report_id: int, *, actor: str = SYSTEM_ACTOR) -> UrlReport:
        """Attribute a report's host and store the answer on the report."""
        ctx = self.ctx
        report = ctx.records.get(report_id)
        attribution = self.attribute(report.host)
        with ctx.store.transaction(refresh=False) as tx:
            updated = ctx.records.update(report_id, attribution=attribution, at=ctx.clock())
            tx.audit(
                actor,
                "hotline.attribute",
                f"url-report:{report_id}",
                {
                    "host": attribution.host,
                    "asn": attribution.asn,
                    "country": attribution.country,
                    "provider": attribution.provider,
                    "abuse_source": attribution.abuse_source,
                    "cdn": attribution.cdn,
                    "error": attribution.error,
                },
            )
        return updated

    def _addresses(self, host: str) -> tuple[list[str], str | None]:
        literal = _literal(host)
        if literal is not None:
            return [literal], None
        try:
            found = self.ctx.resolver(host, 80)
        except (AmparoError, OSError, UnicodeError) as exc:
            return [], str(exc)
        addresses: list[str] = []
        for value in found:
            address = _literal(value.split("%")[0])
            if address is not None and address not in addresses:
                addresses.append(address)
        if not addresses:
            return [], f"host {host!r} has no addresses"
        return addresses, None

    def _rdap(self, address: str, asn: int | None, now: datetime) -> RdapAnswer | None:
        """RDAP's answer for ``address`` (and for its ASN when the network names no abuse
        contact), from the cache when fresh. A failed query is logged, not cached."""
        answer = self._rdap_cached(f"ip:{address}", now, lambda c: c.ip(address))
        if answer is not None and answer.abuse_email is None and asn is not None:
            by_asn = self._rdap_cached(f"autnum:{asn}", now, lambda c: c.autnum(asn))
            if by_asn is not None and by_asn.abuse_email:
                answer = RdapAnswer(
                    abuse_email=by_asn.abuse_email,
                    name=answer.name or by_asn.name,
                    handle=answer.handle,
                    country=answer.country or by_asn.country,
                    url=by_asn.url,
                )
        return answer

    def _rdap_cached(
        self, key: str, now: datetime, query: Callable[[RdapClient], RdapAnswer]
    ) -> RdapAnswer | None:
        ctx = self.ctx
        days = max(0, ctx.settings.hotline_rdap_cache_days)
        cached = ctx.records.rdap_cached(key, newer_than=now - timedelta(days=days))
        if cached is not None:
            return RdapAnswer.from_json(cached)
        client = RdapClient.over(ctx.settings.hotline_rdap_url, ctx.fetcher)
        try:
            answer = query(client)
        except AmparoError as exc:
            log.warning("RDAP query %s failed: %s", key, exc)
            return None
        ctx.records.rdap_store(key, answer.to_json(), at=now)
        return answer


__all__ = ["Attributor", "ContactOverrides", "parse_asns"]
