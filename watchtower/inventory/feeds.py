"""The upstream release feed: which release of each software is the newest, and since when.

drift.version warns when a declared version is behind upstream, and says by how much (releases
and days), so it needs the upstream's release history. That comes from a local JSON file
(`[feeds] release`) so checks never depend on the internet; `watchtower feeds update`
refreshes the file from the projects' release pages when the network allows, and offline installs
and tests copy a prepared file in with `--from`.

The file (format "watchtower-release-feed/1"):
    {"format": "watchtower-release-feed/1", "generated": "2025-01-10T00:00:00+00:00",
     "software": {"mastodon": {"version": "4.3.2", "date": "2024-12-03",
                               "url": "https://github.com/mastodon/mastodon/releases",
                               "releases": [{"version": "4.3.2", "date": "2024-12-03"}, ...]}}}
`releases` (newest first, stable releases only) is optional; without it "how many releases
behind" is unknown and only the newest release counts. Keys are service kinds (mastodon,
peertube, pixelfed, synapse, garage).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watchtower.errors import ProbeError, WatchtowerError
from watchtower.inventory.versions import compare, version_key

if TYPE_CHECKING:
    from watchtower.net.http import HttpClient

FORMAT = "watchtower-release-feed/1"


class FeedError(WatchtowerError):
    """A feed file is missing or malformed, or no upstream could be reached."""


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where a project publishes releases: a GitHub or Gitea/Forgejo releases API."""

    api: str  # releases list URL (JSON array of {tag_name, published_at, prerelease, draft})
    page: str  # what a person opens


UPSTREAMS: dict[str, Upstream] = {
    "mastodon": Upstream("https://api.github.com/repos/mastodon/mastodon/releases?per_page=30",
                         "https://github.com/mastodon/mastodon/releases"),
    "peertube": Upstream("https://api.github.com/repos/Chocobozzz/PeerTube/releases?per_page=30",
                         "https://github.com/Chocobozzz/PeerTube/releases"),
    "pixelfed": Upstream("https://api.github.com/repos/pixelfed/pixelfed/releases?per_page=30",
                         "https://github.com/pixelfed/pixelfed/releases"),
    "synapse": Upstream("https://api.github.com/repos/element-hq/synapse/releases?per_page=30",
                        "https://github.com/element-hq/synapse/releases"),
    "garage": Upstream(
        "https://git.deuxfleurs.fr/api/v1/repos/Deuxfleurs/garage/releases?limit=30",
        "https://git.deuxfleurs.fr/Deuxfleurs/garage/releases"),
}


# -- reading -----------------------------------------------------------------------------------


def _release(item: Any, where: str) -> dict[str, str]:
    if not isinstance(item, dict) or not isinstance(item.get("version"), str):
        raise FeedError(f"{where}: each release needs a \"version\" string")
    date = item.get("date")
    if date is not None:
        try:
            dt.date.fromisoformat(str(date)[:10])
        except ValueError:
            raise FeedError(f"{where}: date {date!r} is not YYYY-MM-DD") from None
    return {"version": item["version"], "date": str(date)[:10] if date else ""}


def parse_release_feed(data: Any, source: str = "<feed>") -> dict[str, dict[str, Any]]:
    """Validate a feed document; returns software -> {version, date, url, releases}."""
    table = data.get("software") if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise FeedError(f"{source}: expected {{\"software\": {{name: {{version, date}}}}}}")
    out: dict[str, dict[str, Any]] = {}
    for name, entry in table.items():
        newest = _release(entry, f"{source}: software.{name}")
        releases = [_release(r, f"{source}: software.{name}.releases")
                    for r in (entry.get("releases") or [])]
        if not any(r["version"] == newest["version"] for r in releases):
            releases.append(newest)
        releases.sort(key=lambda r: version_key(r["version"]), reverse=True)
        out[str(name)] = {**newest, "url": entry.get("url"), "releases": releases,
                          "history": bool(entry.get("releases"))}
    return out


