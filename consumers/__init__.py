"""The partner agencies: one module each, declaring its sanction policy (docs/design.md §6).

Storage, consumption and feedback are generic (hub/agency, hub/engine); an agency is its policy plus
any retention rules configured for it (HUB_RETENTION_RULES).
"""

from __future__ import annotations

from importlib import import_module

from hub.config import Settings
from hub.domain.sanctions import AgencyPolicy, RetentionRule


class PolicyError(ValueError):
    """An agency's policy cannot be loaded as configured; the message says what to change."""


class UnknownAgencyError(PolicyError):
    pass


def load_policy(name: str, settings: Settings) -> AgencyPolicy:
    if name not in settings.agencies:
        raise UnknownAgencyError(f"unknown agency {name!r}; agencies: {', '.join(settings.agencies)}")
    try:
        module = import_module(f"consumers.{name}")
    except ModuleNotFoundError:
        raise UnknownAgencyError(f"agency {name!r} has no module consumers/{name}.py") from None
    policy: AgencyPolicy = module.POLICY
    rules = [
        RetentionRule(r.measure, r.legal_basis, r.days, frozenset(r.on))
        for r in settings.retention_rules
        if r.agency == name
    ]
    unknown = [r.measure for r in rules if r.measure not in policy.measures]
    if unknown:
        raise PolicyError(f"retention rule for {name}: {', '.join(unknown)} is not a measure of {name}")
    too_long = [r for r in rules if r.days > settings.max_retention_days]
    if too_long:
        raise PolicyError(
            f"retention rule for {name}: {too_long[0].measure} kept {too_long[0].days} days, longer than "
            f"HUB_MAX_RETENTION_DAYS ({settings.max_retention_days}); a retention must end within a bounded period"
        )
    return policy.with_retention(rules)
