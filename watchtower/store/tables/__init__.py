"""Every table of watchtower, one module per concern; importing this package puts them all in
`SQLModel.metadata` (migration step 1 creates what it finds there).

history      sweep, evidence, result (streaks), result_day (rollups), state, flip, schema_version
alerting     alert_state, alert_flip, notification_outbox, channel_health, check_gauge
remediation  remediation, remediation_audit, host_lock, known_good
reports      report
dashboard    dashboard_audit, acknowledgement
heartbeats   heartbeat
explanations explanation (comply or explain)
vantages     deferral, vantage_result, vantage_state, agent (watchtower/scaleout)
core         the same tables as SQLAlchemy Core objects, for set-based statements
"""

from watchtower.store.tables.alerting import (
    ALERT_TABLES,
    AlertFlipRow,
    AlertStateRow,
    ChannelHealthRow,
    GaugeRow,
    OutboxRow,
)
from watchtower.store.tables.dashboard import (
    DASHBOARD_TABLES,
    AcknowledgementRow,
    DashboardAuditRow,
)
from watchtower.store.tables.explanations import EXPLANATION_TABLES, ExplanationRow
from watchtower.store.tables.heartbeats import HEARTBEAT_TABLES, HeartbeatRow
from watchtower.store.tables.history import (
    HISTORY_TABLES,
    EvidenceRow,
    FlipRow,
    ResultRow,
    RollupRow,
    SchemaVersion,
    StateRow,
    SweepRow,
)
from watchtower.store.tables.remediation import (
    FINAL_STATES,
    OPEN_STATES,
    REMEDIATION_TABLES,
    AuditRow,
    HostLockRow,
    KnownGoodRow,
    RemediationRow,
)
from watchtower.store.tables.reports import DELIVERY_STATES, REPORT_TABLES, ReportRow
from watchtower.store.tables.vantages import (
    VANTAGE_TABLES,
    AgentRow,
    DeferralRow,
    VantageResultRow,
    VantageStateRow,
)

__all__ = [
    "ALERT_TABLES",
    "DASHBOARD_TABLES",
    "DELIVERY_STATES",
    "EXPLANATION_TABLES",
    "FINAL_STATES",
    "HEARTBEAT_TABLES",
    "HISTORY_TABLES",
    "OPEN_STATES",
    "REMEDIATION_TABLES",
    "REPORT_TABLES",
    "VANTAGE_TABLES",
    "AcknowledgementRow",
    "AgentRow",
    "AlertFlipRow",
    "AlertStateRow",
    "AuditRow",
    "ChannelHealthRow",
    "DashboardAuditRow",
    "DeferralRow",
    "EvidenceRow",
    "ExplanationRow",
    "FlipRow",
    "GaugeRow",
    "HeartbeatRow",
    "HostLockRow",
    "KnownGoodRow",
    "OutboxRow",
    "RemediationRow",
    "ReportRow",
    "ResultRow",
    "RollupRow",
    "SchemaVersion",
    "StateRow",
    "SweepRow",
    "VantageResultRow",
    "VantageStateRow",
]
