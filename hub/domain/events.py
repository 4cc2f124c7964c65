"""The event contract (docs/design.md §5) as strict pydantic models.

Form is checked here, once, for every producer and consumer; procedure (deadlines, order) is judged by
the ledger, because a court's decision stands even when its procedure was late. Literal types rather
than Enum classes keep strict mode usable on plain dicts decoded from Avro or JSON.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from hub.domain.ids import IdNumberError, validate_any_id, validate_resident_id, validate_uscc

DebtorKind = Literal["PERSON", "ORG"]
Ground = Literal[
    "CAPABLE_BUT_REFUSES",
    "OBSTRUCTS_EXECUTION",
    "EVADES_EXECUTION",
    "VIOLATES_ASSET_REPORTING",
    "VIOLATES_CONSUMPTION_RESTRICTION",
    "BREACHES_SETTLEMENT",
]
Disclosure = Literal["PUBLIC", "RESTRICTED"]
CorrectionOutcome = Literal["UPHELD", "REJECTED"]
ShieldReason = Literal[
    "FULL_PERFORMANCE", "SETTLEMENT_PERFORMED", "CREDITOR_REQUEST", "EXECUTION_TERMINATED", "PERIOD_EXPIRED"
]
RevokeReason = Literal["CORRECTION_UPHELD", "RECONSIDERATION_UPHELD", "WRONGFUL_INCLUSION"]
# Measures are open: each agency declares its own (consumers/<name>.py), and a new unit with measures of its
# own joins without every reader being upgraded. A name is checked for form here, and against the agency's
# declared policy where the agency is known.
MeasureName = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{1,63}$")]
PERFORMANCE_REASONS = frozenset({"FULL_PERFORMANCE", "SETTLEMENT_PERFORMED"})


YEARS = (1949, 2199)


def _aware_time(value: Any) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 date-time") from None
    if not isinstance(value, dt.datetime):
        raise ValueError("expected an ISO-8601 date-time string")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("time has no UTC offset; write it like 2026-01-20T10:00:00+08:00")
    if not YEARS[0] <= value.year <= YEARS[1]:
        # Deadlines and listing periods are counted from these times: far-off years would overflow them.
        raise ValueError(f"year {value.year} is outside {YEARS[0]}-{YEARS[1]}")
    return value


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _event_id(value: Any) -> str:
    if isinstance(value, str) and _CANONICAL_UUID.fullmatch(value):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        raise ValueError("expected a UUID string")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a UUID") from None


def _resident_id(value: str) -> str:
    try:
        return validate_resident_id(value)
    except IdNumberError as exc:
        raise ValueError(str(exc)) from None


def _any_id(value: str) -> str:
    try:
        return validate_any_id(value)
    except IdNumberError as exc:
        raise ValueError(str(exc)) from None


def _no_nul(value: str) -> str:
    # Every service stores text in PostgreSQL, which cannot hold U+0000: such an event would stop them all.
    if "\x00" in value:
        raise ValueError("contains the NUL character (U+0000), which no text may hold")
    return value


AwareTime = Annotated[dt.datetime, BeforeValidator(_aware_time)]
EventId = Annotated[str, BeforeValidator(_event_id)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), AfterValidator(_no_nul)]
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(_no_nul)
]
CourtCode = Annotated[str, Field(pattern=r"^[A-Z0-9]{1,16}$")]
AgencyName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
ResidentId = Annotated[str, AfterValidator(_resident_id)]
AnyId = Annotated[str, AfterValidator(_any_id)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


_M = TypeVar("_M", bound=_Strict)


class LegalRepresentative(_Strict):
    id_number: ResidentId
    name: ShortText


class Debtor(_Strict):
    kind: DebtorKind
    id_number: str
    name: ShortText
    legal_representative: LegalRepresentative | None = Field(default=None, validate_default=True)

    @field_validator("id_number")
    @classmethod
    def _id_matches_kind(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        try:
            if kind == "ORG":
                return validate_uscc(value)
            return validate_resident_id(value)
        except IdNumberError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("legal_representative")
    @classmethod
    def _representative_for_org_only(
        cls, value: LegalRepresentative | None, info: ValidationInfo
    ) -> LegalRepresentative | None:
        kind = info.data.get("kind")
        if kind == "ORG" and value is None:
            raise ValueError("an ORG debtor needs its legal representative (id_number and name)")
        if kind == "PERSON" and value is not None:
            raise ValueError("a PERSON debtor has no legal representative")
        return value


class EmployerNotice(_Strict):
    unit: ShortText
    notified_at: AwareTime


class Event(_Strict):
    """Common to every event on every topic."""

    family: ClassVar[str]
    event_id: EventId
    occurred_at: AwareTime

    @property
    def event_type(self) -> str:
        return type(self).__name__


class CourtEvent(Event):
    family: ClassVar[str] = "court"
    court_code: CourtCode
    court_name: ShortText
    entry_id: ShortText
    case_number: ShortText
    debtor: Debtor


class RiskWarningIssued(CourtEvent):
    type: Literal["RiskWarningIssued"] = "RiskWarningIssued"
    served_at: AwareTime


class Included(CourtEvent):
    type: Literal["Included"] = "Included"
    grounds: Annotated[list[Ground], Field(min_length=1, max_length=6)]
    obligation: Text
    period_months: Annotated[int, Field(ge=24, le=60)] | None = None
    disclosure: Disclosure
    employer_notified: EmployerNotice | None = None
    # When the debtor received the decision: the correction window runs from it (schema v2; v1 records
    # read as null, and then the window runs from occurred_at).
    served_at: AwareTime | None = None

    @field_validator("grounds")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a ground is listed twice")
        return value


class CorrectionRequested(CourtEvent):
    type: Literal["CorrectionRequested"] = "CorrectionRequested"
    received_at: AwareTime


class CorrectionDecided(CourtEvent):
    type: Literal["CorrectionDecided"] = "CorrectionDecided"
    outcome: CorrectionOutcome


class Shielded(CourtEvent):
    type: Literal["Shielded"] = "Shielded"
    reason: ShieldReason
    performed_at: AwareTime | None = Field(default=None, validate_default=True)

    @field_validator("performed_at")
    @classmethod
    def _performance_needs_time(cls, value: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        reason = info.data.get("reason")
        if value is None and reason in PERFORMANCE_REASONS:
            raise ValueError(f"required when reason is {reason}")
        return value


class Revoked(CourtEvent):
    type: Literal["Revoked"] = "Revoked"
    reason: RevokeReason


class FeedbackEvent(Event):
    family: ClassVar[str] = "feedback"
    agency: AgencyName
    entry_id: ShortText
    court_event_id: EventId
    debtor_id: AnyId
    subject_id: AnyId
    measures: Annotated[list[MeasureName], Field(min_length=1)]


class SanctionApplied(FeedbackEvent):
    type: Literal["SanctionApplied"] = "SanctionApplied"


class SanctionLifted(FeedbackEvent):
    type: Literal["SanctionLifted"] = "SanctionLifted"


class SanctionRetained(FeedbackEvent):
    type: Literal["SanctionRetained"] = "SanctionRetained"
    legal_basis: Text
    retain_until: AwareTime


class SanctionFailed(FeedbackEvent):
    type: Literal["SanctionFailed"] = "SanctionFailed"
    reason: Text


class InterceptionRecorded(FeedbackEvent):
    type: Literal["InterceptionRecorded"] = "InterceptionRecorded"
    court_event_id: EventId | None = None  # type: ignore[assignment]
    measure: MeasureName
    channel: ShortText
    entry_ids: Annotated[list[ShortText], Field(min_length=1)]


COURT_EVENT_TYPES: dict[str, type[CourtEvent]] = {
    cls.__name__: cls
    for cls in (RiskWarningIssued, Included, CorrectionRequested, CorrectionDecided, Shielded, Revoked)
}
FEEDBACK_EVENT_TYPES: dict[str, type[FeedbackEvent]] = {
    cls.__name__: cls
    for cls in (SanctionApplied, SanctionLifted, SanctionRetained, SanctionFailed, InterceptionRecorded)
}
EVENT_TYPES: dict[str, type[Event]] = {**COURT_EVENT_TYPES, **FEEDBACK_EVENT_TYPES}


def act_times(event: CourtEvent) -> list[tuple[str, dt.datetime]]:
    """Every time a court event states, by field name: none of them may lie after its publication."""
    values = event.__dict__  # every record pays this: no getattr of fields a type does not have
    times = [("occurred_at", values["occurred_at"])]
    for name in _stated_times(type(event)):
        if (value := values[name]) is not None:
            times.append((name, value))
    if (notice := values.get("employer_notified")) is not None:
        times.append(("employer_notified.notified_at", notice.notified_at))
    return times


@cache
def _stated_times(cls: type[CourtEvent]) -> tuple[str, ...]:
    return tuple(name for name in ("served_at", "received_at", "performed_at") if name in cls.model_fields)


def dated_in_future(event: CourtEvent, published_at: dt.datetime, tolerance: dt.timedelta) -> tuple[str, str] | None:
    """(field, reason) when the event states a time later than its publication plus the clock tolerance.

    A court act dated in the future (a mistyped year) would bar a citizen at once and then be judged
    against the agency that obeyed it: it is refused at the producer and dead-lettered on the topics.
    """
    limit = published_at + tolerance
    for name, value in act_times(event):
        if value > limit:
            return name, (
                f"{value.isoformat()} is later than its publication ({published_at.isoformat(timespec='seconds')}) "
                f"by more than the {tolerance.total_seconds():.0f} s clock tolerance: a court act cannot be dated "
                "in the future (is the year mistyped?)"
            )
    return None


class EventValidationError(ValueError):
    """An event broke the contract; `problems` holds (field, reason) pairs, one per fault."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in problems))


