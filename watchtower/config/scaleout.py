"""`[scaleout]`: probes run from several vantage points by agents, verdicts by quorum
(watchtower/scaleout, docs/scale-out.md).

Only `watchtower run --role scheduler` and `watchtower agent` read it; the single-process
`watchtower run` (the default) ignores it. The default is one vantage, `local`, with every
check placed there and a quorum of one: the verdict is that vantage's own.
"""

from __future__ import annotations

import fnmatch
import re

from pydantic import Field, field_validator, model_validator

from watchtower.config.base import Strict

#: A vantage's name becomes part of a queue name and a metric label: keep it plain.
VANTAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def _vantage_names(values: list[str]) -> list[str]:
    bad = [v for v in values if not VANTAGE_NAME.match(v)]
    if bad:
        raise ValueError(f"vantage names are 1-40 of a-z, 0-9, '_', '-': {', '.join(bad)}")
    if len(set(values)) != len(values):
        raise ValueError("a vantage is named twice")
    return values


class Placement(Strict):
    """Which vantages probe which (check, target) pairs, and how many must see a failure."""

    checks: list[str] = Field(
        default_factory=lambda: ["*"],
        description="check ids or globs this placement covers, e.g. "
                    '`["web.*", "web.tls.certificate"]`')
    targets: list[str] = Field(
        default_factory=lambda: ["*"],
        description='target names or globs it covers, e.g. `["*.example.org"]`')
    vantages: list[str] = Field(
        min_length=1, description='vantages that probe these pairs, e.g. `["fra", "ams", '
        '"nyc"]`; each one of `[scaleout] vantages`')
    fail_at: int | None = Field(
        default=None, ge=1, description="number of vantages whose result is a problem (fail "
        "or error) for the combined verdict to be one, e.g. 2 (2 of 3); fewer make it `warn` "
        "naming where it was seen; default: a majority of `vantages`")

    @field_validator("vantages")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return _vantage_names(value)

    @model_validator(mode="after")
    def _fail_at_fits(self) -> Placement:
        if self.fail_at is not None and self.fail_at > len(self.vantages):
            raise ValueError(f"fail_at = {self.fail_at} but only {len(self.vantages)} "
                             "vantages probe these pairs")
        return self

    def covers(self, check_id: str, target: str) -> bool:
        return (any(fnmatch.fnmatchcase(check_id, g) for g in self.checks)
                and any(fnmatch.fnmatchcase(target, g) for g in self.targets))

    def quorum(self) -> int:
        return self.fail_at or len(self.vantages) // 2 + 1


class ScaleoutSettings(Strict):
    """Agents in several networks (`watchtower agent --vantage NAME`) and the scheduler that
    feeds them (`watchtower run --role scheduler`); needs a PostgreSQL `[store] database`."""

    vantages: list[str] = Field(
        default_factory=lambda: ["local"],
        description='vantage points agents probe from, e.g. `["fra", "ams", "nyc"]`; an '
                    'agent names its own with `--vantage`')
    placement: list[Placement] = Field(
        default_factory=list,
        description="which vantages probe which checks and targets (first match wins); a "
                    "pair no placement covers is probed from every vantage with a majority "
                    "quorum")
    tick: int = Field(
        default=5, ge=1, le=60, description="seconds between the scheduler's ticks (each "
        "tick defers the groups that became due and judges finished ones), e.g. 5")
    chunk: int = Field(
        default=50, ge=1, le=10000, description="probe pairs per queued job; agents of one "
        "vantage share a sweep chunk by chunk, e.g. 50")
    lease: float = Field(
        default=30.0, ge=1, le=3600, description="seconds without a heartbeat after which an "
        "agent counts as dead and its claimed jobs return to its vantage's queue, e.g. 30")
    agent_concurrency: int = Field(
        default=2, ge=1, le=64, description="jobs one agent runs at once, e.g. 2")

    @field_validator("vantages")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one vantage")
        return _vantage_names(value)

    @model_validator(mode="after")
    def _placed_vantages_exist(self) -> ScaleoutSettings:
        for i, p in enumerate(self.placement):
            unknown = sorted(set(p.vantages) - set(self.vantages))
            if unknown:
                raise ValueError(f"placement[{i}] names vantages not in [scaleout] vantages: "
                                 f"{', '.join(unknown)}")
        return self

    def placement_for(self, check_id: str, target: str) -> Placement:
        """The first placement covering the pair, else every vantage with a majority."""
        for p in self.placement:
            if p.covers(check_id, target):
                return p
        return Placement(vantages=list(self.vantages))
