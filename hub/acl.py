"""The principals of the hub and what each may do on Kafka, as declared in infra/kafka/acls.toml.

Pure expansion of the file into bindings for one namespace; `hub acl` applies them with the admin client.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hub.config import PROJECT_ROOT, ConfigError, Settings

ACL_FILE = PROJECT_ROOT / "infra" / "kafka" / "acls.toml"
ADMIN = "admin"
AUDITOR = "auditor"
LEDGER = "ledger"
REGISTER = "register"
WEB = "web"
OPERATIONS = {"READ", "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS", "CREATE", "DELETE", "ALTER", "IDEMPOTENT_WRITE"}


def agency_principal(agency: str) -> str:
    return f"agency-{agency}"


def court_principal(court_code: str) -> str:
    return f"court-{court_code}"


@dataclass(frozen=True, order=True)
class Grant:
    """ALLOW `principal` to do `operation` on a topic or group, named exactly or by prefix."""

    principal: str
    resource: str  # "topic" or "group"
    name: str  # "*" with pattern LITERAL means every topic
    pattern: str  # "LITERAL" or "PREFIXED"
    operation: str

    def __str__(self) -> str:
        what = f"{self.resource} {self.name}" + ("*" if self.pattern == "PREFIXED" else "")
        return f"User:{self.principal} {self.operation} {what}"


@dataclass(frozen=True)
class Declaration:
    courts: tuple[str, ...]
    grants: tuple[dict, ...]


def load(path: Path = ACL_FILE) -> Declaration:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the ACL declaration: {exc}") from None
    grants = tuple(data.get("grant", ()))
    for number, grant in enumerate(grants, start=1):
        unknown = set(grant.get("operations", ())) - OPERATIONS
        if unknown or not grant.get("principal"):
            raise ConfigError(f"{path}: grant {number}: needs a principal and operations of {sorted(OPERATIONS)}")
    return Declaration(tuple(data.get("courts", ())), grants)


def principals(settings: Settings, declaration: Declaration | None = None) -> list[str]:
    """Every principal the hub has: the admin and each one the declaration names, expanded."""
    declaration = declaration or load()
    names = {ADMIN}
    for grant in declaration.grants:
        names.update(name for name, _values in _expand(grant["principal"], settings, declaration))
    return sorted(names)


def _expand(template: str, settings: Settings, declaration: Declaration) -> list[tuple[str, dict[str, str]]]:
    if "{agency}" in template:
        return [(template.format(agency=a), {"agency": a}) for a in settings.agencies]  # type: ignore[misc]
    if "{court}" in template:
        return [(template.format(court=c), {"court": c}) for c in declaration.courts]  # type: ignore[misc]
    return [(template, {})]  # type: ignore[list-item]


def grants(settings: Settings, declaration: Declaration | None = None) -> list[Grant]:
    """The bindings the declaration asks for in this namespace (topics and groups get its prefix)."""
    declaration = declaration or load()
    group_prefix = settings.namespace
    out: set[Grant] = set()
    for grant in declaration.grants:
        for principal, values in _expand(grant["principal"], settings, declaration):
            resources: list[tuple[str, str, str]] = []
            resources += [("topic", settings.topic(t.format(**values)), "LITERAL") for t in grant.get("topics", ())]
            for prefix in grant.get("topic_prefixes", ()):
                name = settings.topic(prefix.format(**values))
                resources.append(("topic", name, "PREFIXED") if name else ("topic", "*", "LITERAL"))
            resources += [("group", group_prefix + g.format(**values), "LITERAL") for g in grant.get("groups", ())]
            resources += [
                ("group", group_prefix + g.format(**values), "PREFIXED") for g in grant.get("group_prefixes", ())
            ]
            for resource, name, pattern in resources:
                for operation in grant["operations"]:
                    out.add(Grant(principal, resource, name, pattern, operation))
    return sorted(out)


# -- on the broker (the admin principal: topics and ACLs only) -------------------------------------------------


@dataclass
class Drift:
    in_force: list[Grant]
    missing: list[Grant]  # declared, not in force
    extra: list[Grant]  # in force on the declared resources, not declared


def _binding(grant: Grant):
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    return AclBinding(
        ResourceType.TOPIC if grant.resource == "topic" else ResourceType.GROUP,
        grant.name,
        ResourcePatternType[grant.pattern],
        f"User:{grant.principal}",
        "*",
        AclOperation[grant.operation],
        AclPermissionType.ALLOW,
    )


def _in_force(client) -> list[Grant]:
    from confluent_kafka.admin import AclBindingFilter, AclOperation, AclPermissionType, ResourcePatternType
    from confluent_kafka.admin import ResourceType as R

    everything = AclBindingFilter(
        R.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    out = []
    for b in client.describe_acls(everything).result(timeout=30):
        if b.restype not in (R.TOPIC, R.GROUP) or b.permission_type != AclPermissionType.ALLOW:
            continue
        resource = "topic" if b.restype == R.TOPIC else "group"
        principal = b.principal.removeprefix("User:")
        out.append(Grant(principal, resource, b.name, b.resource_pattern_type.name, b.operation.name))
    return sorted(out)


def drift(settings: Settings, client=None) -> Drift:
    from hub.clients import admin

    client = client or admin(settings, ADMIN)
    wanted = set(grants(settings))
    present = _in_force(client)
    ours = {(g.resource, g.name, g.pattern) for g in wanted}
    extra = [g for g in present if (g.resource, g.name, g.pattern) in ours and g not in wanted]
    return Drift(present, sorted(wanted - set(present)), extra)


def _wait_in_force(client, grants_: set[Grant], timeout: float = 15.0) -> None:
    """Created ACLs reach the authorizer through the metadata log a moment later; callers go on once they hold."""
    import time

    deadline = time.monotonic() + timeout
    while not grants_ <= set(_in_force(client)):
        if time.monotonic() > deadline:
            raise ConfigError(f"ACLs created but not in force after {timeout:.0f}s: {sorted(map(str, grants_))[:3]}")
        time.sleep(0.05)


def apply(settings: Settings) -> Drift:
    """Make the ACLs on the declared resources exactly the declared ones; on the local stack, also give every
    principal its SCRAM credentials. Idempotent: returns what it created (`missing`) and removed (`extra`)."""
    from hub.clients import admin

    if not settings.kafka_bootstrap:
        from hub.devstack.kafka import ensure_scram_users

        ensure_scram_users(settings.bootstrap(), settings.state_dir, principals(settings))
    client = admin(settings, ADMIN)
    found = drift(settings, client)
    if found.missing:
        for future in client.create_acls([_binding(g) for g in found.missing]).values():
            future.result(timeout=30)
        _wait_in_force(client, set(found.missing))
    if found.extra:
        _revoke(client, found.extra)
    return found


def remove(settings: Settings, *more: Settings) -> None:
    """Take back every grant on these namespaces' resources (test namespaces, when they are torn down), in one
    request."""
    from hub.clients import admin

    _revoke(admin(settings, ADMIN), [g for s in (settings, *more) for g in grants(s)])


def _revoke(client, grants_: Iterable[Grant]) -> None:
    from confluent_kafka.admin import AclBindingFilter

    filters = []
    for g in grants_:
        b = _binding(g)
        filters.append(
            AclBindingFilter(
                b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type
            )
        )
    if filters:
        for future in client.delete_acls(filters).values():
            future.result(timeout=30)