def _field_name(name: str) -> str:
    """An unknown field's name comes from the input: quoted when blank or invisible, so a message stays one line."""
    return name if name and name.isprintable() and name.strip() == name else repr(name)


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + _field_name(part)
    return path or "(record)"


_PREFIX = re.compile(r"^(Value error|Assertion failed), ")


def problems_from(error: ValidationError) -> list[tuple[str, str]]:
    out = []
    for item in error.errors(include_url=False):
        reason = _PREFIX.sub("", item["msg"])
        if item["type"] == "missing":
            reason = "required field is missing"
        elif item["type"] == "extra_forbidden":
            reason = "unknown field"
        out.append((_field_path(item["loc"]), reason))
    return out


def parse_event(data: Any, family: str | None = None) -> Event:
    """Validate a decoded record (dict) into its event model, or raise EventValidationError.

    `family` ("court" or "feedback") restricts which types are accepted, so a feedback record on the
    court topic is rejected rather than silently mistaken for a court act.
    """
    if not isinstance(data, dict):
        raise EventValidationError([("(record)", "expected a JSON object")])
    types = {"court": COURT_EVENT_TYPES, "feedback": FEEDBACK_EVENT_TYPES}.get(family or "", EVENT_TYPES)
    kind = data.get("type")
    if kind is None:
        raise EventValidationError([("type", "required field is missing")])
    cls = types.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EventValidationError([("type", f"unknown event type {kind!r}; expected one of {', '.join(types)}")])
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise EventValidationError(problems_from(exc)) from None


_new = object.__new__
_set = object.__setattr__


def unchecked(cls: type[_M], values: dict[str, Any]) -> _M:
    """A model from values already checked (hub/domain/wire.py): what `model_construct` sets, without its
    per-field loop, which costs more than the checks. `values` holds every field."""
    model = _new(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", set(values))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


@cache
def _field_names(cls: type[Event]) -> tuple[str, ...]:
    return tuple(cls.model_fields)


def event_to_record(event: Event) -> dict[str, Any]:
    """The plain dict that both the Avro schema and the JSON Lines input format describe."""
    if isinstance(event, FeedbackEvent):
        # Flat records, built by hand: agencies write one for every court act they answer.
        values = event.__dict__
        record = {"event_id": values["event_id"], "type": values["type"]}
        for name in _field_names(type(event)):
            value = values[name]
            record[name] = value.isoformat() if isinstance(value, dt.datetime) else value
        return record
    record = event.model_dump(mode="json")
    return {"event_id": record.pop("event_id"), "type": record.pop("type"), **record}
