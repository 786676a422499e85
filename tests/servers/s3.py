"""An S3-compatible endpoint (moto server, PyPI moto[server]) for the media-storage checks.

Fediverse hosts keep media in object storage; watchtower checks buckets (reachability,
round-trip, policy). moto's server speaks the S3 REST API over HTTP, so the real boto3/botocore
signing and request path is exercised. Clients must sign (boto3 does): moto stores an unsigned
PUT as an empty object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import requests

from tests.servers.base import ManagedProcess, Server, ServerError, free_port, venv_script


class S3Server(Server):
    """moto_server on a free loopback port with fixed, obviously fake credentials."""

    access_key = "testing"
    secret_key = "testing"  # moto does not check credentials, but botocore needs some
    region = "us-east-1"

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.endpoint_url = f"http://{self.host}:{self.port}"
        self.process: ManagedProcess | None = None

    @property
    def env(self) -> dict[str, str]:
        """AWS_* variables for code that builds its own client from the environment."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
        }

    def start(self) -> Self:
        """Start moto_server and wait for /moto-api/."""
        return self._timed_start(self._start)

    def _start(self) -> None:
        exe = venv_script("moto_server")
        if exe is None:
            raise ServerError("moto_server not found (pip install 'moto[server]')")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            [exe, "-H", self.host, "-p", str(self.port)],
            name="moto",
            logdir=self.workdir,
            grace=5.0,
        ).start()
        self.process.wait_ready(
            lambda: requests.get(f"{self.endpoint_url}/moto-api/", timeout=2).status_code == 200,
            timeout=60,
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def reset(self) -> None:
        """Drop every bucket and object (POST /moto-api/reset), so tests start from empty."""
        r = requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10)
        r.raise_for_status()

    def client(self, service: str = "s3") -> Any:
        """A boto3 client bound to this endpoint and the fake credentials."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )
