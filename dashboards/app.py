"""The Streamlit entry point: `streamlit run app.py -- -c FLEET` (`watchtower dashboard`).

Thin on purpose: load the context, pass the login gate, pick the page, hand over to its view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:  # mypy knows dashboards/ by its folder name (pyproject.toml [tool.mypy])
    from dashboards import layout
    from dashboards.context import app_context
    from dashboards.session import gate, idle_left, sign_out
    from dashboards.views import compliance, drift, overview, remediations, reports, target
    from dashboards.views.common import GOTO_KEY
else:  # Streamlit runs this file as a script, outside its package: no relative imports
    from watchtower.dashboards import layout
    from watchtower.dashboards.context import app_context
    from watchtower.dashboards.session import gate, idle_left, sign_out
    from watchtower.dashboards.views import (
        compliance,
        drift,
        overview,
        remediations,
        reports,
        target,
    )
    from watchtower.dashboards.views.common import GOTO_KEY

PAGES = {
    "Overview": ("🗺️", overview.render),
    "Target": ("🎯", target.render),
    "Compliance": ("📊", compliance.render),
    "Drift": ("🧬", drift.render),
    "Remediations": ("🛠️", remediations.render),
    "Reports": ("📄", reports.render),
}

st.set_page_config(page_title="watchtower", page_icon="🗼", layout="wide")
# Less empty space around the page and a narrower sidebar: operators want the table, not the
# margin, on a 1366 px laptop too (dashboards/layout.py).
st.markdown(layout.CSS, unsafe_allow_html=True)
app = app_context()
user = gate(app)

pending = st.session_state.pop(GOTO_KEY, None)
if pending in PAGES:
    st.session_state["nav"] = pending

with st.sidebar:
    st.markdown("## 🗼 watchtower")
    page = st.radio("Page", list(PAGES), key="nav", label_visibility="collapsed",
                    format_func=lambda p: f"{PAGES[p][0]}  {p}")
    st.divider()
    st.markdown(f"**{user.name}**  \n{user.role} · signed in via {user.source}")
    minutes = max(0, int(idle_left(app).total_seconds() // 60))
    st.caption(f"Signs out after {minutes} idle minutes")
    if st.button("Sign out", key="signout"):
        sign_out(app, "signed out")
        st.rerun()

PAGES[page or "Overview"][1](app, user)
