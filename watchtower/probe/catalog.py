"""docs/check-catalog.md, generated from the registry so the catalog cannot drift from the checks
that exist (it once listed a check nobody had built).

`python -m watchtower.probe.catalog > docs/check-catalog.md`; a test fails when the file is
stale. Each check's row is its own `CheckMeta.query` and `CheckMeta.verdicts`; what a family
applies to comes from its checks' target kinds. The places where watchtower departs from the
catalog it started from are prose, kept by hand in docs/check-catalog-departures.md.
"""

from __future__ import annotations

from watchtower.model import TargetKind
from watchtower.probe import registry
from watchtower.probe.api import Check

HEADER = """# Check catalog

Generated from the registered checks by `python -m watchtower.probe.catalog`; do not edit by
hand (each row is the check's own `query` and `verdicts`). Where watchtower departs from the
catalog it started from, and why: [check-catalog-departures.md](check-catalog-departures.md).

The compliance and health checks that watchtower runs, with stable ids. The ids are part of the
public interface: they appear in JSON output, metrics labels, reports and config overrides, so
rename none once shipped. Each entry: what is queried, and the verdict rules. Verdicts:
`ok`, `warn`, `fail`, and `error` (the probe itself could not run: timeout, SERVFAIL, refused;
never report a probe failure as a compliance `fail`). `needs` names the checks a check stands
on: when one of them fails on the target (or the target it is reached through), the check is not
run and reads `error` with that failure as its `cause` (one root cause, one `fail`; see
watchtower/probe/dependencies.py). Standards are given so a report can cite them; `watchtower
checks --format json` carries all of this and the remediations that fix each check.

The catalog is a superset of what the reference checkers do (internet.nl mail/web tests,
checkdmarc, Zonemaster, the Matrix federation tester, NodeInfo/WebFinger specs): where one of them
checks something, we check it too, and we add what none of them has (fediverse, NixOS, storage).
"""

#: Families in reading order; families not named here follow, alphabetically.
FAMILY_ORDER = ("dns", "mail", "web", "fedi", "matrix", "storage", "backup", "heartbeat",
                "drift", "host")

KIND_NAMES = {
    TargetKind.ZONE: "zone", TargetKind.MAIL_DOMAIN: "mail domain",
    TargetKind.ENDPOINT: "HTTPS endpoint", TargetKind.MASTODON: "Mastodon",
    TargetKind.PEERTUBE: "PeerTube", TargetKind.PIXELFED: "Pixelfed",
    TargetKind.SYNAPSE: "Matrix server", TargetKind.GARAGE: "Garage cluster",
    TargetKind.HOST: "NixOS host", TargetKind.MAIL_HOST: "mail host",
    TargetKind.BACKUP: "backup (`[[backups]]`)",
    TargetKind.HEARTBEAT: "heartbeat (`[[heartbeats]]`)",
}


def _cell(text: str) -> str:
    return text.replace("\n", " ").replace("|", "\\|")


def _family_rank(family: str) -> tuple[int, str]:
    return (FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER), family)


def _kinds(checks: list[Check]) -> str:
    kinds: list[TargetKind] = []
    for check in checks:
        kinds += [k for k in check.meta.applies_to if k not in kinds]
    return ", ".join(KIND_NAMES.get(k, str(k)) for k in sorted(kinds, key=list(TargetKind).index))


def render() -> str:
    checks = registry.checks()
    fixes = registry.fixes()
    by_family: dict[str, list[Check]] = {}
    for check in checks.values():
        by_family.setdefault(check.meta.family, []).append(check)
    out = [HEADER]
    for family in sorted(by_family, key=_family_rank):
        members = sorted(by_family[family], key=lambda c: c.meta.id)
        out.append(f"\n## {family}.* (per {_kinds(members)})\n")
        out.append("| id | query | verdict | needs | fixed by |\n|---|---|---|---|---|")
        for c in members:
            fix = ", ".join(f"`{r}`" for r in fixes.get(c.meta.id, ()))
            needs = ", ".join(f"`{n}`" for n in c.meta.needs)
            out.append(f"| {c.meta.id} | {_cell(c.meta.query)} | {_cell(c.meta.verdicts)} | "
                       f"{needs} | {fix} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
