"""S3 through botocore, sent over watchtower's own HTTP client.

botocore does what it is good at: SigV4 signing, path-style addressing, XML error parsing. The
bytes themselves go through `HttpClient` (a `before-send` hook hands botocore our response), so
an S3 probe resolves the endpoint through the fleet's resolver, verifies TLS against the fleet's
CA bundle, caps the body and honours the probe's deadline like every other probe; botocore's own
retries are off, because a probe reports what happened rather than hiding it behind a retry.
Garage rejects the newer optional CRC checksums on some versions, so checksums are only sent
when an operation requires them.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from watchtower.errors import ProbeError
from watchtower.net.http import HttpClient

if TYPE_CHECKING:
    from botocore.awsrequest import AWSPreparedRequest, AWSResponse

# botocore is imported where a client is made or used, not here: ~25 MB that a process
# planning a sweep (the parent of its workers) never needs. The workers' forkserver loads it
# once for all of them (watchtower/probe/warm.py).

# botocore logs every prepared request with its headers at DEBUG, and the SigV4 Authorization
# header carries the access key id: under `log_level = "debug"` the key would land in the
# daemon's log (found by tests/reliability/test_secrets.py). Its INFO and above say nothing
# secret, so that is as loud as it gets, whatever the root level.
logging.getLogger("botocore").setLevel(logging.INFO)


class _Body:
    """The `raw` botocore reads a response body from (`stream()` or `read()`)."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def stream(self, **_: Any) -> Any:
        yield self._buf.read()

    def read(self, amt: int | None = None) -> bytes:
        return self._buf.read(amt)

    def close(self) -> None:
        self._buf.close()


@dataclass(slots=True)
class StepResult:
    """One S3 operation as evidence: what was asked, the HTTP status, how long it took."""

    step: str
    ok: bool
    status: int | None
    ms: float
    error: str | None = None

    def evidence(self) -> dict[str, Any]:
        ev: dict[str, Any] = {"step": self.step, "ok": self.ok, "status": self.status,
                              "ms": round(self.ms, 1)}
        if self.error:
            ev["error"] = self.error
        return ev


class ClientFactory:
    """botocore clients from one botocore session, so the S3 service model (a large JSON
    document) is loaded and parsed once, not once per client: per client it was 3.6 % of a
    sweep worker's samples (docs/performance.md). A session is not thread-safe, its clients
    are: creation is serialised, the clients then run freely."""

    def __init__(self) -> None:
        self._session: Any = None
        self._lock = threading.Lock()

    def create(self, **kwargs: Any) -> Any:
        import botocore.session

        with self._lock:
            if self._session is None:
                self._session = botocore.session.get_session()
            return self._session.create_client("s3", **kwargs)


class S3Client:
    """A path-style S3 client for one endpoint whose requests ride on `HttpClient`."""

    def __init__(self, http: HttpClient, endpoint: str, region: str, access_key: str,
                 secret_key: str, *, deadline: float | None = None,
                 timeout: float | None = None, factory: ClientFactory | None = None) -> None:
        from botocore.config import Config

        self.http = http
        self.deadline = deadline
        #: Seconds one S3 request may take (None: the HTTP client's own timeout).
        self.timeout = timeout
        config = Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries={"total_max_attempts": 1},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            user_agent_extra="watchtower",
        )
        self.client: Any = (factory or ClientFactory()).create(
            region_name=region, endpoint_url=endpoint, aws_access_key_id=access_key,
            aws_secret_access_key=secret_key, config=config)
        self.client.meta.events.register("before-send.s3", self._send)
        self.last_status: int | None = None

    def _send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        from botocore.awsrequest import AWSResponse

        body = request.body
        if body is not None and hasattr(body, "read"):
            body = body.read()
        if isinstance(body, str):
            body = body.encode()
        # requests cannot wait for "100 Continue"; the body goes at once, so don't announce it.
        headers = {k: v for k, v in request.headers.items() if k.lower() != "expect"}
        resp = self.http.request(
            request.method, request.url, headers=headers,
            data=body or None, follow_redirects=False, deadline=self.deadline,
            timeout=self.timeout)
        self.last_status = resp.status
        if resp.truncated:
            raise ProbeError(f"{request.url}: S3 answer larger than the cap", kind="too-large")
        return AWSResponse(resp.url, resp.status, dict(resp.headers.items()), _Body(resp.body))

    def step(self, name: str, call: Any, **kwargs: Any) -> tuple[StepResult, Any]:
        """Run one operation; S3 errors become a failed step, network errors propagate."""
        from botocore.exceptions import BotoCoreError, ClientError

        self.last_status = None
        started = time.monotonic()
        try:
            out = call(**kwargs)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            reason = f"{err.get('Code', '?')}: {err.get('Message', '')}".strip()
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return StepResult(name, False, status or self.last_status,
                              (time.monotonic() - started) * 1000, reason), None
        except BotoCoreError as exc:
            return StepResult(name, False, self.last_status,
                              (time.monotonic() - started) * 1000, str(exc)), None
        return StepResult(name, True, self.last_status, (time.monotonic() - started) * 1000), out

    def roundtrip(self, bucket: str, key: str, payload: bytes) -> tuple[list[StepResult], bool]:
        """PUT, GET (content compared), DELETE of one canary object; stops at a failed step
        except that DELETE is always tried once PUT succeeded, to leave no litter behind."""
        steps: list[StepResult] = []
        put, _ = self.step("put", self.client.put_object, Bucket=bucket, Key=key, Body=payload,
                           ContentType="application/octet-stream")
        steps.append(put)
        if not put.ok:
            return steps, False
        get, out = self.step("get", self.client.get_object, Bucket=bucket, Key=key)
        same = False
        if get.ok and out is not None:
            data = out["Body"].read()
            same = data == payload
            if not same:
                get.ok = False
                get.error = f"content differs ({len(data)} bytes back, {len(payload)} sent)"
        steps.append(get)
        delete, _ = self.step("delete", self.client.delete_object, Bucket=bucket, Key=key)
        steps.append(delete)
        return steps, same


