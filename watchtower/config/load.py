"""Reading a fleet file: TOML in, a validated Fleet out, one clear line per problem.

Every problem names the file, the key path and why (`fleet.toml: services[2].base_url: not an
http(s) URL`), and the command that loaded it exits 2 with no traceback.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from watchtower.config.base import cron_problem
from watchtower.config.fleet import Fleet
from watchtower.config.lines import Path as KeyPath
from watchtower.config.lines import key_lines, line_of, parse_leading_path, spell
from watchtower.config.moved import moved_problems
from watchtower.config.partial import Pruned, validate_rest
from watchtower.config.sections import StoreSettings
from watchtower.config.targets import OctoDnsZone
from watchtower.errors import ConfigError

Validator = Callable[[Fleet], list[str]]


def _parts(loc: tuple[Any, ...]) -> KeyPath:
    """A pydantic location as a place in the document (validator and union tags dropped)."""
    return tuple(part for part in loc if not (isinstance(part, str) and (
        part.startswith(("function-", "function_"))
        or (part.startswith("<") and part.endswith(">"))  # a union member's tag (OctoDnsRef)
    )))


def _loc(loc: tuple[Any, ...]) -> str:
    return spell(_parts(loc))


def _message(err: Any) -> str:
    kind = err["type"]
    msg = str(err["msg"])
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    elif msg.startswith("Assertion failed, "):
        msg = msg[len("Assertion failed, "):]
    return msg


def parse_fleet(data: dict[str, Any], source: str = "<config>",
                known_checks: Iterable[tuple[str, str]] | None = None,
                *, check_secrets: bool = True, base: Path | None = None,
                validators: Iterable[Validator] = (), text: str | None = None) -> Fleet:
    """Validate parsed TOML; raises ConfigError listing every problem (with its line, given
    the file's `text`).

    `check_secrets=False` validates the shape only (for a file meant for another machine,
    whose secret files exist only there); `validators` check the file against this machine
    too (registered by the parts that know how: `registry.validators()`), unless that is off.
    """
    data = dict(data)
    problems = moved_problems(data)
    try:
        fleet: Fleet | None = Fleet.model_validate(data)
        pruned = Pruned(fleet)
    except ValidationError as exc:
        # Every shape problem, and then the rules on what is left, so one pass names them all.
        problems += [f"{_loc(tuple(e['loc']))}: {_message(e)}" for e in exc.errors()]
        pruned = validate_rest(data, exc.errors(), _parts)
        fleet = pruned.fleet
    if fleet is not None:
        if base is not None:  # the octoDNS files are looked at below: relative to the fleet file
            fleet = _resolve_octodns(fleet, base)
        later = semantic_problems(fleet, known_checks, check_secrets=check_secrets)
        for validate in validators if check_secrets else ():
            later += validate(fleet)
        problems += [p for p in map(_in_file(pruned), later) if p is not None]
    if problems or fleet is None:
        raise ConfigError(_located(problems, source, text))
    return fleet


def _in_file(pruned: Pruned) -> Callable[[str], str | None]:
    """A problem found on what was left, with the file's own indices; None for one that only
    follows from a place taken out."""

    def mapped(problem: str) -> str | None:
        path = parse_leading_path(problem)
        if not pruned.removed or not path:
            return problem
        original = pruned.original(path)
        if pruned.is_consequence(original):
            return None
        return spell(original) + problem[len(spell(path)):] if original != path else problem

    return mapped


def _located(problems: list[str], source: str, text: str | None) -> list[str]:
    """`source:LINE: problem` where the text shows the line (else `source: problem`), in the
    order of the file."""
    lines = key_lines(text) if text is not None else {}
    placed = [(line_of(parse_leading_path(p), lines), p) for p in problems]
    placed.sort(key=lambda lp: lp[0] or 0)
    return [f"{source}:{line}: {p}" if line else f"{source}: {p}" for line, p in placed]


def semantic_problems(fleet: Fleet, known_checks: Iterable[tuple[str, str]] | None,
                      *, check_secrets: bool = True) -> list[str]:
    """Rules that span entries: duplicate names, dangling references, unknown check ids."""
    problems = [
        *_duplicate_targets(fleet),
        *_duplicate_channels(fleet),
        *_service_problems(fleet),
        *_mail_host_problems(fleet),
        *_mail_domain_problems(fleet),
        *_unknown_check_keys(fleet, known_checks),
        *_report_problems(fleet),
        *_check_cron_problems(fleet),
        *_octodns_problems(fleet),
    ]
    if check_secrets:
        problems += _secret_problems(fleet)
    return problems


_NAMED_SECTIONS = ("zones", "mail_domains", "services", "hosts", "mail_hosts", "dns_apis",
                   "backups", "heartbeats")


def _duplicate_targets(fleet: Fleet) -> Iterator[str]:
    """A target name is unique within its section (results and history are keyed by it)."""
    for section in _NAMED_SECTIONS:
        seen: dict[str, int] = {}
        for i, item in enumerate(getattr(fleet, section)):
            name = item.name
            if name in seen:
                yield (f"{section}[{i}].name: duplicate target {name!r} "
                       f"(also {section}[{seen[name]}])")
            else:
                seen[name] = i


def _duplicate_channels(fleet: Fleet) -> Iterator[str]:
    channel_names = [c.name for c in fleet.notifications.email + fleet.notifications.apprise]
    for name in sorted({n for n in channel_names if channel_names.count(n) > 1}):
        yield f"notifications: duplicate channel name {name!r}"


def _service_problems(fleet: Fleet) -> Iterator[str]:
    host_names = {h.name for h in fleet.hosts}
    for i, s in enumerate(fleet.services):
        if s.host is not None and s.host not in host_names:
            yield f"services[{i}].host: no [[hosts]] entry named {s.host!r}"
        if s.kind == "garage" and s.admin_url is None:
            yield f"services[{i}].admin_url: required for a garage service"


def _mail_host_problems(fleet: Fleet) -> Iterator[str]:
    host_names = {h.name for h in fleet.hosts}
    for i, mh in enumerate(fleet.mail_hosts):
        if mh.runs_on is not None and mh.runs_on not in host_names:
            yield f"mail_hosts[{i}].runs_on: no [[hosts]] entry named {mh.runs_on!r}"
        if mh.dkim_keys and mh.runs_on is None:
            yield (f"mail_hosts[{i}].dkim_keys: set runs_on too (the [[hosts]] entry "
                   "whose transport reads the keys)")
        if mh.rspamd_password is not None and mh.rspamd_controller is None:
            yield f"mail_hosts[{i}].rspamd_password: set rspamd_controller too"


def _mail_domain_problems(fleet: Fleet) -> Iterator[str]:
    mail_host_names = {m.name for m in fleet.mail_hosts}
    for i, m in enumerate(fleet.mail_domains):
        if m.mail_host is not None and m.mail_host not in mail_host_names:
            yield (f"mail_domains[{i}].mail_host: no [[mail_hosts]] entry named "
                   f"{m.mail_host!r}")


def _unknown_check_keys(fleet: Fleet, known_checks: Iterable[tuple[str, str]] | None
                        ) -> Iterator[str]:
    """Each [checks] key names a check id, a family, or a glob matching some check id."""
    if known_checks is None:
        return
    known = list(known_checks)
    ids = {cid for cid, _ in known}
    families = {fam for _, fam in known}
    for key in fleet.checks:
        if key in ids or key in families:
            continue
        if any(c in key for c in "*?[") and any(fnmatch.fnmatchcase(i, key) for i in ids):
            continue
        yield f'checks."{key}": unknown check id or family'


def _report_problems(fleet: Fleet) -> Iterator[str]:
    email_channels = {e.name for e in fleet.notifications.email}
    customers = fleet.customers()
    report_names: set[str] = set()
    for i, rep in enumerate(fleet.reports):
        if rep.name in report_names:
            yield f"reports[{i}].name: duplicate report {rep.name!r}"
        report_names.add(rep.name)
        if rep.customer is not None and rep.customer not in customers:
            yield f"reports[{i}].customer: {unknown_customer(rep.customer, customers)}"
        if rep.channel not in email_channels:
            yield (f"reports[{i}].channel: no [[notifications.email]] entry named "
                   f"{rep.channel!r}")
        why = cron_problem(rep.cron)
        if why:
            yield f"reports[{i}].cron: {why}"


def unknown_customer(name: str, customers: list[str]) -> str:
    """Why a report cannot be scoped to `name` (it would be an empty report, possibly mailed
    to the customer), naming the customers there are."""
    known = (f"known: {', '.join(customers)}" if customers
             else 'no entry names a customer (`customer = "..."` on zones, services ...)')
    return f"no entry of the fleet file has customer = {name!r}; {known}"


def _check_cron_problems(fleet: Fleet) -> Iterator[str]:
    for key, override in fleet.checks.items():
        if override.cron is not None:
            problem = cron_problem(override.cron)
            if problem:
                yield f'checks."{key}".cron: {problem}'


def _secret_problems(fleet: Fleet) -> Iterator[str]:
    """Secrets that cannot be read on this machine (a missing file or variable)."""
    for path, secret in fleet.secrets():
        why = secret.problem()
        if why:
            yield f"{path}: {why}"


def load_fleet(path: str | Path, known_checks: Iterable[tuple[str, str]] | None = None,
               validators: Iterable[Validator] = ()) -> Fleet:
    """Read and validate a fleet file; every problem becomes one line of ConfigError."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read ({exc.strerror})"]) from None
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError([f"{p}: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{p}: invalid TOML: {exc}"]) from None
    except RecursionError:  # tomllib recurses once per level of nested arrays or tables
        raise ConfigError([f"{p}: invalid TOML: nested too deeply"]) from None
    fleet = parse_fleet(data, str(p), known_checks, base=p.parent, validators=validators,
                        text=text)
    try:
        return _resolve_relative(fleet, p.parent)
    except ValueError as exc:  # a NUL byte in a relative path
        raise ConfigError([f"{p}: a path in the settings is unusable ({exc})"]) from None


