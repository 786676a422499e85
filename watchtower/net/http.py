"""HTTP(S) through requests, resolved by the fleet's resolver, capped in size, time and hops.

Why not plain `requests.get`: the fleet's names live in the fleet's DNS (the lab's `.test` zones,
a provider's split horizon), so connections are made to addresses from our `Resolver` while the
Host header, SNI and certificate name stay the host name. Bodies are read with `read1` in chunks
under one deadline, so a slow-drip server cannot hold a probe past its timeout and a 1 GB body
costs at most the cap. Redirects are followed by hand so every hop is evidence and loops and
cross-host hops are visible to the checks that care (HSTS, MTA-STS forbids redirects).
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

import requests
import requests.adapters
import urllib3
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from watchtower import __version__
from watchtower.errors import ProbeError, ProbeTimeout
from watchtower.net.clienttls import verifying_context as shared_verifying_context
from watchtower.net.deadline import remaining
from watchtower.net.dns import DnsError, Resolver
from watchtower.net.http_response import HttpEvidence, HttpResponse, Redirect
from watchtower.net.shared import SharedCalls

#: The client's public face: the response it returns lives in http_response.py.
__all__ = ["DEFAULT_MAX_BODY", "DEFAULT_MAX_REDIRECTS", "USER_AGENT", "HttpClient",
           "HttpEvidence", "HttpResponse", "Redirect", "verifying_context"]

DEFAULT_MAX_BODY = 2 * 1024 * 1024
DEFAULT_MAX_REDIRECTS = 5
USER_AGENT = f"watchtower/{__version__} (+fleet compliance probe)"


def _connect(resolver: Resolver, host: str, port: int, timeout: float | None,
             source_address: tuple[str, int] | None) -> socket.socket:
    """Connect to the first reachable address of `host` as the fleet's resolver knows it."""
    try:
        addresses = resolver.addresses(host)
    except DnsError as exc:
        raise OSError(f"cannot resolve {host}: {exc.reason}") from exc
    if not addresses:
        raise OSError(f"{host} has no A/AAAA record")
    last: OSError | None = None
    for addr in addresses:
        try:
            return socket.create_connection((addr, port), timeout=timeout,
                                            source_address=source_address)
        except OSError as exc:
            last = exc
    assert last is not None
    raise last


class _ResolvingMixin:
    resolver: Resolver
    host: str
    port: int
    timeout: Any
    source_address: tuple[str, int] | None

    def _new_conn(self) -> socket.socket:
        try:
            sock = _connect(self.resolver, self.host, self.port, self.timeout,
                            self.source_address)
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"connection to {self.host} timed out") from exc
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        except OSError as exc:
            raise NewConnectionError(self, f"cannot connect: {exc}") from exc  # type: ignore[arg-type]
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def verifying_context(ca_bundle: str | None) -> ssl.SSLContext:
    """A client context that verifies chains against `ca_bundle` (requests' certifi bundle
    when unset, as before) and host names, TLS 1.2 at least."""
    return shared_verifying_context(ca_bundle or DEFAULT_CA_BUNDLE_PATH, ssl.TLSVersion.TLSv1_2,
                                    purpose="https")


class _Adapter(requests.adapters.HTTPAdapter):
    """An adapter whose pools connect through the fleet's resolver."""

    def __init__(self, resolver: Resolver, ssl_context: ssl.SSLContext, **kwargs: Any) -> None:
        self._resolver = resolver
        self._ssl_context = ssl_context
        super().__init__(**kwargs)

    # One SSLContext with the trust bundle loaded once, shared by every connection: given a
    # bundle path, requests/urllib3 build a context and parse the whole bundle per connection,
    # which profiled at a quarter of a sweep's CPU. Hostname checks stay on (urllib3 matches
    # the name it was given; the context demands a verified chain).

    def build_connection_pool_key_attributes(
        self, request: Any, verify: Any, cert: Any = None
    ) -> Any:
        host_params, typed = super().build_connection_pool_key_attributes(request, verify, cert)
        pool_kwargs: dict[str, Any] = dict(typed)
        if verify is not False:
            pool_kwargs.pop("ca_certs", None)
            pool_kwargs.pop("ca_cert_dir", None)
            pool_kwargs["ssl_context"] = self._ssl_context
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        if verify is not False and url.lower().startswith("https"):
            conn.cert_reqs = "CERT_REQUIRED"
            conn.ca_certs = None
            conn.ca_cert_dir = None
            return
        # types-requests leaves cert_verify unannotated; this is its signature in requests.
        base = cast(Callable[[Any, str, Any, Any], None], super().cert_verify)
        base(conn, url, verify, cert)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._ssl_context
        super().init_poolmanager(*args, **kwargs)
        resolver = self._resolver
        http_conn = type("ResolvingHTTPConnection", (_ResolvingMixin, HTTPConnection),
                         {"resolver": resolver})
        https_conn = type("ResolvingHTTPSConnection", (_ResolvingMixin, HTTPSConnection),
                          {"resolver": resolver})
        http_pool = type("ResolvingHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn})
        https_pool = type("ResolvingHTTPSPool", (HTTPSConnectionPool,),
                          {"ConnectionCls": https_conn})
        self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}


