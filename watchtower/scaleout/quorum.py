"""The combined verdict of one (check, target) seen from several vantages: a pure function of
what each vantage reported, with no clock and no I/O (like a check's `judge`).

The rule (docs/scale-out.md):
- `fail_at` or more vantages report a problem (fail or error): the combined verdict is that
  problem (`fail` when any of them failed, else `error`), naming where it was seen;
- fewer vantages report a problem: `warn`, naming them (a partial outage: often routing or a
  regional resolver);
- a vantage that did not report is never counted as `ok`: with too few reports to reach the
  quorum either way the verdict is `error`; otherwise a missing vantage makes the verdict at
  least `warn`, naming it;
- otherwise the worst reported status (`ok`, or `warn` naming where).
With one vantage and a quorum of one the verdict is that vantage's, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from watchtower.model import Finding, Status


@dataclass(frozen=True, slots=True)
class Seen:
    """One vantage's result for the pair."""

    status: Status
    summary: str


@dataclass(frozen=True, slots=True)
class Combined:
    status: Status
    summary: str
    #: vantages whose result was a problem, and those that did not report (sorted)
    problems: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    findings: list[Finding] = field(default_factory=list)


def combine(expected: Sequence[str], seen: Mapping[str, Seen], fail_at: int) -> Combined:
    """The quorum verdict over `expected` vantages given what each of them reported in `seen`
    (a vantage in `seen` but not expected is ignored)."""
    got = {v: s for v, s in seen.items() if v in expected}
    problems = tuple(sorted(v for v, s in got.items() if s.status.is_problem))
    missing = tuple(sorted(set(expected) - set(got)))
    of = f"{{}} of {len(expected)}"

    def where(names: Sequence[str]) -> str:
        return f"{', '.join(names)} ({of.format(len(names))})"

    if len(expected) == 1 and not missing and fail_at == 1:
        only = got[expected[0]]
        return Combined(only.status, only.summary, problems, missing,
                        [Finding(only.status, only.summary)])
    if len(problems) >= fail_at:
        status = Status.worst([got[v].status for v in problems])
        first = got[problems[0]].summary
        return _verdict(status, f"seen from {where(problems)}: {first}", problems, missing)
    if len(got) < fail_at:
        return _verdict(Status.ERROR, f"too few vantages reported ({of.format(len(got))}; the "
                        f"quorum needs {fail_at}); no result from {', '.join(missing)}",
                        problems, missing)
    if problems:
        first = got[problems[0]].summary
        return _verdict(Status.WARN, f"only from {where(problems)}, below the quorum of "
                        f"{fail_at}: {first}", problems, missing)
    if missing:
        return _verdict(Status.WARN, f"no result from {where(missing)}", problems, missing)
    warned = tuple(sorted(v for v, s in got.items() if s.status is Status.WARN))
    if warned:
        return _verdict(Status.WARN, f"warn from {where(warned)}: {got[warned[0]].summary}",
                        problems, missing)
    return _verdict(Status.OK, f"ok from all {len(expected)} vantages: "
                    f"{got[expected[0]].summary}", problems, missing)


def _verdict(status: Status, summary: str, problems: tuple[str, ...],
             missing: tuple[str, ...]) -> Combined:
    findings = [Finding(status, summary)]
    if missing and status is not Status.ERROR:
        findings.append(Finding(Status.WARN, f"no result from {', '.join(missing)}"))
    return Combined(status, summary, problems, missing, findings)