def _resolve_relative(fleet: Fleet, base: Path) -> Fleet:
    """Relative paths in the file are relative to the fleet file, not the working directory."""

    def absolute(value: str | None) -> str | None:
        return value if not value or os.path.isabs(value) else str((base / value).resolve())

    probe = fleet.probe.model_copy(update={"ca_bundle": absolute(fleet.probe.ca_bundle),
                                           "trust_anchors": absolute(fleet.probe.trust_anchors)})
    feeds = fleet.feeds.model_copy(update={
        "release": absolute(fleet.feeds.release), "whitelist": absolute(fleet.feeds.whitelist),
        "advisories": [absolute(f) for f in fleet.feeds.advisories]})
    store = fleet.store.model_copy(update={"state_dir": absolute(fleet.store.state_dir),
                                           "database": _absolute_sqlite(fleet.store.database,
                                                                        base)})
    hosts = [h.model_copy(update={"manifest": absolute(h.manifest)}) for h in fleet.hosts]
    dash = fleet.dashboard
    dash = dash.model_copy(update={"users_file": absolute(dash.users_file)})
    if dash.oidc:
        dash = dash.model_copy(update={"oidc": dash.oidc.model_copy(
            update={"secrets_file": absolute(dash.oidc.secrets_file)})})
    fleet = _resolve_octodns(fleet, base)
    return fleet.model_copy(update={"probe": probe, "feeds": feeds, "store": store,
                                    "hosts": hosts, "dashboard": dash})