#: GET answers a sweep keeps for sharing (least recently used go first). Jobs run grouped by
#: target, so the checks that share a URL ask for it close together.
SHARED_GETS = 256
#: Hosts whose connection pools are kept, and kept-alive connections per host. Jobs run grouped
#: by domain and a site's requests take turns (below), so a sweep has a few dozen hosts in
#: play at once; an idle kept-alive TLS connection holds ~100 KB of OpenSSL buffers, and 256
#: pools of finished sites were a worker's dead weight (64: -6 MB per worker at 300 domains).
POOL_HOSTS = 64
POOL_PER_HOST = 8
#: Seconds a request waits for the one before it to the same host to finish, so that one
#: kept-alive connection serves both (at most a quarter of what is left of its deadline).
HOST_PATIENCE = 1.0


class _HostTurns:
    """Requests to one (scheme, host, port) take turns, with patience.

    Why: a sweep's checks of one site start together (jobs are grouped by target), and each
    found no idle connection in the pool, so each opened its own: in the lab 61 sites cost 182
    TLS handshakes, a handshake being the dearest step of a GET on both sides. Taking turns,
    the second request reuses the first one's kept-alive connection. Why with patience: a slow
    site must not turn concurrent checks into queued ones that time out; past the patience a
    request goes on its own connection, as before. A check waits at most HOST_PATIENCE and
    its verdict does not depend on the order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Weak: a host's gate lives while a request holds or waits for it, no longer.
        self._gates: weakref.WeakValueDictionary[tuple[str, str, int], threading.Semaphore] = (
            weakref.WeakValueDictionary())

    @contextlib.contextmanager
    def turn(self, key: tuple[str, str, int], patience: float) -> Iterator[None]:
        with self._lock:
            gate = self._gates.get(key)
            if gate is None:
                gate = self._gates[key] = threading.Semaphore(1)
        got = gate.acquire(timeout=patience) if patience > 0 else gate.acquire(blocking=False)
        try:
            yield
        finally:
            if got:
                gate.release()


def _shared_session(resolver: Resolver, ssl_context: ssl.SSLContext) -> requests.Session:
    """One session for every probe thread: one connection pool per host, so keep-alive
    connections are reused across checks (per-thread sessions re-handshook per thread).
    Cookies are refused: each probe must see a site as a first visit."""
    session = requests.Session()
    session.trust_env = False  # no proxies or netrc from the environment
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    adapter = _Adapter(resolver, ssl_context, pool_connections=POOL_HOSTS,
                       pool_maxsize=POOL_PER_HOST, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    # Bodies are read raw (read1, under the cap), so nothing would decompress them: ask for
    # none. requests offers "gzip, deflate" by default, and servers that honour it (Synapse's
    # metrics listener, many nginx setups) sent compressed bytes that failed to parse.
    session.headers["Accept-Encoding"] = "identity"
    return session


class HttpClient:
    """The sweep's HTTP client: one session and connection pool shared by its threads."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        ca_bundle: str | None = None,
        timeout: float = 10.0,
        max_body: int = DEFAULT_MAX_BODY,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
    ) -> None:
        self.resolver = resolver
        self.verify: str | bool = ca_bundle or True
        self.timeout = timeout
        self.max_body = max_body
        self.max_redirects = max_redirects
        self._ssl_context = verifying_context(ca_bundle)
        self._session = _shared_session(resolver, self._ssl_context)
        self._gets = SharedCalls(max_entries=SHARED_GETS, keep_errors=False)
        self._turns = _HostTurns()

    def close(self) -> None:
        self._session.close()

    def get(self, url: str, *, shared: bool = True, **kwargs: Any) -> HttpResponse:
        """GET `url`. Checks of one sweep asking for the same URL with the same headers share
        one fetch (`shared=False` for a probe that needs its own): web.headers, web.hsts and
        web.https.redirect all read a site's front page. Failures are not shared: the next
        check, with its own deadline, tries again."""
        if not shared or kwargs.get("data") is not None:
            return self.request("GET", url, **kwargs)
        headers = kwargs.get("headers") or {}
        key = (url, tuple(sorted(headers.items())), kwargs.get("follow_redirects", True),
               kwargs.get("max_body"))
        deadline = kwargs.get("deadline")
        wait = remaining(deadline, kwargs.get("timeout") or self.timeout)
        try:
            response: HttpResponse = self._gets.get(
                key, lambda: self.request("GET", url, **kwargs), wait=wait)
        except TimeoutError as exc:  # waited for another check's fetch past our deadline
            raise ProbeTimeout(f"{url}: no response within {wait:.1f}s") from exc
        return response

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        follow_redirects: bool = True,
        max_body: int | None = None,
        deadline: float | None = None,
        timeout: float | None = None,
    ) -> HttpResponse:
        """Send a request; returns the final response, raises ProbeError when none came."""
        cap = self.max_body if max_body is None else max_body
        per_call = timeout or self.timeout
        if deadline is None:
            deadline = time.monotonic() + per_call
        history: list[tuple[int, str]] = []
        seen: set[str] = set()
        on_the_wire_ms = 0.0  # the hops' own times: a wait for a host's turn is not latency
        current = url
        for _hop in range(self.max_redirects + 1):
            resp = self._one(method, current, headers, data, cap, deadline, per_call)
            on_the_wire_ms += resp.elapsed_ms
            location = resp.headers.get("location")
            if not (follow_redirects and resp.status in (301, 302, 303, 307, 308) and location):
                resp.history = history
                resp.elapsed_ms = on_the_wire_ms
                return resp
            nxt = urljoin(current, location)
            history.append((resp.status, nxt))
            if nxt in seen or nxt == current:
                raise ProbeError(f"redirect loop at {nxt}", kind="redirect-loop")
            seen.add(current)
            current = nxt
            if resp.status == 303:
                method, data = "GET", None
        raise ProbeError(f"more than {self.max_redirects} redirects from {url}",
                         kind="redirect-loop")

    def _one(
        self, method: str, url: str, headers: Mapping[str, str] | None, data: bytes | None,
        cap: int, deadline: float, per_call: float,
    ) -> HttpResponse:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProbeError(f"not an http(s) URL: {url!r}", kind="input")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        patience = min(HOST_PATIENCE, remaining(deadline, per_call) / 4)
        with self._turns.turn((parts.scheme, parts.hostname, port), patience):
            return self._send(method, url, parts.hostname, headers, data, cap, deadline,
                              per_call)

    def _send(
        self, method: str, url: str, host: str, headers: Mapping[str, str] | None,
        data: bytes | None, cap: int, deadline: float, per_call: float,
    ) -> HttpResponse:
        """One request on the wire, its body read under the cap before `deadline`."""
        t = remaining(deadline, per_call)
        started = time.monotonic()
        try:
            raw = self._session.request(
                method, url, headers=dict(headers or {}), data=data, allow_redirects=False,
                stream=True, timeout=(t, t), verify=self.verify,
            )
        except requests.exceptions.SSLError as exc:
            raise ProbeError(f"TLS failure with {host}: {_tls_reason(exc)}",
                             kind="tls") from exc
        except (requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout) as exc:
            raise ProbeTimeout(f"{url}: no response within {t:.1f}s") from exc
        except requests.exceptions.ConnectionError as exc:
            raise ProbeError(f"{url}: cannot connect ({_short(exc)})", kind="unreachable") from exc
        except requests.exceptions.RequestException as exc:
            raise ProbeError(f"{url}: {_short(exc)}", kind="http") from exc
        try:
            body, truncated = _read_capped(raw, cap, deadline, per_call)
        finally:
            raw.close()
        return HttpResponse(url=url, status=raw.status_code, headers=raw.headers, body=body,
                            elapsed_ms=(time.monotonic() - started) * 1000, truncated=truncated)


