"""Settings, declared once.

Each setting is a row of ``SETTINGS``: name, type, default and help. Values are resolved in
order, later winning: built-in default -> config file (TOML) -> ``AMPARO_<NAME>`` environment
variable -> explicit overrides (command-line flags). ``docs/configuration.md`` documents every
row, and a test fails when one is missing there.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from amparo.errors import ConfigError

ENV_PREFIX = "AMPARO_"
LOCAL_ACTOR = "local"
"""The audit log's actor for a person at this machine: every CLI command, and the core's
default when a caller names no one (see docs/audit.md)."""
SYSTEM_ACTOR = "system"
"""The audit log's actor for what Amparo records on its own (a suspected probe, a missing
evidence blob)."""
# Beyond 63 bits PDQ hashes of unrelated photos start to collide; the index searches up to it.
MAX_PDQ_THRESHOLD = 63


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with :func:`load_settings`."""

    home: Path = Path("amparo-data")
    database_url: str = ""
    pdq_threshold: int = 31
    pdq_min_quality: int = 50
    max_image_pixels: int = 178_956_970
    max_file_bytes: int = 512 * 1024 * 1024
    max_archive_ratio: int = 200
    max_archive_member_bytes: int = 256 * 1024 * 1024
    max_decode_memory: int = 512 * 1024 * 1024
    workers: int = 0
    log_level: str = "WARNING"
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_max_upload_bytes: int = 32 * 1024 * 1024
    api_max_json_bytes: int = 1024 * 1024
    api_public_docs: bool = False
    api_rate_limits: str = "matcher=50:100,hasher=20:40,default=20:40"
    api_key_cache_seconds: int = 2
    probe_window: int = 64
    probe_near_bits: int = 8
    probe_max_near: int = 20
    probe_period_seconds: float = 3600.0
    probe_cooldown_seconds: float = 900.0
    probe_throttle: bool = True
    index_refresh_seconds: float = 0.5
    index_max_age_seconds: int = 30
    url_allowlist: str = ""
    fetch_timeout_seconds: int = 10
    fetch_max_bytes: int = 32 * 1024 * 1024
    fetch_max_redirects: int = 5
    fetch_max_concurrent_per_key: int = 4
    fetch_max_concurrent: int = 32
    video_sample_fps: float = 1.0
    video_bank_sample_fps: float = 10.0
    video_query_share: float = 0.8
    video_bank_share: float = 0.8
    video_clip: bool = False
    video_bank_coverage_seconds: float = 0.5
    video_max_file_bytes: int = 8 * 1024**3
    video_max_duration_seconds: int = 6 * 3600
    video_timeout_seconds: int = 900
    # -- review (cases, reviewer UI) --
    review_reveal_seconds: int = 5
    review_daily_limit: int = 200
    review_break_minutes: int = 50
    review_session_minutes: int = 240
    review_fp_disable_after: int = 3
    review_undo_seconds: int = 600
    # -- actions (rules, webhooks, quarantine) --
    webhook_timeout_seconds: float = 10.0
    webhook_max_attempts: int = 15
    webhook_backoff_seconds: float = 5.0
    webhook_backoff_max_seconds: float = 3600.0
    webhook_lease_seconds: float = 60.0
    webhook_poll_seconds: float = 1.0
    webhook_deliver_in_serve: bool = True
    quarantine_dir: str = ""
    # -- evidence --
    evidence_url: str = ""
    evidence_kek_file: str = ""
    evidence_retention_days: int = 365
    # -- audit and reports --
    audit_checkpoint_every: int = 1000
    audit_signing_key_file: str = ""
    cybertip_environment: str = "test"
    cybertip_url: str = ""
    cybertip_username: str = ""
    cybertip_password: str = ""
    cybertip_timeout_seconds: float = 60.0
    reporter_org_name: str = ""
    reporter_contact_name: str = ""
    reporter_email: str = ""
    reporter_phone: str = ""
    audit_checkpoint_seconds: float = 60.0

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'amparo.db').resolve()}"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"