def _octodns_problems(fleet: Fleet) -> list[str]:
    """octoDNS declarations: named tables and references that resolve. Whether the config,
    zone, target and work tree exist on this machine is watchtower/dnsdecl/octodns.py's
    validator."""
    problems: list[str] = []
    tables: dict[str, int] = {}
    for i, table in enumerate(fleet.octodns):
        if table.name is None:
            problems.append(f"octodns[{i}].name: required in an [[octodns]] table (zones "
                            "refer to it by name)")
        elif table.name in tables:
            problems.append(f"octodns[{i}].name: duplicate {table.name!r} "
                            f"(also octodns[{tables[table.name]}])")
        else:
            tables[table.name] = i
    for i, zone in enumerate(fleet.zones):
        if isinstance(zone.octodns, str) and zone.octodns not in tables:
            problems.append(f"zones[{i}].octodns: no [[octodns]] entry named {zone.octodns!r}")
    return problems


def _resolve_octodns(fleet: Fleet, base: Path) -> Fleet:
    """octoDNS config files and work trees relative to the fleet file."""

    def resolved(spec: OctoDnsZone) -> OctoDnsZone:
        paths = {k: str((base / getattr(spec, k)).resolve()) for k in ("config", "repo")
                 if not os.path.isabs(getattr(spec, k))}
        return spec.model_copy(update=paths) if paths else spec

    zones = [z.model_copy(update={"octodns": resolved(z.octodns)})
             if isinstance(z.octodns, OctoDnsZone) else z for z in fleet.zones]
    tables = [resolved(t) for t in fleet.octodns]
    if all(a is b for a, b in zip([*zones, *tables], [*fleet.zones, *fleet.octodns],
                                  strict=True)):
        return fleet
    return fleet.model_copy(update={"zones": zones, "octodns": tables})


def _absolute_sqlite(url: str | None, base: Path) -> str | None:
    """`sqlite:///rel.db` is relative to the fleet file; `sqlite:////abs.db` and other
    databases stay as they are."""
    if url and url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel = url[len("sqlite:///"):]
        if rel and rel != ":memory:":
            return "sqlite:///" + str((base / rel).resolve())
    return url


def default_state_dir(settings: StoreSettings) -> Path:
    if settings.state_dir:
        return Path(settings.state_dir)
    env = os.environ.get("WATCHTOWER_STATE_DIR") or os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "watchtower"


def database_url(settings: StoreSettings) -> str:
    if settings.database:
        return settings.database
    return "sqlite:///" + str(default_state_dir(settings) / "watchtower.db")
