"""The real way out of the remediation engine: the context `watchtower run` and `watchtower
remediate` hand to plans and steps.

Commands run over the hosts' transports (`@local`: the appliance itself), API calls carry the
configured DNS API's key read at the moment of use, and verification re-runs the checks on the
target as a sweep of kind `verify` (its results are stored like any other). Tests and the
dashboard build a `RemediationContext` of their own instead (the dashboard's cannot touch a
host at all).
"""

from __future__ import annotations

from watchtower.config import Fleet
from watchtower.model import Status, Target
from watchtower.net import powerdns
from watchtower.net.transport import LocalTransport
from watchtower.probe import registry
from watchtower.remediation.api import OUTPUT_CAP, RemediationContext, Step, StepOutcome
from watchtower.store import Store


def default_context(fleet: Fleet, store: Store) -> RemediationContext:
    """The real way out: commands over the hosts' transports, API calls with the configured
    keys, verification by re-running the checks on the target (results are stored). Each call
    reads `ctx.fleet`, so a reloaded fleet file takes effect at once."""
    from watchtower.probe.sweep import run_sweep

    def run_command(host_name: str, argv: list[str], timeout: float) -> StepOutcome:
        if host_name == "@local":  # runs on the appliance itself (nixos-rebuild --target-host)
            result = LocalTransport().run(argv, timeout)
            return StepOutcome(result.ok, (result.stdout + result.stderr)[-OUTPUT_CAP:])
        host = next((h for h in ctx.fleet.hosts if h.name == host_name), None)
        if host is None:
            return StepOutcome(False, f"no [[hosts]] entry named {host_name!r}")
        with ctx.open_host(host) as transport:
            result = transport.run(argv, timeout)
        output = (result.stdout + result.stderr)[-OUTPUT_CAP:]
        if host.ssh and result.rc < 0:
            # The ssh client itself was killed: the remote command may or may not have run.
            return StepOutcome(False, f"ssh client killed by signal {-result.rc}\n{output}",
                               unknown=True)
        return StepOutcome(result.ok, output)

    def call_http(step: Step) -> StepOutcome:
        api = ctx.dns_apis().named(step.secret)
        assert step.method is not None and step.url is not None
        answer = powerdns.request(step.method, step.url, body=step.body,
                                  api_key=api.endpoint.api_key if api is not None else None,
                                  timeout=step.timeout)
        return StepOutcome(answer.ok, f"HTTP {answer.status} {answer.text}")

    def verify(target: Target, check_ids: list[str]) -> list[Status]:
        checks = {cid: c for cid, c in registry.checks().items() if cid in check_ids}
        # One name may be a zone, a mail domain and more (alpha.test is both in the lab): the
        # checks run on each target of that name they apply to, not only on the first found.
        named = [t for t in ctx.fleet.targets() if t.name == target.name] or [target]
        outcome = run_sweep(ctx.fleet, store, checks, targets=named, schedule="verify",
                            kind="verify")
        # The sweep also runs what the checks stand on; a blocking prerequisite makes them
        # `error`, so their own statuses are the verdict.
        return [r.status for cid in check_ids for r in outcome.of(cid)]

    ctx = RemediationContext(fleet, store, run_command, call_http, verify)
    return ctx
