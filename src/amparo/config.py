"""Settings, declared once.

Each setting is one row of :class:`Settings`: name, type, default and description (the
``setting(default, description)`` beside it). Values are resolved in
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
from typing import Any, TypeVar

from amparo.config_hotline import setting
from amparo.config_media import MediaSettings
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

T = TypeVar("T")
DEFAULT_HOME = Path("amparo-data")


@dataclass(frozen=True)
class Settings(MediaSettings):
    """Resolved settings. Build with :func:`load_settings`. The hotline's rows are in
    :class:`~amparo.config_hotline.HotlineSettings`, the limits of what is read and decoded,
    video sampling and the scan's engines and buckets in
    :class:`~amparo.config_media.MediaSettings`."""

    home: Path = setting(  # noqa: RUF009 (a Path is immutable)
        DEFAULT_HOME, "Data directory: SQLite database, index files, journals."
    )
    database_url: str = setting("", "SQLAlchemy URL; empty means SQLite at <home>/amparo.db.")
    pdq_threshold: int = setting(
        31,
        "Default PDQ match distance (0-63) for banks that do not set their own.",
    )
    pdq_min_quality: int = setting(50, "PDQ hashes below this quality are not used for matching.")
    log_level: str = setting("WARNING", "Logging level: DEBUG, INFO, WARNING, ERROR.")
    api_host: str = setting("127.0.0.1", "Address `amparo serve` listens on.")
    api_port: int = setting(8080, "Port `amparo serve` listens on.")
    api_max_upload_bytes: int = setting(
        32 * 1024 * 1024,
        "Largest media upload the API accepts (bigger: 413).",
    )
    api_max_json_bytes: int = setting(
        1024 * 1024,
        "Largest JSON or form request body the API accepts (bigger: 413).",
    )
    api_public_docs: bool = setting(False, "Serve /docs and /openapi.json without an API key.")
    api_rate_limits: str = setting(
        "matcher=50:100,hasher=20:40,default=20:40",
        "Per-key request rates by scope, 'scope=per_second:burst,...'; 'default' covers the rest; "
        "a key's own rate (amparo keys create --rate) wins; admin and curator keys are limited "
        "only when named here.",
    )
    api_key_cache_seconds: int = setting(
        2,
        "How long a checked API key is trusted before it is re-read.",
    )
    probe_window: int = setting(
        64,
        "Matched PDQ queries remembered per matcher key for probe detection.",
    )
    probe_near_bits: int = setting(
        8,
        "A matched PDQ query this many bits or fewer from a remembered one (but not equal to it) "
        "counts as a probe step.",
    )
    probe_max_near: int = setting(
        20,
        "Probe steps within probe_period_seconds after which a key is suspected of reconstructing "
        "a bank's hashes (alerted, and throttled if probe_throttle).",
    )
    probe_period_seconds: float = setting(3600.0, "Window over which probe steps are counted.")
    probe_cooldown_seconds: float = setting(
        900.0,
        "How long a key suspected of probing has its lookups refused.",
    )
    probe_throttle: bool = setting(
        True,
        "Refuse lookups of a key suspected of probing (off: only alert).",
    )
    index_refresh_seconds: float = setting(
        0.5,
        "Most time before a process catches its indexes up with the database.",
    )
    index_max_age_seconds: int = setting(
        30,
        "/readyz fails when the index was last refreshed longer ago.",
    )
    lookup_database_timeout_seconds: float = setting(
        5.0,
        "Most time a lookup request waits for the database before a 503.",
    )
    # -- review (cases, reviewer UI) --
    review_reveal_seconds: int = setting(
        5,
        "Seconds a revealed item stays clear before the page re-blurs it.",
    )
    review_daily_limit: int = setting(
        200,
        "Items one reviewer may reveal in a UTC day; more reveals are refused.",
    )
    review_break_minutes: int = setting(
        50,
        "Minutes of continuous reviewing after which a break is suggested.",
    )
    review_session_minutes: int = setting(
        240,
        "Lifetime of a reviewer's web sign-in, counted from sign-in.",
    )
    review_fp_disable_after: int = setting(
        3,
        "False-positive decisions after which a bank entry is disabled pending a curator's look.",
    )
    review_undo_seconds: int = setting(
        600,
        "Seconds a reviewer may undo a decision; a false positive's copy is discarded after.",
    )
    # -- actions (rules, webhooks, quarantine) --
    webhook_timeout_seconds: float = setting(
        10.0,
        "Total time allowed for one webhook POST (connect, send, answer).",
    )
    webhook_max_attempts: int = setting(
        15,
        "Delivery attempts before a webhook event is marked dead.",
    )
    webhook_backoff_seconds: float = setting(
        5.0,
        "Wait before the first webhook retry; doubles each attempt.",
    )
    webhook_backoff_max_seconds: float = setting(3600.0, "Longest wait between webhook retries.")
    webhook_lease_seconds: float = setting(
        60.0,
        "How long a deliverer holds an event it is sending; a crashed deliverer's events are "
        "retried after this.",
    )
    webhook_poll_seconds: float = setting(
        1.0,
        "How often an idle deliverer looks for due webhook events.",
    )
    webhook_deliver_in_serve: bool = setting(
        True,
        "Deliver webhook events from inside `amparo serve`.",
    )
    quarantine_dir: str = setting(
        "",
        "Folder that `quarantine` actions in move mode move matched scan files into; empty means "
        "moving is refused (files are only ever copied into the evidence store).",
    )
    # -- evidence --
    evidence_url: str = setting(
        "",
        "Where encrypted evidence blobs are kept: empty for <home>/evidence, a directory, or "
        "s3://bucket/prefix?endpoint=URL&region=NAME (credentials from AWS_* variables).",
    )
    evidence_kek_file: str = setting(
        "",
        "Keyring of key-encryption keys for evidence; empty means <home>/keys/evidence.keys, "
        "created on first use. Back it up: without it no evidence can be read.",
    )
    evidence_retention_days: int = setting(
        365,
        "Days preserved evidence is kept before `amparo evidence purge` deletes it (unless on "
        "legal hold); 0 keeps it until discarded by hand.",
    )
    # -- audit and reports --
    audit_checkpoint_every: int = setting(
        1000,
        "Sign a checkpoint of the audit chain every this many entries; 0 only on demand.",
    )
    audit_signing_key_file: str = setting(
        "",
        "Ed25519 key (PEM) that signs audit checkpoints; empty: <home>/keys/audit-signing.key.",
    )
    cybertip_environment: str = setting(
        "test",
        "CyberTipline environment: 'test' (default) or 'production'.",
    )
    cybertip_url: str = setting(
        "",
        "CyberTipline API base URL; required (set explicitly) for production.",
    )
    cybertip_username: str = setting("", "CyberTipline API user name (HTTP basic auth).")
    cybertip_password: str = setting("", "CyberTipline API password (HTTP basic auth).")
    cybertip_timeout_seconds: float = setting(60.0, "Time allowed for one CyberTipline API call.")
    reporter_org_name: str = setting("", "Reporting organisation's name, as reports carry it.")
    reporter_contact_name: str = setting("", "Name of the person hotlines contact about reports.")
    reporter_email: str = setting("", "E-mail address of the reporting contact.")
    reporter_phone: str = setting("", "Telephone number of the reporting contact (optional).")
    audit_checkpoint_seconds: float = setting(
        60.0,
        "Also sign the audit chain's head at most this often (seconds) when anything was written, "
        "and at the end of each command and at shutdown; 0: only by count.",
    )
    organisation_id: str = setting(
        "",
        "This installation's organisation id as federation provenance names it (e.g. "
        "`hotline-mx`); empty: `amparo-` and the feed signing key's id.",
    )
    exchange_in_serve: bool = setting(
        True, "Run due exchange fetches, opinion deliveries and retro matching in `amparo serve`."
    )
    exchange_poll_seconds: float = setting(
        15.0, "How often `amparo serve` looks for collaborations due to be fetched."
    )
    exchange_lease_seconds: float = setting(
        120.0,
        "A fetcher's lease on a collaboration, renewed every batch; a dead holder's lease "
        "expires after this long and another process takes over.",
    )
    exchange_batch_size: int = setting(
        5000, "Records committed per batch (with the checkpoint) while fetching."
    )
    exchange_http_attempts: int = setting(
        5, "Tries per exchange HTTP request (429 and 5xx are retried with backoff)."
    )
    exchange_http_timeout_seconds: float = setting(60.0, "Time allowed for one exchange request.")
    exchange_backoff_seconds: float = setting(
        1.0, "First wait before retrying an exchange request; doubles each try (max 60 s)."
    )
    exchange_credentials_dirs: str = setting(
        "",
        "Directories a collaboration's `file:` credentials may name (comma-separated); empty: "
        "<home>/secrets. `env:` credentials must be variables named AMPARO_SECRET_*.",
    )
    exchange_list_dirs: str = setting(
        "",
        "Directories a `file` exchange may read lists from (comma-separated); empty: <home>/lists.",
    )
    exchange_max_list_bytes: int = setting(
        2 * 1024**3, "Largest hash list (file or download) or response an exchange reads."
    )
    exchange_quarantine_retry_seconds: float = setting(
        3600.0, "How long a quarantined record or page waits before it is fetched again."
    )
    feed_page_size: int = setting(5000, "Most entries in one federation feed page.")
    feed_signing_key_file: str = setting(
        "",
        "Ed25519 key that signs this installation's feed pages and opinions; empty: "
        "<home>/keys/feed-signing.key, created on first use.",
    )
    match_volume_days: int = setting(
        400,
        "Keep the per-day match counts (per bank and source, counts only) this many days; "
        "0: keep them all.",
    )
    retro_match_days: int = setting(
        0,
        "Keep the hashes (never the media) of content checked in the last N days and match "
        "them again when new entries arrive; 0: off.",
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'amparo.db').resolve()}"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"


DEFAULTS = Settings()
"""Every setting's default: what classes that can also be built without settings (limits,
policies) default to, so no default is written twice."""

SETTING_DOCS: dict[str, str] = {f.name: f.metadata["doc"] for f in fields(Settings)}
"""Each setting's description, from its row in :class:`Settings`."""


