"""Plans are signed: the database is never trusted to carry commands.

When the engine stores a plan it signs it with an HMAC whose key lives in the state directory,
never in the database; before it applies one it checks the signature. A row written into the
database directly, or a plan edited after it was made, does not carry a valid signature and
never runs (tests/reliability/test_security_remediation.py writes such rows).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from watchtower.config import StoreSettings, default_state_dir
from watchtower.store import RemediationRow

KEY_FILE = "remediation-plan.key"


def plan_key(settings: StoreSettings) -> bytes:
    """The key that signs plans, kept in the state directory (made once, readable only by
    watchtower's user)."""
    path = default_state_dir(settings) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(32))
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    return path.read_bytes()


def signature(settings: StoreSettings, row: RemediationRow) -> str:
    """HMAC over what apply would run: the remediation, target, host and whole plan."""
    message = "\0".join([row.remediation, row.target, row.host, row.plan]).encode()
    return hmac.new(plan_key(settings), message, hashlib.sha256).hexdigest()


def forgery(settings: StoreSettings, row: RemediationRow) -> str | None:
    """Why a stored plan may not run (None when it is one this watchtower made)."""
    if not hmac.compare_digest(signature(settings, row), row.plan_signature or ""):
        return ("the stored plan does not carry this watchtower's signature (it was not "
                "made by watchtower, or it was changed after it was made)")
    return None
