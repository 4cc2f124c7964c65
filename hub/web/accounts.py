"""The oversight desk's accounts and sessions, in the web server's own database.

Passwords are kept as Argon2id hashes (argon2-cffi, rehashed on login when its parameters change); a session
is a random cookie of which only the SHA-256 is stored, with a CSRF token of its own, and it ends after
HUB_WEB_SESSION_IDLE_MINUTES without a request or HUB_WEB_SESSION_HOURS after the login. Disabling an
account ends its sessions at once. A court account sees its own court's entries only (hub/web/desk.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, text

from hub.config import Settings
from hub.db import MIGRATION_CHAINS, WEB, open_owned

USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{2,63}$")
MIN_PASSWORD = 12
_hasher = PasswordHasher()
# Verifying against this when the user is unknown makes a wrong name cost as long as a wrong password.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """A refused account change, said so that the one who asked can correct it."""


@dataclass(frozen=True)
class Account:
    username: str
    kind: str  # auditor | court
    court_code: str | None
    created_at: dt.datetime
    disabled_at: dt.datetime | None

    def sees(self, court_code: str) -> bool:
        return self.kind == "auditor" or self.court_code == court_code

    @property
    def label(self) -> str:
        return "审计员 auditor" if self.kind == "auditor" else f"法院 court {self.court_code}"


@dataclass(frozen=True)
class Session:
    account: Account
    csrf: str
    expires_at: dt.datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_database(settings: Settings, *, forever: bool = False) -> Engine:
    """The web server's database as its owner, migrated if need be (see hub.db.open_owned)."""
    return open_owned(settings, WEB, *MIGRATION_CHAINS[WEB], forever=forever)


class Accounts:
    def __init__(self, db: Engine, idle: dt.timedelta, lifetime: dt.timedelta):
        self.db, self.idle, self.lifetime = db, idle, lifetime

    @classmethod
    def for_settings(cls, settings: Settings, db: Engine) -> Accounts:
        return cls(
            db, dt.timedelta(minutes=settings.web_session_idle_minutes), dt.timedelta(hours=settings.web_session_hours)
        )

    # -- administration (hub web accounts) -------------------------------------------------------

    def add(self, username: str, kind: str, court_code: str | None, password: str) -> Account:
        if not USERNAME.match(username):
            raise AccountError(f"{username!r}: a user name is 3-64 of a-z 0-9 _ . -, starting with a letter")
        if kind not in ("auditor", "court") or (kind == "court") != bool(court_code):
            raise AccountError("an account is either an auditor (--auditor) or a court's (--court CODE)")
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"the password is too short: at least {MIN_PASSWORD} characters")
        with self.db.begin() as conn:
            if conn.execute(text("select 1 from accounts where username = :u"), {"u": username}).first():
                raise AccountError(f"account {username!r} exists already (hub web accounts list)")
            conn.execute(
                text("insert into accounts (username, kind, court_code, password_hash) values (:u, :k, :c, :h)"),
                {"u": username, "k": kind, "c": court_code, "h": _hasher.hash(password)},
            )
        account = self.get(username)
        assert account is not None
        return account

    def disable(self, username: str) -> Account:
        with self.db.begin() as conn:
            changed = conn.execute(
                text("update accounts set disabled_at = coalesce(disabled_at, now()) where username = :u"),
                {"u": username},
            ).rowcount
            if not changed:
                raise AccountError(f"no account {username!r} (hub web accounts list)")
            conn.execute(text("delete from sessions where username = :u"), {"u": username})
        account = self.get(username)
        assert account is not None
        return account

    def get(self, username: str) -> Account | None:
        with self.db.connect() as conn:
            row = conn.execute(
                text("select username, kind, court_code, created_at, disabled_at from accounts where username = :u"),
                {"u": username},
            ).first()
        return None if row is None else Account(*row)

    def list(self) -> list[Account]:
        with self.db.connect() as conn:
            rows = conn.execute(
                text("select username, kind, court_code, created_at, disabled_at from accounts order by username")
            ).all()
        return [Account(*r) for r in rows]

    # -- the desk's login ------------------------------------------------------------------------

    def login(self, username: str, password: str, now: dt.datetime) -> tuple[str, Session] | None:
        """A new session's cookie value and the session, or None (unknown, disabled or wrong: not said which)."""
        with self.db.begin() as conn:
            row = conn.execute(
                text("select password_hash, disabled_at from accounts where username = :u"), {"u": username}
            ).first()
            try:
                _hasher.verify(row.password_hash if row else _DUMMY, password)
            except (VerificationError, InvalidHashError):
                return None
            if row is None or row.disabled_at is not None:
                return None
            if _hasher.check_needs_rehash(row.password_hash):
                conn.execute(
                    text("update accounts set password_hash = :h where username = :u"),
                    {"h": _hasher.hash(password), "u": username},
                )
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            expires = now + min(self.idle, self.lifetime)
            conn.execute(text("delete from sessions where expires_at < :now"), {"now": now})
            conn.execute(
                text(
                    "insert into sessions (token_sha256, username, csrf, created_at, seen_at, expires_at) "
                    "values (:t, :u, :c, :now, :now, :e)"
                ),
                {"t": _digest(token), "u": username, "c": csrf, "now": now, "e": expires},
            )
        session = self.session(token, now)
        assert session is not None
        return token, session

    def session(self, token: str | None, now: dt.datetime) -> Session | None:
        """The live session of a cookie, its idle time renewed; None when there is none or it has ended."""
        if not token:
            return None
        with self.db.begin() as conn:
            row = conn.execute(
                text(
                    "update sessions s set seen_at = :now, "
                    "expires_at = least(s.created_at + :lifetime, cast(:now as timestamptz) + :idle) "
                    "from accounts a where s.token_sha256 = :t and a.username = s.username "
                    "and s.expires_at > :now and a.disabled_at is null "
                    "returning a.username, a.kind, a.court_code, a.created_at, a.disabled_at, s.csrf, s.expires_at"
                ),
                {"t": _digest(token), "now": now, "lifetime": self.lifetime, "idle": self.idle},
            ).first()
        if row is None:
            return None
        return Session(Account(*row[:5]), row.csrf, row.expires_at)

    def logout(self, token: str | None) -> None:
        if token:
            with self.db.begin() as conn:
                conn.execute(text("delete from sessions where token_sha256 = :t"), {"t": _digest(token)})