SETTING_DOCS: dict[str, str] = {
    "home": "Data directory: SQLite database, index files, journals.",
    "database_url": "SQLAlchemy URL; empty means SQLite at <home>/amparo.db.",
    "pdq_threshold": "Default PDQ match distance (0-63) for banks that do not set their own.",
    "pdq_min_quality": "PDQ hashes below this quality are not used for matching.",
    "max_image_pixels": "Images with more pixels are refused as decompression bombs.",
    "max_file_bytes": "Files larger than this are not decoded (digests are still computed).",
    "max_archive_ratio": "Archive members expanding more than this factor are refused.",
    "max_archive_member_bytes": "Archive members larger than this are refused.",
    "max_decode_memory": "Bytes one process may spend decoding images and video frames at once.",
    "workers": "Hashing worker processes for scans; 0 means one per CPU core.",
    "log_level": "Logging level: DEBUG, INFO, WARNING, ERROR.",
    "api_host": "Address `amparo serve` listens on.",
    "api_port": "Port `amparo serve` listens on.",
    "api_max_upload_bytes": "Largest media upload the API accepts (bigger: 413).",
    "api_max_json_bytes": "Largest JSON or form request body the API accepts (bigger: 413).",
    "api_public_docs": "Serve /docs and /openapi.json without an API key.",
    "api_rate_limits": (
        "Per-key request rates by scope, 'scope=per_second:burst,...'; 'default' covers the "
        "rest; a key's own rate (amparo keys create --rate) wins; admin and curator keys are "
        "limited only when named here."
    ),
    "api_key_cache_seconds": "How long a checked API key is trusted before it is re-read.",
    "probe_window": "Matched PDQ queries remembered per matcher key for probe detection.",
    "probe_near_bits": (
        "A matched PDQ query this many bits or fewer from a remembered one (but not equal to "
        "it) counts as a probe step."
    ),
    "probe_max_near": (
        "Probe steps within probe_period_seconds after which a key is suspected of "
        "reconstructing a bank's hashes (alerted, and throttled if probe_throttle)."
    ),
    "probe_period_seconds": "Window over which probe steps are counted.",
    "probe_cooldown_seconds": "How long a key suspected of probing has its lookups refused.",
    "probe_throttle": "Refuse lookups of a key suspected of probing (off: only alert).",
    "index_refresh_seconds": "Most time before a process catches its indexes up with the database.",
    "index_max_age_seconds": "/readyz fails when the index was last refreshed longer ago.",
    "url_allowlist": (
        "Hosts, addresses or networks (CIDR) that url= fetching and webhook deliveries may "
        "reach even though they are private, loopback or link-local; comma-separated."
    ),
    "fetch_timeout_seconds": "Total time allowed for fetching one url= (all redirects).",
    "fetch_max_bytes": "Largest body fetched from a url=.",
    "fetch_max_redirects": "Most redirects followed when fetching a url=.",
    "fetch_max_concurrent_per_key": "URL fetches one API key may have in flight (more: 429).",
    "fetch_max_concurrent": "URL fetches one API process may have in flight (more: 429).",
    "video_sample_fps": "Frames a second hashed from videos that are looked up (scan, API, hash).",
    "video_bank_sample_fps": "Frames a second hashed from videos added to a bank.",
    "video_query_share": "Share (0-1) of a query video's frames that must match a bank video.",
    "video_bank_share": "Share (0-1) of a bank video's frames the query must cover.",
    "video_clip": "Clip mode: a query that is part of a longer bank video matches (no bank share).",
    "video_bank_coverage_seconds": (
        "A bank frame within this many seconds of a matched one counts as covered."
    ),
    "video_max_file_bytes": "Videos larger than this are digested but not decoded.",
    "video_max_duration_seconds": "Videos longer than this (declared or decoded) are refused.",
    "video_timeout_seconds": "Wall-clock limit for decoding one video.",
    # -- review (cases, reviewer UI) --
    "review_reveal_seconds": "Seconds a revealed item stays clear before the page re-blurs it.",
    "review_daily_limit": "Items one reviewer may reveal in a UTC day; more reveals are refused.",
    "review_break_minutes": "Minutes of continuous reviewing after which a break is suggested.",
    "review_session_minutes": "Lifetime of a reviewer's web sign-in, counted from sign-in.",
    "review_fp_disable_after": (
        "False-positive decisions after which a bank entry is disabled pending a curator's look."
    ),
    "review_undo_seconds": (
        "Seconds a reviewer may undo a decision; a false positive's copy is discarded after."
    ),
    # -- actions (rules, webhooks, quarantine) --
    "webhook_timeout_seconds": "Total time allowed for one webhook POST (connect, send, answer).",
    "webhook_max_attempts": "Delivery attempts before a webhook event is marked dead.",
    "webhook_backoff_seconds": "Wait before the first webhook retry; doubles each attempt.",
    "webhook_backoff_max_seconds": "Longest wait between webhook retries.",
    "webhook_lease_seconds": (
        "How long a deliverer holds an event it is sending; a crashed deliverer's events are "
        "retried after this."
    ),
    "webhook_poll_seconds": "How often an idle deliverer looks for due webhook events.",
    "webhook_deliver_in_serve": "Deliver webhook events from inside `amparo serve`.",
    "quarantine_dir": (
        "Folder that `quarantine` actions in move mode move matched scan files into; empty "
        "means moving is refused (files are only ever copied into the evidence store)."
    ),
    # -- evidence --
    "evidence_url": (
        "Where encrypted evidence blobs are kept: empty for <home>/evidence, a directory, or "
        "s3://bucket/prefix?endpoint=URL&region=NAME (credentials from AWS_* variables)."
    ),
    "evidence_kek_file": (
        "Keyring of key-encryption keys for evidence; empty means <home>/keys/evidence.keys, "
        "created on first use. Back it up: without it no evidence can be read."
    ),
    "evidence_retention_days": (
        "Days preserved evidence is kept before `amparo evidence purge` deletes it (unless on "
        "legal hold); 0 keeps it until discarded by hand."
    ),
    # -- audit and reports --
    "audit_checkpoint_every": (
        "Sign a checkpoint of the audit chain every this many entries; 0 only on demand."
    ),
    "audit_signing_key_file": (
        "Ed25519 key (PEM) that signs audit checkpoints; empty: <home>/keys/audit-signing.key."
    ),
    "cybertip_environment": "CyberTipline environment: 'test' (default) or 'production'.",
    "cybertip_url": "CyberTipline API base URL; required (set explicitly) for production.",
    "cybertip_username": "CyberTipline API user name (HTTP basic auth).",
    "cybertip_password": "CyberTipline API password (HTTP basic auth).",
    "cybertip_timeout_seconds": "Time allowed for one CyberTipline API call.",
    "reporter_org_name": "Reporting organisation's name, as reports carry it.",
    "reporter_contact_name": "Name of the person hotlines contact about reports.",
    "reporter_email": "E-mail address of the reporting contact.",
    "reporter_phone": "Telephone number of the reporting contact (optional).",
    "audit_checkpoint_seconds": (
        "Also sign the audit chain's head at most this often (seconds) when anything was "
        "written, and at the end of each command and at shutdown; 0: only by count."
    ),
}


