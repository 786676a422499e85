"""`watchtower check` at a terminal (watchtower/cli/terminal.py): the progress line, colour, the
problem summary; a clock is injected, so nothing here depends on how fast the machine is."""

from __future__ import annotations

import datetime as dt
import io

from watchtower.cli import terminal
from watchtower.model import Result, Status, Target, TargetKind


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def result(check: str, target: str, status: Status) -> Result:
    return Result(check, check.split(".")[0], Target(TargetKind.ZONE, target), status, "s", {},
                  1.0, dt.datetime(2026, 12, 1, tzinfo=dt.UTC))


def test_progress_line_counts_rate_remaining_and_problems() -> None:
    now = [100.0]
    p = terminal.Progress(200, Tty(), enabled=True, clock=lambda: now[0])
    for i in range(50):
        p(result("dns.ns.count", f"d{i}.test", Status.FAIL if i < 3 else Status.OK))
    assert p.line(110.0) == "50/200 probes · 5/s · about 30 s left · 3 fail or error so far"
    assert p.line(101.0).startswith("50/200 probes · 50/s · about 3 s left")
    p.done = 2  # the first results say nothing about the rest
    assert p.line(101.0) == "2/200 probes · 2/s · 3 fail or error so far"


def test_progress_redraws_in_place_and_erases_itself() -> None:
    out = Tty()
    p = terminal.Progress(10, out, enabled=True, clock=lambda: 1.0)
    p.tick()
    p(result("dns.ns.count", "a.test", Status.OK))
    p.tick()
    p.close()
    text = out.getvalue()
    assert text.startswith("\r0/10 probes")
    assert "\r1/10 probes" in text
    assert text.endswith("\r")  # blanked: the table starts on a clean line
    assert text.split("\r")[-2].strip() == ""


def test_disabled_progress_writes_nothing() -> None:
    out = Tty()
    p = terminal.Progress(10, out, enabled=False).start()
    p(result("dns.ns.count", "a.test", Status.OK))
    p.close()
    assert out.getvalue() == ""


def test_colour_only_on_a_terminal_without_no_color() -> None:
    assert terminal.colour_wanted(Tty(), {})
    assert not terminal.colour_wanted(Tty(), {"NO_COLOR": "1"})
    assert not terminal.colour_wanted(Tty(), {"TERM": "dumb"})
    assert not terminal.colour_wanted(io.StringIO(), {})  # a pipe or a file
    assert terminal.colour_wanted(Tty(), {"NO_COLOR": ""})  # set but empty: no-color.org
    assert terminal.paint("fail", Status.FAIL, True) == "\x1b[31mfail\x1b[0m"
    assert terminal.paint("fail", Status.FAIL, False) == "fail"


def test_problem_summary_groups_by_check_worst_and_widest_first() -> None:
    results = [result("web.hsts", f"s{i}.test", Status.FAIL) for i in range(6)]
    results += [result("dns.ns.count", "b.test", Status.FAIL),
                result("fedi.actor", "s1.test", Status.ERROR),
                result("dns.caa", "a.test", Status.OK), result("dns.caa", "c.test", Status.WARN)]
    assert terminal.problem_summary(results, colour=False) == [
        "Problems: 7 fail, 1 error",
        "  fail   web.hsts      s0.test, s1.test, s2.test, s3.test and 2 more",
        "  fail   dns.ns.count  b.test",
        "  error  fedi.actor    s1.test",
    ]
    assert terminal.problem_summary(results[-2:], colour=False) == []
