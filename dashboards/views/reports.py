"""Reports: past reports to download, and "send one now" (through the reports seam)."""

from __future__ import annotations

import streamlit as st

from ..actions import NotAllowed, audit, require
from ..auth import Action, User
from ..context import AppContext
from ..reports import ReportsUnavailable
from .common import plain


def render(app: AppContext, user: User) -> None:
    st.title("Reports")
    source = app.reports
    flash = st.session_state.pop("rep_flash", None)
    if flash:
        (st.success if flash[0] == "ok" else st.warning)(plain(flash[1]))
    if not source.available():
        st.info("No reports yet: the compliance report engine is not installed in this "
                "version.")
        return
    _send_now(app, user)
    entries = source.list_reports()
    if not entries:
        st.info("No reports yet. Scheduled reports (`[[reports]]` in the fleet file) appear "
                "here once built; `watchtower report` builds one by hand.")
        return
    st.subheader("Past reports")
    for entry in entries:
        labels = " · ".join(f"{k}: {plain(v)}" for k, v in entry.labels.items() if v)
        when = f"{entry.created_at:%Y-%m-%d %H:%M} UTC" if entry.created_at else ""
        with st.expander(f"#{entry.id} · {when} · {labels}"):
            files = source.download(entry.id)
            if not files:
                st.caption("No file stored for this report.")
            cols = st.columns(max(len(files), 1))
            for i, f in enumerate(files):
                cols[i].download_button(f"⬇ {f.name.rsplit('.', 1)[1].upper()}", f.data,
                                        file_name=f.name, mime=f.mime,
                                        key=f"rep-dl-{entry.id}-{i}")


def _send_now(app: AppContext, user: User) -> None:
    names = app.reports.schedules()
    allowed = user.can(Action.SEND_REPORT)
    st.subheader("Send a report now")
    if not names:
        st.caption("No `[[reports]]` entry in the fleet file: add one (recipients, mail "
                   "channel, period) to send reports from here.")
        return
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    name = c1.selectbox("Report", names, key="rep_name", disabled=not allowed)
    if c2.button("Send now", type="primary", disabled=not allowed, key="rep_send",
                 help=None if allowed else "operators only"):
        try:
            require(app.store, user, Action.SEND_REPORT, f"report {name}")
            message = app.reports.send_now(user, str(name))
        except NotAllowed as exc:
            st.session_state["rep_flash"] = ("error", str(exc))
        except ReportsUnavailable as exc:
            audit(app.store, user, "send_report", f"report {name}", str(exc), ok=False)
            st.session_state["rep_flash"] = ("error", str(exc))
        else:
            audit(app.store, user, "send_report", f"report {name}", message)
            st.session_state["rep_flash"] = ("ok", message)
        st.rerun()
    if not allowed:
        st.caption("Viewers can download reports; sending one needs the operator role.")
