"""RDAP (RFC 7480-7484, 9082-9083): who runs a network and where its abuse reports go.

:class:`RdapClient` asks ``{base}/ip/{address}`` (and ``{base}/autnum/{asn}``) and
:func:`parse_answer` reads the JSON answer: the abuse contact (an entity with the role
``abuse`` and an ``email`` in its jCard ``vcardArray``, searched through nested entities
too, the shallowest first), the network's name, handle and country. Nothing here is
stored; :mod:`amparo.hotline.attribution` caches answers in the database.

Why not ``whoisit`` (the usual Python RDAP client): it downloads IANA's bootstrap files
from the internet before its first query and makes its requests with ``requests``, bypassing
Amparo's address policy (:mod:`amparo.url_policy`) and its overall deadline. Here every
request goes through :class:`amparo.fetch.Fetcher`: http(s) only, public addresses only
unless ``url_allowlist`` says otherwise, each redirect hop checked (``https://rdap.org``
redirects to the registry that holds the address), the connection pinned to the checked
address, one deadline over the whole request and a cap on the answer's size. The operator
names one RDAP service (``hotline_rdap_url``), so no bootstrap is needed.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from amparo.errors import FetchError, InputError
from amparo.fetch import Fetched, Fetcher, FetchLimits

RDAP_MAX_BYTES = 1024 * 1024
"""Largest RDAP answer read (real ones are a few kilobytes; a registry's answer for a large
network with many entities stays well under this)."""


@dataclass(frozen=True)
class RdapAnswer:
    """What one RDAP answer says about a network (any of it may be missing)."""

    abuse_email: str | None = None
    name: str | None = None
    """The network's name (``ip network``) or the autonomous system's (``autnum``)."""
    handle: str | None = None
    country: str | None = None
    """ISO 3166-1 alpha-2, upper case, as the registry recorded it."""
    url: str | None = None
    """The query that gave this answer."""

    def to_json(self) -> dict[str, Any]:
        return {
            "abuse_email": self.abuse_email,
            "name": self.name,
            "handle": self.handle,
            "country": self.country,
            "url": self.url,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RdapAnswer:
        def text(key: str) -> str | None:
            value = data.get(key)
            return str(value) if value else None

        return cls(
            abuse_email=text("abuse_email"),
            name=text("name"),
            handle=text("handle"),
            country=text("country"),
            url=text("url"),
        )


def vcard_emails(vcard_array: Any) -> list[str]:
    """The ``email`` values of a jCard (RFC 7095): ``["vcard", [[name, params, type, value],
    ...]]``."""
    if not isinstance(vcard_array, list) or len(vcard_array) < 2:
        return []
    properties = vcard_array[1]
    if not isinstance(properties, list):
        return []
    emails: list[str] = []
    for prop in properties:
        if not isinstance(prop, list) or len(prop) < 4 or str(prop[0]).lower() != "email":
            continue
        values = prop[3:]
        for value in values:
            for email in value if isinstance(value, list) else [value]:
                if isinstance(email, str):
                    address = single_address(email.strip().removeprefix("mailto:"))
                    if address is not None:
                        emails.append(address)
    return emails


_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9.-]{1,253}")


def single_address(text: str) -> str | None:
    """``text`` when it is exactly one plain ASCII address (``local@domain``): no display
    name, no list, no line breaks, nothing a mail header would read as a second recipient.
    An RDAP answer is outside data; anything else is ignored."""
    text = text.strip()
    if len(text) > 320 or _ADDRESS.fullmatch(text) is None:
        return None
    domain = text.rpartition("@")[2]
    if "." not in domain or domain.startswith(".") or ".." in domain:
        return None
    return text


def abuse_email(answer: dict[str, Any]) -> str | None:
    """The email of the shallowest entity with the role ``abuse`` (registries nest it: ARIN
    puts the abuse contact inside the registrant organisation's entity)."""
    queue: deque[tuple[Any, int]] = deque((e, 0) for e in _entities(answer))
    seen = 0
    while queue and seen < 1000:  # a bound, whatever an answer nests
        entity, depth = queue.popleft()
        seen += 1
        roles = entity.get("roles") or []
        if isinstance(roles, list) and "abuse" in [str(r).lower() for r in roles]:
            emails = vcard_emails(entity.get("vcardArray"))
            if emails:
                return emails[0].lower()
        if depth < 8:
            queue.extend((e, depth + 1) for e in _entities(entity))
    return None


def _entities(obj: dict[str, Any]) -> list[dict[str, Any]]:
    entities = obj.get("entities")
    if not isinstance(entities, list):
        return []
    return [e for e in entities if isinstance(e, dict)]


def parse_answer(answer: Any, *, url: str | None = None) -> RdapAnswer:
    """Read an RDAP ``ip network`` or ``autnum`` object (RFC 9083 §5.4, §5.5)."""
    if not isinstance(answer, dict):
        raise InputError(
            "the RDAP answer is not a JSON object",
            hint="check hotline_rdap_url names an RDAP service (e.g. https://rdap.org)",
        )
    country = answer.get("country")
    name = answer.get("name")
    handle = answer.get("handle")
    return RdapAnswer(
        abuse_email=abuse_email(answer),
        name=str(name)[:255] if name else None,
        handle=str(handle)[:255] if handle else None,
        country=str(country).upper()[:2] if isinstance(country, str) and country else None,
        url=url,
    )


class RdapClient:
    """Queries one RDAP service through the safe fetcher (see the module's docstring)."""

    def __init__(self, base_url: str, fetch: Callable[[str], Fetched]) -> None:
        self.base_url = base_url.rstrip("/")
        self._fetch = fetch

    @classmethod
    def over(cls, base_url: str, fetcher: Fetcher) -> RdapClient:
        """A client whose requests go through a copy of ``fetcher``'s policy (its allow-list,
        resolver, deadline and redirects) with the answer capped at :data:`RDAP_MAX_BYTES`."""
        limits: FetchLimits = replace(
            fetcher.limits, max_bytes=min(fetcher.limits.max_bytes, RDAP_MAX_BYTES)
        )
        capped = Fetcher(limits, resolver=fetcher.resolver, transport=fetcher.transport)
        return cls(base_url, capped.fetch)

    def ip(self, address: str) -> RdapAnswer:
        """The network holding ``address``."""
        try:
            canonical = str(ipaddress.ip_address(address))
        except ValueError:
            raise InputError(f"{address!r} is not an IP address") from None
        return self._query(f"{self.base_url}/ip/{canonical}")

    def autnum(self, asn: int) -> RdapAnswer:
        """The autonomous system numbered ``asn``."""
        return self._query(f"{self.base_url}/autnum/{int(asn)}")

    def _query(self, url: str) -> RdapAnswer:
        fetched = self._fetch(url)
        try:
            data = json.loads(fetched.content)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise FetchError(
                f"the RDAP service at {self.base_url} answered something that is not JSON",
                hint="check hotline_rdap_url names an RDAP service (e.g. https://rdap.org)",
            ) from None
        return parse_answer(data, url=url)


__all__ = ["RDAP_MAX_BYTES", "RdapAnswer", "RdapClient", "abuse_email", "parse_answer"]
