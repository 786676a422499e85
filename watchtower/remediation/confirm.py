"""Confirming a step by asking the host whether it took effect.

A detached NixOS switch returns before it is done, and a dropped SSH connection says nothing
about what happened on the host; either way the host's own state (for a switch: where
current_system points) is the only truth. So a step with `confirm_argv` is confirmed: that
command runs on the same host over a fresh connection every `interval` seconds until its output
holds `confirm_expect`, for at most `confirm_timeout` seconds. Every attempt is audited.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from watchtower.remediation.api import Step, StepOutcome

CONFIRM_INTERVAL = 1.0  # seconds between confirmation attempts
CONFIRM_ATTEMPT_TIMEOUT = 20.0  # one attempt's command, at most

#: (action, detail, ok): one audit row of the remediation being applied.
Audit = Callable[[str, str, bool], None]


def confirm(run_command: Callable[[str, list[str], float], StepOutcome], step: Step,
            label: str, audit: Audit, interval: float = CONFIRM_INTERVAL) -> StepOutcome:
    """Whether `step` took effect on its host, asked with `run_command` until it says so or
    the step's confirm_timeout has passed."""
    assert step.confirm_argv is not None and step.host is not None
    expect = step.confirm_expect or ""
    deadline = time.monotonic() + step.confirm_timeout
    attempt = 0
    while True:
        attempt += 1
        remaining = deadline - time.monotonic()
        try:
            got = run_command(step.host, step.confirm_argv,
                              max(1.0, min(CONFIRM_ATTEMPT_TIMEOUT, remaining)))
        except Exception as exc:  # the host may still be unreachable: try again
            got = StepOutcome.transport_failed(exc)
        confirmed = got.ok and expect in got.output
        audit(f"{label} confirm",
              f"attempt {attempt}: {' '.join(step.confirm_argv)} -> "
              f"{got.output.strip()[-500:] or '(no output)'}"
              f"{'' if confirmed else f' (waiting for {expect})'}", confirmed)
        if confirmed:
            return StepOutcome(True, f"confirmed after {attempt} attempt(s)")
        if time.monotonic() + interval > deadline:
            audit(f"{label} confirm-timeout",
                  f"{expect} not seen within {step.confirm_timeout:g}s", False)
            return StepOutcome(False, f"not confirmed within {step.confirm_timeout:g}s")
        time.sleep(interval)
