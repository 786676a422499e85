"""mail.dkim.key-match: is the key the mail host signs with the key DNS publishes?

`mail.dkim` judges the published record and `mail.roundtrip` whether one probe message
verified; neither says which key is wrong after a rotation went half way. This check reads
the public half of each signing key the host uses (`dkim_keys`: OpenDKIM or Rspamd key files)
over the host transport, with a command that prints only the public half (`openssl pkey
-pubout` by default, run on the host), and compares it with the `p=` published at
`<selector>._domainkey.<domain>`. Both sides are reduced to a fingerprint (SHA-256 of the
DER SubjectPublicKeyInfo) at once: key material never reaches the evidence, and a command
that prints a private key is refused.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from watchtower.config import DkimKeyFile, Host, MailHost
from watchtower.errors import ProbeError
from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.net.transport import CommandFailed, Transport
from watchtower.parsers import ParseError
from watchtower.parsers import dkim as dkim_parser
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from .common import txt_texts
from .submission import mail_host_of

_PRIVATE = "PRIVATE KEY"


def fingerprint(der_spki: bytes) -> str:
    return "sha256:" + hashlib.sha256(der_spki).hexdigest()


def key_facts(key: Any) -> dict[str, Any]:
    """Type, size and fingerprint of a public key; nothing from which the key can be read."""
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    if isinstance(key, rsa.RSAPublicKey):
        return {"type": "rsa", "bits": key.key_size, "fingerprint": fingerprint(der)}
    if isinstance(key, ed25519.Ed25519PublicKey):
        return {"type": "ed25519", "bits": 256, "fingerprint": fingerprint(der)}
    raise ProbeError(f"unsupported key type {type(key).__name__}", kind="malformed")


def host_key_facts(output: str) -> dict[str, Any]:
    """The fingerprint of the PEM public key a host command printed."""
    if _PRIVATE in output:
        raise ProbeError("the key command printed a private key; use one that prints only the "
                         "public half (openssl pkey -pubout -in)", kind="config")
    try:
        key = serialization.load_pem_public_key(output.encode())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ProbeError(f"the key command printed no PEM public key ({str(exc)[:80]})",
                         kind="malformed") from None
    return key_facts(key)


def published_key_facts(record: dkim_parser.DkimKey) -> dict[str, Any]:
    """The fingerprint of a DKIM record's `p=` (RSA SubjectPublicKeyInfo or RSAPublicKey, or
    the raw 32 bytes of an Ed25519 key, RFC 8463 4), comparable with the host's."""
    data = record.public_key
    if record.key_type == "ed25519":
        return key_facts(ed25519.Ed25519PublicKey.from_public_bytes(data))
    try:
        key = serialization.load_der_public_key(data)
    except ValueError:
        pem = ("-----BEGIN RSA PUBLIC KEY-----\n" + base64.encodebytes(data).decode()
               + "-----END RSA PUBLIC KEY-----\n")
        key = serialization.load_pem_public_key(pem.encode())
    return key_facts(key)


def host_transport(ctx: ProbeContext, spec: MailHost) -> Transport:
    """The sweep's transport to the [[hosts]] entry the mail host runs on (`runs_on`)."""
    host = next((h for h in ctx.fleet.hosts if h.name == spec.runs_on), None)
    if not isinstance(host, Host):
        raise ProbeError(f"mail host {spec.name}: runs_on names no [[hosts]] entry",
                         kind="config")
    return ctx.hosts.transport(host)


