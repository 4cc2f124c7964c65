"""The one configuration object: every setting is an environment variable prefixed HUB_.

When HUB_KAFKA_BOOTSTRAP / HUB_DATABASE_URL are unset, the addresses of the checkout's own local stack
(`hub dev up`) are used, read from the stack file in the state folder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

from hub.domain.calendar import COURT_TIME_ZONE, LegalCalendar, Period
from hub.domain.rules import Deadlines
from hub.domain.times import read_instant

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AGENCIES = ("bank", "tax", "land", "transport")
SERVICES = (*AGENCIES, "ledger", "register", "web")  # every database of the default set (hub.db.services_of)


AGENCY_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


def _period(value: object) -> object:
    return Period.parse(value) if isinstance(value, str) else value


PeriodSetting = Annotated[Period, NoDecode, BeforeValidator(_period), PlainSerializer(str)]


class ConfigError(RuntimeError):
    """A setting is missing or inconsistent; the message says which and how to fix it."""


class RetentionRuleSetting(BaseModel):
    """One agency's obligation to keep a measure after shielding or revocation (docs/design.md §1, §6)."""

    agency: str
    measure: str
    legal_basis: str = Field(min_length=1)
    days: int = Field(ge=1)
    on: list[str] = ["Shielded"]

    @field_validator("on")
    @classmethod
    def _after_shielding_only(cls, value: list[str]) -> list[str]:
        if "Revoked" in value:
            raise ValueError(
                "a sanction cannot be retained after a revocation: a revoked listing had no basis, so every "
                'sanction it supported ends at once (use on: ["Shielded"])'
            )
        unknown = [v for v in value if v != "Shielded"]
        if unknown or not value:
            raise ValueError(f'on must be ["Shielded"], not {value}')
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore")

    kafka_bootstrap: str | None = Field(
        default=None, description="Kafka bootstrap servers; unset: the local stack of `hub dev up`."
    )
    kafka_username: str | None = Field(
        default=None,
        description="Kafka principal to connect as; unset: the one for what the command is (agency-tax, ledger, ...).",
    )
    kafka_password_file: Path | None = Field(
        default=None, description="File holding the Kafka password; unset: the local stack's secrets."
    )
    kafka_ca_file: Path | None = Field(
        default=None, description="CA certificate (PEM) the broker's certificate must chain to; unset: the local CA."
    )
    kafka_security_protocol: Literal["SASL_SSL", "SSL"] = Field(
        default="SASL_SSL", description="SASL_SSL (SCRAM), or SSL with a client certificate (mTLS)."
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"
    kafka_client_cert: Path | None = Field(default=None, description="Client certificate (PEM) for mTLS.")
    kafka_client_key: Path | None = Field(default=None, description="Client key (PEM) for mTLS.")
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL server URL; the database name is replaced by each service's own "
        "(or put {service} where it goes). Unset: the local stack.",
    )
    database_username: str | None = Field(
        default=None,
        description="PostgreSQL role to connect as; unset: the one for what the command is (bank, bank_checker, "
        "ledger, auditor, ...).",
    )
    database_password_file: Path | None = Field(
        default=None, description="File holding the database password; unset: the local stack's secrets."
    )
    database_ca_file: Path | None = Field(
        default=None,
        description="CA certificate (PEM) the database server's certificate must chain to; unset: the local CA.",
    )
    state_dir: Path = Field(default=PROJECT_ROOT / ".hub", description="Local stack state (git-ignored).")
    schema_dir: Path = Field(default=PROJECT_ROOT / "schemas", description="The Avro schema catalogue.")
    namespace: str = Field(
        default="",
        pattern=r"^([a-z][a-z0-9]{0,15}_)?$",
        description="Prefix for topic and database names (e.g. `t1_`); isolates test runs on one stack.",
    )
    agencies: Annotated[tuple[str, ...], NoDecode] = Field(
        default=AGENCIES, description="Comma-separated agencies; each gets agency.<name>.feedback."
    )
    retention_rules: list[RetentionRuleSetting] = Field(
        default_factory=list,
        description='JSON list, e.g. [{"agency": "bank", "measure": "LOAN_RESTRICTED", "legal_basis": "...", '
        '"days": 365}]; none by default.',
    )
    batch_size: int = Field(default=2000, ge=1, le=100_000, description="Records per consumer batch/transaction.")
    court_time_zone: str = Field(
        default=COURT_TIME_ZONE,
        description="The courts' time zone: legal days end at 24:00 there, and the CLI reads and prints times in it.",
    )
    correction_request_period: PeriodSetting = Field(
        default=Period(10), description="Window for a correction request, from service of the inclusion decision."
    )
    review_period: PeriodSetting = Field(default=Period(3), description="Time to decide a correction request.")
    revoke_period: PeriodSetting = Field(default=Period(3), description="Time to revoke after a correction upheld.")
    shield_period: PeriodSetting = Field(default=Period(3), description="Time to shield after performance.")
    period_grace: PeriodSetting = Field(default=Period(3), description="Time to shield once a listing period ends.")
    publication_period: PeriodSetting = Field(
        default=Period(1), description="Time from a court act to its record on the topic (history imports exempt)."
    )
    extra_holidays: Annotated[tuple[dt.date, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated dates (YYYY-MM-DD) that are rest days whatever the official calendar says.",
    )
    extra_working_days: Annotated[tuple[dt.date, ...], NoDecode] = Field(
        default=(), description="Comma-separated dates that are working days whatever the official calendar says."
    )
    agency_deadline_hours: float = Field(default=24, ge=0, description="Hours an agency has to apply or lift.")
    agency_since: dict[str, str] = Field(
        default_factory=dict,
        description='JSON, e.g. {"bank": "2026-12-01"}: when an agency joined; its deadlines run from then at the '
        "earliest. Unset: from its first feedback.",
    )
    max_retention_days: int = Field(
        default=5 * 365 + 1, ge=1, description="Longest a sanction may be retained after the court's act."
    )
    clock_tolerance_seconds: float = Field(
        default=300, ge=0, description="How far a court event's times may lie after its publication (clock skew)."
    )
    check_tolerance_seconds: float = Field(
        default=5, ge=0, description="Slack for interception checks answered from an index that refreshes."
    )
    check_journal_dir: Path | None = Field(
        default=None,
        description="Where a check service journals interception records while its database is away "
        "(default: journal/ in the state folder). Keep it on a local disk that survives a restart.",
    )
    check_rate_per_key: float = Field(
        default=5000, gt=0, description="Questions per second each API key may ask (`--rate` of hub agency keys add)."
    )
    check_max_index_age_seconds: float = Field(
        default=15, gt=0, description="/readyz fails once the index has not matched the database for this long."
    )
    check_tls_cert_file: Path | None = Field(
        default=None, description="The check service's certificate (PEM; default: issued by the local CA)."
    )
    check_tls_key_file: Path | None = Field(default=None, description="Its private key (PEM).")
    web_tls_cert_file: Path | None = Field(
        default=None, description="The web server's certificate (PEM; default: issued by the local CA)."
    )
    web_tls_key_file: Path | None = Field(default=None, description="Its private key (PEM).")
    web_auditor_password_file: Path | None = Field(
        default=None,
        description="The auditor role's database password, with which the desk reads the ledger and the services' "
        "offsets when HUB_DATABASE_USERNAME names the web server's own role (default: the local stack's).",
    )
    web_rate_per_address: float = Field(
        default=10.0, gt=0, description="Public requests a second per client address (bursts of twice that)."
    )
    web_session_idle_minutes: float = Field(
        default=30.0, gt=0, description="An oversight-desk session ends after this long without a request..."
    )
    web_session_hours: float = Field(default=8.0, gt=0, description="...and this long after its login, whatever.")
    ledger_name: str = Field(default="ledger", description="Key of this ledger's checkpoints.")
    checkpoint_rows: int = Field(default=1000, ge=1, description="Publish a checkpoint at least every N rows.")
    checkpoint_seconds: float = Field(default=60.0, gt=0, description="...or every T seconds when rows arrived.")
    partitions: int = Field(default=12, ge=1, le=1000, description="Partitions of every keyed topic.")
    replication_factor: int = Field(default=1, ge=1, description="Replicas of every topic.")
    min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        description="min.insync.replicas of every topic (acks=all waits for this many); default min(2, "
        "HUB_REPLICATION_FACTOR), never more than the replication factor.",
    )
    delivery_timeout_ms: int = Field(
        default=120_000, ge=1000, description="How long a producer keeps retrying a record before reporting failure."
    )
    session_timeout_ms: int = Field(
        default=10_000, ge=1000, description="How soon the group hands a silent instance's partitions to others."
    )
    rejoin_after_ms: int = Field(
        default=60_000,
        ge=1000,
        description="A service whose consumer has held no partitions this long replaces it and joins the group "
        "again (librdkafka can stay out of the group after a broker restart).",
    )
    instance_id: str | None = Field(
        default=None,
        description="Static group membership (Kafka group.instance.id): a restarted instance with the same id "
        "gets its partitions back at once, without waiting for the session to time out.",
    )
    connect_timeout_seconds: float = Field(
        default=10,
        gt=0,
        description="How long a one-off command or a `--once` run waits for PostgreSQL or Kafka to answer before "
        "it gives up (exit 3); a started service waits as long as it takes, retrying with back-off.",
    )
    metrics_address: str = Field(
        default="127.0.0.1", description="Where `--metrics-port` listens (loopback; a container's own address)."
    )
    kafka_heap: str = Field(default="768m", description="Heap of the local Kafka broker (-Xmx).")
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"

    @field_validator("agencies", "extra_holidays", "extra_working_days", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("court_time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone, e.g. Asia/Shanghai") from None
        return value

    @field_validator("agency_since")
    @classmethod
    def _since(cls, value: dict[str, str]) -> dict[str, str]:
        for agency, text in value.items():
            read_instant(text, ZoneInfo(COURT_TIME_ZONE))  # validated here; read in the court's zone later
            if not AGENCY_NAME.fullmatch(agency):
                raise ValueError(f"{agency!r} is not an agency name")
        return value

    @model_validator(mode="after")
    def _replicas(self) -> Settings:
        if self.min_insync_replicas is not None and self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"HUB_MIN_INSYNC_REPLICAS ({self.min_insync_replicas}) exceeds HUB_REPLICATION_FACTOR "
                f"({self.replication_factor}): no write could ever be acknowledged"
            )
        return self

    @property
    def effective_min_insync_replicas(self) -> int:
        return self.min_insync_replicas or min(2, self.replication_factor)

    def calendar(self) -> LegalCalendar:
        return LegalCalendar.of(self.court_time_zone, self.extra_holidays, self.extra_working_days)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.court_time_zone)

    def deadlines(self) -> Deadlines:
        zone = self.zone
        return Deadlines(
            calendar=self.calendar(),
            correction_request=self.correction_request_period,
            review=self.review_period,
            revoke=self.revoke_period,
            shield=self.shield_period,
            period_grace=self.period_grace,
            publication=self.publication_period,
            agency_hours=self.agency_deadline_hours,
            agency_since={a: read_instant(t, zone, end_of_day=False) for a, t in self.agency_since.items()},
            max_retention_days=self.max_retention_days,
            check_tolerance=dt.timedelta(seconds=self.check_tolerance_seconds),
        )

    def bootstrap(self) -> str:
        if self.kafka_bootstrap:
            return self.kafka_bootstrap
        stack = self.local_stack()
        return f"127.0.0.1:{stack['kafka_port']}"

    def kafka_password(self, principal: str) -> str:
        if self.kafka_password_file is not None:
            return _read_secret(self.kafka_password_file, "HUB_KAFKA_PASSWORD_FILE")
        if self.kafka_bootstrap:
            raise ConfigError(
                f"HUB_KAFKA_BOOTSTRAP is set but HUB_KAFKA_PASSWORD_FILE is not: give the password of {principal}"
            )
        from hub.devstack.secrets import kafka_password

        return kafka_password(self.state_dir, principal)

    def kafka_ca_path(self) -> Path | None:
        if self.kafka_ca_file is not None:
            return self.kafka_ca_file
        if self.kafka_bootstrap:
            return None  # the system's trusted CAs
        from hub.devstack.secrets import ca_file

        return ca_file(self.state_dir)

    def service_database_url(self, service: str, role: str | None = None) -> str:
        """Each service owns one database: agencies never share storage with each other or the ledger.
        `role` is the login role to connect as: the service's own (its owner) unless said otherwise."""
        return self.database_url_for(f"{self.namespace}{service}", role or service)

    def admin_database_url(self) -> str:
        """An administrator on the maintenance database, from which roles and databases are made: the local
        stack's superuser, or on another server HUB_DATABASE_USERNAME (default postgres) with its password."""
        if self.database_url:
            return self.database_url_for("postgres", "postgres")
        stack = self.local_stack()
        return self.database_url_for("postgres", stack["pg_user"], password=stack["pg_password"])

    def database_url_for(self, database: str, role: str, password: str | None = None) -> str:
        """A SQLAlchemy URL for `database` as `role` (HUB_DATABASE_USERNAME instead when set), over TLS that
        verifies the server (sslmode=verify-full unless the URL says otherwise; the CA of
        HUB_DATABASE_CA_FILE, or the local CA)."""
        if self.database_url:
            url = make_url(self.database_url.replace("{service}", database))
            if url.drivername == "postgresql":
                url = url.set(drivername="postgresql+psycopg")
            if "{service}" not in self.database_url:
                url = url.set(database=database)
        else:
            stack = self.local_stack()
            url = make_url(f"postgresql+psycopg://127.0.0.1:{stack['pg_port']}/{database}")
        user = self.database_username or url.username or role
        if password is None:
            password = self.database_password(user) if self.database_password_file or not url.password else url.password
        query = dict(url.query)
        query.setdefault("sslmode", "verify-full")
        ca = self.database_ca_file or (None if self.database_url else _local_ca(self.state_dir))
        if ca is not None:
            query.setdefault("sslrootcert", str(ca))
        return url.set(username=user, password=password, query=query).render_as_string(hide_password=False)

    def database_password(self, role: str) -> str:
        if self.database_password_file is not None:
            return _read_secret(self.database_password_file, "HUB_DATABASE_PASSWORD_FILE")
        if self.database_url:
            raise ConfigError(
                f"HUB_DATABASE_URL is set but neither it nor HUB_DATABASE_PASSWORD_FILE gives the password of {role}"
            )
        from hub.devstack.secrets import postgres_password

        return postgres_password(self.state_dir, role)

    def local_stack(self) -> dict:
        path = self.state_dir / "stack.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(
                f"no local stack at {self.state_dir}: run `hub dev up`, or set HUB_KAFKA_BOOTSTRAP and HUB_DATABASE_URL"
            ) from None

    def topic(self, name: str) -> str:
        return f"{self.namespace.replace('_', '.')}{name}" if self.namespace else name

    def environment(self, **extra: str) -> dict[str, str]:
        """This process's environment plus what makes a child `hub` process see these settings (the tests'
        and the benchmarks' namespaces, state folder and servers), JSON logs, and `extra` on top."""
        env = dict(os.environ)
        env.update(
            HUB_NAMESPACE=self.namespace,
            HUB_STATE_DIR=str(self.state_dir),
            HUB_PARTITIONS=str(self.partitions),
            HUB_BATCH_SIZE=str(self.batch_size),
            HUB_AGENCIES=",".join(self.agencies),
            HUB_LOG_FORMAT="json",
        )
        if self.kafka_bootstrap:
            env["HUB_KAFKA_BOOTSTRAP"] = self.kafka_bootstrap
        if self.database_url:
            env["HUB_DATABASE_URL"] = self.database_url
        env.update(extra)
        return env


def _read_secret(path: Path, variable: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{variable} {path}: {exc.strerror}") from None


def _local_ca(state_dir: Path) -> Path:
    from hub.devstack.secrets import ca_file

    return ca_file(state_dir)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings from the environment; a bad value is a ConfigError naming its variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for item in exc.errors(include_url=False):
            message = item["msg"].removeprefix("Value error, ")
            if not item["loc"]:  # a rule across settings: its message names them
                problems.append(message)
                continue
            name = "HUB_" + str(item["loc"][0]).upper()
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in item["loc"][1:])
            problems.append(f"{name}{where}: {message}")
        raise ConfigError("bad setting: " + "; ".join(problems)) from None
