"""How watchtower acts on what it sees: per-check overrides, notification channels, reports,
maintenance windows, the dashboard's sign-in and the remediation policy."""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, model_validator

from watchtower.config.base import Secret, Strict


class CheckOverride(Strict):
    interval: float | None = Field(default=None, ge=1, description="seconds between runs "
                                   "instead of the check's own interval, e.g. 3600")
    cron: str | None = Field(default=None, description="crontab expression (UTC) to run on "
                             "instead of an interval, e.g. '0 */6 * * *'")
    timeout: float | None = Field(default=None, gt=0, le=3600, description="seconds one probe "
                                  "may take instead of the check's own timeout, e.g. 15")
    disabled: bool = Field(default=False, description="the check does not run at all")
    failure_threshold: int | None = Field(default=None, ge=1, description="consecutive problem "
                                          "results before an alert fires, instead of "
                                          "[alerting] failure_threshold")
    success_threshold: int | None = Field(default=None, ge=1, description="consecutive good "
                                          "results before it resolves, instead of [alerting] "
                                          "success_threshold")


class EmailChannel(Strict):
    """Alert mail over SMTP (watchtower/net/mailer.py); the password is read at send time."""

    name: str = Field(description="the channel's name (reports refer to it), e.g. \"ops-mail\"")
    host: str = Field(description='the SMTP relay, e.g. "smtp.example.org"')
    port: int = Field(default=587, gt=0, lt=65536, description="the relay's port")
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="STARTTLS, implicit TLS (usually port 465), or none "
        "(a relay on loopback only)")
    username: str | None = Field(default=None, description="SMTP login; unset: no AUTH")
    password: Secret | None = Field(default=None, description="SMTP password")
    sender: str = Field(min_length=3, description='the From address, e.g. "watchtower@example.org"')
    to: list[str] = Field(min_length=1, description='recipients, e.g. ["ops@example.org"]')
    ca_bundle: str | None = Field(default=None, description="PEM file of CAs to trust for the "
                                  "relay instead of the system's")
    only: list[str] = Field(default_factory=list, description="check id/family globs")


class AppriseChannel(Strict):
    """Any apprise target (matrix://, ntfy://, json://...); the URL embeds tokens: a Secret."""

    name: str = Field(description='the channel\'s name, e.g. "matrix-ops"')
    url: Secret = Field(description="the apprise URL, e.g. ntfy://ntfy.example.org/ops (a "
                        "secret: it carries tokens)")
    only: list[str] = Field(default_factory=list, description="check id/family globs")


class Notifications(Strict):
    email: list[EmailChannel] = Field(default_factory=list)
    apprise: list[AppriseChannel] = Field(default_factory=list)
    retry_initial: float = Field(default=30, gt=0, description="first retry delay, seconds")
    retry_max: float = Field(default=3600, gt=0, description="backoff cap, seconds")
    broken_after: int = Field(default=5, ge=1, description="failures in a row = broken")


ReportFormat = Literal["html", "text", "json", "pdf"]
REPORT_FORMATS: tuple[ReportFormat, ...] = ("html", "text", "json", "pdf")


class ReportSchedule(Strict):
    """A compliance report mailed on a cron schedule (watchtower/report). SMTP comes from the
    named `[[notifications.email]]` channel (one relay configuration, not two); `recipients`
    replaces that channel's `to`. `customer` limits the report to that customer's targets."""

    name: str = Field(min_length=1, description='the report\'s name (`report --name`), e.g. '
                      '"monthly"')
    cron: str = Field(description="crontab expression, UTC, e.g. '0 6 1 * *'")
    customer: str | None = Field(default=None, description="only this customer's targets; "
                                 "unset: the whole fleet")
    recipients: list[str] = Field(min_length=1, description="addresses it is mailed to, e.g. "
                                  '["cto@customer.example"]')
    channel: str = Field(description="name of the [[notifications.email]] relay to send with")
    formats: list[ReportFormat] = Field(
        default_factory=lambda: list(REPORT_FORMATS),
        description="parts of the mail: html body, text alternative, json and pdf attachments")
    period_days: int = Field(default=30, ge=1, le=3660,
                             description="days of history the report covers, e.g. 30")


class MaintenanceWindow(Strict):
    """Silences notifications (probing goes on): one-off `start`/`end`, or `cron` + `duration`."""

    name: str = Field(description='the window\'s name, e.g. "tuesday-patching"')
    targets: list[str] = Field(default_factory=list, description="target name globs; [] = all")
    tags: list[str] = Field(default_factory=list, description="any of these tags")
    checks: list[str] = Field(default_factory=list, description="check id/family globs")
    start: dt.datetime | None = Field(default=None, description="start of a one-off window "
                                      "(TOML date-time; without an offset: in timezone), e.g. "
                                      "2026-12-08T22:00:00")
    end: dt.datetime | None = Field(default=None, description="end of a one-off window, e.g. "
                                    "2026-12-09T02:00:00")
    cron: str | None = Field(default=None, description="crontab expression (in timezone) of "
                             "a recurring window's starts, e.g. '0 22 * * 2'")
    duration: float | None = Field(default=None, gt=0, description="minutes a recurring "
                                   "window lasts, with cron, e.g. 120")
    timezone: str = Field(default="UTC", description="IANA time zone of start, end and cron, "
                          'e.g. "Europe/Amsterdam"')

    @model_validator(mode="after")
    def _one_kind(self) -> MaintenanceWindow:
        problem = window_problem(self)
        if problem:
            raise ValueError(problem)
        return self