def setting_names() -> list[str]:
    return [f.name for f in fields(Settings)]


def _coerce(name: str, raw: Any, origin: str) -> Any:
    default = getattr(Settings(), name)
    invalid = ConfigError(
        f"setting {name!r} from {origin} has an invalid value {raw!r}",
        hint=f"expected a {type(default).__name__}; see docs/configuration.md",
    )
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise invalid
    if isinstance(default, Path):
        return Path(str(raw)).expanduser()
    if not isinstance(default, int | float):
        return str(raw)
    try:
        value = float(raw) if isinstance(default, float) else int(raw)
    except (TypeError, ValueError, OverflowError):  # what float() and int() raise
        raise invalid from None
    if isinstance(value, float) and not math.isfinite(value):
        raise invalid
    return value


def _validate(settings: Settings) -> Settings:
    if not 0 <= settings.pdq_threshold <= MAX_PDQ_THRESHOLD:
        raise ConfigError(
            f"pdq_threshold {settings.pdq_threshold} is out of range",
            hint=f"use a distance between 0 and {MAX_PDQ_THRESHOLD} (31 is PDQ's usual threshold)",
        )
    if not 0 <= settings.pdq_min_quality <= 100:
        raise ConfigError(
            f"pdq_min_quality {settings.pdq_min_quality} is out of range",
            hint="use a quality between 0 and 100",
        )
    if settings.workers < 0:
        raise ConfigError("workers must be 0 (all cores) or a positive number")
    for name in ("video_query_share", "video_bank_share"):
        if not 0.0 <= getattr(settings, name) <= 1.0:
            raise ConfigError(f"{name} must be between 0 and 1", hint="0.8 is the usual share")
    for name in (
        "video_sample_fps",
        "video_bank_sample_fps",
        "video_max_file_bytes",
        "video_max_duration_seconds",
        "video_timeout_seconds",
        "max_decode_memory",
        "fetch_timeout_seconds",
        "fetch_max_concurrent_per_key",
        "fetch_max_concurrent",
        "probe_window",
        "probe_max_near",
        "probe_period_seconds",
    ):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{name} must be a positive number")
    if settings.video_bank_coverage_seconds < 0:
        raise ConfigError("video_bank_coverage_seconds must be 0 or more")
    if (
        not 0 <= settings.probe_near_bits <= MAX_PDQ_THRESHOLD
        or settings.probe_cooldown_seconds < 0
    ):
        raise ConfigError(
            "probe_near_bits must be 0-63 and probe_cooldown_seconds 0 or more",
            hint="the defaults are 8 bits and 900 seconds",
        )
    if settings.review_undo_seconds < 0:
        raise ConfigError("review_undo_seconds must be 0 or more", hint="600 is the default")
    return settings


