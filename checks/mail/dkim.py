"""mail.dkim: the key record of every configured selector is present, usable and strong."""

from __future__ import annotations

from typing import Any

from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.parsers import ParseError
from watchtower.parsers import dkim as dkim_parser
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from .common import spec_of, txt_texts

RSA_MIN_BITS = 1024  # RFC 8301 3.2: verifiers MUST NOT accept smaller keys
RSA_GOOD_BITS = 2048  # RFC 8301 3.2: signers SHOULD use at least 2048


@register
class Dkim(Check):
    meta = CheckMeta(
        id="mail.dkim",
        needs=("dns.ns.authoritative",),
        family="mail",
        title="DKIM key record of each configured selector is present and strong",
        query="TXT at `<selector>._domainkey.<domain>` for each configured selector",
        verdicts=(
            "fail missing, empty `p=` (revoked), RSA < 1024 bits, unknown `k=`; warn RSA < 2048, "
            "`t=y`, `h=sha1` only (RFC 6376, 8301, 8463)"
        ),
        applies_to=(TargetKind.MAIL_DOMAIN,),
        interval=3600,
        timeout=15,
        standards=("RFC 6376 3.6.1", "RFC 8301 3.1", "RFC 8301 3.2", "RFC 8463 3"),
    )

    def applies(self, target: Target) -> bool:
        return super().applies(target) and spec_of(target).sending

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        selectors: list[dict[str, Any]] = []
        for selector in spec_of(target).dkim_selectors:
            item = txt_texts(ctx, f"{selector}._domainkey.{target.name}")
            item["selector"] = selector
            selectors.append(item)
        return {"domain": target.name, "selectors": selectors}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        if not facts["selectors"]:
            f.warn("no DKIM selector configured for this domain: nothing to check")
            return f.verdict("")
        described = []
        for item in facts["selectors"]:
            key = _judge_selector(item, f)
            if key is not None:
                described.append(f"{item['selector']}: {key.key_type}"
                                 + (f"-{key.key_bits}" if key.key_bits else ""))
        return f.verdict("DKIM keys " + ", ".join(described))


def _judge_selector(item: dict[str, Any], f: Findings) -> dkim_parser.DkimKey | None:
    name = item["name"]
    texts = item["txt"]
    if not texts:
        why = "NXDOMAIN" if item.get("rcode") == "NXDOMAIN" else "no TXT record"
        f.fail(f"selector {item['selector']}: no key record at {name} ({why})")
        return None
    if len(texts) > 1:
        f.warn(f"selector {item['selector']}: {len(texts)} TXT records at {name}; verifiers "
               "may pick any (RFC 6376 3.6.2.2)")
    try:
        key = dkim_parser.parse(texts[0])
    except ParseError as exc:
        f.fail(f"selector {item['selector']}: unusable key record: {exc}")
        return None
    sel = f"selector {item['selector']}"
    if key.revoked:
        f.fail(f"{sel}: key revoked (empty p=, RFC 6376 3.6.1)")
        return None
    if not key.key_type_known:
        f.fail(f"{sel}: k={key.key_type} is not a key type verifiers know (rsa, ed25519; "
               "RFC 8463)")
        return None
    if not key.for_email:
        f.fail(f"{sel}: s={':'.join(key.service_types)} excludes email")
    if key.key_type == "rsa" and key.key_bits is not None:
        if key.key_bits < RSA_MIN_BITS:
            f.fail(f"{sel}: RSA key of {key.key_bits} bits; verifiers reject keys under "
                   f"{RSA_MIN_BITS} (RFC 8301 3.2)")
        elif key.key_bits < RSA_GOOD_BITS:
            f.warn(f"{sel}: RSA key of {key.key_bits} bits; use at least {RSA_GOOD_BITS} "
                   "(RFC 8301 3.2)")
    if key.testing:
        f.warn(f"{sel}: t=y, the domain is testing DKIM: verifiers may ignore failures")
    if key.sha1_only:
        f.warn(f"{sel}: h=sha1 only; verifiers no longer accept SHA-1 (RFC 8301 3.1)")
    return key
