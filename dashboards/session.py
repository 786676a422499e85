"""The login gate every page passes through: OIDC when configured, else local users.

- OIDC: Streamlit's `st.login` handles the redirect dance with the provider named in the
  Streamlit secrets file; watchtower maps the e-mail to a role (`[dashboard.oidc] operators`).
- Local: a name and password checked against the users file (`watchtower dashboard-user add`).
  After a few wrong passwords for one name (in any session of the process) that name must wait
  a few minutes, which slows guessing down without locking out the real person for long.
- Removed or changed local users: every run re-reads the user's entry, so `dashboard-user
  remove` signs them out at their next page load and a new role applies at once.
- Idle timeout: each rerun stamps the time; a session idle longer than `session_minutes` is
  signed out (and audited) before anything is shown.
The signed-in user lives in `st.session_state`, which is per browser session and never leaves
the server; no password or hash is ever put there or shown.
"""

from __future__ import annotations

import datetime as dt
import time

import streamlit as st

from watchtower.model import utcnow

from .actions import record_failed_login, record_login, record_logout
from .auth import (
    AuthError,
    LoginThrottle,
    User,
    authenticate,
    load_users,
    oidc_role,
    session_expired,
)
from .context import AppContext

USER_KEY = "wt_user"
LAST_KEY = "wt_last_activity"
MAX_FAILURES = 5  # wrong passwords per user name ...
THROTTLE_SECONDS = 300  # ... within this window, after which the name waits out the window


@st.cache_resource(show_spinner=False)
def _throttle() -> LoginThrottle:
    """One throttle for the whole process: a new browser tab does not reset it."""
    return LoginThrottle(max_failures=MAX_FAILURES, window=THROTTLE_SECONDS)


def gate(app: AppContext) -> User:
    """The signed-in user, or render the sign-in page and stop the script."""
    now = utcnow()
    user: User | None = st.session_state.get(USER_KEY)
    minutes = app.fleet.dashboard.session_minutes
    if user is not None and session_expired(st.session_state.get(LAST_KEY), now, minutes):
        sign_out(app, f"idle for more than {minutes:g} minutes")
        st.session_state["wt_notice"] = (f"Your session expired after {minutes:g} idle "
                                         "minutes. Please sign in again.")
        user = None
    if user is not None and user.source == "local":
        user = _as_in_users_file(app, user)
    if user is None and app.fleet.dashboard.oidc is not None:
        user = _oidc_user(app)
    if user is None:
        _login_page(app)
        st.stop()
    assert user is not None
    st.session_state[USER_KEY] = user
    st.session_state[LAST_KEY] = now
    return user


def sign_out(app: AppContext, why: str) -> None:
    user: User | None = st.session_state.pop(USER_KEY, None)
    st.session_state.pop(LAST_KEY, None)
    if user is not None:
        record_logout(app.store, user, why)
        if user.source == "oidc" and getattr(st.user, "is_logged_in", False):
            st.logout()


def _as_in_users_file(app: AppContext, user: User) -> User | None:
    """A local user as the users file says now: removed (`dashboard-user remove`) is signed
    out, a changed role takes effect; read on every run, so no session outlives its entry."""
    users_file = app.fleet.dashboard.users_file
    try:
        entry = load_users(users_file).get(user.name) if users_file else None
    except AuthError:
        entry = None  # an unreadable file signs nobody in; the login page says why
    if entry is None:
        sign_out(app, "no longer in the users file")
        st.session_state["wt_notice"] = "Your account was removed. Ask an administrator."
        return None
    return user if entry.role == user.role else User(user.name, entry.role, user.source)


def _oidc_user(app: AppContext) -> User | None:
    oidc = app.fleet.dashboard.oidc
    assert oidc is not None
    if not getattr(st.user, "is_logged_in", False):
        return None
    email = st.user.get("email")
    role = oidc_role(str(email) if email else None, oidc.operators, oidc.default_role)
    if role is None:
        st.error(f"{email} may not use this dashboard. Ask an administrator to add you.")
        if st.button("Sign out"):
            st.logout()
        st.stop()
    assert role is not None
    user = User(str(email or st.user.get("sub") or "unknown"), role, "oidc")
    record_login(app.store, user)
    return user


def _login_page(app: AppContext) -> None:
    _, middle, _ = st.columns([1, 1.2, 1])
    with middle:
        st.title("🗼 watchtower")
        st.caption("Fleet monitoring, compliance and remediation")
        notice = st.session_state.pop("wt_notice", None)
        if notice:
            st.info(notice)
        oidc = app.fleet.dashboard.oidc
        if oidc is not None:
            if st.button("Sign in with your organisation's account", type="primary"):
                if oidc.provider:
                    st.login(oidc.provider)
                else:
                    st.login()
            if not app.fleet.dashboard.users_file:
                return
            st.divider()
            st.caption("or with a local account")
        if not app.fleet.dashboard.users_file:
            st.error("No users are configured: set `[dashboard] users_file` in the fleet file "
                     "and create one with `watchtower dashboard-user add NAME --role operator "
                     "--users-file FILE`.")
            return
        _local_form(app)


def _local_form(app: AppContext) -> None:
    with st.form("login", clear_on_submit=False):
        name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    name = name.strip()
    throttle = _throttle()
    if throttle.blocked(name, time.monotonic()):
        record_failed_login(app.store, name, "throttled")
        st.error("Too many wrong passwords. Wait a few minutes and try again.")
        return
    users_file = app.fleet.dashboard.users_file
    assert users_file is not None
    try:
        users = load_users(users_file)
    except AuthError as exc:
        st.error(str(exc))
        return
    user = authenticate(users, name, password)
    if user is None:
        throttle.failed(name, time.monotonic())
        record_failed_login(app.store, name)
        st.error("Wrong user name or password.")
        return
    throttle.succeeded(name)
    st.session_state[USER_KEY] = user
    st.session_state[LAST_KEY] = utcnow()
    st.session_state.pop("login_password", None)
    record_login(app.store, user)
    st.rerun()


def idle_left(app: AppContext) -> dt.timedelta:
    last = st.session_state.get(LAST_KEY) or utcnow()
    return last + dt.timedelta(minutes=app.fleet.dashboard.session_minutes) - utcnow()
