"""Software versions: comparing them, and reading the running version from a service's endpoint.

Shared by drift.version and the fedi/matrix/storage checks, so every check reads a version the
same way. Where each service says its version:
  Mastodon  `/api/v2/instance` "version" (falling back to `/api/v1/instance`)
  PeerTube  `/api/v1/config` "serverVersion"
  Pixelfed  NodeInfo 2.x software.version (`/.well-known/nodeinfo` -> highest 2.x schema)
  Synapse   `/_matrix/federation/v1/version` server.version (Matrix S2S API 2.2 / "Server
            implementation")
  Garage    admin API `/v2/GetClusterStatus` nodes[].garageVersion (v1: `/v1/status`)

Version strings are compared leniently: a leading `v` and build metadata after `+` are ignored
(Garage reports `v1.1.0`, a patched Mastodon `4.3.2+glitch`), and pre-releases (`rc`, `beta`)
sort before the release.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urljoin

from watchtower.errors import ProbeError

if TYPE_CHECKING:
    from watchtower.config import Service
    from watchtower.net.http import HttpResponse


class Getter(Protocol):
    """What reading a running version needs of the probe context: a GET under its deadline."""

    def get(self, url: str, **kwargs: Any) -> HttpResponse: ...


NODEINFO_SCHEMA = re.compile(r"^https?://nodeinfo\.diaspora\.software/ns/schema/(2\.\d+)$")
PRE_RELEASE = {"dev": 0, "a": 1, "alpha": 1, "b": 2, "beta": 2, "pre": 3, "rc": 4}

#: The package name of each service kind in a NixOS closure (nixpkgs attribute pname).
CLOSURE_PACKAGE = {"mastodon": "mastodon", "peertube": "peertube", "pixelfed": "pixelfed",
                   "synapse": "matrix-synapse", "garage": "garage"}


# -- comparing ---------------------------------------------------------------------------------


def normalize(version: str) -> str:
    """`v1.1.0+build` -> `1.1.0`: what two spellings of one version have in common."""
    text = (version.split() or [""])[0]  # Synapse from git: "1.120.0 (b=main,abc123)"
    if text[:1] in ("v", "V") and text[1:2].isdigit():
        text = text[1:]
    return text.split("+", 1)[0]


def version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """A sort key: numbers numerically, pre-release words before the release, others after."""
    key: list[tuple[int, int, str]] = []
    for part in re.findall(r"\d+|[A-Za-z]+", normalize(version)):
        if part.isdigit():
            key.append((3, int(part), ""))
        elif part.lower() in PRE_RELEASE:
            key.append((0, PRE_RELEASE[part.lower()], ""))
        else:
            key.append((2, 0, part.lower()))
    key.append((1, 0, ""))  # the end of a release sorts after its pre-releases
    return tuple(key)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as version a is older than, the same as, or newer than b."""
    ka, kb = version_key(a), version_key(b)
    return (ka > kb) - (ka < kb)


def same(a: str, b: str) -> bool:
    return compare(a, b) == 0


# -- reading the running version -----------------------------------------------------------


def _json_object(ctx: Getter, url: str, **kwargs: Any) -> dict[str, Any]:
    resp = ctx.get(url, **kwargs)
    if resp.status != 200:
        raise ProbeError(f"{url}: HTTP {resp.status}", kind="http")
    data = resp.json()
    if not isinstance(data, dict):
        raise ProbeError(f"{url}: expected a JSON object", kind="malformed")
    return data


def _url(base: str, path: str) -> str:
    return base.rstrip("/") + path


