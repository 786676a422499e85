"""The PowerDNS Authoritative HTTP API (v1): read RRsets, build the PATCH bodies that replace or
delete one, and send an API request. Plans read through this module; the remediation engine
sends the PATCH bodies as audited API steps through `request`.

Plain values only (`PowerDnsEndpoint`): the probe's clients and the remediation context map a
`[[dns_apis]]` entry to one (watchtower/probe/clients.py), reading its key at that moment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import requests

from watchtower.errors import ProbeError

DEFAULT_TIMEOUT = 10.0
MAX_ANSWER_TEXT = 500


def absolute(name: str) -> str:
    return name if name.endswith(".") else name + "."


@dataclass(frozen=True, slots=True)
class PowerDnsEndpoint:
    """One PowerDNS server's API: where it is, its key (never shown) and the zones it holds."""

    name: str
    url: str
    api_key: str = field(repr=False)
    server_id: str = "localhost"
    zones: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True, slots=True)
class ApiAnswer:
    """What an API request got back: the status and the start of the body."""

    status: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def request(method: str, url: str, *, body: Any = None, api_key: str | None = None,
            timeout: float = DEFAULT_TIMEOUT) -> ApiAnswer:
    """One JSON API request (`X-API-Key` when a key is given); ProbeError when no answer came.

    The system resolver and CA store are used, not the probes' ones: the API is the operator's
    own server (often on localhost), not a fleet name.
    """
    headers = {"X-API-Key": api_key} if api_key is not None else {}
    try:
        resp = requests.request(method, url, json=body, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise ProbeError(f"{method} {url}: {type(exc).__name__}: {exc}", kind="api") from exc
    return ApiAnswer(resp.status_code, resp.text[:MAX_ANSWER_TEXT])


class PowerDnsApi:
    def __init__(self, endpoint: PowerDnsEndpoint) -> None:
        self.endpoint = endpoint

    @property
    def name(self) -> str:
        return self.endpoint.name

    def zone_url(self, zone: str) -> str:
        e = self.endpoint
        return f"{e.url.rstrip('/')}/api/v1/servers/{e.server_id}/zones/{absolute(zone)}"

    def rrsets(self, zone: str) -> list[dict[str, Any]]:
        e = self.endpoint
        try:
            resp = requests.get(self.zone_url(zone), timeout=e.timeout,
                                headers={"X-API-Key": e.api_key})
        except requests.RequestException as exc:
            raise ProbeError(f"PowerDNS API {e.name}: {exc}", kind="api") from exc
        if resp.status_code != 200:
            raise ProbeError(f"PowerDNS API {e.name}: HTTP {resp.status_code} for zone "
                             f"{zone}", kind="api")
        return list(resp.json().get("rrsets", []))

    def rrset(self, zone: str, name: str, rtype: str) -> dict[str, Any] | None:
        return next((r for r in self.rrsets(zone)
                     if r["name"] == absolute(name) and r["type"] == rtype), None)


def replace_body(name: str, rtype: str, ttl: int, contents: list[str]) -> dict[str, Any]:
    return {"rrsets": [{"name": absolute(name), "type": rtype, "ttl": ttl,
                        "changetype": "REPLACE",
                        "records": [{"content": c, "disabled": False} for c in contents]}]}


def delete_body(name: str, rtype: str) -> dict[str, Any]:
    return {"rrsets": [{"name": absolute(name), "type": rtype, "changetype": "DELETE"}]}


def zone_for(zones: Iterable[str], name: str) -> str | None:
    """The most specific of `zones` that contains `name`."""
    name = name.rstrip(".").lower()
    ordered = sorted((z.rstrip(".").lower() for z in zones), key=len, reverse=True)
    return next((z for z in ordered if name == z or name.endswith("." + z)), None)


def holds_zone(zones: Iterable[str], zone: str) -> bool:
    """Whether `zone` is exactly one of `zones` (a zone is managed whole by one API)."""
    wanted = zone.rstrip(".").lower()
    return wanted in {z.rstrip(".").lower() for z in zones}
