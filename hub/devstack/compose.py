"""The secrets of docker-compose.yml's deployment, made before `docker compose up` (`hub dev compose-secrets`).

Compose mounts each file at /run/secrets/<name> in the services that list it, so every service sees its own
password and nothing else. The folder (default `.hub/compose-secrets`, git-ignored) is mode 0700 and its files
0600; run again, it keeps what exists (passwords, CA) and adds only what is missing, so the servers' data made
with the old passwords stays usable. What is in it:

- `ca.pem`, `ca-key.pem`: the deployment's own CA; every client trusts `ca.pem` alone.
- `broker-keystore.pem` (and `broker.pem`, `broker-key.pem`): the Kafka broker's key, certificate and the CA in
  the one PEM file the broker reads. Its subject is CN=admin, so that the broker's own connection to its
  controller listener is the super user; its names are `kafka` (the compose service), localhost and 127.0.0.1.
- `postgres.pem`, `postgres-key.pem`: the database server's certificate (names `postgres`, localhost, 127.0.0.1).
- `kafka-<principal>`: the SCRAM-SHA-512 password of each Kafka principal (hub.acl.principals).
- `pg-<role>`: the password of each database login role (hub.db), and `pg-postgres` of the server's superuser.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hub.acl import principals as hub_principals
from hub.config import PROJECT_ROOT, Settings
from hub.db import AUDITOR, roles_of, services_of
from hub.devstack.state import StackError
from hub.devstack.tls import LocalCA

DEFAULT_FOLDER = PROJECT_ROOT / ".hub" / "compose-secrets"  # where docker-compose.yml's `secrets:` point

BROKER = "broker"  # the files' stem; not `kafka-`, which names the principals' password files
BROKER_COMMON_NAME = "admin"  # what ssl.principal.mapping.rules makes of the certificate: User:admin
BROKER_HOSTS = ("kafka", "localhost", "127.0.0.1")
POSTGRES = "postgres"
POSTGRES_HOSTS = ("postgres", "localhost", "127.0.0.1")
CHECK = "check"  # the agency-check service's certificate
CHECK_HOSTS = ("agency-check", "localhost", "127.0.0.1")
WEB = "web"  # the web service's certificate
WEB_HOSTS = ("web", "localhost", "127.0.0.1")
SUPERUSER = "postgres"  # the PostgreSQL image's POSTGRES_USER
_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")  # safe in a file name, `--add-scram [name=...]` and a JAAS line
_PASSWORD = re.compile(r"[A-Za-z0-9_-]+")  # URL-safe: the broker's format-time `--add-scram` syntax cannot take commas


@dataclass
class Outcome:
    """What a run did: the files it wrote (made or renewed) and the ones it left as they were."""

    folder: Path
    made: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def make_for(settings: Settings, folder: Path = DEFAULT_FOLDER) -> Outcome:
    """The hub's secrets: every Kafka principal of infra/kafka/acls.toml and HUB_AGENCIES, and every service's
    database roles, the auditor's and the superuser's."""
    services = services_of(settings)
    roles = list(dict.fromkeys([AUDITOR, *(role for service in services for role in roles_of(service))]))
    return make_secrets(folder, hub_principals(settings), roles)


def make_secrets(folder: Path, principals: Iterable[str], roles: Iterable[str]) -> Outcome:
    """Write what is missing in `folder`: the CA, the servers' certificates, a password file per Kafka principal
    and per database role (plus the superuser's). Existing passwords are never replaced; certificates are
    issued again only when LocalCA would (other names, near their end)."""
    if folder.exists() and folder.stat().st_mode & 0o077:
        raise StackError(f"{folder} is open to others (mode {folder.stat().st_mode & 0o7777:o}): give a private folder")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)  # whatever the umask
    before = _contents(folder)
    ca = LocalCA(folder).ensure()
    ca.keystore(ca.issue(BROKER, BROKER_COMMON_NAME, hosts=BROKER_HOSTS), folder / f"{BROKER}-keystore.pem")
    ca.issue(POSTGRES, POSTGRES, hosts=POSTGRES_HOSTS)
    ca.issue(CHECK, CHECK, hosts=CHECK_HOSTS)
    ca.issue(WEB, WEB, hosts=WEB_HOSTS)
    for principal in dict.fromkeys(principals):
        _password(folder, "kafka", principal)
    for role in dict.fromkeys([SUPERUSER, *roles]):
        _password(folder, "pg", role)
    outcome = Outcome(folder)
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        path.chmod(0o600)  # certificates too: compose mounts each file as it is, and the containers read as root
        changed = before.get(path.name) != path.read_bytes()
        (outcome.made if changed else outcome.kept).append(path.name)
    return outcome


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _password(folder: Path, kind: str, name: str) -> None:
    """A new random password in `<kind>-<name>` unless the file exists; an existing one must be usable as is.
    Written aside and linked into place, so a file of that name is always a whole password."""
    if not _NAME.fullmatch(name):
        raise StackError(f"{name!r} cannot have a password file in {folder} (letters, digits, . _ - only)")
    path = folder / f"{kind}-{name}"
    if path.exists():
        if not _PASSWORD.fullmatch(path.read_text(encoding="utf-8").strip()):
            raise StackError(
                f"{path}: the password must be non-empty and URL-safe (letters, digits, _ -), as the broker's "
                "--add-scram takes it; delete the file to have a new one made"
            )
        return
    tmp = folder / f".{path.name}.tmp"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secrets.token_urlsafe(24))
    try:
        os.link(tmp, path)  # fails if another run made it meanwhile: theirs is kept
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
