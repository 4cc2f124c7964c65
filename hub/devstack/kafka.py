"""The real Apache Kafka 4.x broker, single node in KRaft combined mode, from Maven Central jars.

It is secured as a shared cluster would be: the client listener speaks SASL_SSL with SCRAM-SHA-512 only, the
controller listener speaks TLS with client certificates required, and the StandardAuthorizer denies whatever
infra/kafka/acls.toml does not grant (`admin` is the only super user). Certificates and passwords live in
`<state>/secrets` (hub.devstack.secrets).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from hub.config import PROJECT_ROOT
from hub.devstack import maven
from hub.devstack.secrets import (
    broker_keystore,
    ca_file,
    ensure_kafka_users,
    kafka_password,
    kafka_users,
    users_file,
)
from hub.devstack.state import StackError, pid_alive, port_in_use, read_pid, tail, terminate

POM = PROJECT_ROOT / "infra" / "kafka" / "pom.xml"
LOG4J2 = PROJECT_ROOT / "infra" / "kafka" / "log4j2.properties"
MAIN_CLASS = "kafka.Kafka"
ADMIN = "admin"  # the super user (hub.acl.ADMIN); the broker's own certificate maps to it too
MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 8192
_VERSION_LINE = re.compile(r"Kafka version: (\S+)")


def admin_client_config(bootstrap: str, state_dir: Path) -> dict:
    """librdkafka settings of the local stack's admin: SASL_SSL, SCRAM-SHA-512, trusting the local CA only."""
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": MECHANISM,
        "sasl.username": ADMIN,
        "sasl.password": kafka_password(state_dir, ADMIN),
        "ssl.ca.location": str(ca_file(state_dir)),
        "log_level": 0,
        "logger": _quiet_logger(),
    }


