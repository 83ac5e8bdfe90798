"""An S3-compatible store for tests: moto's S3 server on a free loopback port.

    with MotoS3() as store:                      # or the module fixture a test file makes
        store.use(monkeypatch)                   # AWS_* test credentials, region, no profile
        bucket = store.bucket()                  # a fresh bucket, unique to the test
        store.put_tree(bucket, "tree/", folder)  # a folder on disk as objects
        with store.enforced_auth():              # moto checks credentials (IAM) meanwhile
            ...

moto keeps its buckets per process (every server in a process shares them), so each test
makes its own bucket rather than resetting the store under another test.
"""

from __future__ import annotations

import json
import logging
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoS3:
    """moto's S3 server on 127.0.0.1, started and stopped with the context."""

    def __init__(self) -> None:
        moto_server = pytest.importorskip("moto.server")
        pytest.importorskip("boto3")
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = moto_server.ThreadedMotoServer(
            ip_address="127.0.0.1", port=self.port, verbose=False
        )

    def __enter__(self) -> Self:
        # werkzeug logs every request to the stderr it first saw (a CliRunner's, closed later).
        self._werkzeug = logging.getLogger("werkzeug")
        self._level = self._werkzeug.level
        self._werkzeug.setLevel(logging.WARNING)
        self._server.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.stop()
        self._werkzeug.setLevel(self._level)

    @staticmethod
    def env() -> dict[str, str]:
        """The environment a client (or an ``amparo`` subprocess) needs for this store."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

    def use(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point boto3's default chain at test credentials (and away from any real ones)."""
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        for name, value in self.env().items():
            monkeypatch.setenv(name, value)

    def client(self, **credentials: str) -> Any:
        """A boto3 S3 client on this store (``aws_access_key_id=...`` to use other keys)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION, **credentials)

    def bucket(self, prefix: str = "t") -> str:
        """Create a bucket with a fresh name and return the name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def put(self, bucket: str, key: str, data: bytes) -> str:
        """Write one object; its ETag (without quotes)."""
        etag: str = self.client().put_object(Bucket=bucket, Key=key, Body=data)["ETag"]
        return etag.strip('"')

    def put_tree(self, bucket: str, prefix: str, folder: Path) -> list[str]:
        """Every file under ``folder`` as an object under ``prefix``; the keys written."""
        keys = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            key = prefix + path.relative_to(folder).as_posix()
            self.put(bucket, key, path.read_bytes())
            keys.append(key)
        return keys

    def keys(self, bucket: str) -> dict[str, str]:
        """Every object in the bucket: key -> ETag (to check that nothing was written)."""
        out: dict[str, str] = {}
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                out[obj["Key"]] = obj["ETag"]
        return out

    def iam_user(self, name: str, *, allow_s3: bool = True) -> tuple[str, str]:
        """An IAM user with an access key (allowed ``s3:*``, or nothing): (key id, secret).
        Make it before :meth:`enforced_auth` (moto checks IAM calls once auth is on)."""
        import boto3

        iam = boto3.client("iam", endpoint_url=self.endpoint, region_name=REGION)
        iam.create_user(UserName=name)
        if allow_s3:
            policy = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
            iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    @contextmanager
    def enforced_auth(self) -> Iterator[None]:
        """moto checks signatures and IAM policies meanwhile (it does not by default). The
        switch is per process: every moto server in it checks until the context ends."""
        self._auth("0")
        try:
            yield
        finally:
            self._auth("inf")

    def _auth(self, count: str) -> None:
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth",
            data=count.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},  # a form body would reach moto empty
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()
