"""The fleet file: TOML in, typed and validated models out.

Rooms: `base` (strict models, secrets, value checks), `sections` (the settings tables by
concern), `targets` (what a fleet is made of; its mail parts in `mail_targets`), `operations`
(overrides, channels, reports, windows, dashboard, remediation), `fleet` (the whole file and
its targets), `load` (reading and validating a file), `moved` (where old keys went), `doc`
(docs/configuration.md).
"""

from watchtower.config.base import Secret, Strict, Tagged
from watchtower.config.fleet import Fleet
from watchtower.config.load import database_url, default_state_dir, load_fleet, parse_fleet
from watchtower.config.operations import (
    REPORT_FORMATS,
    AppriseChannel,
    CheckOverride,
    Dashboard,
    DashboardOidc,
    DnsTemplate,
    EmailChannel,
    MaintenanceWindow,
    Notifications,
    Remediation,
    ReportFormat,
    ReportSchedule,
)
from watchtower.config.sections import (
    DEFAULT_CAA_ISSUERS,
    AlertingSettings,
    DaemonSettings,
    FederationSettings,
    FeedSettings,
    MetricsAuth,
    MetricsSettings,
    ProbeSettings,
    QueueSettings,
    ReportingSettings,
    RetentionSettings,
    StoreSettings,
)
from watchtower.config.targets import (
    Backup,
    DeclaredRecord,
    DkimKeyFile,
    DnsApi,
    Endpoint,
    Heartbeat,
    Host,
    MailDomain,
    MailHost,
    OctoDnsZone,
    Service,
    ServiceKind,
    Zone,
)

__all__ = [
    "DEFAULT_CAA_ISSUERS",
    "REPORT_FORMATS",
    "AlertingSettings",
    "AppriseChannel",
    "Backup",
    "CheckOverride",
    "DaemonSettings",
    "Dashboard",
    "DashboardOidc",
    "DeclaredRecord",
    "DkimKeyFile",
    "DnsApi",
    "DnsTemplate",
    "EmailChannel",
    "Endpoint",
    "FederationSettings",
    "FeedSettings",
    "Fleet",
    "Heartbeat",
    "Host",
    "MailDomain",
    "MailHost",
    "MaintenanceWindow",
    "MetricsAuth",
    "MetricsSettings",
    "Notifications",
    "OctoDnsZone",
    "ProbeSettings",
    "QueueSettings",
    "Remediation",
    "ReportFormat",
    "ReportSchedule",
    "ReportingSettings",
    "RetentionSettings",
    "Secret",
    "Service",
    "ServiceKind",
    "StoreSettings",
    "Strict",
    "Tagged",
    "Zone",
    "database_url",
    "default_state_dir",
    "load_fleet",
    "parse_fleet",
]
