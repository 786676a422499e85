"""Benchmark: the DNS-based mail checks (and the dns.* checks) over generated zones on loopback.

Serves N generated zones (default 1,000) from the lab's authoritative DNS server on a free
loopback port, then measures in the same run:

1. watchtower: one sweep of the dns.* and the DNS-only mail.* checks over every zone (wall time,
   checks/s);
2. checkdmarc (the anchor for SPF+DMARC): `check_spf` + `check_dmarc` on a sample of the same
   domains, pointed at the same server; ratio = checkdmarc seconds per domain / watchtower
   seconds per domain on the same work, its SPF and DMARC checks (target >= 10x); printed
   beside it, the ratio against watchtower's larger DNS mail catalog;
3. a bare replay with dnspython of exactly the questions watchtower sent (same concurrency,
   split over as many processes as the sweep used);
   ratio = watchtower wall / replay wall (target <= 2x): what watchtower adds over the network.

watchtower runs as `watchtower run` sweeps: large sweeps are split by domain over worker
processes ([probe] sweep_processes, one per core by default).

Run: `python bench/bench_dns_mail.py [--zones 1000] [--oracle-sample 200]`.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.nameserver
import dns.query
import dns.rdatatype
import dns.zone
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._lab import summary
from watchtower.config import parse_fleet
from watchtower.lab.dnsserver import DnsServer
from watchtower.net import dns as dns_module
from watchtower.probe import registry, workers
from watchtower.probe.clients import SweepClients
from watchtower.probe.runner import Runner, plan_jobs
from watchtower.probe.sweep import run_sweep

MAIL_DNS_CHECKS = ("mail.mx", "mail.spf.record", "mail.spf.lookups", "mail.spf.policy",
                   "mail.dmarc.record", "mail.dmarc.policy", "mail.dmarc.external-report",
                   "mail.dkim", "mail.tls-rpt", "mail.parked")
#: checkdmarc's own work: the SPF record, its evaluation (lookups), and DMARC.
SPF_DMARC_CHECKS = ("mail.spf.record", "mail.spf.lookups", "mail.spf.policy",
                    "mail.dmarc.record", "mail.dmarc.policy")
PROVIDER = "provider.test"


def _quoted(value: str) -> str:
    return " ".join(f'"{value[i:i + 255]}"' for i in range(0, len(value), 255))


def zone_text(name: str, index: int, dkim: str) -> str:
    """A realistic mail zone; every fifth includes the provider's nested SPF tree, every
    seventh has a fault (too many lookups, no DMARC, +all) so all verdict paths run."""
    spf = "v=spf1 mx -all"
    if index % 5 == 0:
        spf = f"v=spf1 mx include:_spf.{PROVIDER} ~all"
    if index % 7 == 3:
        spf = "v=spf1 " + " ".join(f"a:h{i}.{name}" for i in range(11)) + " -all"
    if index % 7 == 5:
        spf = "v=spf1 +all"
    lines = [
        f"$ORIGIN {name}.", "$TTL 3600",
        f"@ SOA ns1.{name}. hostmaster.{name}. 1 14400 3600 1209600 3600",
        f"@ NS ns1.{name}.", f"@ NS ns2.{name}.",
        "ns1 A 127.0.0.1", "ns2 A 127.0.0.1",
        f"@ MX 10 mail.{name}.", "mail A 127.0.0.1",
        *(f"h{i} A 127.0.0.{i + 1}" for i in range(11)),
        f"@ TXT {_quoted(spf)}",
        f"s1._domainkey TXT {dkim}",
        f'_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tls@{name}"',
        f'_mta-sts TXT "v=STSv1; id={index}"',
    ]
    if index % 7 != 4:
        lines.append(f'_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{name}"')
    return "\n".join(lines) + "\n"


def provider_zone() -> str:
    return "\n".join([
        f"$ORIGIN {PROVIDER}.", "$TTL 3600",
        f"@ SOA ns1.{PROVIDER}. hostmaster.{PROVIDER}. 1 14400 3600 1209600 3600",
        f"@ NS ns1.{PROVIDER}.", "ns1 A 127.0.0.1",
        f'_spf TXT "v=spf1 include:_a.{PROVIDER} include:_b.{PROVIDER} ~all"',
        '_a TXT "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 ~all"',
        '_b TXT "v=spf1 ip6:2001:db8::/32 ~all"',
    ]) + "\n"


def parent_zone() -> str:
    """`test.` itself, so DMARC tree walks that reach it get NXDOMAIN, not REFUSED."""
    return ("$ORIGIN test.\n$TTL 3600\n@ SOA ns1.test. hostmaster.test. 1 14400 3600 "
            "1209600 3600\n@ NS ns1.test.\nns1 A 127.0.0.1\n")


def dkim_record() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return _quoted("v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode())


def build_zones(count: int) -> tuple[list[dns.zone.Zone], list[str]]:
    dkim = dkim_record()
    names = [f"b{i:04d}.test" for i in range(count)]
    zones = [dns.zone.from_text(zone_text(n, i, dkim), origin=n + ".", relativize=False)
             for i, n in enumerate(names)]
    zones.append(dns.zone.from_text(provider_zone(), origin=PROVIDER + ".", relativize=False))
    zones.append(dns.zone.from_text(parent_zone(), origin="test.", relativize=False))
    return zones, names


def serve_lab(zones: list[dns.zone.Zone]) -> tuple[int, Callable[[], None]]:
    """The lab's pure-Python authoritative server (no root, nothing installed)."""
    server = DnsServer(["127.0.0.1"], 0)
    server.set_zones("127.0.0.1", zones)
    server.start()
    return server.port, server.stop


