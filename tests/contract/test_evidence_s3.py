"""The evidence store on an S3-compatible bucket (moto's S3 server on a free loopback port)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from amparo.app import Amparo
from amparo.config import Settings, load_settings
from amparo.errors import ConfigError, EvidenceIntegrityError
from amparo.evidence.backends import S3Backend, blob_key, open_backend
from amparo.evidence.crypto import CHUNK_SIZE

pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="evidence")
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket="evidence"):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket="evidence", Key=obj["Key"])
    client.delete_bucket(Bucket="evidence")


@pytest.fixture
def s3_settings(tmp_path: Path, endpoint: str, s3: Any) -> Settings:
    url = f"s3://evidence/site-a?endpoint={endpoint}&region=us-east-1"
    return load_settings(env={}, overrides={"home": tmp_path / "home", "evidence_url": url})


def _keys(s3: Any) -> list[str]:
    listed = s3.list_objects_v2(Bucket="evidence").get("Contents", [])
    return sorted(o["Key"] for o in listed)


def test_s3_round_trip_tamper_purge_and_orphans(s3_settings: Settings, s3: Any) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 11)
    with Amparo(s3_settings) as amparo:
        evidence = amparo.evidence
        assert isinstance(evidence.backend, S3Backend)
        assert "endpoint" not in evidence.backend.url
        item = evidence.preserve(data, reason="manual", actor="t", retention_days=1)
        stored = evidence.records.get(item.id)
        assert stored is not None
        key = "site-a/" + blob_key(stored.uuid)
        assert _keys(s3) == [key]
        assert not (s3_settings.home / "evidence").exists()
        assert evidence.read(item.id, actor="t") == data

        blob = s3.get_object(Bucket="evidence", Key=key)["Body"].read()
        assert data[:64] not in blob
        damaged = bytearray(blob)
        damaged[CHUNK_SIZE] ^= 0x40
        s3.put_object(Bucket="evidence", Key=key, Body=bytes(damaged))
        with pytest.raises(EvidenceIntegrityError, match=f"evidence item {item.id}"):
            evidence.read(item.id, actor="t")
        s3.put_object(Bucket="evidence", Key=key, Body=blob)
        assert evidence.verify().ok

        rotated = evidence.rotate_key(actor="t", retire=True)
        assert rotated.rewrapped == 1
        assert s3.get_object(Bucket="evidence", Key=key)["Body"].read() == blob
        assert evidence.read(item.id, actor="t") == data

        s3.put_object(Bucket="evidence", Key="site-a/ab/" + "ab" * 16 + ".amev", Body=b"x")
        report = evidence.purge(datetime.now(UTC) + timedelta(days=2), orphan_grace_seconds=0)
        assert report.purged == [item.id]
        assert report.orphans.removed == ["ab/" + "ab" * 16 + ".amev"]
        assert _keys(s3) == []


def test_evidence_url_forms(tmp_path: Path, endpoint: str, s3: Any) -> None:
    home = tmp_path / "home"
    assert open_backend("", home).url == str(home / "evidence")
    assert open_backend(str(tmp_path / "ev"), home).url == str(tmp_path / "ev")
    assert open_backend(f"file://{tmp_path}/ev2", home).url == f"{tmp_path}/ev2"
    backend = open_backend(f"s3://evidence?endpoint={endpoint}", home)
    assert isinstance(backend, S3Backend) and backend.prefix == ""
    with pytest.raises(ConfigError, match="unknown scheme"):
        open_backend("ftp://x/y", home)
    with pytest.raises(ConfigError, match="unknown parameters"):
        open_backend("s3://evidence/p?endpoint=http://x&secret=y", home)
    with pytest.raises(ConfigError, match="no bucket"):
        open_backend("s3:///p", home)
