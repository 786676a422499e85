"""The operator's DNS repository: when it may be changed, and commits made the careful way.

git runs as argv lists (never a shell), with a timeout, author and committer `watchtower`.
Rules, each a refusal that changes nothing:
- never a repository in the middle of a merge, rebase, cherry-pick or revert;
- never a work tree with uncommitted changes to tracked files (the operator's work in
  progress is theirs; untracked files are not touched and do not count);
- never a file that changed since the plan was made (the plan shows a diff against one blob,
  and exactly that diff is committed, or nothing).
A commit on the branch that is checked out goes through the work tree (`sync` mode: octoDNS
reads the files there). A commit on another branch (`commit` mode's review branch) is made with
plumbing on a private index, so the operator's checkout is never touched; the branch moves by
compare-and-swap (`update-ref NEW OLD`), so a concurrent push to it is never overwritten.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from watchtower.dnsdecl.octodns import Refused

IDENTITY = {"GIT_AUTHOR_NAME": "watchtower", "GIT_AUTHOR_EMAIL": "watchtower@localhost",
            "GIT_COMMITTER_NAME": "watchtower", "GIT_COMMITTER_EMAIL": "watchtower@localhost"}
#: Files git keeps while an operation waits for a person, with what they mean.
IN_PROGRESS = {"MERGE_HEAD": "a merge", "rebase-merge": "a rebase", "rebase-apply": "a rebase",
               "CHERRY_PICK_HEAD": "a cherry-pick", "REVERT_HEAD": "a revert"}
TRAILER = "Watchtower-Plan"
TIMEOUT = 30.0


def git(repo: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None,
        check: bool = True) -> str:
    """Run `git -C repo ARGS...`; stdout, or Refused with git's own message."""
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], input=stdin, text=True,
                              capture_output=True, timeout=TIMEOUT, check=False,
                              env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **IDENTITY,
                                   **(env or {})})
    except FileNotFoundError:
        raise Refused("git is not installed on the watchtower machine") from None
    except subprocess.TimeoutExpired:
        raise Refused(f"git {args[0]} in {repo} did not finish within {TIMEOUT:g}s") from None
    if check and proc.returncode != 0:
        raise Refused(f"git {' '.join(args[:2])} in {repo}: {proc.stderr.strip() or 'failed'}")
    return proc.stdout


def refusal(repo: Path) -> str | None:
    """Why the repository must not be changed now (None: it may)."""
    inside = subprocess.run(["git", "-C", str(repo), "rev-parse", "--is-inside-work-tree"],
                            capture_output=True, text=True, timeout=TIMEOUT, check=False)
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return f"{repo} is not a git work tree"
    for name, what in IN_PROGRESS.items():
        path = Path(git(repo, "rev-parse", "--git-path", name).strip())
        if (path if path.is_absolute() else repo / path).exists():
            return (f"the repository {repo} is in the middle of {what}: finish or abort it "
                    "first; nothing was changed")
    dirty = git(repo, "status", "--porcelain", "--untracked-files=no").splitlines()
    if dirty:
        shown = ", ".join(line.strip() for line in dirty[:5])
        return (f"the work tree {repo} has uncommitted changes ({shown}): commit or stash "
                "them first; nothing was changed")
    return None


def require_clean(repo: Path) -> None:
    why = refusal(repo)
    if why:
        raise Refused(why)


def current_branch(repo: Path) -> str | None:
    out = git(repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
    return out or None


def rev(repo: Path, name: str) -> str | None:
    out = git(repo, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}", check=False)
    return out.strip() or None


def base_of(repo: Path, branch: str) -> str:
    """Where a commit on `branch` starts: its tip while it holds commits HEAD lacks (fixes
    waiting for review stack up), else HEAD (a merged or absent review branch starts anew)."""
    head = rev(repo, "HEAD")
    if head is None:
        raise Refused(f"the repository {repo} has no commits")
    tip = rev(repo, f"refs/heads/{branch}")
    if tip is None:
        return head
    merged = subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", tip, head],
                            capture_output=True, timeout=TIMEOUT, check=False).returncode == 0
    return head if merged else tip


def show(repo: Path, commit: str, path: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"],
                         capture_output=True, text=True, timeout=TIMEOUT, check=False)
    if out.returncode != 0:
        raise Refused(f"{path} is not in commit {commit[:12]} of {repo}: commit it first")
    return out.stdout


def blob_id(repo: Path, text: str) -> str:
    return git(repo, "hash-object", "--stdin", stdin=text).strip()


def commit_file(repo: Path, branch: str, base: str, path: str, text: str, message: str
                ) -> str:
    """Commit `text` as `path` on `branch`, whose tip must be `base`; the new commit's id."""
    tip = rev(repo, f"refs/heads/{branch}")
    if current_branch(repo) == branch:
        if tip != base:
            raise Refused(f"{branch} moved since the plan was made (now {tip and tip[:12]}); "
                          "plan again")
        (repo / path).write_text(text)
        git(repo, "add", "--", path)
        git(repo, "commit", "--quiet", "--no-verify", "-m", message, "--", path)
        return git(repo, "rev-parse", "HEAD").strip()
    if base_of(repo, branch) != base:
        raise Refused(f"{branch} moved since the plan was made; plan again")
    with tempfile.TemporaryDirectory(prefix="watchtower-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(repo, "read-tree", base, env=env)
        blob = git(repo, "hash-object", "-w", "--stdin", stdin=text).strip()
        git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = git(repo, "write-tree", env=env).strip()
    new = git(repo, "commit-tree", tree, "-p", base, "-m", message).strip()
    git(repo, "update-ref", "-m", "watchtower: dns fix", f"refs/heads/{branch}", new, tip or "")
    return new


def find_commit(repo: Path, branch: str, token: str) -> str | None:
    """The commit on `branch` whose message carries `Watchtower-Plan: token`."""
    if rev(repo, f"refs/heads/{branch}") is None:
        return None
    out = git(repo, "log", "--format=%H", "-F", f"--grep={TRAILER}: {token}",
              f"refs/heads/{branch}")
    found = out.split()
    return found[0] if found else None
