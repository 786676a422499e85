"""TLS as the mail clients use it (submission, IMAP, ManageSieve): one context builder, and
one upgrade of a connected socket that maps every handshake failure to the protocol's
ProbeError, so each client says "certificate not trusted" or "TLS handshake failed" the same
way and a slow handshake costs at most what is left of the probe's deadline."""

from __future__ import annotations

import os
import socket
import ssl
import threading

from watchtower.errors import ProbeError, ProbeTimeout
from watchtower.net.deadline import remaining

_shared: dict[tuple[str | None, ssl.TLSVersion | None, str],
              tuple[float | None, ssl.SSLContext]] = {}
_shared_lock = threading.Lock()


def verifying_context(ca_bundle: str | None, minimum: ssl.TLSVersion | None = None,
                      purpose: str = "mail") -> ssl.SSLContext:
    """A client context that verifies chains against `ca_bundle` (the system's trust store
    when None) and host names, `minimum` the lowest version it offers.

    One per (bundle, minimum, purpose) for the whole process while the bundle file is
    unchanged (its modification time is the key's freshness): loading a bundle costs ~27 ms
    (certifi's), more than the handshakes of a small sweep, and every sweep, agent job and
    mail client built its own. An SSLContext is safe to share between threads; it is never
    configured after it is handed out (a caller that needs another version asks for it), except by
    urllib3, which sets ALPN `http/1.1` on the context of each HTTPS connection: so `purpose`
    keeps HTTPS contexts apart from the mail clients' (whose servers must not be offered
    HTTP in ALPN)."""
    key = (ca_bundle, minimum, purpose)
    mtime = _mtime(ca_bundle)
    with _shared_lock:
        found = _shared.get(key)
    if found is not None and found[0] == mtime:
        return found[1]
    ctx = ssl.create_default_context(cafile=ca_bundle)
    if minimum is not None:
        ctx.minimum_version = minimum
    with _shared_lock:
        _shared[key] = (mtime, ctx)
    return ctx


def _mtime(path: str | None) -> float | None:
    if path is None:
        return None
    try:
        return os.stat(path).st_mtime_ns / 1e9
    except OSError:
        return None  # create_default_context says why, with the path


def tls_context(ca_bundle: str | None, verify: bool = True) -> ssl.SSLContext:
    """A client context: verifying against `ca_bundle`, or (verify=False, only to read what a
    server offers, never to send a credential) not verifying at all."""
    if verify:
        return verifying_context(ca_bundle)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def wrap_client(sock: socket.socket, host: str, context: ssl.SSLContext,
                deadline: float | None, timeout: float, peer: str,
                error: type[ProbeError]) -> ssl.SSLSocket:
    """The TLS handshake on `sock` for `host` (SNI and name check); `error(kind=certificate
    or tls)` or ProbeTimeout when it fails."""
    sock.settimeout(remaining(deadline, timeout))
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except TimeoutError as exc:
        raise ProbeTimeout(f"{peer}: TLS handshake timed out") from exc
    except ssl.SSLCertVerificationError as exc:
        raise error(f"{peer}: certificate not trusted ({exc.verify_message or exc})",
                    kind="certificate") from exc
    except (ssl.SSLError, OSError) as exc:
        raise error(f"{peer}: TLS handshake failed ({exc})", kind="tls") from exc