def serve_powerdns(zones: list[dns.zone.Zone]) -> tuple[int, Callable[[], None]]:
    """PowerDNS Authoritative (Debian pdns-server), loaded through its HTTP API."""
    from tests.servers.powerdns import PowerDNS

    class CachingPowerDNS(PowerDNS):
        """The test harness turns caches off (tests change zones); a benchmark wants the
        server a provider runs: packet and query caches on, several threads."""

        def _config(self) -> str:
            text = super()._config()
            for key, value in (("cache-ttl", "60"), ("query-cache-ttl", "60"),
                               ("negquery-cache-ttl", "60"), ("distributor-threads", "4"),
                               ("receiver-threads", "2")):
                text = text.replace(f"\n{key}=", f"\n#{key}=") + f"{key}={value}\n"
            return text

    server = CachingPowerDNS(Path(tempfile.mkdtemp(prefix="bench-pdns-"))).start()
    for zone in zones:
        origin = zone.origin.to_text() if zone.origin is not None else ""
        records = [(name.to_text(), dns.rdatatype.to_text(rds.rdtype), rds.ttl, rd.to_text())
                   for name, rds in zone.iterate_rdatasets()
                   if rds.rdtype not in (dns.rdatatype.SOA, dns.rdatatype.NS)
                   for rd in rds]
        nameservers = [rd.to_text() for rd in zone.find_rdataset("@", "NS")]
        server.create_zone(origin, nameservers, records)
    return server.dns_port, server.stop


def _fleet(port: int, names: list[str], *, zones: bool, processes: int = 0) -> Any:
    return parse_fleet({
        "probe": {"nameservers": [f"127.0.0.1:{port}"], "authoritative_port": port,
                  "dns_timeout": 3.0, "concurrency": 32, "sweep_processes": processes},
        "zones": [{"name": n, "dnssec": False} for n in names] if zones else [],
        "mail_domains": [{"name": n, "dkim_selectors": ["s1"], "mta_sts": False}
                         for n in names],
    })


def _checks(*, dns_family: bool, only: tuple[str, ...] = MAIL_DNS_CHECKS) -> dict[str, Any]:
    return {cid: c for cid, c in registry.checks().items()
            if cid in only or (dns_family and c.meta.family == "dns")}


def run_watchtower(port: int, names: list[str]) -> tuple[float, int, dict[str, int], int]:
    """The dns.* and mail checks as `watchtower run` sweeps them (worker processes when the
    sweep is large): wall s, probes, verdicts, processes."""
    outcome = run_sweep(_fleet(port, names, zones=True), None, _checks(dns_family=True))
    statuses = {str(s): n for s, n in outcome.counts().items()}
    return outcome.seconds, len(outcome.results), statuses, outcome.processes


def questions_of(port: int, names: list[str]) -> tuple[list[tuple[str, str]], int]:
    """Every question the same sweep sends, from an untimed in-process run (the resolver's
    cache keys: a benchmark may peek); and how many queries went on the wire."""
    fleet = _fleet(port, names, zones=True, processes=1)
    bound = dns_module.CACHE_ENTRIES
    dns_module.CACHE_ENTRIES = None  # type: ignore[assignment]  # keep every key to list them
    try:
        sweep = SweepClients(fleet)
    finally:
        dns_module.CACHE_ENTRIES = bound
    for _ in Runner(fleet.probe.concurrency).run(plan_jobs(fleet, _checks(dns_family=True)),
                                                    sweep.context):
        pass
    keys: list[Any] = sweep.dns._cache.keys()  # type: ignore[union-attr]
    questions = [(k[1], k[2]) for k in keys if k[0] == "resolve"]
    questions += [(k[2], k[3]) for k in keys if k[0] == "ask"]
    sent = sweep.dns.queries_sent
    sweep.close()
    return questions, sent


