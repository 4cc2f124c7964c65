"""Events as they come off the topics: the lean path (docs/design.md §5).

Every record on a topic was validated by pydantic where a person typed it (a court file, an HTTP body) and
written by a principal the broker's ACLs let in; Avro already closed its enums and typed its fields. What
protects the services from the rest (a forged or buggy producer) is checked here in plain Python: the event
id's form, every time's offset and year, the ID numbers' check characters, text lengths and NUL, and the
per-type rules (an ORG's representative, distinct grounds, a performance's time, ...). A record that passes
is built into the same models without running pydantic again (`events.unchecked`): about half the cost.

A record that fails any check is handed to pydantic (`events.parse_event`), which then names the field and
the reason for the dead-letter topic. So this module only ever says yes or "ask pydantic": it may be
stricter than the models, never looser (tests/unit/test_wire.py checks both agree on random records).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any, get_args

from hub.domain.events import (
    COURT_EVENT_TYPES,
    EVENT_TYPES,
    FEEDBACK_EVENT_TYPES,
    PERFORMANCE_REASONS,
    YEARS,
    CorrectionOutcome,
    Debtor,
    DebtorKind,
    Disclosure,
    EmployerNotice,
    Event,
    Ground,
    LegalRepresentative,
    RevokeReason,
    ShieldReason,
    parse_event,
    unchecked,
)
from hub.domain.ids import IdNumberError, validate_any_id, validate_resident_id, validate_uscc

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch
_COURT_CODE = re.compile(r"[A-Z0-9]{1,16}").fullmatch
_AGENCY = re.compile(r"[a-z][a-z0-9_]{0,31}").fullmatch
_MEASURE = re.compile(r"[A-Z][A-Z0-9_]{1,63}").fullmatch
_fromiso = dt.datetime.fromisoformat

KINDS = frozenset(get_args(DebtorKind))
GROUNDS = frozenset(get_args(Ground))
DISCLOSURES = frozenset(get_args(Disclosure))
OUTCOMES = frozenset(get_args(CorrectionOutcome))
SHIELD_REASONS = frozenset(get_args(ShieldReason))
REVOKE_REASONS = frozenset(get_args(RevokeReason))


class _Refer(Exception):
    """Not for the lean path to judge: pydantic will, and name the fault."""


# Plain loops over field names rather than a function per field: a Python call costs as much as a check.


def _text(value: Any, longest: int = 200) -> None:
    # pydantic strips surrounding whitespace: a value that would change is left to it.
    if type(value) is not str or not 0 < len(value) <= longest or "\x00" in value or value.strip() != value:
        raise _Refer


def _texts(record: dict[str, Any], names: tuple[str, ...], longest: int = 200) -> None:
    for name in names:
        _text(record[name], longest)


def _times(record: dict[str, Any], names: tuple[str, ...], optional: bool = False) -> list[dt.datetime | None]:
    out: list[dt.datetime | None] = []
    for name in names:
        value = record[name]
        if value is None and optional:
            out.append(None)
            continue
        if type(value) is not str:
            raise _Refer
        try:
            when = _fromiso(value)
        except ValueError:
            raise _Refer from None
        if when.tzinfo is None or not YEARS[0] <= when.year <= YEARS[1]:  # fromisoformat: fixed offsets only
            raise _Refer
        out.append(when)
    return out


def _same(check: Callable[[str], str], value: Any) -> None:
    """An ID number that passes its check characters and is already in its normal form."""
    try:
        if type(value) is not str or check(value) != value:
            raise _Refer
    except IdNumberError:
        raise _Refer from None


def _form(value: Any, match: Callable[[str], Any]) -> None:
    if type(value) is not str or not match(value):
        raise _Refer


def _one_of(value: Any, allowed: frozenset[str]) -> None:
    if type(value) is not str or value not in allowed:
        raise _Refer


_DEBTOR_FIELDS = frozenset({"kind", "id_number", "name", "legal_representative"})
_AGENT_FIELDS = frozenset({"id_number", "name"})
_debtors: dict[tuple[str, ...], Debtor] = {}  # a debtor recurs in every event of its entries; models are frozen


def _debtor(value: Any) -> Debtor:
    if type(value) is not dict or value.keys() != _DEBTOR_FIELDS:
        raise _Refer
    agent = value["legal_representative"]
    if agent is None:
        key: tuple[Any, ...] = (value["kind"], value["id_number"], value["name"])
    elif type(agent) is dict and agent.keys() == _AGENT_FIELDS:
        key = (value["kind"], value["id_number"], value["name"], agent["id_number"], agent["name"])
    else:
        raise _Refer
    try:
        found = _debtors.get(key)
    except TypeError:  # an unhashable value: not a string
        raise _Refer from None
    if found is not None:
        return found
    _texts(value, ("name",))
    kind = value["kind"]
    if kind == "ORG" and agent is not None:
        _same(validate_uscc, value["id_number"])
        _same(validate_resident_id, agent["id_number"])
        _texts(agent, ("name",))
        agent = unchecked(LegalRepresentative, {"id_number": agent["id_number"], "name": agent["name"]})
    elif kind == "PERSON" and agent is None:
        _same(validate_resident_id, value["id_number"])
    else:
        raise _Refer
    if len(_debtors) >= 1 << 16:
        _debtors.clear()
    debtor = _debtors[key] = unchecked(
        Debtor, {"kind": kind, "id_number": value["id_number"], "name": value["name"], "legal_representative": agent}
    )
    return debtor


_COURT_TEXTS = ("court_name", "entry_id", "case_number")


def _court(record: dict[str, Any], kind: str) -> None:
    """Checks a court record and turns its values into the model's, in place."""
    _form(record["event_id"], _UUID)
    _form(record["court_code"], _COURT_CODE)
    _texts(record, _COURT_TEXTS)
    (occurred,) = _times(record, ("occurred_at",))
    debtor = _debtor(record["debtor"])
    own: dict[str, Any] = {}
    if kind == "Included":
        grounds = record["grounds"]
        if type(grounds) is not list or not 0 < len(grounds) <= 6 or len(set(grounds)) != len(grounds):
            raise _Refer
        for ground in grounds:
            _one_of(ground, GROUNDS)
        _texts(record, ("obligation",), 2000)
        period = record["period_months"]
        if period is not None and (type(period) is not int or not 24 <= period <= 60):
            raise _Refer
        _one_of(record["disclosure"], DISCLOSURES)
        (own["served_at"],) = _times(record, ("served_at",), optional=True)
        notice = record["employer_notified"]
        if notice is not None:
            if type(notice) is not dict or notice.keys() != {"unit", "notified_at"}:
                raise _Refer
            _texts(notice, ("unit",))
            (at,) = _times(notice, ("notified_at",))
            own["employer_notified"] = unchecked(EmployerNotice, {"unit": notice["unit"], "notified_at": at})
    elif kind == "Shielded":
        _one_of(record["reason"], SHIELD_REASONS)
        (performed,) = _times(record, ("performed_at",), optional=True)
        own["performed_at"] = performed
        if performed is None and record["reason"] in PERFORMANCE_REASONS:
            raise _Refer
    elif kind == "RiskWarningIssued":
        (own["served_at"],) = _times(record, ("served_at",))
    elif kind == "CorrectionRequested":
        (own["received_at"],) = _times(record, ("received_at",))
    elif kind == "CorrectionDecided":
        _one_of(record["outcome"], OUTCOMES)
    else:
        _one_of(record["reason"], REVOKE_REASONS)
    record["occurred_at"] = occurred
    record["debtor"] = debtor
    record.update(own)


