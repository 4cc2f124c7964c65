"""The real Apache Kafka 4.x broker, single node in KRaft combined mode, from Maven Central jars."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

from hub.config import PROJECT_ROOT
from hub.devstack import maven
from hub.devstack.state import StackError, pid_alive, port_in_use, read_pid, tail, terminate

POM = PROJECT_ROOT / "infra" / "kafka" / "pom.xml"
LOG4J2 = PROJECT_ROOT / "infra" / "kafka" / "log4j2.properties"
MAIN_CLASS = "kafka.Kafka"
_VERSION_LINE = re.compile(r"Kafka version: (\S+)")


class LocalKafka:
    def __init__(self, state_dir: Path, port: int, controller_port: int, heap: str):
        self.home = state_dir / "kafka"
        self.libs = self.home / "libs"
        self.data = self.home / "data"
        self.logs = self.home / "logs"
        self.properties = self.home / "server.properties"
        self.pid_file = self.home / "kafka.pid"
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

    def _write_properties(self) -> None:
        self.properties.write_text(
            "\n".join(
                [
                    "# Written by `hub dev up` at every start; edit hub/devstack/kafka.py instead.",
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    "inter.broker.listener.name=PLAINTEXT",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
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
        )

    def _format_storage(self) -> None:
        if (self.data / "meta.properties").exists():
            return
        java = self._java()
        cluster_id = subprocess.run(
            [*java, "kafka.tools.StorageTool", "random-uuid"], capture_output=True, text=True, check=True
        ).stdout.strip()
        result = subprocess.run(
            [
                *java,
                "kafka.tools.StorageTool",
                "format",
                "--config",
                str(self.properties),
                "--cluster-id",
                cluster_id,
                "--standalone",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise StackError(f"formatting Kafka storage in {self.data} failed:\n{result.stdout}{result.stderr}")

    def pid(self) -> int | None:
        pid = read_pid(self.pid_file)
        return pid if pid is not None and pid_alive(pid, str(self.properties)) else None

    def start(self, timeout: float = 120.0) -> bool:
        """Start unless running; True if this call started it. Returns once the broker answers."""
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
        self._write_properties()
        self._format_storage()
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
        """Ready means the broker answers a metadata request, not that some time has passed."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0, "logger": _quiet_logger()})
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
            if time.monotonic() > deadline:
                raise StackError(
                    f"Kafka did not answer on {self.bootstrap} within {timeout:.0f}s; "
                    f"end of its log:\n{tail(self.logs / 'server.log')}"
                )
            time.sleep(0.3)

    def answers(self) -> bool:
        try:
            self.wait_ready(timeout=3)
            return True
        except StackError:
            return False

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
