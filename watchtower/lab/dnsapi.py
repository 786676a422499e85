"""The lab's DNS API: the PowerDNS Authoritative HTTP API calls watchtower makes, answered from
the zones the lab's name servers serve, so a remediation's change is served for real and its
verification probes what it changed.

The calls (watchtower/net/powerdns.py, remediations/dnsrecords.py, watchtower/dnsdecl/plan.py
send nothing else), as https://doc.powerdns.com/authoritative/http-api/zone.html documents them:
- `GET /api/v1/servers/localhost/zones/{zone_id}`: 200 and the Zone object with its RRsets;
- `PATCH /api/v1/servers/localhost/zones/{zone_id}` with `{"rrsets": [...]}`, each RRset with
  `changetype` REPLACE (name, type, ttl, records) or DELETE (name, type): 204 No Content, the
  whole body applied or none of it (`watchtower.lab.rrsets` validates it as PowerDNS does).
Authentication is the static key in the `X-API-Key` header
(https://doc.powerdns.com/authoritative/http-api/index.html); a missing or wrong key is 401.
An unknown zone is 404; a body that is not JSON is 400; one that fails validation 422 with
`{"error": "..."}`. Errors other than 422 are written as PowerDNS's web server writes them
(pdns/webserver.cc `handleRequest`): JSON `{"error": "Not Found"}` when the client accepts
application/json, else the status text as plain text. Every answer closes the connection, as
PowerDNS's do.

Everything else PowerDNS offers (zone listing and creation, PUT and DELETE of zones, metadata,
cryptokeys, comments, disabled records) the lab does not: other paths are 404, other methods on
a zone 405. tests/integration/lab/test_lab_dns_api.py sends the same requests to this server and
to a real PowerDNS and compares status codes and shapes.

The key is written to `dns-api-key` (mode 0600) in the lab directory and kept across restarts;
the fleet file names it as a `$file` secret.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from watchtower.lab.rrsets import SERVER_ID, ApiError, changes, zone_document, zone_name
from watchtower.lab.serving import LabHttpServer, LabListener
from watchtower.lab.zones import LabZones

log = logging.getLogger(__name__)

API_KEY_FILE = "dns-api-key"
ZONE_ROUTE = re.compile(rf"/api/v1/servers/{SERVER_ID}/zones/(?P<id>[^/]+)")
#: PowerDNS's `webserver-max-bodysize` default (2 MB).
MAX_BODY = 2 * 1024 * 1024
REASONS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
           405: "Method Not Allowed"}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("lab dns api: " + format, *args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        route = ZONE_ROUTE.fullmatch(urlsplit(self.path).path)
        try:
            if route is None:
                raise ApiError(404, REASONS[404])
            if not hmac.compare_digest(self.headers.get("X-API-Key", "").encode(),
                                       self.server.key.encode()):
                raise ApiError(401, REASONS[401])
            if method == "GET":
                self._get(route["id"])
            elif method == "PATCH":
                self._patch(route["id"])
            else:
                raise ApiError(405, REASONS[405])
        except ApiError as exc:
            self._error(exc)

    def _zone(self, zone_id: str) -> Any:
        """The lab domain and the zone served for it, or 404 as PowerDNS answers."""
        zones = self.server.zones
        domain = zones.domain(zone_name(zone_id))
        zone = zones.served(domain) if domain is not None else None
        if domain is None or zone is None:
            raise ApiError(404, REASONS[404])
        return domain, zone

    def _get(self, zone_id: str) -> None:
        domain, zone = self._zone(zone_id)
        zones = self.server.zones
        signed = zones.signer is not None and "unsigned" not in domain.faults
        self._reply(200, zone_document(zone, zones.serials[domain.name], signed))

    def _patch(self, zone_id: str) -> None:
        domain, zone = self._zone(zone_id)
        edits = changes(zone, self._body())
        old, new = self.server.zones.edit(domain, edits)
        log.info("lab dns api: %s: %d RRset change(s), serial %d -> %d", domain.name,
                 len(edits), old, new)
        self._reply(204, None, {"X-PDNS-Old-Serial": str(old), "X-PDNS-New-Serial": str(new)})

    def _body(self) -> Any:
        """The JSON document of the request (PowerDNS: 400 when empty or not JSON)."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length <= 0 or length > MAX_BODY:
            raise ApiError(400, REASONS[400])
        try:
            document = json.loads(self.rfile.read(length))
        except ValueError:
            raise ApiError(400, REASONS[400]) from None
        if document is None:
            raise ApiError(400, REASONS[400])
        return document

    def _error(self, exc: ApiError) -> None:
        headers = {"WWW-Authenticate": 'X-API-Key realm="PowerDNS"'} if exc.status == 401 else {}
        accept = self.headers.get("Accept", "")
        if exc.status == 422 or "application/json" in accept:
            self._reply(exc.status, {"error": exc.message}, headers)
        elif "text/html" in accept:
            page = f"<!html><title>{exc.message}</title><h1>{exc.message}</h1>"
            self._send(exc.status, page.encode(), "text/html; charset=utf-8", headers)
        else:
            self._send(exc.status, exc.message.encode(), "text/plain; charset=utf-8", headers)

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        if body is None:
            self._send(status, b"", None, headers or {})
        else:
            self._send(status, json.dumps(body).encode(), "application/json", headers or {})

    def _send(self, status: int, data: bytes, content_type: str | None,
              headers: dict[str, str]) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True


class _Server(LabHttpServer):
    label = "lab-dns-api"

    def __init__(self, address: tuple[str, int], zones: LabZones, key: str) -> None:
        self.zones = zones
        self.key = key
        super().__init__(address, _Handler)


def api_key(directory: Path) -> str:
    """The lab's API key: the one in `directory` (a restarted lab keeps it, so a running
    watchtower keeps working), else a new one written there with mode 0600."""
    path = directory / API_KEY_FILE
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    key = secrets.token_hex(16)
    path.write_text(key + "\n")
    return key


class DnsApiServer(LabListener):
    """Serves the lab's DNS API on 127.0.0.1 (`url` once started)."""

    def __init__(self, zones: LabZones, directory: Path, port: int = 0) -> None:
        self.zones = zones
        self.dir = directory
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def key_path(self) -> Path:
        return self.dir / API_KEY_FILE

    def _make(self) -> _Server:
        return _Server((self.address, self.port), self.zones, api_key(self.dir))