def _read_capped(raw: requests.Response, cap: int, deadline: float, per_call: float
                 ) -> tuple[bytes, bool]:
    """Read at most `cap` bytes before `deadline`; `read1` returns what has arrived."""
    chunks: list[bytes] = []
    size = 0
    stream = raw.raw
    while True:
        left = remaining(deadline, per_call)
        _set_read_timeout(stream, left)
        try:
            chunk = stream.read1(65536)
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
            raise ProbeTimeout(f"{raw.url}: body not complete within the deadline") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise ProbeError(f"{raw.url}: broken body ({_short(exc)})", kind="http") from exc
        except OSError as exc:
            raise ProbeError(f"{raw.url}: connection failed while reading ({exc})",
                             kind="http") from exc
        if not chunk:
            return b"".join(chunks), False
        size += len(chunk)
        if size > cap:
            chunks.append(chunk[: cap - (size - len(chunk))])
            return b"".join(chunks), True
        chunks.append(chunk)


def _set_read_timeout(stream: Any, seconds: float) -> None:
    """Shrink the socket timeout to what is left of the deadline."""
    fp = getattr(stream, "_fp", None)
    sock = getattr(getattr(fp, "fp", None), "raw", None)
    sock = getattr(sock, "_sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.settimeout(max(seconds, 0.01))


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "..."


def _tls_reason(exc: BaseException) -> str:
    """Find the verification message in the nest of wrapped exceptions."""
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 10:
        msg = getattr(cur, "verify_message", None)
        if msg:
            return str(msg)
        args = getattr(cur, "args", ())
        nxt = getattr(cur, "reason", None) or (args[0] if args and isinstance(args[0],
                                                                               BaseException)
                                               else None)
        cur = nxt if isinstance(nxt, BaseException) else cur.__cause__ or cur.__context__
        seen += 1
    return _short(exc)
