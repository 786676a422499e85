"""The PowerDNS Authoritative HTTP API (v1): read RRsets, and build the PATCH bodies that
replace or delete one. Plans read through this module; the remediation engine sends the
PATCH bodies as audited API steps."""

from __future__ import annotations

from typing import Any

import requests

from watchtower.config import DnsApi
from watchtower.errors import ProbeError


def absolute(name: str) -> str:
    return name if name.endswith(".") else name + "."


class PowerDnsApi:
    def __init__(self, api: DnsApi, timeout: float = 10.0) -> None:
        self.api = api
        self.timeout = timeout

    def zone_url(self, zone: str) -> str:
        return (f"{self.api.url.rstrip('/')}/api/v1/servers/{self.api.server_id}/zones/"
                f"{absolute(zone)}")

    def rrsets(self, zone: str) -> list[dict[str, Any]]:
        try:
            resp = requests.get(self.zone_url(zone), timeout=self.timeout,
                                headers={"X-API-Key": self.api.api_key.reveal()})
        except requests.RequestException as exc:
            raise ProbeError(f"PowerDNS API {self.api.name}: {exc}", kind="api") from exc
        if resp.status_code != 200:
            raise ProbeError(f"PowerDNS API {self.api.name}: HTTP {resp.status_code} for zone "
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


def zone_for(api: DnsApi, name: str) -> str | None:
    """The most specific zone of `api` that contains `name`."""
    name = name.rstrip(".").lower()
    zones = sorted((z.rstrip(".").lower() for z in api.zones), key=len, reverse=True)
    return next((z for z in zones if name == z or name.endswith("." + z)), None)


def api_for_zone(apis: list[DnsApi], zone: str) -> DnsApi | None:
    """The `[[dns_apis]]` entry whose zones list holds exactly `zone` (a zone is managed whole
    by one API), else one whose zone contains it."""
    wanted = zone.rstrip(".").lower()
    exact = next((a for a in apis if wanted in {z.rstrip(".").lower() for z in a.zones}), None)
    return exact or next((a for a in apis if zone_for(a, wanted) is not None), None)
