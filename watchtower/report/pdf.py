"""The printable report: a PDF drawn with fpdf2.

Why fpdf2: pure Python (its only dependencies are Pillow, fontTools and defusedxml, all wheels
from PyPI), so the appliance needs no system library, browser or TeX; it is actively maintained
and small. reportlab would also do, but is heavier and partly C. The built-in PDF fonts
(Helvetica) cover Latin-1 only, so text is folded to Latin-1 with readable replacements rather
than embedding a font file the appliance would have to ship.
"""

from __future__ import annotations

import unicodedata

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from watchtower.compliance.frameworks import PAS_TOE_OF_LEG_UIT
from watchtower.compliance.score import GROUP_TITLES, Tally
from watchtower.report.model import Report
from watchtower.report.render import (
    STATUS_LABELS,
    fmt_score,
    fmt_time,
    score_band,
    short_evidence,
)

NAVY = (26, 43, 76)
GREY = (95, 99, 104)
LIGHT = (241, 243, 244)
RULE = (218, 220, 224)
COLOURS = {"ok": (30, 125, 50), "warn": (178, 106, 0), "fail": (198, 40, 40),
           "error": (95, 99, 104)}
BACKGROUNDS = {"ok": (232, 245, 233), "warn": (255, 244, 229), "fail": (253, 236, 234),
               "error": (241, 243, 244)}
REPLACEMENTS = {"\u2026": "...", "\u2013": "-", "\u2014": "-", "\u2192": "->", "\u2190": "<-",
                "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2265": ">=",
                "\u2264": "<=", "\u00a0": " ", "\u2022": "-"}


def latin1(text: str) -> str:
    """Text the core PDF fonts can draw: common symbols replaced, accents kept, rest '?'."""
    out = []
    for ch in str(text):
        ch = REPLACEMENTS.get(ch, ch)
        try:
            ch.encode("latin-1")
            out.append(ch)
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", ch).encode("latin-1", "ignore").decode("latin-1")
            out.append(base or "?")
    return "".join(out)


def score_rgb(score: float | None) -> tuple[int, int, int]:
    return COLOURS[score_band(score)]


