"""Objects in a bucket hashed on a Ray cluster (``amparo scan --engine ray s3://...``): the
Ray workers read the objects themselves (credentials from their own environment, only the
endpoint travelling with the tasks) and the report equals the local engine's.

moto's S3 server on loopback; a local Ray (two CPUs) started after the test credentials are
in the environment, so its workers find them as a node would. Synthetic images only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from test_scan_s3 import KNOWN, KNOWN_TEXT, make_tree  # noqa: E402

from amparo import Amparo, BankInfo, EntryRecord, load_settings  # noqa: E402
from amparo.scan import ScanOptions, ScanResult, scan_paths  # noqa: E402
from amparo.scan.s3 import forget_clients  # noqa: E402
from amparo.signals import digest_bytes  # noqa: E402
from s3_support import MotoS3  # noqa: E402

pytestmark = pytest.mark.slow

_NODE_ENV = {
    **MotoS3.env(),
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="module")
def store() -> Iterator[MotoS3]:
    saved = {name: os.environ.get(name) for name in _NODE_ENV}
    os.environ.update(_NODE_ENV)  # what each node's own environment would hold
    try:
        with MotoS3() as store:
            ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
            try:
                yield store
            finally:
                ray.shutdown()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        forget_clients()


@pytest.fixture
def amparo(tmp_path: Path, store: MotoS3) -> Iterator[Amparo]:
    settings = load_settings(
        env={}, overrides={"home": tmp_path / "home", "s3_endpoint": store.endpoint}
    )
    with Amparo(settings) as app:
        app.banks.create(BankInfo(name="known"))
        app.banks.add_media("known", KNOWN, category="test-category")
        app.banks.add_entries("known", [EntryRecord("sha256", digest_bytes(KNOWN_TEXT).sha256)])
        yield app


def _findings(result: ScanResult) -> dict[str, object]:
    return {
        "summary": {
            k: v
            for k, v in result.summary().items()
            if k not in ("started_at", "finished_at", "elapsed_s")
        },
        "matches": sorted((m.path, str(m.match)) for m in result.matches),
        "errors": sorted((i.path, i.code) for i in result.errors),
        "skipped": sorted((i.path, i.code) for i in result.skipped),
    }


def test_ray_workers_read_objects_and_report_as_the_local_engine(
    amparo: Amparo, store: MotoS3, tmp_path: Path
) -> None:
    bucket = store.bucket()
    store.put_tree(bucket, "evidence/", make_tree(tmp_path / "tree"))
    before = store.keys(bucket)
    url = f"s3://{bucket}/evidence"

    local = scan_paths(
        amparo, [url], ScanOptions(workers=1, journal=tmp_path / "local.journal", actions=False)
    )
    on_ray = scan_paths(
        amparo, [url], ScanOptions(engine="ray", journal=tmp_path / "ray.journal", actions=False)
    )

    assert _findings(on_ray) == _findings(local)
    matched = {m.path for m in on_ray.matches}
    assert f"{url}/k.jpg" in matched
    assert f"{url}/arch/a.zip!inner/k.jpg" in matched  # an archive expanded on a Ray worker
    assert f"{url}/photos/a/b/deep.txt" in matched
    assert store.keys(bucket) == before  # nothing written to the bucket
