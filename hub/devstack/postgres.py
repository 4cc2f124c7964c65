"""A private PostgreSQL 15 cluster for the checkout, run as an unprivileged user when we are root.

It speaks TLS only (a certificate from the local CA, hub.devstack.secrets) and SCRAM-SHA-256 only: its
pg_hba.conf has one `hostssl` line and nothing else, so a plaintext or password-less connection finds no
entry and is refused. The superuser (`pg_user` of stack.json) is the stack's administrator: it makes the
services' roles and databases (hub.db.provision) and nothing runs as it."""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

from hub.devstack.secrets import ca_file, postgres_certificate
from hub.devstack.state import StackError, port_in_use, tail

SERVER_USER = "postgres"


def find_bindir() -> Path:
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if result.returncode == 0:
            candidates.append(Path(result.stdout.strip()))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    raise StackError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found in `pg_config --bindir` or /usr/lib/postgresql/*/bin; "
        "install them (apt install postgresql-15) or set HUB_DATABASE_URL to an existing server"
    )


class LocalPostgres:
    def __init__(self, state_dir: Path, port: int, user: str, password: str):
        self.state_dir = state_dir
        self.port = port
        self.user = user
        self.password = password
        self.as_root = os.geteuid() == 0
        self.home = self._home()
        self.data = self.home / "data"
        self.log = self.home / "postgres.log"

    def _home(self) -> Path:
        """Inside the checkout when the server user can reach it, else a per-checkout folder in /tmp.

        PostgreSQL refuses to run as root, and a checkout under a private folder (mktemp -d) is not
        reachable by the `postgres` user.
        """
        inside = self.state_dir / "postgres"
        if not self.as_root:
            return inside
        pointer = self.state_dir / "postgres.home"
        if pointer.exists():
            return Path(pointer.read_text().strip())
        inside.mkdir(parents=True, exist_ok=True)
        self._chown(inside)
        if self._run_as_server(["test", "-w", str(inside)]).returncode == 0:
            home = inside
        else:
            digest = hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:12]
            home = Path("/tmp") / f"hub-postgres-{digest}"
            home.mkdir(mode=0o700, exist_ok=True)
            self._chown(home)
        pointer.write_text(str(home))
        return home

    def _chown(self, path: Path) -> None:
        entry = pwd.getpwnam(SERVER_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run_as_server(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        if self.as_root:
            try:
                pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise StackError(
                    f"running as root and there is no `{SERVER_USER}` user to run PostgreSQL as "
                    "(PostgreSQL refuses to run as root); create one: useradd --system postgres"
                ) from None
            argv = ["runuser", "-u", SERVER_USER, "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, **kwargs)

    def _initdb(self, bindir: Path) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self.home.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            self._chown(self.home)
        pwfile = self.home / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self.as_root:
            self._chown(pwfile)
        try:
            result = self._run_as_server(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    self.user,
                    f"--pwfile={pwfile}",
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-locale",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise StackError(f"initdb failed in {self.data}:\n{result.stdout}{result.stderr}")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# hub dev: loopback only, own port, no Unix socket (checkout paths can be too long)\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "max_connections = 200\n"
                "shared_buffers = 256MB\n"
            )

    def _secure(self) -> None:
        """TLS with the local CA's certificate and SCRAM over TLS only, written before every start (so a
        renewed certificate is picked up, and a cluster made before TLS is brought under it)."""
        cert, key = postgres_certificate(self.state_dir)
        for source, target in ((cert, "server.crt"), (key, "server.key")):
            self._write_server_file(target, source.read_bytes())
        self._write_server_file(
            "hub-security.conf",
            b"# written by hub dev up at every start\n"
            b"ssl = on\n"
            b"ssl_cert_file = 'server.crt'\n"
            b"ssl_key_file = 'server.key'\n"
            b"ssl_min_protocol_version = 'TLSv1.2'\n"
            b"password_encryption = 'scram-sha-256'\n",
        )
        self._write_server_file(
            "pg_hba.conf",
            b"# written by hub dev up: TLS and SCRAM-SHA-256 from loopback, nothing else\n"
            b"hostssl all all 127.0.0.1/32 scram-sha-256\n",
        )
        conf = self.data / "postgresql.conf"
        if "include_if_exists = 'hub-security.conf'" not in conf.read_text():
            with open(conf, "a") as out:
                out.write("\ninclude_if_exists = 'hub-security.conf'\n")

    def _write_server_file(self, name: str, data: bytes) -> None:
        path = self.data / name
        if path.exists() and path.read_bytes() == data:
            return
        tmp = path.with_name(name + ".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        if self.as_root:
            self._chown(tmp)
        tmp.replace(path)

    def running(self) -> bool:
        if not (self.data / "PG_VERSION").exists():
            return False
        bindir = find_bindir()
        return self._run_as_server([str(bindir / "pg_ctl"), "-D", str(self.data), "status"]).returncode == 0

    def start(self, timeout: float = 60.0) -> bool:
        bindir = find_bindir()
        self._initdb(bindir)
        self._secure()
        if self.running():
            self.wait_ready(timeout)
            return False
        if port_in_use(self.port):
            raise StackError(
                f"port {self.port} of the local PostgreSQL is taken by another process; stop it, "
                f"or edit pg_port in {self.state_dir / 'stack.json'}"
            )
        result = self._run_as_server(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                str(int(timeout)),
                "-o",
                f"-p {self.port}",
                "start",
            ]
        )
        if result.returncode != 0:
            raise StackError(f"PostgreSQL did not start:\n{result.stdout}{result.stderr}\n{tail(self.log)}")
        self.wait_ready(timeout)
        return True

    def url(self, database: str = "postgres") -> str:
        """The superuser's libpq URL, verifying the server's certificate."""
        return (
            f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"
            f"?sslmode=verify-full&sslrootcert={ca_file(self.state_dir)}"
        )

    def tls(self) -> str | None:
        """What the server's TLS is, as a client sees it ("TLSv1.3, TLS_AES_256_GCM_SHA384"), None when off."""
        import psycopg

        try:
            with psycopg.connect(self.url(), connect_timeout=2) as conn:
                row = conn.execute("select version, cipher from pg_stat_ssl where pid = pg_backend_pid()").fetchone()
        except psycopg.Error:
            return None
        return f"{row[0]}, {row[1]}" if row and row[0] else None

    def wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2) as conn:
                    conn.execute("select 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise StackError(
                        f"PostgreSQL did not answer on port {self.port}: {exc}\n{tail(self.log)}"
                    ) from None
                time.sleep(0.2)

    def answers(self) -> bool:
        try:
            self.wait_ready(timeout=0)
            return True
        except StackError:
            return False

    def stop(self) -> bool:
        if not self.running():
            return False
        bindir = find_bindir()
        result = self._run_as_server([str(bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
        if result.returncode != 0:
            raise StackError(f"PostgreSQL did not stop:\n{result.stdout}{result.stderr}")
        return True
