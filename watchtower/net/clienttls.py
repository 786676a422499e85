"""TLS as the mail clients use it (submission, IMAP, ManageSieve): one context builder, and
one upgrade of a connected socket that maps every handshake failure to the protocol's
ProbeError, so each client says "certificate not trusted" or "TLS handshake failed" the same
way and a slow handshake costs at most what is left of the probe's deadline."""

from __future__ import annotations

import socket
import ssl

from watchtower.errors import ProbeError, ProbeTimeout
from watchtower.net.deadline import remaining


def tls_context(ca_bundle: str | None, verify: bool = True) -> ssl.SSLContext:
    """A client context: verifying against `ca_bundle`, or (verify=False, only to read what a
    server offers, never to send a credential) not verifying at all."""
    if verify:
        return ssl.create_default_context(cafile=ca_bundle)
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