@register
class DkimKeyMatch(Check):
    meta = CheckMeta(
        id="mail.dkim.key-match",
        family="mail",
        title="The DKIM key the mail host signs with is the key DNS publishes",
        query=(
            "per mail host with `runs_on` and `dkim_keys`: the public half of each signing key, "
            "read on the host over the host transport (`openssl pkey -pubout`), vs the `p=` "
            "published at `<selector>._domainkey.<domain>`, as SHA-256 fingerprints of the "
            "SubjectPublicKeyInfo (never key material)"
        ),
        verdicts=(
            "fail mismatch (both fingerprints shown), nothing published, revoked or unusable `p=`;"
            " error key file unreadable, a command that prints a private key, host unreachable "
            "(RFC 6376 3.6.1, 6.1.2; RFC 8463)"
        ),
        applies_to=(TargetKind.MAIL_HOST,),
        interval=3600,
        timeout=30,
        standards=("RFC 6376 3.6.1", "RFC 6376 6.1.2", "RFC 8463 4"),
        hint="Publish the public half of the signing key at <selector>._domainkey.<domain> "
             "(or point the signer at the key that is published); a rotation must do both.",
    )

    def applies(self, target: Target) -> bool:
        spec = target.spec
        return super().applies(target) and isinstance(spec, MailHost) and bool(
            spec.dkim_keys and spec.runs_on)

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        spec = mail_host_of(target)
        keys: list[dict[str, Any]] = []
        transport = host_transport(ctx, spec)
        for key in spec.dkim_keys:
            item = _host_side(transport, spec, key, ctx)
            item.update(_published_side(ctx, key))
            keys.append(item)
        return {"host": spec.host, "runs_on": spec.runs_on, "where": transport.where,
                "keys": keys}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        matched = []
        for item in facts["keys"]:
            name = f"{item['selector']}._domainkey.{item['domain']}"
            host, published = item.get("host_key"), item.get("published")
            if item.get("host_error"):
                f.error(f"{name}: cannot read the key at {item['path']} on {facts['where']}: "
                        f"{item['host_error']}")
            elif item.get("published_error"):
                f.fail(f"{name}: {item['published_error']}; the host signs with "
                       f"{host['fingerprint']} ({item['path']})")
            elif host and published and host["fingerprint"] != published["fingerprint"]:
                f.fail(f"{name}: the host signs with {host['fingerprint']} ({item['path']}) "
                       f"but DNS publishes {published['fingerprint']}: signatures fail "
                       "verification (RFC 6376 6.1.2)")
            elif host and published:
                matched.append(f"{name} {host['type']}-{host['bits']} "
                               f"{host['fingerprint'][:23]}…")
        return f.verdict("signing keys match DNS: " + ", ".join(matched))


def _host_side(transport: Transport, spec: MailHost, key: DkimKeyFile, ctx: ProbeContext
               ) -> dict[str, Any]:
    item: dict[str, Any] = {"domain": key.domain, "selector": key.selector, "path": key.path}
    argv = [*spec.dkim_pubkey_command, key.path]
    try:
        item["host_key"] = host_key_facts(
            transport.check_output(argv, timeout=ctx.hosts.budget(ctx.deadline)))
    except CommandFailed as exc:
        item["host_error"], item["host_error_kind"] = exc.reason, exc.kind
    except ProbeError as exc:
        if exc.kind in ("transport", "hostkey", "auth", "unreachable", "timeout"):
            raise  # the host itself could not be reached: the whole probe is an error
        item["host_error"], item["host_error_kind"] = exc.reason, exc.kind
    return item


def _published_side(ctx: ProbeContext, key: DkimKeyFile) -> dict[str, Any]:
    name = f"{key.selector}._domainkey.{key.domain}"
    answer = txt_texts(ctx, name)
    texts = answer["txt"]
    if not texts:
        why = "NXDOMAIN" if answer.get("rcode") == "NXDOMAIN" else "no TXT record"
        return {"published_error": f"no key published at {name} ({why})"}
    try:
        record = dkim_parser.parse(texts[0])
    except ParseError as exc:
        return {"published_error": f"unusable key record ({exc})"}
    if record.revoked:
        return {"published_error": "the published key is revoked (empty p=)"}
    try:
        return {"published": published_key_facts(record)}
    except (ValueError, UnsupportedAlgorithm, ProbeError) as exc:
        return {"published_error": f"the published p= is no key verifiers can use ({exc})"}