class ReportPdf(FPDF):
    """A4 pages with a running footer (report name, page x of y)."""

    def __init__(self, report: Report) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.report = report
        self.set_margins(16, 16, 16)
        self.set_auto_page_break(auto=True, margin=18)
        self.alias_nb_pages()
        self.set_title(latin1(report.title))
        self.set_author("watchtower")
        self.set_creation_date(report.generated_at)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", "", 8)
        self.set_text_color(*GREY)
        left = latin1(f"{self.report.title} - {self.report.name} - "
                      f"generated {fmt_time(self.report.generated_at)}")
        self.cell(0, 5, left, align="L")
        self.set_x(self.l_margin)
        self.cell(0, 5, f"page {self.page_no()} of {{nb}}", align="R")

    # -- building blocks ----------------------------------------------------------------------

    def text_line(self, text: str, size: float = 10, style: str = "", colour: tuple[int, int, int]
                  = (32, 33, 36), height: float = 5) -> None:
        self.set_font("Helvetica", style, size)
        self.set_text_color(*colour)
        self.multi_cell(0, height, latin1(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def heading(self, text: str) -> None:
        if self.get_y() > self.h - 40:
            self.add_page()
        self.ln(4)
        self.set_font("Helvetica", "B", 13)
        self.set_text_color(*NAVY)
        self.cell(0, 7, latin1(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(*NAVY)
        self.set_line_width(0.6)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(2)

    def badge(self, status: str) -> None:
        self.set_font("Helvetica", "B", 7.5)
        self.set_fill_color(*BACKGROUNDS[status])
        self.set_text_color(*COLOURS[status])
        self.cell(15, 4.6, STATUS_LABELS[status], align="C", fill=True)
        self.set_x(self.get_x() + 2)

    def bar(self, x: float, y: float, width: float, score: int | None) -> None:
        self.set_fill_color(*(232, 234, 237))
        self.rect(x, y, width, 2.6, style="F")
        if score:
            self.set_fill_color(*score_rgb(score))
            self.rect(x, y, width * score / 100, 2.6, style="F")


def _header(pdf: ReportPdf, report: Report) -> None:
    pdf.set_fill_color(*NAVY)
    pdf.rect(0, 0, pdf.w, 40, style="F")
    pdf.set_xy(16, 8)
    pdf.set_font("Helvetica", "", 8)
    pdf.set_text_color(170, 180, 200)
    pdf.cell(0, 4, "WATCHTOWER COMPLIANCE REPORT", align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "B", 18)
    pdf.set_text_color(255, 255, 255)
    pdf.cell(0, 10, latin1(report.title), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 9)
    pdf.set_text_color(208, 214, 226)
    pdf.cell(0, 5, latin1(f"Period {fmt_time(report.period.start)} to "
                          f"{fmt_time(report.period.end)}  -  report \"{report.name}\""),
             align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(*((208, 214, 226) if report.coverage.enough() else (255, 204, 128)))
    pdf.multi_cell(0, 4.5, latin1(report.coverage.line()), align="L",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(46)


def _overview(pdf: ReportPdf, report: Report) -> None:
    y = pdf.get_y()
    low = report.lowest
    pdf.set_font("Helvetica", "B", 34)
    pdf.set_text_color(*score_rgb(low.counts.score if low is not None else None))
    pdf.set_xy(16, y)
    pdf.cell(44, 16, fmt_score(report.score))
    pdf.set_xy(16, y + 16)
    pdf.set_font("Helvetica", "", 8)
    pdf.set_text_color(*GREY)
    pdf.cell(44, 4, "overall score")
    if low is not None:
        pdf.set_xy(16, y + 20)
        pdf.set_text_color(*score_rgb(low.counts.score))
        pdf.cell(44, 4, latin1(f"lowest: {low.name} {fmt_score(low.counts.score)}"))
    c = report.counts
    pdf.set_xy(64, y + 1)
    pdf.set_font("Helvetica", "", 10)
    pdf.set_text_color(32, 33, 36)
    pdf.multi_cell(
        0, 5, latin1(f"{report.scope_text}: {c.ok} pass, {c.warn} warn, {c.fail} fail"
                     + (f", {c.error} not judged" if c.error else "")
                     + (f", {c.explained} explained" if c.explained else "") + "."),
        align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_x(64)
    pdf.set_font("Helvetica", "", 8)
    pdf.set_text_color(*GREY)
    pdf.multi_cell(0, 4, "The latest verdict of each check: passed checks count fully, warnings "
                         "half, failures nothing. A check whose probe could not run is shown as "
                         "ERROR and is not judged. The colour follows the lowest domain.",
                   align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(pdf.get_y(), y + 26))


def _family_table(pdf: ReportPdf, groups: dict[str, Tally]) -> None:
    pdf.heading("Score per family")
    for group, c in groups.items():
        y = pdf.get_y()
        pdf.set_font("Helvetica", "B", 10)
        pdf.set_text_color(32, 33, 36)
        pdf.cell(38, 6, latin1(GROUP_TITLES.get(group, group)))
        pdf.set_text_color(*score_rgb(c.score))
        pdf.cell(18, 6, fmt_score(c.score) if c.score is not None else "")
        pdf.bar(pdf.get_x(), y + 1.8, 50, c.score)
        pdf.set_x(pdf.get_x() + 56)
        pdf.set_font("Helvetica", "", 9)
        pdf.set_text_color(*GREY)
        pdf.cell(0, 6, (f"{c.ok} pass  {c.warn} warn  {c.fail} fail"
                        + (f"  {c.error} not judged" if c.error else ""))
                 if c.judged else c.text(),
                 align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_draw_color(*RULE)
        pdf.set_line_width(0.2)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())


def _domain_table(pdf: ReportPdf, report: Report) -> None:
    pdf.heading("Domains and hosts")
    widths = (64.0, 18.0, *(16.0 for _ in range(6)))
    groups = ("mail", "dns", "web", "federation", "storage", "drift")
    pdf.set_font("Helvetica", "B", 8)
    pdf.set_fill_color(*LIGHT)
    pdf.set_text_color(32, 33, 36)
    for w, title in zip(widths, ("Domain / host", "Score", *(GROUP_TITLES[g].split(" ")[0]
                                                              for g in groups)), strict=True):
        pdf.cell(w, 6, title, fill=True, align="L" if title.startswith("Domain") else "C")
    pdf.ln(6)
    for s in report.sections:
        sg = s.groups
        pdf.set_font("Helvetica", "", 9)
        pdf.set_text_color(32, 33, 36)
        pdf.cell(widths[0], 6, latin1(s.name))
        pdf.set_font("Helvetica", "B", 9)
        pdf.set_text_color(*score_rgb(s.counts.score))
        pdf.cell(widths[1], 6, s.counts.text().split(" (")[0], align="C")
        pdf.set_font("Helvetica", "", 9)
        for w, g in zip(widths[2:], groups, strict=True):
            cell = sg.get(g)
            pdf.set_text_color(*(score_rgb(cell.score) if cell is not None else GREY))
            text = "-" if cell is None else cell.text().split(" (")[0]
            pdf.set_font("Helvetica", "", 9 if cell is None or cell.judged else 6.5)
            pdf.cell(w, 6, text, align="C")
        pdf.ln(6)
        pdf.set_draw_color(*RULE)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())


def _changes(pdf: ReportPdf, report: Report) -> None:
    ch = report.changes
    since = (f"the previous report ({fmt_time(ch.baseline_at)})" if ch.baseline == "report"
             else "the start of the period")
    pdf.heading(f"Changes since {since}")
    items = ([("fail", "New failure", c) for c in ch.new_failures]
             + [("warn", "New warning", c) for c in ch.new_warnings]
             + [("ok", "Fixed", c) for c in ch.fixed])
    if not items:
        pdf.text_line("No change.", 9, colour=GREY)
    for status, label, c in items:
        pdf.badge(status)
        pdf.set_font("Helvetica", "", 9)
        pdf.set_text_color(32, 33, 36)
        was = f" (was {c.old})" if c.old else ""
        pdf.multi_cell(0, 4.6, latin1(f"{label}: {c.check} on {c.target}{was}"),
                       align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(0.8)


def _findings(pdf: ReportPdf, report: Report) -> None:
    for s in report.sections:
        pdf.heading(f"{s.name}  -  score {s.counts.text()}")
        pdf.text_line("  ".join(f"{GROUP_TITLES.get(g, g)} {c.text()}"
                                for g, c in s.groups.items()), 8.5, colour=GREY)
        if not s.problems:
            pdf.text_line(f"All {len(s.lines)} checks pass.", 9, colour=COLOURS["ok"])
        for x in s.problems:
            if pdf.get_y() > pdf.h - 45:
                pdf.add_page()
            pdf.ln(1.5)
            status = str(x.status)
            pdf.badge(status)
            pdf.set_font("Helvetica", "B", 9.5)
            pdf.set_text_color(32, 33, 36)
            pdf.multi_cell(0, 4.6, latin1(x.title), align="L", new_x=XPos.LMARGIN,
                           new_y=YPos.NEXT)
            pdf.text_line(f"{x.check} on {x.target}", 8, colour=GREY, height=4)
            pdf.text_line(x.summary, 9, height=4.4)
            if x.explanation is not None:
                pdf.text_line(f"Comply or explain: {x.explanation.text} (not scored)", 8, "B",
                              (106, 27, 154), 4)
            if x.standards:
                pdf.text_line("Standard: " + "; ".join(x.standards), 8, colour=(60, 64, 67),
                              height=4)
            if status != "error":
                pdf.text_line("How to fix: " + x.hint, 8, "", NAVY, 4)
            else:
                pdf.text_line("The probe could not run, so this is not judged: not a "
                              "compliance failure.", 8, colour=GREY, height=4)
            pdf.set_font("Courier", "", 6.5)
            pdf.set_text_color(*GREY)
            pdf.set_fill_color(248, 249, 250)
            pdf.multi_cell(0, 3.2, latin1("evidence: " + short_evidence(x.evidence, 400)),
                           fill=True, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.set_draw_color(*RULE)
            pdf.line(pdf.l_margin, pdf.get_y() + 1, pdf.w - pdf.r_margin, pdf.get_y() + 1)
            pdf.ln(1.5)


def _frameworks(pdf: ReportPdf, report: Report) -> None:
    """Per domain: internet.nl web and mail (tests not passed, with their ids; the count of
    passed ones) and "pas toe of leg uit" (every standard)."""
    for s in report.sections:
        if not s.frameworks:
            continue
        pdf.heading(f"{s.name}  -  internet.nl and {PAS_TOE_OF_LEG_UIT}")
        for name, tests in s.frameworks.items():
            passed = sum(1 for t in tests if str(t.status) == "passed")
            pdf.text_line(f"{name}: {passed} of {len(tests)} tests passed", 9.5, "B")
            for t in tests:
                if str(t.status) != "passed":
                    detail = f" - {t.detail}" if t.detail else ""
                    pdf.text_line(f"{t.status}  {t.test.id}: {t.test.title}{detail}"[:400], 8,
                                  colour=GREY, height=4)
        pdf.text_line(PAS_TOE_OF_LEG_UIT, 9.5, "B")
        pdf.text_line("  ".join(f"{st.standard}: {st.status}" for st in s.standards), 8,
                      height=4)


def _availability(pdf: ReportPdf, report: Report) -> None:
    pdf.heading("Availability and compliance over the period")
    pdf.text_line("Availability: probes of the health and reachability checks that got an "
                  "answer (DNS, SMTP greeting, TLS handshake, health endpoint), per check. "
                  "Compliance: every probe of every check, scored as the score is. "
                  f"{report.coverage.line()}.", 8,
                  colour=GREY, height=4)
    widths = (58, 30, 58, 22, 14)
    pdf.set_font("Helvetica", "B", 8)
    pdf.set_fill_color(*LIGHT)
    pdf.set_text_color(32, 33, 36)
    for w, t in zip(widths, ("Name", "Seen as", "Availability", "Compliance", "Probes"),
                    strict=True):
        pdf.cell(w, 6, t, fill=True, align="R" if t in ("Compliance", "Probes") else "L")
    pdf.ln(6)
    for row in report.rows:
        if pdf.get_y() > pdf.h - 30:
            pdf.add_page()
        y = pdf.get_y()
        pdf.set_font("Helvetica", "", 8)
        pdf.set_text_color(32, 33, 36)
        pdf.multi_cell(widths[0], 4, latin1(row.name), align="L")
        bottom = pdf.get_y()
        pdf.set_xy(pdf.l_margin + widths[0], y)
        pdf.set_text_color(*GREY)
        pdf.multi_cell(widths[1], 4, latin1(row.kinds_text), align="L")
        bottom = max(bottom, pdf.get_y())
        pdf.set_xy(pdf.l_margin + sum(widths[:2]), y)
        pdf.set_text_color(*score_rgb(row.availability(report.coverage)))
        pdf.multi_cell(widths[2], 4, latin1(row.availability_text(report.coverage)), align="L")
        bottom = max(bottom, pdf.get_y())
        pdf.set_xy(pdf.l_margin + sum(widths[:3]), y)
        pdf.set_font("Helvetica", "B", 8)
        pdf.set_text_color(*score_rgb(row.compliance_percent))
        pdf.cell(widths[3], 4, latin1(row.compliance_text()), align="R")
        pdf.set_font("Helvetica", "", 8)
        pdf.set_text_color(32, 33, 36)
        pdf.cell(widths[4], 4, str(row.probes.total), align="R")
        pdf.set_y(bottom + 1)
        pdf.set_draw_color(*RULE)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())


def _drift_and_remediations(pdf: ReportPdf, report: Report) -> None:
    pdf.heading("Drift and advisories")
    if not report.drift and not report.advisories:
        pdf.text_line("No host or version drift checks in scope.", 9, colour=GREY)
    for x in report.drift:
        pdf.badge(str(x.status))
        pdf.set_font("Helvetica", "", 9)
        pdf.set_text_color(32, 33, 36)
        pdf.multi_cell(0, 4.6, latin1(f"{x.check} on {x.target}: {x.summary}"),
                       align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for a in report.advisories:
        extra = " (whitelisted)" if a.whitelisted else ""
        pdf.text_line(f"{a.severity}: {a.id} in {a.package} on {a.target}{extra}", 9)
    pdf.heading("Remediations in the period")
    if not report.remediations:
        pdf.text_line("None.", 9, colour=GREY)
    for m in report.remediations:
        detail = m.outcome or m.summary
        pdf.text_line(f"#{m.id} {m.remediation} on {m.target}: {m.state} - {detail}", 9)


def render_pdf(report: Report) -> bytes:
    """The report as PDF bytes: overview on page 1, then findings, availability, drift,
    remediations."""
    pdf = ReportPdf(report)
    pdf.add_page()
    _header(pdf, report)
    _overview(pdf, report)
    _family_table(pdf, report.groups)
    _domain_table(pdf, report)
    _changes(pdf, report)
    _findings(pdf, report)
    _frameworks(pdf, report)
    _availability(pdf, report)
    _drift_and_remediations(pdf, report)
    return bytes(pdf.output())
