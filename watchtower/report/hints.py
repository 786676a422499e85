"""One short, human remediation hint per catalog check id, shown next to a failure in reports.

Why a data module and not prose in each check: the hints are written for a customer's admin
reading a report, not for the engineer reading the check, and keeping them in one place lets a
reviewer see them all at once and keep their tone consistent. A check may still carry its own
`CheckMeta.hint` (third-party checks do); that one wins. `hint_for` never fails: an unknown id
gets a generic pointer to the standard.
"""

from __future__ import annotations

HINTS: dict[str, str] = {
    # dns.*
    "dns.ns.count": "Publish at least two NS records on different networks (ideally different "
                    "providers) at the zone and at the parent.",
    "dns.ns.authoritative": "Make every listed name server load the zone and answer with the "
                            "AA flag, or remove it from the NS set and the parent delegation.",
    "dns.ns.consistency": "Let secondaries transfer the latest serial (check NOTIFY/AXFR from "
                          "the primary) and publish the same NS set on every server.",
    "dns.ns.open-recursion": "Disable recursion on authoritative servers (PowerDNS: no "
                             "recursor; BIND: recursion no;).",
    "dns.ns.axfr": "Restrict zone transfers to your secondaries' addresses or TSIG keys.",
    "dns.soa.timers": "Use SOA refresh >= 4h, retry >= 1h and < refresh, expire >= 7 days, "
                      "minimum (negative TTL) <= 1 day.",
    "dns.dnssec.valid": "Sign the zone and publish a matching DS at the registrar; use "
                        "algorithm 13 (ECDSA P-256) and a SHA-256 DS.",
    "dns.dnssec.expiry": "Re-sign the zone: the signer (or its cron) has stopped; RRSIGs must be "
                         "refreshed well before they expire.",
    "dns.dnssec.nsec3": "Set NSEC3 iterations to 0 and use no salt (RFC 9276), or use NSEC.",
    "dns.caa": "Publish a CAA record naming only the CA you use, e.g. "
               "0 issue \"letsencrypt.org\".",
    "dns.ipv6": "Add AAAA records for name servers, mail and web hosts; at least two name "
                "servers need IPv6.",
    "dns.declared": "Create or correct the records the fleet needs on every authoritative "
                    "name server (the dns.records remediation can do it).",
    "dns.octodns": "Add the records the fleet needs to the zone's octoDNS YAML and run "
                   "octodns-sync; undo hand changes on the server by syncing (dns.records "
                   "commits the YAML change for review, or commits and syncs).",
    # mail.*
    "mail.mx": "Publish MX records pointing to host names with A/AAAA records (never a CNAME or "
               "an IP address); a domain that receives no mail publishes a null MX (\"0 .\").",
    "mail.spf.record": "Publish exactly one TXT record starting with v=spf1 at the domain.",
    "mail.spf.lookups": "Flatten includes so SPF needs at most 10 DNS lookups and no void "
                        "lookups.",
    "mail.spf.policy": "End the SPF record with -all (or ~all while testing); never +all or ?all.",
    "mail.dmarc.record": "Publish one TXT record at _dmarc.<domain>: v=DMARC1; p=reject; "
                        "rua=mailto:...",
    "mail.dmarc.policy": "Move the DMARC policy to p=quarantine, then p=reject, with pct=100 "
                         "and a rua address for aggregate reports.",
    "mail.dmarc.external-report": "The report receiver must publish <domain>._report._dmarc."
                                  "<receiver> TXT \"v=DMARC1\" to accept your reports.",
    "mail.dkim": "Publish the signing key at <selector>._domainkey.<domain> with an RSA key of "
                 "2048 bits or Ed25519, and sign with SHA-256.",
    "mail.dkim.key-match": "Publish the public half of the key the mail server actually signs "
                           "with (or deploy the published key to the server).",
    "mail.mta-sts": "Serve https://mta-sts.<domain>/.well-known/mta-sts.txt as text/plain with "
                    "mode: enforce and an mx: line for every MX, and bump the TXT id.",
    "mail.tls-rpt": "Publish _smtp._tls.<domain> TXT \"v=TLSRPTv1; rua=mailto:...\".",
    "mail.smtp.starttls": "Enable STARTTLS on every MX with TLS 1.2 or newer.",
    "mail.smtp.certificate": "Renew the MX certificate and make it name the MX host.",
    "mail.starttls.ncsc": "On every MX: TLS 1.2 or 1.3 only, ECDHE suites with AES-GCM or "
                          "ChaCha20, no DH groups below ffdhe3072, an RSA-3072 or ECDSA key "
                          "(Postfix: smtpd_tls_protocols, tls_high_cipherlist; NCSC-NL TLS "
                          "guidelines 2025-05).",
    "mail.dane": "Sign the zone with DNSSEC and publish TLSA 3 1 1 records for the current and "
                 "the next key at _25._tcp.<mx>.",
    "mail.fcrdns": "Ask the address owner for a PTR record naming the MX host, whose A/AAAA "
                   "points back to the address.",
    "mail.open-relay": "Relay only for authenticated users and your own networks "
                       "(Postfix: smtpd_relay_restrictions).",
    "mail.dnsbl": "Find and stop the source of spam, then request delisting from the blocklist.",
    "mail.parked": "For a domain that sends no mail publish v=spf1 -all, DMARC p=reject and a "
                   "null MX.",
    "mail.submission": "Offer submission on 465 (implicit TLS) and 587 (STARTTLS) and allow "
                       "AUTH only after TLS.",
    "mail.imap": "Offer IMAP only over TLS (993) and refuse plaintext login.",
    "mail.roundtrip": "Check the mail queue, DKIM signing and SPF/DMARC alignment on the "
                      "sending path.",
    "mail.spam-filter": "Route all mail through the spam filter and let it reject (or junk) "
                        "spam as declared.",
    "mail.sieve": "Offer ManageSieve only after STARTTLS and run users' Sieve scripts at "
                  "delivery.",
    # web.*
    "web.tls.certificate": "Renew the certificate (automate it with ACME) and make it cover "
                           "every host name served.",
    "web.tls.version": "Disable SSL 3.0, TLS 1.0 and 1.1; allow only TLS 1.2 and 1.3.",
    "web.tls.ncsc": "Offer TLS 1.3 (and 1.2 with ECDHE and AES-GCM or ChaCha20 suites only), "
                    "sign the key exchange with SHA-256 or better, turn 0-RTT off, use RSA "
                    "keys of 3072 bits or ECDSA P-256 and serve the full chain (NCSC-NL TLS "
                    "guidelines 2025-05).",
    "web.https.redirect": "Redirect every http:// request to https:// on the same host first.",
    "web.hsts": "Send Strict-Transport-Security: max-age=31536000 (one year) or more.",
    "web.headers": "Send X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer (or "
                   "same-origin) and a Content-Security-Policy with default-src, "
                   "frame-ancestors, base-uri and form-action set to 'self' or 'none'.",
    "web.security-txt": "Serve /.well-known/security.txt with a Contact and a future Expires.",
    # fedi.*
    "fedi.webfinger": "Serve /.well-known/webfinger as JRD with a self link of type "
                      "application/activity+json and Access-Control-Allow-Origin: *.",
    "fedi.host-meta": "Serve /.well-known/host-meta with an lrdd template pointing to WebFinger.",
    "fedi.nodeinfo": "Serve /.well-known/nodeinfo linking a valid NodeInfo 2.x document.",
    "fedi.actor": "Make the actor document carry id, inbox, outbox, publicKey and a sharedInbox.",
    "fedi.authorized-fetch": "Align the declared secure mode with the server "
                             "(Mastodon AUTHORIZED_FETCH).",
    "fedi.health": "Restart the failing service and check its logs; the health endpoint must "
                   "answer 200.",
    # matrix.*
    "matrix.discovery": "Serve /.well-known/matrix/server or an SRV record pointing to the "
                        "federation port.",
    "matrix.version": "Make the federation API reachable: /_matrix/federation/v1/version.",
    "matrix.keys": "Make the homeserver publish valid, signed ed25519 keys at "
                   "/_matrix/key/v2/server (check the server name and clock).",
    "matrix.client": "Serve /.well-known/matrix/client with m.homeserver.base_url.",
    # storage.*
    "storage.health": "Bring the missing Garage nodes back or re-balance the layout.",
    "storage.nodes": "Bring the down node back or add capacity before partitions fill up.",
    "storage.roundtrip": "Check the S3 endpoint, its credentials and the probe bucket.",
    "storage.blocks": "Run `garage repair blocks` and check the failing node's disk; free space "
                      "on a data volume that is nearly full before writes fail.",
    "fedi.queues": "Add Sidekiq/job workers or fix the failing jobs (Mastodon: /sidekiq; "
                   "PeerTube: Administration > Jobs; Pixelfed: restart Horizon, "
                   "php artisan horizon).",
    "matrix.federation.backlog": "Check the federation sender's log for the destinations it "
                                 "is stuck on; add federation sender workers if it cannot keep "
                                 "up.",
    "matrix.federation.destinations": "Check outbound network, DNS and TLS from the homeserver "
                                      "to the failing servers; reset a recovered one with "
                                      "POST .../federation/destinations/<d>/reset_connection.",
    "matrix.federation.outbound": "Our homeserver cannot reach the peer: check its outbound "
                                  "firewall, DNS resolution and the peer's well-known/SRV.",
    "backup.freshness": "Check the backup job's timer/cron and its last log; a backup that "
                        "silently stopped is found only at restore time.",
    "heartbeat.ping": "The job that pings this heartbeat did not run or failed: check its "
                      "timer/cron and its last log.",
    "host.store-integrity": "Something writes into the Nix store: find the service (often a "
                            "package writing its own cache or config) and move that state to "
                            "/var/lib; repair with nix-store --repair-path.",
    # drift.* and host.*
    "drift.version": "Deploy the declared version (nixos-rebuild switch) or update the "
                     "declaration.",
    "drift.generation": "Switch the host to the declared system generation, or roll back to "
                        "the last known-good one.",
    "drift.reboot": "Reboot in the next maintenance window so the new kernel runs.",
    "drift.advisories": "Update nixpkgs and redeploy; whitelist an advisory only with an "
                        "expiry date and a reason.",
    "host.units": "Inspect the failed unit (journalctl -u UNIT) and restart it once fixed.",
    "host.disk": "Free space: collect Nix garbage (nix-collect-garbage --delete-older-than) "
                 "and rotate logs.",
}


def hint_for(check_id: str, own_hint: str = "") -> str:
    """The hint a report shows for `check_id`: the check's own, the catalog's, or a pointer."""
    if own_hint:
        return own_hint
    return HINTS.get(check_id, "See the standards cited for what is required.")
