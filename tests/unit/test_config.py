"""Settings resolve in order: defaults, config file, AMPARO_* environment, flags."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from amparo.config import SETTING_DOCS, load_settings, setting_names
from amparo.errors import ConfigError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_precedence(tmp_path: Path) -> None:
    config = tmp_path / "amparo.toml"
    config.write_text("[amparo]\npdq_threshold = 20\nworkers = 3\n")
    s = load_settings(config_file=config, env={})
    assert (s.pdq_threshold, s.workers) == (20, 3)
    s = load_settings(config_file=config, env={"AMPARO_PDQ_THRESHOLD": "25"})
    assert (s.pdq_threshold, s.workers) == (25, 3)
    s = load_settings(
        config_file=config, env={"AMPARO_PDQ_THRESHOLD": "25"}, overrides={"pdq_threshold": 12}
    )
    assert s.pdq_threshold == 12


def test_config_file_in_home_is_found(tmp_path: Path) -> None:
    (tmp_path / "amparo.toml").write_text("log_level = 'INFO'\n")
    assert load_settings(env={"AMPARO_HOME": str(tmp_path)}).log_level == "INFO"


def test_default_database_is_sqlite_in_home(tmp_path: Path) -> None:
    s = load_settings(env={}, overrides={"home": tmp_path})
    assert s.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'amparo.db'}"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AMPARO_PDQ_THRESHOLD": "abc"}, "invalid value"),
        ({"AMPARO_PDQ_THRESHOLD": "300"}, "out of range"),
        ({"AMPARO_WORKERS": "-1"}, "workers"),
    ],
)
def test_bad_values_say_what_is_wrong(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env=env)


def test_unknown_and_broken_config_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("nonsense = 1\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(config_file=bad, env={})
    bad.write_text("[[[")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config_file=bad, env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(config_file=tmp_path / "missing.toml", env={})


def test_every_setting_is_documented() -> None:
    assert set(SETTING_DOCS) == set(setting_names())
    text = DOCS.read_text()
    for name in setting_names():
        assert re.search(rf"`{name}`", text), f"{name} missing from docs/configuration.md"
        assert f"AMPARO_{name.upper()}" in text


def test_library_defaults_are_the_settings_defaults() -> None:
    """``media`` may not import the settings, so its video limits repeat their defaults."""
    from amparo.config import DEFAULTS
    from amparo.media.video import DEFAULT_SAMPLE_FPS, VideoLimits

    limits = VideoLimits()
    assert limits.max_file_size == DEFAULTS.video_max_file_bytes
    assert limits.max_duration_seconds == DEFAULTS.video_max_duration_seconds
    assert limits.timeout_seconds == DEFAULTS.video_timeout_seconds
    assert DEFAULTS.video_sample_fps == DEFAULT_SAMPLE_FPS