def load_settings(
    *,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Resolve settings: defaults -> config file -> environment -> overrides.

    The config file is ``config_file``, else ``$AMPARO_CONFIG``, else ``<home>/amparo.toml``
    when it exists.
    """
    env = os.environ if env is None else env
    names = setting_names()
    values: dict[str, Any] = {}

    home_raw = (overrides or {}).get("home") or env.get(ENV_PREFIX + "HOME")
    home = Path(str(home_raw)).expanduser() if home_raw else Settings().home
    path = config_file or (
        Path(env[ENV_PREFIX + "CONFIG"]) if env.get(ENV_PREFIX + "CONFIG") else None
    )
    if path is None and (home / "amparo.toml").is_file():
        path = home / "amparo.toml"
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"config file {path} does not exist", hint="check the path or unset AMPARO_CONFIG"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        section = data.get("amparo", data)
        for key, raw in section.items():
            if key not in names:
                raise ConfigError(
                    f"unknown setting {key!r} in {path}",
                    hint="known settings: " + ", ".join(names),
                )
            values[key] = _coerce(key, raw, str(path))

    for name in names:
        raw_env = env.get(ENV_PREFIX + name.upper())
        if raw_env is not None and raw_env != "":
            values[name] = _coerce(name, raw_env, ENV_PREFIX + name.upper())

    for name, raw in (overrides or {}).items():
        if raw is None:
            continue
        if name not in names:
            raise ConfigError(f"unknown setting {name!r}")
        values[name] = _coerce(name, raw, "the command line")

    return _validate(replace(Settings(), **values))
