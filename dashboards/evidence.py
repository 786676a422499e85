"""Reading check evidence for people: expiry dates, drift facts, standards.

Evidence is whatever a check's `evidence(facts)` stored; these functions know the shapes of
the checks that carry dates or versions (from their fixtures in tests/fixtures/checks) and
return None or empty results for anything else, so a changed shape degrades to the generic JSON
view instead of an error page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from watchtower.store import Store

EXPIRY_CHECKS = ("web.tls.certificate", "mail.smtp.certificate", "dns.dnssec.expiry")
DRIFT_CHECKS = ("drift.version", "drift.generation", "drift.reboot", "drift.advisories",
                "host.units", "host.disk")


def parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _min(times: Iterator[dt.datetime | None]) -> dt.datetime | None:
    return min((t for t in times if t is not None), default=None)


def expiry_of(check_id: str, evidence: dict[str, Any]) -> dt.datetime | None:
    """The earliest expiry a check's evidence shows (certificate notAfter, RRSIG expiration)."""
    if check_id == "web.tls.certificate":
        leaf = evidence.get("leaf")
        return parse_time(leaf.get("not_after")) if isinstance(leaf, dict) else None
    if check_id == "mail.smtp.certificate":
        return _min(parse_time(ep["chain"][0].get("not_after"))
                    for ep in evidence.get("endpoints") or []
                    if isinstance(ep, dict) and ep.get("chain"))
    if check_id == "dns.dnssec.expiry":
        return _min(parse_time(sig.get("expiration"))
                    for server in evidence.get("servers") or [] if isinstance(server, dict)
                    for sig in server.get("signatures") or [] if isinstance(sig, dict))
    return None


def expiry_horizon(store: Store, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Days left for every certificate and DNSSEC signature the last sweep saw, soonest first."""
    now = now or dt.datetime.now(dt.UTC)
    states = store.dashboard.states_of(checks=EXPIRY_CHECKS)
    bodies = store.evidence_bodies([s.evidence_id for s in states])
    out: list[dict[str, Any]] = []
    for st in states:
        eid = st.evidence_id
        expires = expiry_of(st.check_id, bodies.get(eid, {})) if eid is not None else None
        if expires is None:
            continue
        out.append({"target": st.target, "check": st.check_id, "status": st.status,
                    "expires": expires,
                    "days_left": round((expires - now).total_seconds() / 86400, 1)})
    out.sort(key=lambda r: r["days_left"])
    return out


# -- for people ---------------------------------------------------------------------------


def blanks(rows: list[dict[str, Any]], keep: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Rows as a table shows them: an unknown value (None) is a blank cell, never "None",
    and a column blank in every row is left out (it only pushes the others off-screen at
    1366 px), unless it is in `keep`."""
    shown = [{k: "" if v is None else v for k, v in r.items()} for r in rows]
    used = {k for r in shown for k, v in r.items() if v != "" or k in keep}
    return [{k: v for k, v in r.items() if k in used} for r in shown]


# -- drift --------------------------------------------------------------------------------


def version_facts(evidence: dict[str, Any]) -> dict[str, Any]:
    """drift.version: declared vs running, the newest upstream and how far behind."""
    upstream = evidence.get("upstream") if isinstance(evidence.get("upstream"), dict) else {}
    newer = upstream.get("newer") or [] if upstream else []
    lag_days = None
    if upstream and upstream.get("newest_date") and newer:
        oldest_missed = min((n.get("date") for n in newer if n.get("date")), default=None)
        newest = parse_time(str(oldest_missed) + "T00:00:00+00:00") if oldest_missed else None
        now = parse_time(evidence.get("observed_at")) or dt.datetime.now(dt.UTC)
        if newest is not None:
            lag_days = max(0, (now - newest).days)
    return {"service": evidence.get("service"), "kind": evidence.get("kind"),
            "declared": evidence.get("declared"), "running": evidence.get("running"),
            "in closure": evidence.get("closure_version"),
            "newest upstream": upstream.get("newest") if upstream else None,
            "releases behind": len(newer) if upstream else None,  # unknown, not "0 behind"
            "behind since (days)": lag_days}


def generation_facts(evidence: dict[str, Any]) -> dict[str, Any]:
    """drift.generation: declared and running system, the generation list, the closure diff."""
    gens = [g for g in evidence.get("generations") or [] if isinstance(g, dict)]
    current = next((g.get("number") for g in gens if g.get("current")), None)
    return {"host": evidence.get("host"), "nixos": evidence.get("nixos_version"),
            "declared": evidence.get("expected"), "running": evidence.get("current"),
            "profile": evidence.get("profile"), "current generation": current,
            "generations": gens, "closure_diff": evidence.get("closure_diff")}


def closure_diff_rows(diff: dict[str, Any] | None) -> list[dict[str, str]]:
    """One row per package change: added, removed, or changed old -> new."""
    if not isinstance(diff, dict):
        return []
    rows = [{"change": "added", "package": d.get("name", ""), "from": "",
             "to": d.get("version", "")} for d in diff.get("added") or []]
    rows += [{"change": "removed", "package": d.get("name", ""), "from": d.get("version", ""),
              "to": ""} for d in diff.get("removed") or []]
    rows += [{"change": "changed", "package": d.get("name", ""), "from": d.get("old", ""),
              "to": d.get("new", "")} for d in diff.get("changed") or []]
    return rows


def advisory_rows(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for m in evidence.get("matches") or []:
        if not isinstance(m, dict):
            continue
        wl = m.get("whitelist")
        out.append({"id": m.get("id"), "package": m.get("package"),
                    "version": m.get("version"), "severity": m.get("severity"),
                    "score": m.get("score"),
                    "whitelisted until": wl.get("until") if isinstance(wl, dict) else None})
    return out


def reboot_facts(evidence: dict[str, Any]) -> dict[str, Any]:
    return {"booted kernel": evidence.get("booted_kernel"),
            "current kernel": evidence.get("current_kernel"),
            "reboot needed": (evidence.get("booted_kernel") != evidence.get("current_kernel")
                              if evidence.get("booted_kernel") else None)}


def drift_states(store: Store) -> list[dict[str, Any]]:
    """Every drift.* and host.* state with its evidence, grouped later by target."""
    states = store.dashboard.states_of(checks=DRIFT_CHECKS, families=("drift", "host"))
    bodies = store.evidence_bodies([s.evidence_id for s in states])
    return [{"check": st.check_id, "target": st.target, "kind": st.target_kind,
             "status": st.status, "summary": st.summary,
             "evidence": bodies.get(st.evidence_id, {}) if st.evidence_id is not None else {}}
            for st in sorted(states, key=lambda s: (s.target, s.check_id))]


def vantage_rows(evidence: dict[str, Any]) -> list[dict[str, str]]:
    """A combined (quorum) result's verdict from each vantage (watchtower/scaleout/fanout.py
    `combined_result`): vantage, status, summary, a vantage that sent nothing as `missing`;
    empty for any other evidence."""
    seen = evidence.get("vantages")
    if not isinstance(seen, dict):
        return []
    rows = [{"vantage": str(v), "status": str(r.get("status", "?")),
             "summary": str(r.get("summary", ""))}
            for v, r in seen.items() if isinstance(r, dict)]
    missing = evidence.get("missing")
    for v in missing if isinstance(missing, list) else []:
        rows.append({"vantage": str(v), "status": "missing",
                     "summary": "no result from this vantage in time"})
    return sorted(rows, key=lambda r: r["vantage"])
