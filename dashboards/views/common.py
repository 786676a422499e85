"""Small helpers the page scripts share: cached reads, navigation requests, time display."""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

from watchtower.probe import registry

from .. import layout
from ..context import AppContext
from ..data import StateGroup, load_state_groups

GOTO_KEY = "wt_goto"
TARGET_KEY = "wt_target"
CACHE_SECONDS = 10  # reads may be this stale; the sweep interval is minutes
# Column widths (px) of the tables of status changes (Overview, Target) and of audit trails
# (Remediations); `fit_columns` uses the ones a table has, its text columns take the rest.
CHANGE_PX = {"at": 96, "target": 170, "check": 190, "change": 150}
VANTAGE_PX = {"vantage": 120, "status": 80}
AUDIT_PX = {"at": 96, "actor": 110, "user": 100, "via": 80, "role": 80, "action": 130,
            "subject": 180, "ok": 40}


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False, max_entries=4)
def state_groups(_app: AppContext, fleet_path: str) -> list[StateGroup]:
    """The grouped state table, shared by the sessions for a few seconds."""
    return load_state_groups(_app.store)


def goto(page: str, **state: Any) -> None:
    """Ask the app to switch to `page` on the next run (widgets cannot be set after render)."""
    st.session_state[GOTO_KEY] = page
    for key, value in state.items():
        st.session_state[key] = value
    st.rerun()


_MARKDOWN_SPECIALS = "\\`*_{}[]()<>#+-.!|~$:@"


def plain(text: object) -> str:
    """Text from probed servers or people, made inert for Streamlit's markdown.

    Summaries quote what remote servers said; unescaped, `![x](https://…)` would make every
    operator's browser fetch a URL of the remote's choosing, and `[x](…)` would be a live link
    under words of the remote's choosing. `:` and `@` are escaped too: GFM's autolink literal
    (`https://…`, `www.…`, `a@b.test`) is recognised before escapes are read and kept every
    backslash after it on screen (`https://video\\.bravo\\.test`); escaped, the text shows as
    sent, and a bare address may still become a link whose text is the address itself.
    """
    return "".join(f"\\{c}" if c in _MARKDOWN_SPECIALS else c for c in str(text))


def ago(at: dt.datetime | None, now: dt.datetime | None = None) -> str:
    if at is None:
        return "never"
    now = now or dt.datetime.now(dt.UTC)
    seconds = int((now - at).total_seconds())
    if seconds < 90:
        return f"{max(seconds, 0)} s ago"
    if seconds < 5400:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


@st.cache_resource(show_spinner=False)
def check_meta() -> dict[str, Any]:
    """Registered checks' metadata (title, standards, remediation) by id."""
    return {cid: c.meta for cid, c in registry.checks().items()}


def text_columns(widths: dict[str, int], **help_: str) -> dict[str, Any]:
    """Column configs of text columns at `widths` (px, from layout.share_px), with a header
    tooltip for each name in `help_` (keys with spaces as `how_to_fix`)."""
    helps = {k.replace("_", " "): v for k, v in help_.items()}
    return {name: st.column_config.TextColumn(name, width=px, help=helps.get(name))
            for name, px in widths.items()}


def fit_columns(rows: list[dict[str, Any]], fixed: dict[str, int], text: dict[str, int],
                *, extra_px: int = 0) -> dict[str, Any]:
    """Column configs that keep a table of `rows` within the screen whatever its content: the
    columns of `fixed` (px) and `text` (weights sharing the rest, layout.share_px) that the
    rows have, each by the type of its first value (times as `MMM D, HH:mm`)."""
    names = set(rows[0]) if rows else set()
    widths = layout.share_px({k: v for k, v in fixed.items() if k in names},
                             {k: v for k, v in text.items() if k in names}, extra_px=extra_px)
    config: dict[str, Any] = {}
    for name, px in widths.items():
        value = rows[0][name]
        if isinstance(value, dt.datetime):
            config[name] = st.column_config.DatetimeColumn(name, format="MMM D, HH:mm", width=px)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            config[name] = st.column_config.NumberColumn(name, width=px)
        else:
            config[name] = st.column_config.TextColumn(name, width=px)
    return config


def selected_row(event: Any, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The row a single-row selection picked, or None."""
    chosen = event.selection.rows if event is not None else []
    return rows[chosen[0]] if chosen and chosen[0] < len(rows) else None


def row_detail(row: dict[str, Any], fields: list[str]) -> None:
    """A selected row's `fields` in full, beneath its table: a column cuts long text at its
    edge so the table fits the screen, and this is where the rest of it is read."""
    with st.container(border=True):
        for name in fields:
            if row.get(name):
                st.markdown(f"**{name.capitalize()}:** {plain(row[name])}")
