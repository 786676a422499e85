"""Remediations: the queue with each plan's diff and undo; approve or reject; the audit trail."""

from __future__ import annotations

import json

import streamlit as st

from watchtower.remediation.api import Plan
from watchtower.remediation.policy import PolicyRefused
from watchtower.store import OPEN_STATES, RemediationRow

from ..actions import NotAllowed, approve, audit_trail, reject
from ..auth import Action, User
from ..context import AppContext
from .common import AUDIT_PX, fit_columns, plain

STATE_ICON = {"awaiting_approval": "⏳", "approved": "👍", "applying": "⚙️", "verifying": "🔎",
              "reverting": "↩️", "applied": "✅", "verified": "✅", "rolled_back": "↩️",
              "failed": "❌", "rejected": "🚫", "dry_run": "📝", "reverted": "↩️"}
# The proposals table's short columns (px); summary and outcome share the rest.
HISTORY_PX = {"id": 48, "state": 150, "remediation": 130, "target": 160, "created": 96,
              "approved by": 100}
HISTORY_TEXT = {"summary": 3, "outcome": 2}


def render(app: AppContext, user: User) -> None:
    st.title("Remediations")
    rem = app.remediator
    flash = st.session_state.pop("rem_flash", None)
    if flash:
        (st.success if flash[0] == "ok" else st.error)(plain(flash[1]))
    queue = rem.proposals([*OPEN_STATES, "dry_run"])
    tab_queue, tab_history, tab_audit = st.tabs(
        [f"Queue ({len(queue)})", "History", "Dashboard audit"])
    with tab_queue:
        if not queue:
            st.success("Nothing waits for a decision.")
        if not user.can(Action.APPROVE):
            st.info("You are signed in as a viewer: you can read plans but not approve or "
                    "reject them.")
        for row in reversed(queue):
            _proposal(app, user, row)
    with tab_history:
        rows = rem.proposals()
        if not rows:
            st.caption("No remediation was ever proposed.")
        else:
            table = [{"id": r.id, "state": f"{STATE_ICON.get(r.state, '')} {r.state}",
                      "remediation": r.remediation, "target": r.target, "summary": r.summary,
                      "created": r.created_at, "approved by": r.approved_by or "",
                      "outcome": r.outcome} for r in reversed(rows)]
            st.dataframe(table, hide_index=True,
                         column_config=fit_columns(table, HISTORY_PX, HISTORY_TEXT))
            ids = [r.id for r in reversed(rows)]
            rid = st.selectbox("Audit trail of", ids, key="rem_history_id",
                               format_func=lambda i: f"#{i}")
            if rid is not None:
                steps = [{"at": a.at, "actor": a.actor, "action": a.action,
                          "ok": "✅" if a.ok else "❌", "detail": a.detail}
                         for a in rem.history(rid)]
                st.dataframe(steps, hide_index=True,
                             column_config=fit_columns(steps, AUDIT_PX, {"detail": 1}))
    with tab_audit:
        trail = audit_trail(app.store)
        entries = [{"at": a.at, "user": a.user, "via": a.source, "role": a.role,
                    "action": a.action, "subject": a.subject, "ok": "✅" if a.ok else "❌",
                    "detail": a.detail} for a in trail]
        st.dataframe(entries, hide_index=True,
                     column_config=fit_columns(entries, AUDIT_PX, {"detail": 1}))


def _proposal(app: AppContext, user: User, row: RemediationRow) -> None:
    plan = Plan.from_json(row.plan)
    icon = STATE_ICON.get(row.state, "")
    # keyed, so a test (or a person's stylesheet) finds a plan's card by its id: `.st-key-rem-N`
    with st.container(border=True, key=f"rem-{row.id}"):
        st.markdown(f"#### {icon} #{row.id} {row.remediation} on {row.target}")
        st.caption(f"state **{row.state}** · policy **{row.policy}** · host {row.host} · "
                   f"triggered by {', '.join(json.loads(row.trigger_checks))} · proposed "
                   f"{row.created_at:%Y-%m-%d %H:%M} UTC")
        st.markdown(plain(plan.summary))
        if plan.guard:
            st.warning(f"Guard: {plain(plan.guard)}")
        if plan.diff:
            st.code(plan.diff, language="diff")
        c1, c2 = st.columns(2)
        c1.markdown("**Steps**")
        c1.code("\n".join(s.render() for s in plan.steps) or "(none)", language="bash")
        c2.markdown("**Undo**")
        c2.code("\n".join(s.render() for s in plan.undo) or "(nothing to undo)",
                language="bash")
        st.caption(f"Verified afterwards by: {', '.join(plan.verify) or '(no checks)'}")
        if row.state == "awaiting_approval":
            _decide(app, user, row)
        elif row.state == "dry_run":
            st.caption("Policy dry-run: shown for review only; it is never applied.")


def _decide(app: AppContext, user: User, row: RemediationRow) -> None:
    allowed = user.can(Action.APPROVE)
    rid = row.id
    assert rid is not None
    c1, c2, c3 = st.columns([1, 1, 3])
    reason = c3.text_input("Reason (for reject)", key=f"rem-reason-{rid}",
                           disabled=not allowed, label_visibility="collapsed",
                           placeholder="reason, when rejecting")
    if c1.button("Approve", key=f"rem-approve-{rid}", type="primary", disabled=not allowed):
        _act(lambda: approve(app.remediator, user, rid), f"#{rid} approved by {user.name}; "
             "watchtower run applies it under the policy in force.")
    if c2.button("Reject", key=f"rem-reject-{rid}", disabled=not allowed):
        _act(lambda: reject(app.remediator, user, rid, reason or ""),
             f"#{rid} rejected by {user.name}.")


def _act(fn, ok_message: str) -> None:  # type: ignore[no-untyped-def]
    try:
        fn()
    except (NotAllowed, PolicyRefused) as exc:
        st.session_state["rem_flash"] = ("error", f"Refused: {exc}")
    else:
        st.session_state["rem_flash"] = ("ok", ok_message)
    st.rerun()
