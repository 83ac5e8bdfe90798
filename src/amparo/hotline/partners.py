"""Whom notices and forwards go to, and in which language: the language of a hosting
country, the partner hotlines of ``hotline_partners_file`` (and their keys), the countries this
hotline notifies itself, and the webhooks of ``notice_webhooks_file``. Pure: reads the
operator's files, no storage."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amparo.config import Settings
from amparo.errors import ConfigError
from amparo.hotline.model import Attribution
from amparo.i18n import supported

SPANISH_COUNTRIES = frozenset(
    {"MX", "GT", "AR", "CO", "CL", "PE", "VE", "EC", "BO", "PY", "UY"}
    | {"CR", "PA", "HN", "SV", "NI", "CU", "DO", "PR", "ES", "GQ"}
)
PORTUGUESE_COUNTRIES = frozenset(("BR", "PT", "AO", "MZ", "CV", "GW", "ST", "TL"))


def notice_language(country: str | None, preferred: str | None = None) -> str:
    """The language of a notice: ``preferred`` (a partner's configured language) when it is
    supported, else the hosting country's (``es``, ``pt_BR``), else English."""
    chosen = supported(preferred)
    if chosen:
        return chosen
    code = (country or "").upper()
    if code in SPANISH_COUNTRIES:
        return "es"
    if code in PORTUGUESE_COUNTRIES:
        return "pt_BR"
    return "en"


# -- configuration files ------------------------------------------------------------------


@dataclass(frozen=True)
class Partner:
    """The partner hotline of one country: where forwarded reports go (``url`` for a signed
    JSON POST, else ``email`` with the export attached) and in which language."""

    country: str
    name: str
    email: str | None = None
    url: str | None = None
    language: str = "en"
    api_key: str | None = None
    """A reference (``env:AMPARO_SECRET_…`` or ``file:…``) to the API key the partner's Amparo
    gave this hotline: sent as a bearer token with forwards POSTed to ``url``."""
    public_key: str | None = None
    """The partner's public key (PEM): forwards it sends to this hotline are accepted only
    when signed by it."""


def _json_file(path: str, setting: str) -> dict[str, Any]:
    if not path:
        return {}
    try:
        data = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"the {setting} file {path!r} does not exist", hint=f"create it or clear {setting}"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"cannot read the {setting} file {path!r}: {type(exc).__name__}: {exc}",
            hint="it must be a UTF-8 JSON object (see docs/hotline.md)",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"the {setting} file {path!r} is not a JSON object")
    return data


def load_partners(settings: Settings) -> dict[str, Partner]:
    """``hotline_partners_file``: ``{"BR": {"name", "email", "url", "language", "api_key",
    "public_key" or "public_key_file"}}``."""
    partners: dict[str, Partner] = {}
    for code, entry in _json_file(settings.hotline_partners_file, "hotline_partners_file").items():
        if not isinstance(entry, dict) or not (
            entry.get("email")
            or entry.get("url")
            or entry.get("public_key")
            or entry.get("public_key_file")
        ):
            raise ConfigError(
                f"partner {code!r} in hotline_partners_file has no email, url or public key",
                hint='write {"name": "...", "email": "...", "url": "...", "language": "pt_BR"}',
            )
        country = str(code).strip().upper()
        public_key = entry.get("public_key")
        if not public_key and entry.get("public_key_file"):
            try:
                public_key = Path(str(entry["public_key_file"])).expanduser().read_text("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    f"cannot read partner {country}'s public_key_file: {type(exc).__name__}",
                    hint="point it at the PEM the partner's `amparo feeds key` printed",
                ) from None
        partners[country] = Partner(
            country=country,
            name=str(entry.get("name") or country),
            email=str(entry["email"]) if entry.get("email") else None,
            url=str(entry["url"]) if entry.get("url") else None,
            language=notice_language(country, entry.get("language")),
            api_key=str(entry["api_key"]) if entry.get("api_key") else None,
            public_key=str(public_key) if public_key else None,
        )
    return partners


def hotline_countries(settings: Settings) -> frozenset[str]:
    """The countries this hotline notifies hosts in itself (empty: all of them)."""
    return frozenset(c.strip().upper() for c in settings.hotline_countries.split(",") if c.strip())


def partner_for(
    country: str | None, countries: frozenset[str], partners: Mapping[str, Partner]
) -> Partner | None:
    """The partner a report hosted in ``country`` is forwarded to; None: notify the host."""
    if not country or not countries or country.upper() in countries:
        return None
    return partners.get(country.upper())


@dataclass(frozen=True)
class WebhookRoutes:
    """``notice_webhooks_file``: notices to these networks or domains go as JSON POSTs."""

    asn: Mapping[int, str] = field(default_factory=dict)
    domain: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookRoutes:
        data = _json_file(settings.notice_webhooks_file, "notice_webhooks_file")
        try:
            asn = {int(k): str(v) for k, v in (data.get("asn") or {}).items()}
            domain = {
                str(k).lower().strip("."): str(v) for k, v in (data.get("domain") or {}).items()
            }
        except (AttributeError, TypeError, ValueError):
            raise ConfigError(
                'notice_webhooks_file must be {"asn": {"64500": url}, "domain": {...}}'
            ) from None
        return cls(asn, domain)

    def url_for(self, host: str, attribution: Attribution | None) -> str | None:
        """The webhook of the report's host (or a parent domain), else of its network."""
        labels = host.lower().strip(".").split(".")
        for start in range(len(labels)):
            url = self.domain.get(".".join(labels[start:]))
            if url:
                return url
        if attribution is not None and attribution.asn is not None:
            return self.asn.get(attribution.asn)
        return None
