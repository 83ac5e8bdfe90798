"""Hosting attribution: .mmdb files the tests build (GeoLite2 and IPinfo layouts), a fake RDAP
service on loopback, the operator's overrides, the RDAP cache, and clear errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from amparo.app import Amparo
from amparo.config import Settings, load_settings
from amparo.errors import ConfigError, FetchError
from amparo.hotline.attribution import ContactOverrides
from amparo.hotline.mmdb import facts_of, parse_asn
from amparo.hotline.rdap import abuse_email, parse_answer
from amparo.hotline.service import HotlineService
from clocks import ManualClock
from hotline_support import FakeRdap, build_mmdb, hotline_on

HOSTS = {
    "hosting.example": ["198.51.100.7"],
    "files.example.net": ["198.51.100.8"],
    "cdn.example": ["2001:db8::1", "203.0.113.5"],
    "nowhere.example": ["192.0.2.200"],
}


class FakeResolver:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in HOSTS:
            raise FetchError(f"cannot resolve host {host!r}: Name or service not known")
        return HOSTS[host]


@pytest.fixture
def databases(tmp_path: Path) -> list[Path]:
    asn = build_mmdb(
        tmp_path / "GeoLite2-ASN.mmdb",
        "GeoLite2-ASN",
        {
            "198.51.100.0/24": {
                "autonomous_system_number": 64500,
                "autonomous_system_organization": "Example Hosting SA de CV",
            },
            "203.0.113.0/24": {
                "autonomous_system_number": 13335,
                "autonomous_system_organization": "CLOUDFLARENET",
            },
        },
    )
    country = build_mmdb(
        tmp_path / "GeoLite2-Country.mmdb",
        "GeoLite2-Country",
        {
            "198.51.100.0/24": {"country": {"iso_code": "MX", "names": {"en": "Mexico"}}},
            "203.0.113.0/24": {"country": {"iso_code": "US"}},
        },
    )
    ipinfo = build_mmdb(
        tmp_path / "ipinfo_lite.mmdb",
        "ipinfo lite.mmdb",
        {
            "192.0.2.0/25": {
                "asn": "AS64501",
                "as_name": "Otra Rede Ltda",
                "country": "Brazil",
                "country_code": "BR",
            }
        },
    )
    return [asn, country, ipinfo]


def network_answer(address: str) -> dict[str, Any]:
    return {
        "rdapConformance": ["rdap_level_0"],
        "objectClassName": "ip network",
        "handle": "NET-198-51-100-0-1",
        "name": "EXAMPLE-HOSTING",
        "country": "mx",
        "startAddress": "198.51.100.0",
        "endAddress": "198.51.100.255",
        "entities": [
            {
                "objectClassName": "entity",
                "handle": "EH-1",
                "roles": ["registrant"],
                "vcardArray": [
                    "vcard",
                    [
                        ["version", {}, "text", "4.0"],
                        ["fn", {}, "text", "Example Hosting"],
                        ["email", {}, "text", "noc@hosting.example"],
                    ],
                ],
                "entities": [
                    {
                        "objectClassName": "entity",
                        "handle": "ABUSE-EH",
                        "roles": ["abuse"],
                        "vcardArray": [
                            "vcard",
                            [
                                ["version", {}, "text", "4.0"],
                                ["fn", {}, "text", "Abuse desk"],
                                ["email", {"type": "work"}, "text", "Abuse@Hosting.Example"],
                            ],
                        ],
                    }
                ],
            }
        ],
    }


@pytest.fixture
def rdap() -> Iterator[FakeRdap]:
    """RDAP on loopback: ``/ip/{address}`` answers an ARIN-shaped network whose abuse contact
    is nested in the registrant; other paths 404. Lists what it was asked."""
    with FakeRdap(answer=network_answer) as server:
        yield server


@dataclass
class World:
    service: HotlineService
    clock: ManualClock
    resolver: FakeResolver
    amparo: Amparo


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Any]:
    opened: list[Amparo] = []

    def build(**overrides: Any) -> World:
        settings: Settings = load_settings(
            env={}, overrides={"home": tmp_path / f"home{len(opened)}", **overrides}
        )
        core = Amparo(settings)
        opened.append(core)
        clock = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
        resolver = FakeResolver()
        service = hotline_on(core, clock, resolver)
        return World(service, clock, resolver, core)

    yield build
    for core in opened:
        core.close()


def _files(paths: list[Path]) -> str:
    return ",".join(str(p) for p in paths)


def test_databases_name_network_provider_country_and_themselves(
    make: Any, databases: list[Path]
) -> None:
    world = make(hotline_mmdb_files=_files(databases))
    found = world.service.attributor.attribute("Hosting.Example.")
    assert found.host == "hosting.example"
    assert found.addresses == ("198.51.100.7",)
    assert (found.asn, found.provider, found.country) == (64500, "Example Hosting SA de CV", "MX")
    assert found.cdn is False and found.error is None
    assert found.abuse_email is None and found.abuse_source is None  # offline, no overrides
    assert found.resolved_at == world.clock.now
    today = datetime.now(UTC).date()
    assert [d["file"] for d in found.databases] == [p.name for p in databases]
    assert [d["type"] for d in found.databases] == [
        "GeoLite2-ASN",
        "GeoLite2-Country",
        "ipinfo lite.mmdb",
    ]
    for info in found.databases:
        assert abs((datetime.fromisoformat(info["build"]).date() - today).days) <= 1


def test_ipinfo_layout_and_literal_address_without_lookup(make: Any, databases: list[Path]) -> None:
    world = make(hotline_mmdb_files=_files(databases))
    found = world.service.attributor.attribute("192.0.2.10")
    assert (found.asn, found.provider, found.country) == (64501, "Otra Rede Ltda", "BR")
    assert found.addresses == ("192.0.2.10",)
    assert world.resolver.asked == []


def test_cdn_is_flagged_and_ipv4_is_preferred(make: Any, databases: list[Path]) -> None:
    world = make(hotline_mmdb_files=_files(databases))
    found = world.service.attributor.attribute("cdn.example")
    assert found.addresses == ("203.0.113.5", "2001:db8::1")
    assert (found.asn, found.country, found.cdn) == (13335, "US", True)


def test_dns_failure_is_an_attribution_error_not_an_exception(
    make: Any, databases: list[Path]
) -> None:
    world = make(hotline_mmdb_files=_files(databases))
    found = world.service.attributor.attribute("gone.example")
    assert found.addresses == () and found.asn is None
    assert found.error is not None and "cannot resolve" in found.error


def test_rdap_gives_the_abuse_contact_and_is_cached(
    make: Any, databases: list[Path], rdap: FakeRdap
) -> None:
    world = make(
        hotline_mmdb_files=_files(databases),
        hotline_rdap_url=rdap.url + "/",
        hotline_rdap_cache_days=7,
        url_allowlist="127.0.0.1",
    )
    attributor = world.service.attributor
    first = attributor.attribute("hosting.example")
    assert (first.abuse_email, first.abuse_source) == ("abuse@hosting.example", "rdap")
    assert first.provider == "Example Hosting SA de CV"  # the databases' name wins
    assert rdap.paths == ["/ip/198.51.100.7"]
    again = attributor.attribute("hosting.example")
    assert again.abuse_email == "abuse@hosting.example"
    assert len(rdap.paths) == 1  # from the cache
    world.clock.advance(8 * 86400)
    attributor.attribute("hosting.example")
    assert len(rdap.paths) == 2  # the cached answer expired


def test_rdap_fills_provider_and_country_without_databases(make: Any, rdap: FakeRdap) -> None:
    world = make(hotline_rdap_url=rdap.url, url_allowlist="127.0.0.1")
    found = world.service.attributor.attribute("hosting.example")
    assert (found.provider, found.country) == ("EXAMPLE-HOSTING", "MX")
    assert found.asn is None and found.databases == ()
    assert found.abuse_source == "rdap"


def test_an_unreachable_rdap_service_leaves_the_contact_empty(
    make: Any, databases: list[Path]
) -> None:
    # Not allow-listed: the address policy refuses loopback, the attribution goes on.
    world = make(hotline_mmdb_files=_files(databases), hotline_rdap_url="http://127.0.0.1:9")
    found = world.service.attributor.attribute("hosting.example")
    assert found.asn == 64500 and found.abuse_email is None and found.error is None


def test_overrides_win_over_rdap(
    make: Any, databases: list[Path], rdap: FakeRdap, tmp_path: Path
) -> None:
    contacts = tmp_path / "contacts.json"
    contacts.write_text(
        json.dumps(
            {
                "asn": {"AS64500": "abuse-desk@hosting.example"},
                "domain": {"example.net": "report@example.net"},
            }
        )
    )
    world = make(
        hotline_mmdb_files=_files(databases),
        hotline_contacts_file=str(contacts),
        hotline_rdap_url=rdap.url,
        url_allowlist="127.0.0.1",
    )
    attributor = world.service.attributor
    by_domain = attributor.attribute("files.example.net")  # a parent domain's override
    assert (by_domain.abuse_email, by_domain.abuse_source) == (
        "report@example.net",
        "override:domain",
    )
    by_asn = attributor.attribute("hosting.example")
    assert (by_asn.abuse_email, by_asn.abuse_source) == (
        "abuse-desk@hosting.example",
        "override:asn",
    )
    assert rdap.paths == []


def test_missing_or_corrupt_database_is_a_clear_config_error(
    make: Any, databases: list[Path], tmp_path: Path
) -> None:
    world = make(hotline_mmdb_files=_files([*databases[:1], tmp_path / "absent.mmdb"]))
    with pytest.raises(ConfigError) as missing:
        world.service.attributor.attribute("hosting.example")
    assert "absent.mmdb" in missing.value.message and missing.value.hint
    corrupt = tmp_path / "corrupt.mmdb"
    corrupt.write_bytes(b"not a database" * 100)
    world = make(hotline_mmdb_files=str(corrupt))
    with pytest.raises(ConfigError) as bad:
        world.service.attributor.attribute("hosting.example")
    assert "corrupt.mmdb" in bad.value.message and bad.value.hint


def test_bad_overrides_file_is_a_clear_config_error(tmp_path: Path) -> None:
    path = tmp_path / "contacts.json"
    path.write_text('{"asn": {"sixty": "abuse@x.example"}}')
    with pytest.raises(ConfigError, match="not an ASN"):
        ContactOverrides.load(str(path))
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ContactOverrides.load(str(path))


def test_attribute_report_stores_it_and_audits(make: Any, databases: list[Path]) -> None:
    world = make(hotline_mmdb_files=_files(databases))
    records = world.service.records
    report, _ = records.submit(
        "http://hosting.example/a",
        "http://hosting.example/a",
        "hosting.example",
        at=world.clock.now,
        channel="cli",
    )
    updated = world.service.attributor.attribute_report(report.id)
    assert updated.attribution is not None and updated.attribution.asn == 64500
    assert updated.country == "MX" and updated.provider == "Example Hosting SA de CV"
    assert records.get(report.id).attribution == updated.attribution
    assert records.list(country="mx")[0].id == report.id
    entries = [e for e in world.amparo.audit.entries() if e.action == "hotline.attribute"]
    assert len(entries) == 1 and entries[0].target == f"url-report:{report.id}"
    assert entries[0].details["asn"] == 64500


def test_rdap_parsing() -> None:
    answer = parse_answer(network_answer("198.51.100.7"), url="u")
    assert answer.abuse_email == "abuse@hosting.example"
    assert (answer.name, answer.handle, answer.country) == (
        "EXAMPLE-HOSTING",
        "NET-198-51-100-0-1",
        "MX",
    )
    assert abuse_email({"entities": [{"roles": ["technical"], "vcardArray": []}]}) is None
    assert abuse_email({"entities": "junk"}) is None


def test_record_layouts() -> None:
    assert parse_asn("AS13335") == 13335 and parse_asn(13335) == 13335
    assert parse_asn("x") is None and parse_asn(True) is None
    facts = facts_of({"asn": 64500, "as_name": "X", "country": "Mexico", "country_code": "mx"})
    assert (facts.asn, facts.provider, facts.country) == (64500, "X", "MX")
    facts = facts_of({"registered_country": {"iso_code": "AR"}})
    assert facts.country == "AR" and facts.asn is None