def ensure_scram_users(bootstrap: str, state_dir: Path, principals: Iterable[str], timeout: float = 30.0) -> list[str]:
    """Give the broker a SCRAM-SHA-512 credential for each principal it does not have yet (a new agency or court),
    with the password of <state>/secrets/kafka-users.json (made there if missing). Connects as admin; credentials
    the broker already has are left as they are. Returns the principals added."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    wanted = list(dict.fromkeys(principals))
    passwords = ensure_kafka_users(state_dir, wanted)
    admin = AdminClient(admin_client_config(bootstrap, state_dir))
    try:
        described = admin.describe_user_scram_credentials(request_timeout=timeout).result(timeout=timeout)
    except KafkaException as exc:
        raise StackError(f"cannot read the SCRAM users of the Kafka broker at {bootstrap}: {exc}") from None
    missing = [
        p
        for p in wanted
        if p not in described
        or not any(i.mechanism == ScramMechanism.SCRAM_SHA_512 for i in described[p].scram_credential_infos)
    ]
    if not missing:
        return []
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    futures = admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion(p, info, passwords[p].encode()) for p in missing], request_timeout=timeout
    )
    failed = []
    for principal, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            failed.append(f"{principal}: {exc}")
    if failed:
        raise StackError(f"the Kafka broker at {bootstrap} did not take SCRAM credentials: " + "; ".join(failed))
    return missing


class LocalKafka:
    def __init__(self, state_dir: Path, port: int, controller_port: int, heap: str):
        self.state_dir = state_dir
        self.home = state_dir / "kafka"
        self.libs = self.home / "libs"
        self.data = self.home / "data"
        self.logs = self.home / "logs"
        self.properties = self.home / "server.properties"
        self.pid_file = self.home / "kafka.pid"
        self.secured_stamp = self.home / "secured-cluster-id"  # written once a format with SCRAM users succeeded
        self.port = port
        self.controller_port = controller_port
        self.heap = heap

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self) -> list[str]:
        java = shutil.which("java")
        if not java:
            raise StackError(
                "java not found on PATH: Kafka 4.x needs Java 17 or newer (e.g. apt install openjdk-17-jre)"
            )
        return [
            java,
            "-Xms256m",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.logs}",
            f"-Dlog4j2.configurationFile={LOG4J2}",
            "-cp",
            f"{self.libs}/*",
        ]

    def fetch_jars(self) -> None:
        maven.fetch_jars(POM, self.libs, "the Kafka jars")

    def _write_properties(self, keystore: Path) -> None:
        """Mode 0600: it holds the admin's password (the broker's own SCRAM login on its client listener)."""
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{ADMIN}" password="{kafka_password(self.state_dir, ADMIN)}";'
        )
        text = "\n".join(
            [
                "# Written by `hub dev up` at every start; edit hub/devstack/kafka.py instead.",
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}",
                f"listeners=CLIENT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=CLIENT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                "inter.broker.listener.name=CLIENT",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=CONTROLLER:SSL,CLIENT:SASL_SSL",
                # Clients: SCRAM-SHA-512 over TLS, nothing else.
                f"sasl.enabled.mechanisms={MECHANISM}",
                f"listener.name.client.sasl.enabled.mechanisms={MECHANISM}",
                f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
                f"listener.name.client.scram-sha-512.sasl.jaas.config={jaas}",
                # The controller: TLS with a client certificate, which only this CA issues.
                "listener.name.controller.ssl.client.auth=required",
                # One PEM keystore (unencrypted PKCS#8 key, certificate, CA) in the 0700 secrets folder.
                "ssl.keystore.type=PEM",
                f"ssl.keystore.location={keystore}",
                "ssl.truststore.type=PEM",
                f"ssl.truststore.location={ca_file(self.state_dir)}",
                "ssl.endpoint.identification.algorithm=https",
                # The broker's certificate, subject CN=admin,O=..., is User:admin on the controller listener.
                "ssl.principal.mapping.rules=RULE:^CN=([a-zA-Z0-9.-]*).*$/$1/,DEFAULT",
                "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "allow.everyone.if.no.acl.found=false",
                f"super.users=User:{ADMIN}",
                f"log.dirs={self.data}",
                "num.partitions=1",
                "auto.create.topics.enable=false",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=12",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "group.min.session.timeout.ms=1000",
                "",
            ]
        )
        tmp = self.properties.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(text)
        tmp.replace(self.properties)

    def _formatted(self) -> bool:
        return (self.data / "meta.properties").exists()

    def _cluster_id(self) -> str | None:
        try:
            lines = (self.data / "meta.properties").read_text().splitlines()
        except OSError:
            return None
        return next((line.split("=", 1)[1].strip() for line in lines if line.startswith("cluster.id=")), None)

    def problem(self) -> str | None:
        """Why this state folder cannot run the secured broker, if it cannot: its data was formatted before the
        broker had TLS and SCRAM (it has no SCRAM users: the stamp of a secured format is missing), or the admin's
        password is lost. Such data is not reused as it is."""
        if not self._formatted():
            return None
        try:
            has_admin = ADMIN in kafka_users(self.state_dir)
        except StackError as exc:
            return str(exc)
        stamp = self.secured_stamp.read_text().strip() if self.secured_stamp.exists() else None
        if has_admin and stamp is not None and stamp == self._cluster_id():
            return None
        running = ", after `hub dev down`" if self.pid() is not None else ""
        return (
            f"the Kafka data in {self.data} was made before the local broker had TLS and SCRAM users (or the "
            f"passwords of {users_file(self.state_dir)} are gone); it is not reused as a plaintext broker. Its "
            f"data is disposable: delete {self.home}{running}, or run `make clean`, and `hub dev up` starts afresh"
        )

    def _format_storage(self, principals: Sequence[str]) -> None:
        """First start only: the cluster's metadata log begins with a SCRAM-SHA-512 credential per principal.
        The tool prints salts and keys, so its output is shown only on failure (and then without passwords)."""
        if self._formatted():
            return
        users = ensure_kafka_users(self.state_dir, [ADMIN, *principals])
        java = self._java()
        cluster_id = subprocess.run(
            [*java, "kafka.tools.StorageTool", "random-uuid"], capture_output=True, text=True, check=True
        ).stdout.strip()
        scram = []
        for principal, password in sorted(users.items()):
            scram += [
                "--add-scram",
                f"{MECHANISM}=[name={principal},iterations={SCRAM_ITERATIONS},password={password}]",
            ]
        command = [
            *java,
            "kafka.tools.StorageTool",
            "format",
            "--config",
            str(self.properties),
            "--cluster-id",
            cluster_id,
            "--standalone",
        ]
        result = subprocess.run([*command, *scram], capture_output=True, text=True)
        if result.returncode != 0:
            output = result.stdout + result.stderr
            for password in users.values():
                output = output.replace(password, "***")
            raise StackError(
                f"formatting Kafka storage in {self.data} failed ({' '.join(command[-6:])} "
                f"with --add-scram for {len(users)} principals):\n{output}"
            )
        self.secured_stamp.write_text(cluster_id + "\n")

    def pid(self) -> int | None:
        pid = read_pid(self.pid_file)
        return pid if pid is not None and pid_alive(pid, str(self.properties)) else None

    def start(self, timeout: float = 120.0, principals: Sequence[str] = ()) -> bool:
        """Start unless running; True if this call started it. Returns once the broker answers (as admin).

        At first start (storage not formatted) the CA, the broker's certificate and the passwords of `principals`
        (and admin) are made in <state>/secrets and the storage is formatted with their SCRAM credentials; later
        principals are added with `ensure_scram_users`."""
        problem = self.problem()
        if problem:
            raise StackError(problem)
        if self.pid() is not None:
            self.wait_ready(timeout)
            return False
        for port in (self.port, self.controller_port):
            if port_in_use(port):
                raise StackError(
                    f"port {port} of the local Kafka is taken by another process; stop it, "
                    f"or remove {self.home.parent / 'stack.json'} and {self.data} to start afresh on new ports"
                )
        self.fetch_jars()
        for folder in (self.data, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        keystore = broker_keystore(self.state_dir)
        ensure_kafka_users(self.state_dir, [ADMIN])
        self._write_properties(keystore)
        self._format_storage(principals)
        with open(self.logs / "stdout.log", "ab") as out:
            process = subprocess.Popen(
                [*self._java(), MAIN_CLASS, str(self.properties)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        self.wait_ready(timeout, process)
        return True

    def wait_ready(self, timeout: float, process: subprocess.Popen | None = None) -> None:
        """Ready means the broker answers a metadata request of the admin over SASL_SSL, not that some time has
        passed."""
        from confluent_kafka import KafkaError
        from confluent_kafka.admin import AdminClient

        errors: list = []
        admin = AdminClient({**admin_client_config(self.bootstrap, self.state_dir), "error_cb": errors.append})
        deadline = time.monotonic() + timeout
        while True:
            if process is not None and process.poll() is not None:
                raise StackError(
                    f"Kafka exited with code {process.returncode} while starting; "
                    f"end of its logs in {self.logs}:\n"
                    f"{tail(self.logs / 'server.log')}\n{tail(self.logs / 'stdout.log')}"
                )
            try:
                metadata = admin.list_topics(timeout=2)
                if metadata.brokers:
                    return
            except Exception:
                pass
            admin.poll(0)  # delivers the client's errors (TLS, authentication) to `errors`
            refusals = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
            if len(refusals) >= 2:  # the listener opens only once SCRAM users are loaded: this is no start-up lag
                raise StackError(
                    f"Kafka on {self.bootstrap} refuses the admin's password of {users_file(self.state_dir)}: "
                    f"{refusals[-1].str()}"
                )
            if time.monotonic() > deadline:
                last = f"; the client's last error: {errors[-1].str()}" if errors else ""
                raise StackError(
                    f"Kafka did not answer the admin on {self.bootstrap} (SASL_SSL) within {timeout:.0f}s{last}; "
                    f"end of its log:\n{tail(self.logs / 'server.log')}"
                )
            time.sleep(0.3)

    def answers(self) -> bool:
        try:
            self.wait_ready(timeout=3)
            return True
        except StackError:
            return False

    def security(self) -> str | None:
        """What the running broker says of its client listener, e.g. 'listener SASL_SSL (SCRAM-SHA-512),
        authorizer on'; None if it does not answer the admin."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

        try:
            admin = AdminClient(admin_client_config(self.bootstrap, self.state_dir))
            resource = ConfigResource(ResourceType.BROKER, "1")
            configs = admin.describe_configs([resource], request_timeout=5)[resource].result(timeout=6)
        except (StackError, KafkaException):
            return None

        def value(name: str) -> str:
            entry = configs.get(name)
            return (entry.value or "") if entry is not None else ""

        protocols = dict(item.split(":", 1) for item in value("listener.security.protocol.map").split(",") if item)
        name = next(
            (item.split("://")[0] for item in value("listeners").split(",") if item.endswith(f":{self.port}")), ""
        )
        mechanisms = value(f"listener.name.{name.lower()}.sasl.enabled.mechanisms") or value("sasl.enabled.mechanisms")
        protocol = protocols.get(name, "?")
        sasl = f" ({mechanisms})" if protocol.startswith("SASL") else ""
        authorizer = "on" if value("authorizer.class.name") else "OFF"
        return f"listener {protocol}{sasl}, authorizer {authorizer}"

    def version_line(self) -> str | None:
        """The broker's own 'Kafka version: x.y.z' line from its latest start."""
        log = self.logs / "server.log"
        if not log.exists():
            return None
        found = None
        for line in log.read_text(errors="replace").splitlines():
            if _VERSION_LINE.search(line) and "AppInfoParser" in line:
                found = line
        return found

    def stop(self, timeout: float = 60.0) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        terminate(pid, str(self.properties), timeout)
        self.pid_file.unlink(missing_ok=True)
        return True


def _quiet_logger():
    import logging

    logger = logging.getLogger("hub.devstack.kafka.librdkafka")
    logger.setLevel(logging.CRITICAL)
    return logger
