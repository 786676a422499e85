"""Drift: declared vs running versions and generations, upstream lag, advisories, closure diff."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import streamlit as st

from .. import layout
from ..auth import User
from ..context import AppContext
from ..data import ICON, badge
from ..evidence import (
    advisory_rows,
    blanks,
    closure_diff_rows,
    drift_states,
    generation_facts,
    reboot_facts,
    version_facts,
)
from ..hints import fix_hint, fix_line
from .common import fit_columns, plain, row_detail, selected_row

# The services table's short columns (px), those it has; summary and how to fix share the rest.
SERVICE_PX = {"status": 76, "service": 150, "kind": 90, "declared": 80, "running": 80,
              "in closure": 80, "newest upstream": 80, "releases behind": 70,
              "behind since (days)": 70}
SERVICE_TEXT = {"summary": 3, "how to fix": 2}


def render(app: AppContext, user: User) -> None:
    st.title("Drift")
    states = drift_states(app.store)
    if not states:
        st.info("No drift or host results yet (drift.* and host.* checks).")
        return
    versions = [s for s in states if s["check"] == "drift.version"]
    if versions:
        st.subheader("Services: declared vs running")
        table = blanks([{"status": badge(s["status"]), "service": s["target"],
                         "kind": s["kind"],
                         **{k: v for k, v in version_facts(s["evidence"]).items()
                            if k not in ("service", "kind")},
                         "summary": s["summary"], "how to fix": fix_hint(s["check"], s["status"])}
                        for s in versions])
        event = st.dataframe(table, hide_index=True, width="stretch", key="drift_services",
                             column_config=fit_columns(table, SERVICE_PX, SERVICE_TEXT,
                                                       extra_px=layout.SELECT_PX),
                             on_select="rerun", selection_mode="single-row")
        row = selected_row(event, table)
        if row is None:
            st.caption("Select a row for its full summary and how to fix.")
        else:
            row_detail(row, ["service", "summary", "how to fix"])
    if not any(s["kind"] == "host" for s in states):
        st.caption("Generations, reboots, advisories and the closure diff appear per host once "
                   "`[[hosts]]` are declared in the fleet file.")
    by_target: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in states:
        if s["check"] != "drift.version":
            by_target[s["target"]].append(s)
    for target, rows in sorted(by_target.items()):
        worst = max(rows, key=lambda r: ("ok", "warn", "error", "fail").index(r["status"])
                    if r["status"] in ("ok", "warn", "error", "fail") else 2)
        st.subheader(f"{ICON.get(worst['status'], '⚪')} {target}")
        for s in rows:
            _one(s)


def _one(s: dict[str, Any]) -> None:
    ev = s["evidence"]
    with st.expander(f"{ICON.get(s['status'], '⚪')} {s['check']} — {plain(s['summary'])}",
                     expanded=s["status"] in ("fail", "error")):
        line = fix_line(s["check"], s["status"])
        if line:
            st.markdown(plain(line))
        if s["check"] == "drift.generation":
            facts = generation_facts(ev)
            st.dataframe(blanks([{k: v for k, v in facts.items()
                                  if k not in ("generations", "closure_diff")}]),
                         hide_index=True)
            if facts["generations"]:
                st.markdown("**Generations**")
                st.dataframe(blanks(facts["generations"]), hide_index=True)
            diff = closure_diff_rows(facts["closure_diff"])
            if diff:
                st.markdown("**Closure diff (running → declared)**")
                st.dataframe(diff, hide_index=True)
        elif s["check"] == "drift.advisories":
            rows = advisory_rows(ev)
            if rows:
                st.dataframe(blanks(rows, keep=("whitelisted until",)), hide_index=True)
            else:
                st.caption("No advisory matches.")
        elif s["check"] == "drift.reboot":
            st.dataframe(blanks([reboot_facts(ev)]), hide_index=True)
        st.json(ev, expanded=False)
