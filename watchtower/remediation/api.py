"""What a remediation author needs, like watchtower/probe/api.py is for checks.

A remediation (remediations/, or a package in the `watchtower.remediations` entry-point group)
subclasses `Remediation`, declares a `RemediationMeta`, and turns a failing check's state into a
`Plan` of concrete `Step`s (argv lists on a fleet host, HTTP API calls, or in-process actions
registered here with `register_action`) or a `NoAction` saying why nothing needs doing. It
reaches hosts and APIs only through the `RemediationContext` it is handed. It never applies
anything itself: the engine (engine.py) stores, signs, admits, runs, verifies and undoes plans,
and reports a round of planning as `Proposals`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

from watchtower.config import Fleet, Host
from watchtower.model import Status, Target
from watchtower.net.transport import Transport
from watchtower.probe.clients import DnsApis, open_host
from watchtower.store import RemediationRow, StateRow, Store

#: How many characters of a command's output an outcome keeps (its tail), and of an audit row's
#: detail (its head).
OUTPUT_CAP = 4000


@dataclass(frozen=True, slots=True)
class RemediationMeta:
    """A remediation's declaration: its id (policies name it), a title, the checks whose
    failure it fixes, how long the host settles after the steps before the checks run again
    (`[remediation] settle_seconds` overrides it), how often an hour it may run on a host,
    and how long after a change it leaves the same target alone (limits.py)."""

    id: str
    title: str
    triggers: tuple[str, ...]
    settle_seconds: float = 5.0
    max_per_hour: int = 3
    cooldown_seconds: float = 600.0


@dataclass
class Step:
    """One concrete action: a command on a fleet host (argv list), an HTTP API call, or a named
    in-process action (`action`, registered with `register_action`, arguments in `body`: a
    change that needs a library, like a commit to a DNS repository or an octoDNS sync)."""

    description: str
    kind: Literal["command", "http", "action"]
    host: str | None = None
    argv: list[str] | None = None
    method: str | None = None
    url: str | None = None
    body: Any = None
    secret: str | None = None  # name of the config entry whose Secret authenticates the call
    timeout: float = 120.0
    # A step whose effect completes after it returns (a detached switch), or whose connection
    # may drop mid-way, is *confirmed*: `confirm_argv` runs on the same host through a fresh
    # connection every second until its stdout contains `confirm_expect`, for at most
    # `confirm_timeout` seconds. Only the host's own state decides the step's outcome.
    confirm_argv: list[str] | None = None
    confirm_expect: str | None = None
    confirm_timeout: float = 300.0
    action: str | None = None

    def render(self) -> str:
        if self.kind == "command":
            return f"[{self.host}] " + " ".join(_show_arg(a) for a in self.argv or [])
        if self.kind == "action":
            return f"{self.action} {json.dumps(self.body, sort_keys=True)}"
        return f"{self.method} {self.url}" + (f" {json.dumps(self.body)}" if self.body else "")


def _show_arg(arg: str) -> str:
    return arg if arg and all(c.isalnum() or c in "-_./:=@+," for c in arg) else repr(arg)


@dataclass
class Plan:
    remediation: str
    target: str
    host: str
    summary: str
    diff: str
    steps: list[Step]
    undo: list[Step]
    verify: list[str]
    guard: str | None = None  # why it must not run unless forced (e.g. a migration boundary)
    data: dict[str, Any] = field(default_factory=dict)
    # The change takes effect when someone else acts (an operator merges and syncs a commit):
    # `applied` once the steps succeed, `verified` when the checks pass later; never undone
    # automatically for checks that fail before then (`Remediator.verify_pending`).
    verify_later: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        raw = json.loads(text)
        raw["steps"] = [Step(**s) for s in raw["steps"]]
        raw["undo"] = [Step(**s) for s in raw["undo"]]
        return cls(**raw)


@dataclass(frozen=True, slots=True)
class NoAction:
    reason: str


@dataclass(frozen=True, slots=True)
class NotPlanned:
    """A failing check a remediation could fix, and why no plan was made for it this time
    (the remediation's own NoAction reason, or the engine's: policy, an open plan, limits)."""

    remediation: str
    check_id: str
    target: str
    reason: str

    def text(self) -> str:
        return (f"{self.remediation} could fix {self.check_id} on {self.target}, but "
                f"{self.reason}")


@dataclass
class Proposals:
    """What one round of planning did: the plans stored, the fixes not planned (with why),
    and the failing checks no remediation is triggered by."""

    created: list[RemediationRow] = field(default_factory=list)
    not_planned: list[NotPlanned] = field(default_factory=list)
    unfixable: list[StateRow] = field(default_factory=list)


@dataclass(slots=True)
class StepOutcome:
    """What a step did. `unknown`: the transport failed (SSH dropped), so whether the command
    took effect on the host cannot be told from here — a confirmation must find out."""

    ok: bool
    output: str
    unknown: bool = False

    @classmethod
    def transport_failed(cls, exc: Exception) -> StepOutcome:
        """The way to the host or API failed (`exc`): the step's effect is unknown."""
        return cls(False, f"transport failed: {type(exc).__name__}: {exc}", unknown=True)


#: In-process actions by name: (body, timeout) -> outcome. Only watchtower's own code registers
#: them, and a plan names one by string, so a stored plan can never name arbitrary code.
ACTIONS: dict[str, Callable[[Any, float], StepOutcome]] = {}


def register_action(name: str) -> Callable[[Callable[[Any, float], StepOutcome]],
                                           Callable[[Any, float], StepOutcome]]:
    def add(func: Callable[[Any, float], StepOutcome]) -> Callable[[Any, float], StepOutcome]:
        ACTIONS[name] = func
        return func

    return add


def run_action(step: Step) -> StepOutcome:
    func = ACTIONS.get(step.action or "")
    if func is None:
        return StepOutcome(False, f"no action named {step.action!r}")
    return func(step.body, step.timeout)


class Remediation:
    """Base of every remediation: match failing checks, make a Plan; steps run by the engine."""

    meta: ClassVar[RemediationMeta]

    @classmethod
    def triggers(cls, fleet: Fleet) -> tuple[str, ...]:
        """The checks whose failure this remediation can fix: the one source of the links
        between checks and fixes (reports, the dashboard and `watchtower checks` read it
        through the registry). By default the declared `meta.triggers`; a remediation whose
        reach depends on the fleet file (DNS templates) adds to them."""
        return cls.meta.triggers

    def plan(self, state: StateRow, ctx: RemediationContext) -> Plan | NoAction:
        raise NotImplementedError

    def observe(self, ctx: RemediationContext) -> None:
        """Learn from the latest sweep before planning (e.g. which generations were good)."""


@dataclass
class RemediationContext:
    """What plans and steps may use: the fleet, the store, and how to reach hosts and APIs."""

    fleet: Fleet
    store: Store
    run_command: Callable[[str, list[str], float], StepOutcome]
    call_http: Callable[[Step], StepOutcome]
    verify: Callable[[Target, list[str]], list[Status]]
    run_action: Callable[[Step], StepOutcome] = run_action

    def target(self, name: str) -> Target | None:
        return next((t for t in self.fleet.targets() if t.name == name), None)

    def open_host(self, host: Host) -> AbstractContextManager[Transport]:
        """A transport to a `[[hosts]]` entry for reading facts while planning (the probe's
        mapping from config, watchtower/probe/clients.py)."""
        return open_host(host)

    def dns_apis(self) -> DnsApis:
        """The fleet's DNS APIs as it is now (a reloaded fleet file counts at once)."""
        return DnsApis(self.fleet.dns_apis, self.fleet.probe.dns_api_timeout)
