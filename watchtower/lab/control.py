"""The lab's control channel: switch faults on and off while the lab runs.

A small HTTP API on loopback (JSON in, JSON out), so tests, benchmarks and a person at a shell
(`watchtower lab fault DOMAIN FAULT on|off --dir D`) drive the same thing:

- `GET /faults`: `{"faults": {domain: [fault, ...]}, "known": [fault, ...]}`
- `POST /faults` with `{"target": domain, "fault": name, "on": true|false}`: switches it and
  answers `{"target", "fault", "on", "faults": [...]}`; 400 for a bad request, 404 for an
  unknown domain or a fault that does not apply to it (`{"error", "choices": [...]}`: the
  lab's domains, or the faults of the domain).

Why a token: any local user can reach a loopback port, and a fault such as `open-relay` changes
what the lab's MX does; the token lives in the lab directory (mode 0600) beside the address
file, so whoever can read the lab's files can drive it and nobody else. Why not a Unix socket:
the HTTP form is what the benchmarks and a browser-side demo can use as-is.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from watchtower.lab.faults import FaultError, FaultSwitch
from watchtower.lab.fleet import FAULTS

log = logging.getLogger(__name__)

ADDRESS_FILE = "control.json"
TOKEN_FILE = "control-token"  # noqa: S105 - a file name, not a secret
TOKEN_HEADER = "X-Lab-Token"  # noqa: S105 - a header name, not a secret
MAX_REQUEST = 4096


class ControlError(RuntimeError):
    """The control channel refused a request or could not be reached; `choices` are what the
    lab would have accepted instead (the faults of the domain, or its domains)."""

    def __init__(self, message: str, choices: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.choices = tuple(choices)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("lab control: " + format, *args)

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        given = self.headers.get(TOKEN_HEADER, "")
        if hmac.compare_digest(given.encode(), self.server.token.encode()):
            return True
        self._reply(401, {"error": f"missing or wrong {TOKEN_HEADER}"})
        return False

    def do_GET(self) -> None:
        if not self._authorised():
            return
        if self.path.split("?", 1)[0] != "/faults":
            self._reply(404, {"error": "no such resource; try /faults"})
            return
        self._reply(200, {"faults": self.server.switch.listing(), "known": sorted(FAULTS)})

    def do_POST(self) -> None:
        if not self._authorised():
            return
        if self.path != "/faults":
            self._reply(404, {"error": "no such resource; try /faults"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_REQUEST:
            self._reply(400, {"error": "expected a small JSON body"})
            return
        try:
            req = json.loads(self.rfile.read(length))
            target, fault, on = req["target"], req["fault"], req["on"]
            if not (isinstance(target, str) and isinstance(fault, str) and isinstance(on, bool)):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            self._reply(400, {"error": 'expected {"target": str, "fault": str, "on": bool}'})
            return
        try:
            now = self.server.switch.set(target, fault, on)
        except FaultError as exc:
            self._reply(404, {"error": str(exc), "choices": list(exc.choices)})
            return
        log.info("lab fault %s on %s: %s", fault, target, "on" if on else "off")
        self._reply(200, {"target": target, "fault": fault, "on": on, "faults": now})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], switch: FaultSwitch, token: str) -> None:
        self.switch = switch
        self.token = token
        super().__init__(address, _Handler)


class ControlServer:
    """Serves the control API on 127.0.0.1 and writes its address and token into `directory`."""

    def __init__(self, switch: FaultSwitch, directory: Path, port: int = 0) -> None:
        self.switch = switch
        self.dir = directory
        self.port = port
        self._server: _Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        token_path = self.dir / TOKEN_FILE
        token_path.touch(mode=0o600, exist_ok=True)
        token_path.chmod(0o600)
        token = secrets.token_hex(16)
        token_path.write_text(token + "\n")
        self._server = _Server(("127.0.0.1", self.port), self.switch, token)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True, name="lab-control").start()
        (self.dir / ADDRESS_FILE).write_text(json.dumps({"url": self.url}) + "\n")

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        (self.dir / ADDRESS_FILE).unlink(missing_ok=True)


class ControlClient:
    """Talks to a running lab's control API, found through the files in its directory."""

    def __init__(self, directory: Path, timeout: float = 30.0) -> None:
        try:
            self.url = json.loads((directory / ADDRESS_FILE).read_text())["url"]
            self.token = (directory / TOKEN_FILE).read_text().strip()
        except (OSError, ValueError, KeyError) as exc:
            raise ControlError(f"no running lab in {directory} ({exc})") from None
        self.timeout = timeout

    def _call(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + "/faults", data=data, method=method,  # noqa: S310
                                     headers={TOKEN_HEADER: self.token,
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                out: dict[str, Any] = json.loads(resp.read())
                return out
        except urllib.error.HTTPError as exc:
            try:
                body = json.loads(exc.read())
            except ValueError:
                body = {}
            raise ControlError(str(body.get("error", exc.reason)),
                               [str(c) for c in body.get("choices", ())]) from None
        except OSError as exc:
            raise ControlError(f"lab control at {self.url} unreachable: {exc}") from None

    def faults(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = self._call("GET")["faults"]
        return out

    def set(self, target: str, fault: str, on: bool) -> list[str]:
        out: list[str] = self._call("POST", {"target": target, "fault": fault, "on": on})["faults"]
        return out
