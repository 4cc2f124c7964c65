"""The one configuration object: every setting is an environment variable prefixed HUB_.

When HUB_KAFKA_BOOTSTRAP / HUB_DATABASE_URL are unset, the addresses of the checkout's own local stack
(`hub dev up`) are used, read from the stack file in the state folder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

from hub.domain.calendar import DayCounter
from hub.domain.rules import Deadlines

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AGENCIES = ("bank", "tax", "land", "transport")
SERVICES = (*AGENCIES, "ledger")


class ConfigError(RuntimeError):
    """A setting is missing or inconsistent; the message says which and how to fix it."""


class RetentionRuleSetting(BaseModel):
    """One agency's obligation to keep a measure after shielding or revocation (DESIGN §1, §6)."""

    agency: str
    measure: str
    legal_basis: str = Field(min_length=1)
    days: int = Field(ge=1)
    on: list[Literal["Shielded", "Revoked"]] = ["Shielded"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore")

    kafka_bootstrap: str | None = Field(
        default=None, description="Kafka bootstrap servers; unset: the local stack of `hub dev up`."
    )
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL server URL; the database name is replaced by each service's own "
        "(or put {service} where it goes). Unset: the local stack.",
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
    correction_request_days: int = Field(default=10, ge=0, description="Days a debtor has to apply for correction.")
    review_days: int = Field(default=3, ge=0, description="Days a court has to decide a correction application.")
    revoke_days: int = Field(default=3, ge=0, description="Days to revoke after a correction is upheld.")
    shield_days: int = Field(default=3, ge=0, description="Days to shield after performance.")
    period_grace_days: int = Field(default=3, ge=0, description="Days to shield after the listing period ends.")
    agency_deadline_hours: int = Field(default=24, ge=0, description="Hours an agency has to apply or lift.")
    working_days: bool = Field(default=False, description="Count court deadlines in working days, not calendar days.")
    holidays: Annotated[tuple[dt.date, ...], NoDecode] = Field(
        default=(), description="Comma-separated dates (YYYY-MM-DD) that are not working days."
    )
    ledger_name: str = Field(default="ledger", description="Key of this ledger's checkpoints.")
    checkpoint_rows: int = Field(default=1000, ge=1, description="Publish a checkpoint at least every N rows.")
    checkpoint_seconds: float = Field(default=60.0, gt=0, description="...or every T seconds when rows arrived.")
    partitions: int = Field(default=12, ge=1, le=1000, description="Partitions of every keyed topic.")
    replication_factor: int = Field(default=1, ge=1, description="Replicas of every topic.")
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
    metrics_address: str = Field(
        default="127.0.0.1", description="Where `--metrics-port` listens (loopback; a container's own address)."
    )
    kafka_heap: str = Field(default="768m", description="Heap of the local Kafka broker (-Xmx).")
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"

    @field_validator("agencies", "holidays", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    def deadlines(self) -> Deadlines:
        days = DayCounter.working(self.holidays) if self.working_days else DayCounter.calendar_days()
        return Deadlines(
            correction_request_days=self.correction_request_days,
            review_days=self.review_days,
            revoke_days=self.revoke_days,
            shield_days=self.shield_days,
            period_grace_days=self.period_grace_days,
            agency_hours=self.agency_deadline_hours,
            days=days,
        )

    def bootstrap(self) -> str:
        if self.kafka_bootstrap:
            return self.kafka_bootstrap
        stack = self.local_stack()
        return f"127.0.0.1:{stack['kafka_port']}"

    def service_database_url(self, service: str) -> str:
        """Each service owns one database: agencies never share storage with each other or the ledger."""
        return self.database_url_for(f"{self.namespace}{service}")

    def admin_database_url(self) -> str:
        """The maintenance database, from which service databases are created."""
        return self.database_url_for("postgres")

    def database_url_for(self, database: str) -> str:
        if self.database_url:
            if "{service}" in self.database_url:
                return self.database_url.replace("{service}", database)
            url = make_url(self.database_url)
            if url.drivername == "postgresql":
                url = url.set(drivername="postgresql+psycopg")
            return url.set(database=database).render_as_string(hide_password=False)
        stack = self.local_stack()
        return f"postgresql+psycopg://{stack['pg_user']}:{stack['pg_password']}@127.0.0.1:{stack['pg_port']}/{database}"

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
            HUB_LOG_FORMAT="json",
        )
        if self.kafka_bootstrap:
            env["HUB_KAFKA_BOOTSTRAP"] = self.kafka_bootstrap
        if self.database_url:
            env["HUB_DATABASE_URL"] = self.database_url
        env.update(extra)
        return env


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