def load_release_feed(path: str | Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise FeedError(f"release feed {path}: cannot read ({exc.strerror})") from None
    except ValueError as exc:
        raise FeedError(f"release feed {path}: invalid JSON ({exc})") from None
    return parse_release_feed(data, str(path))


def upstream_facts(entry: dict[str, Any], version: str) -> dict[str, Any]:
    """What a judgement needs to say how far `version` is behind: newest and newer releases."""
    newer = [r for r in entry["releases"] if compare(r["version"], version) > 0]
    return {"newest": entry["version"], "newest_date": entry["date"] or None,
            "newer": newer, "history": entry["history"], "url": entry.get("url")}


def behind_summary(version: str, upstream: dict[str, Any], today: dt.date) -> str | None:
    """`4.2.0 is 3 releases behind 4.3.2 (newer releases available for 45 days)`, or None."""
    newer = upstream.get("newer") or []
    if not newer:
        return None
    count = (f"{len(newer)} release{'s' if len(newer) != 1 else ''}" if upstream.get("history")
             else "at least 1 release")
    dates = [dt.date.fromisoformat(r["date"]) for r in newer if r.get("date")]
    days = f" (a newer release available for {(today - min(dates)).days} days)" if dates else ""
    return f"{version} is {count} behind upstream {upstream['newest']}{days}"


# -- updating ----------------------------------------------------------------------------------


def _from_releases_api(items: Any, url: str) -> list[dict[str, str]]:
    """GitHub's and Gitea's releases lists -> stable releases, newest first."""
    if not isinstance(items, list):
        raise ProbeError(f"{url}: expected a JSON list of releases", kind="malformed")
    out = []
    for item in items:
        if not isinstance(item, dict) or item.get("draft") or item.get("prerelease"):
            continue
        tag = str(item.get("tag_name") or "").strip()
        if not tag or any(w in tag.lower() for w in ("rc", "beta", "alpha")):
            continue
        out.append({"version": tag[1:] if tag[:1] in "vV" else tag,
                    "date": str(item.get("published_at") or "")[:10]})
    out.sort(key=lambda r: version_key(r["version"]), reverse=True)
    return out


def fetch_upstream(http: HttpClient, upstreams: dict[str, Upstream],
                   timeout: float = 20.0) -> tuple[dict[str, Any], dict[str, str]]:
    """Ask each upstream for its releases; returns (software entries, software -> problem)."""
    software: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name, upstream in upstreams.items():
        try:
            resp = http.get(upstream.api, timeout=timeout,
                            headers={"Accept": "application/json"})
            if resp.status != 200:
                raise ProbeError(f"{upstream.api}: HTTP {resp.status}", kind="http")
            releases = _from_releases_api(resp.json(), upstream.api)
            if not releases:
                raise ProbeError(f"{upstream.api}: no stable release listed", kind="malformed")
        except ProbeError as exc:
            problems[name] = exc.reason
            continue
        software[name] = {**releases[0], "url": upstream.page, "releases": releases}
    return software, problems


def write_feed(path: str | Path, software: dict[str, Any],
               now: dt.datetime | None = None) -> None:
    """Write the feed atomically (a reader never sees half a file)."""
    doc = {"format": FORMAT, "generated": (now or dt.datetime.now(dt.UTC)).isoformat(),
           "software": software}
    parse_release_feed(doc, str(path))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".feed-")
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, target)


def update_release_feed(path: str | Path, http: HttpClient,
                        upstreams: dict[str, Upstream] | None = None,
                        timeout: float = 20.0) -> tuple[list[str], dict[str, str]]:
    """Refresh the feed at `path` from upstream; software not reached keeps its old entry.

    Returns (software updated, software -> problem). Raises FeedError when no upstream answered,
    leaving the file as it was.
    """
    fresh, problems = fetch_upstream(http, upstreams or UPSTREAMS, timeout)
    if not fresh:
        first = sorted(problems.items())[0]
        raise FeedError(f"no upstream release page could be reached (no network?). "
                        f"First problem, {first[0]}: {first[1][:160]}. The release "
                        f"feed {path} is unchanged; offline, install a prepared feed with "
                        "`watchtower feeds update --from FILE`")
    merged: dict[str, Any] = {}
    if Path(path).exists():
        try:
            old = json.loads(Path(path).read_text()).get("software", {})
            merged.update({k: v for k, v in old.items() if isinstance(v, dict)})
        except (OSError, ValueError, AttributeError):
            pass
    merged.update(fresh)
    write_feed(path, merged)
    return sorted(fresh), problems


def install_feed_file(source: str | Path, path: str | Path) -> list[str]:
    """Validate a prepared feed file and install it at `path` (offline installs, tests)."""
    software = load_release_feed(source)
    raw = json.loads(Path(source).read_text())["software"]
    write_feed(path, raw)
    return sorted(software)