class DnsTemplate(Strict):
    """A record the dns.records remediation writes; `{domain}` and `{serial}` are filled in."""

    name: str = Field(description='owner name; `{domain}` is filled in, e.g. "_dmarc.{domain}"')
    type: Literal["TXT", "CAA", "MX", "A", "AAAA", "CNAME", "SRV", "TLSA"] = Field(
        description="record type")
    content: str = Field(description="record data in zone-file form; `{domain}` and `{serial}` "
                         "are filled in, e.g. '\"v=DMARC1; p=reject\"'")
    ttl: int = Field(default=3600, ge=60, description="seconds, e.g. 3600")


class DashboardOidc(Strict):
    """Sign-in through OIDC with Streamlit's `st.login`. The client id and secret live in a
    Streamlit secrets file (`[auth]` section), never in the fleet file; watchtower passes its
    path to Streamlit. Who is an operator is decided here, by e-mail."""

    secrets_file: str = Field(description="Streamlit secrets.toml holding the [auth] section")
    provider: str | None = Field(default=None, description="[auth.<provider>] name, if several")
    operators: list[str] = Field(default_factory=list, description="e-mails with operator role")
    default_role: Literal["viewer", "operator", "none"] = Field(
        default="viewer", description="role of a signed-in user not in operators (`none`: "
        "refused)")


class Dashboard(Strict):
    """The Streamlit dashboard: local users (scrypt hashes) or OIDC, and the idle timeout."""

    users_file: str | None = Field(
        default=None, description="local users (scrypt hashes), from `watchtower dashboard-user "
                                  "add`; relative to the fleet file")
    session_minutes: float = Field(default=30, gt=0, le=24 * 60,
                                   description="idle minutes before a session is signed out")
    oidc: DashboardOidc | None = Field(default=None,
                                       description="sign-in through OIDC (Streamlit st.login)")


class Remediation(Strict):
    """Policies per remediation (`"nixos.rollback"`) or per remediation and target
    (`"nixos.rollback@web1"`): off, dry-run (the default), approve or auto."""

    default_policy: Literal["off", "dry-run", "approve", "auto"] = Field(
        default="dry-run", description="policy of a remediation with none of its own: off, "
        "dry-run (plan only), approve (waits for an operator) or auto")
    policies: dict[str, Literal["off", "dry-run", "approve", "auto"]] = Field(
        default_factory=dict, description="remediation id or id@target -> policy, e.g. "
        '{ "dns.records" = "approve", "nixos.rollback@web1" = "auto" }')
    max_per_host_per_hour: int = Field(default=4, ge=1, description="changes applied to one "
                                       "host in any hour at most; more are refused")
    lock_seconds: float = Field(default=1800, gt=0, description="seconds a host's remediation "
                                "lock is held before it expires (a crashed apply frees it), "
                                "e.g. 1800")
    settle_seconds: float | None = Field(default=None, ge=0,
                                         description="seconds every remediation waits after "
                                         "applying before it verifies, instead of its own "
                                         "settle delay, e.g. 30")
    dns_templates: dict[str, DnsTemplate] = Field(
        default_factory=dict, description="check id -> the record that fixes its failure")


def window_problem(window: MaintenanceWindow) -> str | None:
    """Why a maintenance window is not usable (checked when the config loads), or None."""
    try:
        ZoneInfo(window.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {window.timezone!r}"
    one_off = window.start is not None or window.end is not None
    recurring = window.cron is not None or window.duration is not None
    if one_off and recurring:
        return "give either start/end or cron/duration, not both"
    if one_off:
        if window.start is None or window.end is None:
            return "a one-off window needs both start and end"
        if localize(window.end, window.timezone) <= localize(window.start, window.timezone):
            return "end must be after start"
        return None
    if window.cron is None or window.duration is None:
        return "a recurring window needs both cron and duration (minutes)"
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(window.cron, timezone=ZoneInfo(window.timezone))
    except ValueError as exc:
        return f"invalid cron expression ({exc})"
    return None


def localize(value: dt.datetime, zone: str) -> dt.datetime:
    """A window's time without offset is read in the window's time zone."""
    return value if value.tzinfo else value.replace(tzinfo=ZoneInfo(zone))