def run_mail_only(port: int, names: list[str], only: tuple[str, ...] = MAIL_DNS_CHECKS
                  ) -> float:
    """The mail.* DNS checks alone (no dns.* checks): the catalog compared with checkdmarc, or
    (`only`) the SPF and DMARC checks, checkdmarc's own work."""
    return run_sweep(_fleet(port, names, zones=False), None,
                     _checks(dns_family=False, only=only)).seconds


def run_checkdmarc(port: int, names: list[str]) -> float:
    from checkdmarc.dmarc import check_dmarc
    from checkdmarc.spf import check_spf

    ns = [dns.nameserver.Do53Nameserver("127.0.0.1", port)]
    started = time.perf_counter()
    for name in names:
        check_spf(name, nameservers=ns, timeout=3.0)
        check_dmarc(name, nameservers=ns, timeout=3.0)
    return time.perf_counter() - started


def replay(port: int, questions: list[tuple[str, str]], concurrency: int, processes: int
           ) -> float:
    """The same questions, straight through dnspython (no parsing, judging or caching), split
    over as many processes as the sweep used, with the same total concurrency."""
    if processes <= 1:
        return _replay_slice(port, questions, concurrency)
    slices = [questions[i::processes] for i in range(processes)]
    ctx = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        list(pool.map(_replay_slice, [port] * processes, [[]] * processes,
                      [1] * processes))  # workers up before the clock starts
        started = time.perf_counter()
        list(pool.map(_replay_slice, [port] * processes, slices,
                      [max(1, concurrency // processes)] * processes))
        return time.perf_counter() - started


def _replay_slice(port: int, questions: list[tuple[str, str]], concurrency: int) -> float:
    def ask(question: tuple[str, str]) -> Any:
        query = dns.message.make_query(question[0], question[1], use_edns=0, payload=1232)
        try:
            return dns.query.udp(query, "127.0.0.1", port=port, timeout=3.0)
        except dns.exception.Timeout:  # a lost datagram on a loaded machine: the replay
            return None                # counts its time, as the sweep counts its timeouts

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(ask, questions))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zones", type=int, default=1000)
    parser.add_argument("--oracle-sample", type=int, default=200,
                        help="domains checkdmarc checks (it is slow; per-domain time is used)")
    parser.add_argument("--server", choices=("powerdns", "lab"), default="powerdns")
    args = parser.parse_args()
    t0 = time.perf_counter()
    zones, names = build_zones(args.zones)
    port, stop = (serve_powerdns if args.server == "powerdns" else serve_lab)(zones)
    print(f"served {len(names)} zones ({args.server}) on 127.0.0.1:{port} in "
          f"{time.perf_counter() - t0:.1f} s")
    try:
        workers.prestart()  # as `watchtower run` does at start-up
        wall, jobs, statuses, processes = run_watchtower(port, names)
        questions, sent = questions_of(port, names)
        print(f"watchtower dns+mail: {jobs} checks over {len(names)} zones in {wall:.2f} s "
              f"= {jobs / wall:.0f} checks/s over {processes} process(es); {sent} DNS queries "
              f"sent for {len(questions)} distinct questions; verdicts {statuses}")
        mail_wall = run_mail_only(port, names)
        per_domain_wt = mail_wall / len(names)
        per_domain_equal = run_mail_only(port, names, SPF_DMARC_CHECKS) / len(names)
        sample = names[: args.oracle_sample]
        cd_wall = run_checkdmarc(port, sample)
        per_domain_cd = cd_wall / len(sample)
        replays = [replay(port, questions, 32, processes) for _ in range(3)]
        replay_wall = statistics.median(replays)
    finally:
        stop()
    speedup = per_domain_cd / per_domain_wt
    equal = per_domain_cd / per_domain_equal
    overhead = wall / replay_wall
    print(f"# watchtower mail catalog ({len(MAIL_DNS_CHECKS)} checks): "
          f"{per_domain_wt * 1000:.2f} ms/domain, its SPF and DMARC checks alone "
          f"{per_domain_equal * 1000:.2f} ms/domain; checkdmarc (SPF+DMARC, {len(sample)} "
          f"domains): "
          f"{per_domain_cd * 1000:.2f} ms/domain; replay of {len(questions)} questions "
          f"{replay_wall:.2f} s")
    summary("dns_mail.checks_per_s", jobs / wall, "checks/s",
            note=f"dns.* + DNS mail checks over {len(names)} zones, {processes} process(es)")
    summary("dns_mail.vs_checkdmarc", equal, "x faster per domain", 10.0,
            higher_is_better=True,
            note=f"the same SPF and DMARC work ({len(SPF_DMARC_CHECKS)} checks)")
    summary("dns_mail.vs_checkdmarc_mail_catalog", speedup, "x faster per domain",
            note=f"watchtower's {len(MAIL_DNS_CHECKS)} DNS mail checks against checkdmarc's two")
    summary("dns_mail.replay_ratio", overhead, "x the bare replay", 2.0)

if __name__ == "__main__":
    main()