#: The process's one botocore session: its first client costs ~250 ms of CPU (the S3 model
#: and endpoint rules are loaded and parsed), each later one ~12 ms. Kept across sweeps, so
#: a daemon or a persistent sweep worker pays the first one once, not once per sweep.
_FACTORY = ClientFactory()


def warm_s3_models() -> None:
    """Make the process's botocore session parse the S3 model and endpoint rules now, by
    making one client that is never used (for a process that forks workers)."""
    unused = "-"  # no request is ever signed with it
    _FACTORY.create(region_name="garage", endpoint_url="https://warm.invalid",
                    aws_access_key_id=unused, aws_secret_access_key=unused)


class S3Clients:
    """The sweep's S3 access (`ctx.s3`): clients for an endpoint and its keys, whose requests
    ride on the sweep's HTTP client with the S3 timeout."""

    def __init__(self, http: HttpClient, *, timeout: float | None = None) -> None:
        self.http = http
        self.timeout = timeout
        self._factory = _FACTORY

    def client(self, endpoint: str, region: str, access_key: str, secret_key: str, *,
               deadline: float | None) -> S3Client:
        return S3Client(self.http, endpoint, region, access_key, secret_key, deadline=deadline,
                        timeout=self.timeout, factory=self._factory)


@dataclass(slots=True)
class Listing:
    """What a prefix holds, as far as a bounded listing saw: the newest object and a count."""

    step: StepResult
    count: int = 0
    newest_key: str | None = None
    newest_at: str | None = None  # ISO 8601 UTC
    newest_size: int | None = None
    truncated: bool = False

    def evidence(self) -> dict[str, Any]:
        return {"step": self.step.evidence(), "count": self.count, "newest_key": self.newest_key,
                "newest_at": self.newest_at, "newest_size": self.newest_size,
                "truncated": self.truncated}


def newest(client: S3Client, bucket: str, prefix: str, max_pages: int = 20,
           page_size: int = 1000) -> Listing:
    """ListObjectsV2 over `prefix`, page by page (1,000 keys each, at most `max_pages`), keeping
    the object with the latest LastModified: backup tools name objects freely, so the key order
    says nothing about age."""
    listing = Listing(StepResult("list", True, None, 0.0))
    token: str | None = None
    started = time.monotonic()
    for _ in range(max_pages):
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": page_size}
        if token:
            kwargs["ContinuationToken"] = token
        step, out = client.step("list", client.client.list_objects_v2, **kwargs)
        if not step.ok or out is None:
            step.ms = (time.monotonic() - started) * 1000
            listing.step = step
            return listing
        for obj in out.get("Contents") or []:
            listing.count += 1
            when = obj.get("LastModified")
            stamp = when.astimezone(dt.UTC).isoformat() if isinstance(when, dt.datetime) else None
            if stamp is not None and (listing.newest_at is None or stamp > listing.newest_at):
                listing.newest_key, listing.newest_at = obj.get("Key"), stamp
                listing.newest_size = obj.get("Size")
        listing.step = step
        token = out.get("NextContinuationToken") if out.get("IsTruncated") else None
        if not token:
            break
    else:
        listing.truncated = True
    listing.step.ms = (time.monotonic() - started) * 1000
    return listing
