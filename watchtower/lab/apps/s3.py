"""A backup bucket for the lab: just enough of the S3 API (ListObjectsV2, path style) for
backup.freshness, following Amazon's published ListObjectsV2 response (XML namespace
http://s3.amazonaws.com/doc/2006-03-01/, `Contents` with Key, LastModified, Size, pagination by
`IsTruncated` and `NextContinuationToken`). The tests use a real S3 server (moto); this
stand-in exists so the demo lab shows a stale backup. It checks that a SigV4 Authorization
header is present, not its signature.

Fault `backup-stale`: the newest backup is three days old (the nightly job stopped).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import ClassVar
from xml.sax.saxutils import escape

from watchtower.lab.apps.common import Fault, LabApp, Request, Response, text_response

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
NIGHTLY = 24 * 3600


def _error(status: int, code: str, message: str) -> Response:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error>")
    return text_response(body, status, content_type="application/xml")


class BackupBucketApp(LabApp):
    """Bucket `bucket` holding a week of nightly backups under `prefix`."""

    FAULTS: ClassVar[tuple[Fault, ...]] = (
        Fault("backup-stale", "the newest backup is three days old (the nightly job stopped)"),
    )

    def __init__(self, bucket: str = "backups", prefix: str = "nightly/", **common: object
                 ) -> None:
        super().__init__(**common)  # type: ignore[arg-type]
        self.bucket = bucket
        self.prefix = prefix

    def objects(self, faults: frozenset[str]) -> list[tuple[str, float, int]]:
        """(key, upload time, size), oldest first; the last one landed an hour ago."""
        newest = time.time() - (3 * NIGHTLY if "backup-stale" in faults else 3600)
        stamps = [newest - NIGHTLY * n for n in range(6, -1, -1)]
        return [(f"{self.prefix}{dt.datetime.fromtimestamp(t, dt.UTC):%Y-%m-%dT%H%M%SZ}.tar.zst",
                 t, 1_048_576 + i) for i, t in enumerate(stamps)]

    def handle(self, req: Request, faults: frozenset[str]) -> Response:
        if req.path.strip("/") != self.bucket:
            return _error(404, "NoSuchBucket", "The specified bucket does not exist")
        if not (req.header("Authorization") or "").startswith("AWS4-HMAC-SHA256 "):
            return _error(403, "AccessDenied", "Access Denied")
        if req.method != "GET" or req.arg("list-type") != "2":
            return _error(501, "NotImplemented", "only ListObjectsV2 is served here")
        prefix = req.arg("prefix") or ""
        rows = [o for o in self.objects(faults) if o[0].startswith(prefix)]
        contents = "".join(
            f"<Contents><Key>{escape(key)}</Key><LastModified>"
            f"{dt.datetime.fromtimestamp(when, dt.UTC):%Y-%m-%dT%H:%M:%S.000Z}</LastModified>"
            f"<Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>"
            for key, when, size in rows)
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="{S3_NS}">'
                f"<Name>{self.bucket}</Name><Prefix>{escape(prefix)}</Prefix>"
                f"<KeyCount>{len(rows)}</KeyCount><MaxKeys>1000</MaxKeys>"
                f"<IsTruncated>false</IsTruncated>{contents}</ListBucketResult>")
        return text_response(body, content_type="application/xml")
