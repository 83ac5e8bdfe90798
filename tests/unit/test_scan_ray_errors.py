"""``--engine ray`` fails clearly, without a traceback or a long hang: Ray not installed, a
cluster address nothing answers at, an address that is not one, an unknown engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amparo.cli.main import app
from amparo.errors import ConfigError
from amparo.scan import HashLimits
from amparo.scan.engine import make_engine
from amparo.scan.ray_engine import check_reachable, cluster_address

LIMITS = HashLimits(max_pixels=10_000_000, max_file_bytes=10_000_000)


def test_ray_absent_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ConfigError) as caught:
        make_engine(0, LIMITS, engine="ray")
    assert "pip install 'amparo[ray]'" in (caught.value.hint or "")


def test_ray_absent_on_the_command_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setitem(sys.modules, "ray", None)
    result = CliRunner().invoke(
        app, ["--home", str(tmp_path / "home"), "scan", "--engine", "ray", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "amparo[ray]" in result.output and "Traceback" not in result.output


def test_an_unknown_engine_is_refused_with_a_hint(tmp_path: Path):
    result = CliRunner().invoke(
        app, ["--home", str(tmp_path / "home"), "scan", "--engine", "bogus", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "bogus" in result.output and "hint" in result.output
    assert "Traceback" not in result.output


def test_an_address_that_is_not_host_port_is_refused():
    for address in ("nonsense", "host:", ":6379", "host:99999", "ray://host"):
        with pytest.raises(ConfigError) as caught:
            check_reachable(address)
        assert caught.value.hint


def test_no_address_means_ray_address_or_a_local_instance(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cluster_address(None) == "local"  # never the last cluster this machine ran
    assert cluster_address("10.0.0.5:6379") == "10.0.0.5:6379"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.9:6379")
    assert cluster_address(None) == "10.0.0.9:6379"
    assert cluster_address("auto") == "auto"


def test_an_unreachable_cluster_fails_fast_on_the_command_line(tmp_path: Path):
    pytest.importorskip("ray")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "amparo.cli.main",
            "--home",
            str(tmp_path / "home"),
            "scan",
            "--engine",
            "ray",
            "--ray-address",
            "127.0.0.1:1",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,  # Ray alone would retry for minutes
        env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
    )
    assert proc.returncode == 2
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in proc.stderr
    assert "hint:" in proc.stderr and "Traceback" not in proc.stderr
