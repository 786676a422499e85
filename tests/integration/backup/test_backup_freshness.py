"""backup.freshness against a real S3 server (moto, fixture `s3_server`): the newest object under
the prefix decides, pages are followed, a missing bucket or an empty prefix fails."""

from __future__ import annotations

import time
from typing import Any

import pytest
import watchtower.checks.backup as backup

from tests.integration.web.labnet import run_check, target_of
from watchtower.config import parse_fleet
from watchtower.net.s3 import S3Client, newest
from watchtower.probe.clients import SweepClients


@pytest.fixture(autouse=True)
def _keys(s3_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WT_TEST_S3_AK", s3_server.access_key)
    monkeypatch.setenv("WT_TEST_S3_SK", s3_server.secret_key)


def _run(s3_server: Any, **entry: Any) -> Any:
    spec = {"name": "nightly", "s3_endpoint": s3_server.endpoint_url, "bucket": "backups",
            "prefix": "restic/", "s3_region": s3_server.region,
            "s3_access_key": {"$env": "WT_TEST_S3_AK"}, "s3_secret_key": {"$env": "WT_TEST_S3_SK"},
            **entry}
    fleet = parse_fleet({"probe": {"http_timeout": 5.0}, "backups": [spec]})
    return run_check(fleet, backup.Freshness(), target_of(fleet, "nightly", "backup"),
                     timeout=15)


def test_fresh_stale_empty_and_missing(s3_server) -> None:  # type: ignore[no-untyped-def]
    s3 = s3_server.client()
    s3.create_bucket(Bucket="backups")
    for i in range(3):
        s3.put_object(Bucket="backups", Key=f"restic/snap-{i}", Body=b"x" * (i + 1))
    s3.put_object(Bucket="backups", Key="other/ignored", Body=b"y")
    fresh = _run(s3_server)
    assert fresh.status == "ok", fresh.summary
    assert fresh.evidence["count"] == 3 and "restic/snap-" in fresh.evidence["newest_key"]
    time.sleep(1.1)  # the newest object is now older than a 1-second max_age
    stale = _run(s3_server, max_age=0.0003)
    assert stale.status == "fail" and "old (max" in stale.summary, stale.summary
    empty = _run(s3_server, prefix="borg/")
    assert empty.status == "fail" and "no backup under backups/borg/" in empty.summary
    missing = _run(s3_server, bucket="no-such-bucket")
    assert missing.status == "fail" and "NoSuchBucket" in missing.summary
    assert s3_server.secret_key not in str(fresh.evidence)


def test_listing_follows_pages(s3_server) -> None:  # type: ignore[no-untyped-def]
    s3 = s3_server.client()
    s3.create_bucket(Bucket="paged")
    for i in range(5):
        s3.put_object(Bucket="paged", Key=f"p/{i}", Body=b"z")
    sweep = SweepClients(parse_fleet({}))
    try:
        client = S3Client(sweep.http, s3_server.endpoint_url, s3_server.region,
                          s3_server.access_key, s3_server.secret_key)
        whole = newest(client, "paged", "p/", page_size=2)
        cut = newest(client, "paged", "p/", page_size=2, max_pages=2)
    finally:
        sweep.close()
    assert whole.count == 5 and not whole.truncated and whole.step.ok
    assert cut.count == 4 and cut.truncated