def setting_names() -> list[str]:
    return [f.name for f in fields(Settings)]


def _coerce(name: str, raw: Any, origin: str) -> Any:
    default = getattr(DEFAULTS, name)
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
    if settings.scan_engine not in ("local", "ray"):
        raise ConfigError(
            f"scan_engine must be local or ray, not {settings.scan_engine!r}",
            hint="local hashes in worker processes here; ray on a Ray cluster",
        )
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
        "exchange_poll_seconds",
        "exchange_lease_seconds",
        "exchange_batch_size",
        "exchange_http_attempts",
        "exchange_http_timeout_seconds",
        "exchange_max_list_bytes",
        "feed_page_size",
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
    for name in ("exchange_backoff_seconds", "exchange_quarantine_retry_seconds"):
        if getattr(settings, name) < 0:
            raise ConfigError(f"{name} must be 0 or more")
    if settings.match_volume_days < 0:
        raise ConfigError("match_volume_days must be 0 (keep all) or a number of days")
    if settings.retro_match_days < 0:
        raise ConfigError("retro_match_days must be 0 (off) or a number of days")
    if settings.review_undo_seconds < 0:
        raise ConfigError("review_undo_seconds must be 0 or more", hint="600 is the default")
    if settings.import_commit_rows < 0:
        raise ConfigError("import_commit_rows must be 0 (one transaction) or a number of rows")
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
    home = Path(str(home_raw)).expanduser() if home_raw else DEFAULT_HOME
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