def _string(value: Any, what: str, url: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProbeError(f"{url}: no {what} in the answer", kind="malformed")
    return value.strip()


def nodeinfo_software(ctx: Getter, base_url: str) -> dict[str, Any]:
    """software.name/version from the highest NodeInfo 2.x document the server links to."""
    discovery_url = _url(base_url, "/.well-known/nodeinfo")
    links = _json_object(ctx, discovery_url).get("links")
    best: tuple[tuple[int, ...], str] | None = None
    for link in links if isinstance(links, list) else []:
        m = NODEINFO_SCHEMA.match(str(link.get("rel", ""))) if isinstance(link, dict) else None
        if m and isinstance(link.get("href"), str):
            rank = tuple(int(x) for x in m.group(1).split("."))
            if best is None or rank > best[0]:
                best = (rank, urljoin(discovery_url, link["href"]))
    if best is None:
        raise ProbeError(f"{discovery_url}: no NodeInfo 2.x link", kind="malformed")
    doc = _json_object(ctx, best[1])
    software = doc.get("software")
    if not isinstance(software, dict):
        raise ProbeError(f"{best[1]}: no software object", kind="malformed")
    return {"software": str(software.get("name", "")),
            "version": _string(software.get("version"), "software.version", best[1]),
            "source": best[1]}


def mastodon_version(ctx: Getter, base_url: str) -> dict[str, Any]:
    url = _url(base_url, "/api/v2/instance")
    try:
        data = _json_object(ctx, url)
    except ProbeError:
        url = _url(base_url, "/api/v1/instance")  # Mastodon < 4.0
        data = _json_object(ctx, url)
    return {"software": "mastodon", "version": _string(data.get("version"), "version", url),
            "source": url}


def peertube_version(ctx: Getter, base_url: str) -> dict[str, Any]:
    url = _url(base_url, "/api/v1/config")
    data = _json_object(ctx, url)
    return {"software": "peertube",
            "version": _string(data.get("serverVersion"), "serverVersion", url), "source": url}


def synapse_version(ctx: Getter, base_url: str) -> dict[str, Any]:
    url = _url(base_url, "/_matrix/federation/v1/version")
    server = _json_object(ctx, url).get("server")
    if not isinstance(server, dict):
        raise ProbeError(f"{url}: no server object", kind="malformed")
    return {"software": str(server.get("name", "")),
            "version": _string(server.get("version"), "server.version", url), "source": url}


def garage_versions(ctx: Getter, admin_url: str, token: str | None) -> dict[str, Any]:
    """Every node's garageVersion; `version` is the one most nodes run (ties: the oldest)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = _url(admin_url, "/v2/GetClusterStatus")
    try:
        data = _json_object(ctx, url, headers=headers)
        nodes = [{"id": str(n.get("id", ""))[:16], "hostname": n.get("hostname"),
                  "is_up": bool(n.get("isUp")), "version": n.get("garageVersion")}
                 for n in data.get("nodes", []) if isinstance(n, dict)]
    except ProbeError as v2_error:
        url = _url(admin_url, "/v1/status")
        try:
            data = _json_object(ctx, url, headers=headers)
        except ProbeError:
            raise v2_error from None
        nodes = [{"id": str(data.get("node", ""))[:16], "hostname": None, "is_up": True,
                  "version": data.get("garageVersion")}]
    versions = [n["version"] for n in nodes if isinstance(n["version"], str) and n["version"]]
    if not versions:
        raise ProbeError(f"{url}: no garageVersion in the answer", kind="malformed")
    counts = {v: versions.count(v) for v in versions}
    common = sorted(counts, key=lambda v: (-counts[v], version_key(v)))[0]
    return {"software": "garage", "version": common, "source": url, "nodes": nodes}


def _garage(ctx: Getter, service: Service) -> dict[str, Any]:
    if service.admin_url is None:
        raise ProbeError(f"service {service.name}: no admin_url for Garage", kind="config")
    token = service.admin_token.reveal() if service.admin_token is not None else None
    return garage_versions(ctx, service.admin_url, token)


READERS: dict[str, Callable[[Getter, Service], dict[str, Any]]] = {
    "mastodon": lambda ctx, s: mastodon_version(ctx, s.base_url),
    "peertube": lambda ctx, s: peertube_version(ctx, s.base_url),
    "pixelfed": lambda ctx, s: nodeinfo_software(ctx, s.base_url),
    "synapse": lambda ctx, s: synapse_version(ctx, s.base_url),
    "garage": _garage,
}


def running_version(ctx: Getter, service: Service) -> dict[str, Any]:
    """{"software", "version", "source"[, "nodes"]} as the service itself reports it."""
    return READERS[service.kind](ctx, service)
