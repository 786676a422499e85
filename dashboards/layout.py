"""Page geometry: the dashboard stays usable on a 1366x768 laptop screen, its narrowest target.

Streamlit's wide layout keeps 5 rem of padding on each side and a 300 px sidebar, which left
about 900 px for tables: the Overview's last families and its tags were off-screen. The sidebar
holds a short page list, so it is narrowed; the padding is trimmed; and a table whose columns
are one per family shares what is left between them (`column_px`) instead of fixed widths; a
table with long text gives its text columns what the others leave (`share_px`).
"""

from __future__ import annotations

from collections.abc import Mapping

NARROWEST_SCREEN_PX = 1366
SIDEBAR_PX = 224
PADDING_REM = 1.5
MAIN_PX = NARROWEST_SCREEN_PX - SIDEBAR_PX - 2 * 24 - 16  # the padding and a scroll bar
SELECT_PX = 40  # the row-selection column of a selectable table

CSS = f"""<style>
.block-container, [data-testid='stMainBlockContainer'] {{
  padding-top: 2.2rem; padding-left: {PADDING_REM}rem; padding-right: {PADDING_REM}rem;
}}
section[data-testid='stSidebar'] {{ width: {SIDEBAR_PX}px !important;
  min-width: {SIDEBAR_PX}px !important; }}
</style>"""


def column_px(columns: int, fixed_px: int, *, low: int = 56, high: int = 96) -> int:
    """The width of each of `columns` equal columns beside `fixed_px` of others, so the
    table fits MAIN_PX when it can (never narrower than `low`, never wider than `high`)."""
    share = (MAIN_PX - fixed_px) // max(columns, 1)
    return max(low, min(high, share))


def share_px(fixed: Mapping[str, int], weights: Mapping[str, int], *, extra_px: int = 0,
             low: int = 80) -> dict[str, int]:
    """Every column's width: the `fixed` ones as given, and what they (and `extra_px`, e.g.
    SELECT_PX) leave of MAIN_PX shared among the text columns by `weights` (never under
    `low`). Long text is cut at its column's edge instead of pushing the table wider than the
    screen; the page shows the full text of a selected row beneath it."""
    left = MAIN_PX - extra_px - sum(fixed.values())
    total = max(sum(weights.values()), 1)
    return {**fixed, **{name: max(low, left * w // total) for name, w in weights.items()}}
