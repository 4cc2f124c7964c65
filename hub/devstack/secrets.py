"""The local stack's secrets: `<state_dir>/secrets` (mode 0700), never printed and never leaving the state folder.

- `ca.pem`, `ca-key.pem`: the local CA (hub.devstack.tls); clients trust `ca.pem` alone.
- `kafka.pem`, `kafka-key.pem`, `kafka-keystore.pem`: the broker's certificate (CN=admin, so that the broker's
  own connection to its controller authenticates as the super user), its key, and both with the CA in the one
  PEM file the broker reads.
- `kafka-users.json`: {principal: password} for SASL/SCRAM-SHA-512, mode 0600. `hub dev up` formats the broker
  with these, and later principals (a new agency or court) are added at run time
  (hub.devstack.kafka.ensure_scram_users).
- `postgres.pem`, `postgres-key.pem`: the database server's certificate and key (copied into its data folder,
  which its server user owns).
- `postgres-users.json`: {role: password} of the database's login roles (hub.db.provision makes the roles).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets as _random
from collections.abc import Iterable, Iterator
from pathlib import Path

from hub.devstack.state import StackError
from hub.devstack.tls import LocalCA

BROKER_CERT = "kafka"
BROKER_COMMON_NAME = "admin"  # the principal the controller listener maps the broker's certificate to
USERS_FILE = "kafka-users.json"
POSTGRES_USERS_FILE = "postgres-users.json"
POSTGRES_CERT = "postgres"
_PRINCIPAL = re.compile(r"[A-Za-z0-9._-]{1,128}")  # safe in `--add-scram [name=...]` and in a JAAS line


def secrets_dir(state_dir: Path) -> Path:
    """The folder (it may not exist yet: `ensure_secrets_dir` makes it)."""
    return state_dir / "secrets"


def ensure_secrets_dir(state_dir: Path) -> Path:
    folder = secrets_dir(state_dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)
    return folder


def ca_file(state_dir: Path) -> Path:
    """The CA certificate (PEM) that clients of the local stack must trust; made by `hub dev up`."""
    return secrets_dir(state_dir) / "ca.pem"


def local_ca(state_dir: Path) -> LocalCA:
    """The local CA, made on first use and kept."""
    return LocalCA(ensure_secrets_dir(state_dir)).ensure()


def broker_keystore(state_dir: Path) -> Path:
    """The broker's keystore PEM (unencrypted PKCS#8 key, its certificate, the CA), made or renewed as needed."""
    ca = local_ca(state_dir)
    issued = ca.issue(BROKER_CERT, BROKER_COMMON_NAME, hosts=("127.0.0.1", "localhost"))
    return ca.keystore(issued, secrets_dir(state_dir) / f"{BROKER_CERT}-keystore.pem")


def postgres_certificate(state_dir: Path) -> tuple[Path, Path]:
    """The database server's certificate and key (PEM), made or renewed as needed."""
    issued = local_ca(state_dir).issue(POSTGRES_CERT, "postgres", hosts=("127.0.0.1", "localhost"))
    return issued.cert, issued.key


def check_certificate(state_dir: Path) -> tuple[Path, Path]:
    """The check services' certificate and key (PEM) on the local stack, made or renewed as needed."""
    issued = local_ca(state_dir).issue("check", "check", hosts=("127.0.0.1", "localhost"))
    return issued.cert, issued.key


def web_certificate(state_dir: Path) -> tuple[Path, Path]:
    """The web server's certificate and key (PEM) on the local stack, made or renewed as needed."""
    issued = local_ca(state_dir).issue("web", "web", hosts=("127.0.0.1", "localhost"))
    return issued.cert, issued.key


def users_file(state_dir: Path, name: str = USERS_FILE) -> Path:
    return secrets_dir(state_dir) / name


def kafka_users(state_dir: Path) -> dict[str, str]:
    """Every {principal: password} known so far; {} when the file does not exist yet."""
    return _passwords(state_dir, USERS_FILE)


def _passwords(state_dir: Path, name: str) -> dict[str, str]:
    path = users_file(state_dir, name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StackError(f"{path}: cannot read the passwords: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise StackError(f"{path}: expected a JSON object of name to password")
    return data


def postgres_password(state_dir: Path, role: str) -> str:
    """The password of a login role of the local database."""
    return _password(
        state_dir,
        POSTGRES_USERS_FILE,
        role,
        f"database role {role!r}",
        "`hub dev up` makes one for every service's roles",
    )


def ensure_postgres_users(state_dir: Path, roles: Iterable[str]) -> dict[str, str]:
    """Give each database role without a password a new one (existing ones are kept); returns the whole map."""
    return _ensure_users(state_dir, roles, POSTGRES_USERS_FILE, "database role")


def kafka_password(state_dir: Path, principal: str) -> str:
    """The SCRAM password of `principal` on the local broker."""
    return _password(
        state_dir,
        USERS_FILE,
        principal,
        f"Kafka principal {principal!r}",
        "`hub dev up` (and `hub acl apply`) create one for each principal of infra/kafka/acls.toml and HUB_AGENCIES",
    )


def _password(state_dir: Path, file: str, name: str, what: str, remedy: str) -> str:
    path = users_file(state_dir, file)
    if not path.exists():
        raise StackError(f"no password for {what}: {path} does not exist; run `hub dev up` to make it")
    password = _passwords(state_dir, file).get(name)
    if password is None:
        raise StackError(f"no password for {what} in {path}: {remedy}")
    return password


def ensure_kafka_users(state_dir: Path, principals: Iterable[str]) -> dict[str, str]:
    """Give each principal without a password a new one (existing ones are kept); returns the whole map."""
    return _ensure_users(state_dir, principals, USERS_FILE, "Kafka principal")


def _ensure_users(state_dir: Path, names: Iterable[str], file: str, what: str) -> dict[str, str]:
    wanted = list(names)
    for name in wanted:
        if not _PRINCIPAL.fullmatch(name):
            raise StackError(f"{name!r} cannot be a {what} of the local stack (letters, digits, . _ -)")
    with _users_lock(state_dir, file):
        users = _passwords(state_dir, file)
        missing = [p for p in dict.fromkeys(wanted) if p not in users]
        if missing:
            # URL-safe characters only: the broker's format-time `--add-scram` syntax cannot take commas.
            users.update({p: _random.token_urlsafe(24) for p in missing})
            _write_private(users_file(state_dir, file), json.dumps(dict(sorted(users.items())), indent=2) + "\n")
        return users


@contextlib.contextmanager
def _users_lock(state_dir: Path, file: str) -> Iterator[None]:
    """`hub dev up` and `hub acl apply` may run at once: one of them makes a missing password, the other reads it."""
    lock = ensure_secrets_dir(state_dir) / f"{file}.lock"
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)
    tmp.replace(path)
