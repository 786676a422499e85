"""Dashboard users: scrypt hashes, the users file, roles, OIDC roles, idle expiry."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from watchtower.dashboards.auth import (
    Action,
    AuthError,
    Role,
    User,
    add_user,
    authenticate,
    can,
    hash_password,
    load_users,
    oidc_role,
    session_expired,
    verify_password,
)


def test_hash_is_salted_and_verifies() -> None:
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b  # a fresh salt per hash
    assert a.startswith("scrypt$32768$8$1$")
    assert verify_password("correct horse", a)
    assert not verify_password("correct horsE", a)
    assert "correct horse" not in a


@pytest.mark.parametrize("bad", ["", "plain", "scrypt$1$2$3", "md5$1$1$1$AA==$AA==",
                                 "scrypt$16384$8$1$!!notb64$AA=="])
def test_malformed_hash_never_verifies(bad: str) -> None:
    assert not verify_password("x", bad)


def test_empty_password_is_refused() -> None:
    with pytest.raises(AuthError):
        hash_password("")


def test_users_file_round_trip_is_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "users.toml"
    add_user(path, "olga", Role.OPERATOR, "pw-olga-123")
    add_user(path, "vic", "viewer", "pw-vic-1234")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    users = load_users(path)
    assert {u.name: u.role for u in users.values()} == {"olga": Role.OPERATOR,
                                                         "vic": Role.VIEWER}
    assert "pw-olga" not in path.read_text()
    assert "scrypt$" not in repr(users["olga"])  # the hash is a secret too
    with pytest.raises(AuthError, match="exists"):
        add_user(path, "olga", "viewer", "another-pass")
    add_user(path, "olga", "viewer", "another-pass", replace=True)
    assert load_users(path)["olga"].role is Role.VIEWER
    assert authenticate(load_users(path), "olga", "another-pass") is not None


def test_missing_file_means_no_users_and_bad_files_say_why(tmp_path: Path) -> None:
    assert load_users(tmp_path / "none.toml") == {}
    bad = tmp_path / "bad.toml"
    bad.write_text('[users.x]\nrole = "admin"\nhash = "h"\n')
    with pytest.raises(AuthError, match="viewer or operator"):
        load_users(bad)
    bad.write_text("not toml [")
    with pytest.raises(AuthError, match="cannot read"):
        load_users(bad)


@pytest.mark.parametrize("name", ["", "a b", "x;rm", "é", "a" * 101])
def test_user_names_are_plain(tmp_path: Path, name: str) -> None:
    with pytest.raises(AuthError):
        add_user(tmp_path / "u.toml", name, "viewer", "password-1")


def test_authenticate(tmp_path: Path) -> None:
    path = tmp_path / "u.toml"
    add_user(path, "olga", "operator", "pw-olga-123")
    users = load_users(path)
    assert authenticate(users, "olga", "pw-olga-123") == User("olga", Role.OPERATOR, "local")
    assert authenticate(users, "olga", "wrong") is None
    assert authenticate(users, "nobody", "pw-olga-123") is None


def test_rights() -> None:
    assert not any(can(Role.VIEWER, a) for a in Action)
    assert all(can(Role.OPERATOR, a) for a in Action)
    assert not can(None, Action.APPROVE)
    assert User("v", Role.VIEWER).can(Action.APPROVE) is False


def test_oidc_roles() -> None:
    ops = ["Boss@Example.org"]
    assert oidc_role("boss@example.org", ops, "viewer") is Role.OPERATOR
    assert oidc_role("someone@example.org", ops, "viewer") is Role.VIEWER
    assert oidc_role("someone@example.org", ops, "none") is None
    assert oidc_role(None, ops, "none") is None


def test_session_expiry() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    assert session_expired(None, now, 30)
    assert not session_expired(now - dt.timedelta(minutes=29), now, 30)
    assert session_expired(now - dt.timedelta(minutes=31), now, 30)


def test_login_throttle_per_name_and_window() -> None:
    from watchtower.dashboards.auth import LoginThrottle

    throttle = LoginThrottle(max_failures=3, window=60)
    for t in (0.0, 1.0, 2.0):
        assert not throttle.blocked("olga", t)
        throttle.failed("olga", t)
    assert throttle.blocked("olga", 3.0)
    assert not throttle.blocked("vic", 3.0)  # other names are not affected
    assert not throttle.blocked("olga", 61.0)  # the window slid past the first failure
    throttle.failed("vic", 5.0)
    throttle.succeeded("vic")
    assert throttle._failures.get("vic") is None
