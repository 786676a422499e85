"""dns.records on zones kept as code by octoDNS: the fix is a change to the zone's YAML.

On an octoDNS-managed zone a PATCH to the DNS API is reverted by the next `octodns-sync`, so
the plan is a commit to the operator's repository instead, shown as a unified diff of the zone
file (ruamel.yaml round-trip: comments and key order kept). Two modes (`octodns.mode`):
- `commit`: one commit on the review branch (`octodns.branch`), the checkout untouched. The
  plan is `applied` when the commit exists; it becomes `verified` when the checks pass, after
  the operator merged and synced it (`Remediator.verify_pending`); never undone by itself.
- `sync`: a commit on the checked-out branch, then octoDNS sync of this zone to its target
  only (safety thresholds kept, never forced); verified at once like any fix.
Undo is a revert commit of exactly that commit (found by its `Watchtower-Plan:` trailer), and
in `sync` mode a sync after it. Refused, with nothing changed: a dirty work tree, a repository
mid-merge or mid-rebase, a zone file that is not valid octoDNS YAML, a file or branch that
moved since the plan was made.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchtower.dnsdecl import gitrepo
from watchtower.dnsdecl.octodns import (
    OctoZone,
    Refused,
    edit,
    rrsets,
    source,
    unified_diff,
)
from watchtower.errors import ProbeError
from watchtower.net import octodns as octodns_net
from watchtower.remediation.api import NoAction, Plan, Step, StepOutcome, register_action

#: What a plan changes, given the zone's RRsets as the YAML holds them: RRset changes (the
#: `dnsdecl.plan.ZonePlan.changes` shape) and why, one line per change, for the commit message.
Changes = Callable[[list[dict[str, Any]]], tuple[list[dict[str, Any]], list[str]]]


def _checkout(octo: OctoZone) -> tuple[str, str]:
    """(branch, base commit) the fix is committed on, after the repository passed its rules."""
    gitrepo.require_clean(octo.repo)
    if octo.mode == "sync":
        branch = gitrepo.current_branch(octo.repo)
        if branch is None:
            raise Refused(f"HEAD of {octo.repo} is detached: sync mode commits on the "
                          "checked-out branch; nothing was changed")
        return branch, gitrepo.rev(octo.repo, "HEAD") or ""
    return octo.branch, gitrepo.base_of(octo.repo, octo.branch)


def _sync_body(octo: OctoZone) -> dict[str, Any]:
    return {"config": str(octo.config), "repo": str(octo.repo), "zone": octo.name,
            "target": octo.target, "timeout": octo.timeout}


def plan(remediation: str, target: str, check: str, octo: OctoZone, changes: Changes
         ) -> Plan | NoAction:
    src = source(octo)
    branch, base = _checkout(octo)
    path = src.relpath(octo.repo)
    text = gitrepo.show(octo.repo, base, path)
    wanted, why = changes(rrsets(text, octo.name, src, path))
    host = f"octodns:{octo.repo}"
    if not wanted:
        return _sync_only(remediation, target, check, octo, host, branch)
    new_text = edit(text, octo.name, wanted, src)
    rrsets(new_text, octo.name, src, f"{path} as edited")  # octoDNS must load what we write
    token = secrets.token_hex(8)
    summary = f"{len(wanted)} RRset change(s) in {path}"
    message = "\n".join([f"dns: {octo.zone}: {summary}", "", *why, "",
                         f"{gitrepo.TRAILER}: {token}"])
    commit = {"repo": str(octo.repo), "branch": branch, "base": base, "path": path,
              "old_blob": gitrepo.blob_id(octo.repo, text), "content": new_text,
              "message": message}
    undo = {"repo": str(octo.repo), "branch": branch, "path": path, "token": token,
            "sync": _sync_body(octo) if octo.mode == "sync" else None}
    steps = [Step(f"commit {path} on {branch}", "action", action="octodns.commit",
                  body=commit, timeout=60)]
    if octo.mode == "sync":
        steps.append(Step(f"octoDNS sync of {octo.name} to {octo.target}", "action",
                          action="octodns.sync", body=_sync_body(octo), timeout=octo.timeout))
    return Plan(
        remediation=remediation, target=target, host=host,
        summary=(f"{summary} on {branch}" + (f", then sync to {octo.target}"
                                             if octo.mode == "sync" else " for review")),
        diff=unified_diff(text, new_text, path),
        steps=steps,
        undo=[Step(f"revert the commit on {branch}", "action", action="octodns.revert",
                   body=undo, timeout=60 + (octo.timeout if octo.mode == "sync" else 0))],
        verify=[check], verify_later=octo.mode == "commit",
        data={"mode": octo.mode, "branch": branch, "token": token})


def _sync_only(remediation: str, target: str, check: str, octo: OctoZone, host: str,
               branch: str) -> Plan | NoAction:
    """The YAML already holds what is wanted; in `sync` mode a sync brings the server to it."""
    pending = octodns_net.plan(str(octo.config), str(octo.repo), octo.name, octo.target,
                               octo.timeout)
    if not pending:
        return NoAction(f"{octo.zone}: the YAML on {branch} and {octo.target} hold the wanted "
                        "records")
    if octo.mode != "sync":
        return NoAction(f"{octo.zone}: the YAML on {branch} holds the wanted records; "
                        f"{octo.target} differs from it until the operator syncs")
    return Plan(
        remediation=remediation, target=target, host=host,
        summary=f"sync {octo.name} to {octo.target}: {len(pending)} change(s) octoDNS plans",
        diff="\n".join(f"{c['action']} {c['name']} {c['type']} "
                       f"{', '.join(c['values'] or c['existing_values'])}" for c in pending),
        steps=[Step(f"octoDNS sync of {octo.name} to {octo.target}", "action",
                    action="octodns.sync", body=_sync_body(octo), timeout=octo.timeout)],
        undo=[], verify=[check], data={"mode": "sync"})


# -- the actions the engine runs ------------------------------------------------------------


def _outcome(run: Callable[[], str]) -> StepOutcome:
    try:
        return StepOutcome(True, run())
    except ProbeError as exc:
        return StepOutcome(False, exc.reason)


@register_action("octodns.commit")
def commit_action(body: dict[str, Any], _timeout: float) -> StepOutcome:
    def run() -> str:
        repo = Path(body["repo"])
        gitrepo.require_clean(repo)
        text = gitrepo.show(repo, body["base"], body["path"])
        if gitrepo.blob_id(repo, text) != body["old_blob"]:
            raise Refused(f"{body['path']} changed since the plan was made; plan again")
        sha = gitrepo.commit_file(repo, body["branch"], body["base"], body["path"],
                                  body["content"], body["message"])
        return f"committed {sha} on {body['branch']}"

    return _outcome(run)


@register_action("octodns.sync")
def sync_action(body: dict[str, Any], timeout: float) -> StepOutcome:
    def run() -> str:
        applied, changes = octodns_net.sync(body["config"], body["repo"], body["zone"],
                                            body["target"], min(timeout, body["timeout"]))
        shown = "; ".join(f"{c['action']} {c['name']} {c['type']}" for c in changes)
        return f"octoDNS applied {applied} change(s) to {body['target']}: {shown or '-'}"

    return _outcome(run)


@register_action("octodns.revert")
def revert_action(body: dict[str, Any], timeout: float) -> StepOutcome:
    def run() -> str:
        repo, branch, path = Path(body["repo"]), body["branch"], body["path"]
        sha = gitrepo.find_commit(repo, branch, body["token"])
        if sha is None:
            return f"no commit of this plan on {branch}: nothing to revert"
        gitrepo.require_clean(repo)
        base = gitrepo.base_of(repo, branch)
        committed = gitrepo.show(repo, sha, path)
        if gitrepo.show(repo, base, path) != committed:
            raise Refused(f"{path} changed after {sha[:12]}: revert it by hand")
        subject = gitrepo.git(repo, "log", "-1", "--format=%s", sha).strip()
        new = gitrepo.commit_file(repo, branch, base, path, gitrepo.show(repo, f"{sha}^", path),
                                  f'Revert "{subject}"\n\nThis reverts commit {sha}.')
        out = f"reverted {sha[:12]} with {new} on {branch}"
        sync = body.get("sync")
        if sync:
            applied, _ = octodns_net.sync(sync["config"], sync["repo"], sync["zone"],
                                          sync["target"], min(timeout, sync["timeout"]))
            out += f"; octoDNS applied {applied} change(s) to {sync['target']}"
        return out

    return _outcome(run)
