"""API keys of the systems that call an agency's check service (a ticketing system, a loan desk).

A key is shown once, when it is made: `hubk_<key id>_<secret>`. The database keeps the key id, the calling
system's name (every interception made with the key names it as its channel), an optional rate limit and
the SHA-256 of the secret: the secret is 256 random bits, so a fast digest is as safe as a slow one and a
check pays microseconds for it. Revoking keeps the row, so the interceptions it made still say whose they were.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, text

PREFIX = "hubk"
_KEY = re.compile(rf"^{PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{43}})$")
_SYSTEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


class ApiKeyError(ValueError):
    """A system name or key id that cannot be used (the message says why)."""


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    system: str
    secret_sha256: str
    rate_per_second: float | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_system(system: str) -> str:
    if not _SYSTEM.match(system):
        raise ApiKeyError(
            f"system {system!r}: 1 to 64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
        )
    return system


def add(conn: Connection, system: str, rate_per_second: float | None = None) -> tuple[ApiKey, str]:
    """A new key for `system`; returns it with the full key, which is never stored and never shown again."""
    check_system(system)
    if rate_per_second is not None and rate_per_second <= 0:
        raise ApiKeyError(f"rate {rate_per_second:g}: give a positive number of questions per second")
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    row = conn.execute(
        text(
            "insert into api_keys (key_id, system, secret_sha256, rate_per_second) values (:k, :s, :h, :r) "
            "returning created_at"
        ),
        {"k": key_id, "s": system, "h": _digest(secret), "r": rate_per_second},
    ).one()
    return ApiKey(key_id, system, _digest(secret), rate_per_second, row.created_at), f"{PREFIX}_{key_id}_{secret}"


def listed(conn: Connection) -> list[ApiKey]:
    rows = conn.execute(
        text(
            "select key_id, system, secret_sha256, rate_per_second, created_at, revoked_at from api_keys "
            "order by created_at, key_id"
        )
    )
    return [ApiKey(*row) for row in rows]


def revoke(conn: Connection, key_id: str) -> ApiKey:
    """Revoke a key by its id (the part after `hubk_`, or the whole key); revoking twice is no error."""
    match = _KEY.match(key_id)
    key_id = match.group(1) if match else key_id
    row = conn.execute(
        text(
            "update api_keys set revoked_at = coalesce(revoked_at, now()) where key_id = :k "
            "returning key_id, system, secret_sha256, rate_per_second, created_at, revoked_at"
        ),
        {"k": key_id},
    ).one_or_none()
    if row is None:
        raise ApiKeyError(f"no key {key_id!r}: `hub agency keys list` shows the key ids")
    return ApiKey(*row)


class KeyRing:
    """The keys in force, as a check service holds them in memory: a lookup by id and one digest per request."""

    def __init__(self, keys: list[ApiKey] | None = None):
        self._by_id = {k.key_id: k for k in keys or () if k.revoked_at is None}

    def __len__(self) -> int:
        return len(self._by_id)

    def verify(self, presented: str) -> ApiKey | None:
        match = _KEY.match(presented)
        if match is None:
            return None
        key = self._by_id.get(match.group(1))
        if key is None or not hmac.compare_digest(key.secret_sha256, _digest(match.group(2))):
            return None
        return key
