"""Overview: the fleet at a glance — targets x families, worst first, and what changed."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from .. import charts, layout
from ..auth import User
from ..context import AppContext
from ..data import (
    ICON,
    LABEL,
    STATUS_ORDER,
    Changes,
    Overview,
    OverviewFilter,
    StateGroup,
    build_overview,
    changes_since,
    problems,
)
from .common import (
    CHANGE_PX,
    TARGET_KEY,
    ago,
    fit_columns,
    goto,
    plain,
    row_detail,
    selected_row,
    state_groups,
)

# The fixed columns' widths (px); the family columns share what they leave (layout.py).
PX = {"target": 160, "kind": 96, "worst": 68, "problems": 60}
PX_TAGS = 90
# Open problems and changes: short columns fixed, the long text ones share the rest by weight.
PROBLEM_PX = {"status": 76, "target": 150, "check": 160, "since": 96, "acknowledged": 90}
PROBLEM_TEXT = {"summary": 3, "cause": 2, "how to fix": 3}
PROBLEM_COLUMNS = ["status", "target", "check", "summary", "cause", "how to fix", "since",
                   "acknowledged"]


def render(app: AppContext, user: User) -> None:
    st.title("Fleet overview")
    groups = state_groups(app, app.fleet_path)
    if not groups:
        st.info("No results yet. `watchtower run` (or `watchtower check`) fills the store; "
                "this page shows the latest verdict of every check on every target.")
        return
    filt, all_tags = _filters(groups)
    ov = build_overview(groups, filt, app.where)
    changes = changes_since(app.store, dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    _headline(ov, changes)
    _names_table(ov, all_tags)
    # Full width, one beneath the other: in a 3/5 column the problems' eight columns were
    # three times the width they had at 1366 px.
    _open_problems(app, filt)
    _changes(changes)
    st.caption(f"Signed in as {user.name} ({user.role}). Page data is at most a few seconds "
               f"old; last change {ago(changes.rows[0]['at']) if changes.rows else 'none'}.")


def _filters(groups: list[StateGroup]) -> tuple[OverviewFilter, list[str]]:
    """The filter row (families, worst status, tags, target search); also every tag seen."""
    all_families = sorted({g.family for g in groups})
    all_tags = sorted({t for g in groups for t in g.tags})
    c1, c2, c3, c4 = st.columns([2, 2, 2, 2])
    families = c1.multiselect("Families", all_families, key="ov_families",
                              placeholder="all families")
    statuses = c2.multiselect("Worst status", list(STATUS_ORDER), key="ov_statuses",
                              format_func=lambda s: f"{ICON[s]} {s}", placeholder="any")
    tags = c3.multiselect("Tags", all_tags, key="ov_tags", placeholder="any tag",
                          disabled=not all_tags)
    search = c4.text_input("Target contains", key="ov_search", placeholder="e.g. alpha")
    return OverviewFilter(tuple(families), tuple(statuses), tuple(tags), search), all_tags


def _headline(ov: Overview, changes: Changes) -> None:
    """Counts per worst status, the day's change, and the status bar."""
    cols = st.columns(6)
    cols[0].metric("Check results", f"{ov.results}",
                   help=f"the latest verdict of every check: {ov.scope_text}, after the "
                        f"filters ({ov.total_targets} targets in the store)")
    for col, status in zip(cols[1:5], STATUS_ORDER, strict=True):
        col.metric(f"{ICON[status]} {status}", ov.counts.get(status, 0),
                   help=f"check results at {LABEL[status]}")
    cols[5].metric("Since yesterday", f"+{changes.new_problems} / -{changes.resolved}",
                   help="new problems / resolved problems in the last 24 hours")
    st.caption(f"{ov.scope_text}. A name is one row: a zone, the mail domain of the same "
               "name and its endpoints are the targets reached at it.")
    st.altair_chart(charts.status_bar(ov.counts), width="stretch")


def _names_table(ov: Overview, all_tags: list[str]) -> None:
    """Names x families, worst first; selecting a row opens its worst target."""
    st.subheader("Names by family, worst first")
    table = ov.table()
    fixed = layout.SELECT_PX + sum(PX.values()) + (PX_TAGS if all_tags else 0)
    family_px = layout.column_px(len(ov.shown_families), fixed)
    event = st.dataframe(
        table, hide_index=True, width="stretch", key="ov_table",
        height=min(38 + 35 * len(table), 560), on_select="rerun", selection_mode="single-row",
        column_order=["target", "kind", "worst", "problems", *ov.shown_families,
                      *(["tags"] if all_tags else [])],
        column_config={"problems": st.column_config.NumberColumn(
                           "problems", width=PX["problems"], help="checks at fail or error"),
                       "target": st.column_config.TextColumn("name", width=PX["target"]),
                       "kind": st.column_config.TextColumn("seen as", width=PX["kind"]),
                       "worst": st.column_config.TextColumn("worst", width=PX["worst"]),
                       "tags": st.column_config.TextColumn("tags", width=PX_TAGS),
                       **{f: st.column_config.TextColumn(f, width=family_px)
                          for f in ov.shown_families}})
    selected = event.selection.rows if event is not None else []
    if selected:
        goto("Target", **{TARGET_KEY: ov.rows[selected[0]].opens})
    st.caption("Select a row to open its worst target. error = the probe could not run; it is "
               "never counted as a compliance fail.")


def _open_problems(app: AppContext, filt: OverviewFilter) -> None:
    st.subheader("Open problems")
    rows = problems(app.store, filt, limit=300)
    if not rows:
        st.success("No fail or error anywhere in view.")
        return
    config = fit_columns(rows, PROBLEM_PX, PROBLEM_TEXT, extra_px=layout.SELECT_PX)
    config["cause"]["help"] = "the failing check this one stands on"
    config["how to fix"]["help"] = "the report's fix hint"
    event = st.dataframe(rows, hide_index=True, width="stretch", key="ov_problems",
                         height=min(38 + 35 * len(rows), 420), on_select="rerun",
                         selection_mode="single-row", column_order=PROBLEM_COLUMNS,
                         column_config=config)
    row = selected_row(event, rows)
    if row is None:
        st.caption("Select a row for its full summary, cause and how to fix.")
    else:
        st.markdown(f"**{row['status']} {plain(row['check'])}** on {plain(row['target'])}")
        row_detail(row, ["summary", "cause", "how to fix", "acknowledged"])


def _changes(changes: Changes) -> None:
    st.subheader("What changed since yesterday")
    st.write(f"**{changes.new_problems}** new problems, **{changes.resolved}** resolved, "
             f"{changes.other} other changes, {changes.first_seen} checks seen for the "
             "first time.")
    if changes.rows:
        st.dataframe(changes.rows, hide_index=True, width="stretch",
                     height=min(38 + 35 * len(changes.rows), 420),
                     column_order=["at", "target", "check", "change", "reason"],
                     column_config=fit_columns(changes.rows, CHANGE_PX, {"reason": 1}))
    else:
        st.caption("No status changed in the last 24 hours.")
