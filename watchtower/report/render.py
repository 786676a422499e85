"""Rendering a Report as HTML e-mail, plain text and JSON (the PDF lives in report/pdf.py).

The HTML is made for mail clients, which ignore <style> blocks and scripts more often than not:
tables for layout, every style inline, no external resources, no JavaScript. Templates are
Jinja2 with autoescaping, so a summary or evidence string from a probed server can never inject
markup into a customer's mail.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from watchtower.compliance.frameworks import PAS_TOE_OF_LEG_UIT
from watchtower.compliance.score import GROUP_TITLES
from watchtower.model import Status
from watchtower.report.model import Report
from watchtower.report.over_time import fmt_percent, span_text

STATUS_COLOURS = {"ok": "#1e7d32", "warn": "#b26a00", "fail": "#c62828", "error": "#5f6368"}
STATUS_BACKGROUNDS = {"ok": "#e8f5e9", "warn": "#fff4e5", "fail": "#fdecea", "error": "#f1f3f4"}
STATUS_LABELS = {"ok": "PASS", "warn": "WARN", "fail": "FAIL", "error": "ERROR"}
#: internet.nl's test statuses as the framework sections show them.
TEST_COLOURS = {"passed": "#1e7d32", "info": "#1a73e8", "warning": "#b26a00",
                "failed": "#c62828", "not_tested": "#5f6368", "error": "#5f6368",
                "explained": "#6a1b9a"}
EVIDENCE_CHARS = 600


def score_band(score: float | None) -> str:
    """The status a score's colour shows: ok from 90, warn from 70, else fail; error when
    there is no score. The one rule of every renderer (HTML, text, PDF)."""
    if score is None:
        return "error"
    return "ok" if score >= 90 else "warn" if score >= 70 else "fail"


def score_colour(score: float | None) -> str:
    return STATUS_COLOURS[score_band(score)]


def headline_colour(report: Report) -> str:
    """The headline follows the worst section, not the mean."""
    low = report.lowest
    return score_colour(low.counts.score if low is not None else None)


def short_evidence(evidence: dict[str, Any], limit: int = EVIDENCE_CHARS) -> str:
    """Compact JSON of the evidence, cut at `limit` characters (the attachment has it all)."""
    text = json.dumps(evidence, sort_keys=True, separators=(", ", ": "), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def fmt_time(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def fmt_date(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d")


def fmt_score(score: int | None) -> str:
    return "n/a" if score is None else f"{score}%"


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("watchtower.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"),
                                     default_for_string=False),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(evidence=short_evidence, time=fmt_time, date=fmt_date,
                       score=fmt_score, percent=fmt_percent, span=span_text,
                       title_of=lambda group: GROUP_TITLES.get(group, group))
    env.globals.update(colours=STATUS_COLOURS, backgrounds=STATUS_BACKGROUNDS,
                       labels=STATUS_LABELS, group_titles=GROUP_TITLES,
                       test_colours=TEST_COLOURS, pas_toe=PAS_TOE_OF_LEG_UIT,
                       score_colour=score_colour, headline_colour=headline_colour,
                       Status=Status)
    return env


_ENV: Environment | None = None


def env() -> Environment:
    global _ENV
    if _ENV is None:
        _ENV = _env()
    return _ENV


def render_html(report: Report) -> str:
    return env().get_template("report.html.j2").render(r=report)


def render_text(report: Report) -> str:
    return env().get_template("report.txt.j2").render(r=report)


def render_json(report: Report) -> str:
    """The evidence attachment: the documented schema (docs/report-schema.md), stable keys."""
    return json.dumps(report.to_json(), indent=2, sort_keys=False, default=str) + "\n"


def subject(report: Report) -> str:
    return (f"{report.title}: score {fmt_score(report.score)} "
            f"({fmt_date(report.period.start)} to {fmt_date(report.period.end)})")