def _measures(value: Any) -> None:
    if type(value) is not list or not value:
        raise _Refer
    for name in value:
        _form(name, _MEASURE)


def _feedback(record: dict[str, Any], kind: str) -> None:
    """Checks a feedback record and turns its values into the model's, in place."""
    _form(record["event_id"], _UUID)
    _form(record["agency"], _AGENCY)
    _texts(record, ("entry_id",))
    _same(validate_any_id, record["debtor_id"])
    _same(validate_any_id, record["subject_id"])
    _measures(record["measures"])
    (occurred,) = _times(record, ("occurred_at",))
    cause = record["court_event_id"]
    if cause is not None or kind != "InterceptionRecorded":
        _form(cause, _UUID)
    until = None
    if kind == "SanctionRetained":
        _texts(record, ("legal_basis",), 2000)
        (until,) = _times(record, ("retain_until",))
    elif kind == "SanctionFailed":
        _texts(record, ("reason",), 2000)
    elif kind == "InterceptionRecorded":
        entries = record["entry_ids"]
        if type(entries) is not list or not entries:
            raise _Refer
        for entry in entries:
            _text(entry)
        _form(record["measure"], _MEASURE)
        _texts(record, ("channel",))
    record["occurred_at"] = occurred
    if until is not None:
        record["retain_until"] = until


_FIELDS = {name: frozenset(cls.model_fields) for name, cls in EVENT_TYPES.items()}
_FAMILIES = {"court": COURT_EVENT_TYPES, "feedback": FEEDBACK_EVENT_TYPES}


def event_from_record(record: dict[str, Any], family: str | None = None) -> Event:
    """The event a decoded record holds, or EventValidationError (from pydantic, naming the field) if it breaks
    the contract. A record that passes becomes the event's values: the caller hands it over."""
    kind = record.get("type")
    cls = _FAMILIES.get(family or "", EVENT_TYPES).get(kind) if type(kind) is str else None  # type: ignore[arg-type]
    if cls is not None and record.keys() == _FIELDS[kind]:  # type: ignore[index]
        try:
            (_court if cls.family == "court" else _feedback)(record, kind)  # type: ignore[arg-type]
            return unchecked(cls, record)
        except _Refer:
            pass
    return parse_event(record, family)
