"""The check service's HTTP API (`hub agency serve NAME`): the interception check for systems not written in
Python (ticketing, loan desks, property registries).

Every answer comes from one InterceptionChecker, so the HTTP service, an embedded checker and the CLI give the
same decisions with the same messages; a BLOCKED answer leaves only once its record is durable. Errors have
one shape, `{"error", "field", "detail"}`: 400 a body that is not the JSON asked for, 422 a question that makes
no sense here (an invalid ID number, a measure the agency does not have, too many questions), 401 no valid API
key, 429 the key's rate exceeded.
"""

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.agency.check import CheckError, CheckResult, InterceptionChecker
from hub.agency.keys import ApiKey

BATCH_LIMIT = 1000
_bearer = HTTPBearer(auto_error=False, description="An API key from `hub agency keys add`.")


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str, field: str | None = None, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.error, self.detail, self.field, self.headers = status, error, detail, field, headers


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str = Field(
        description="Resident ID number or unified social credit code.", examples=["11010519491231002X"]
    )
    measure: str = Field(description="One of the agency's measures.", examples=["AIR_TRAVEL_RESTRICTED"])
    channel: str | None = Field(
        default=None,
        max_length=64,
        description="Where in the calling system the check happens (a counter, a gate); recorded after the key's "
        "system as `system/channel`.",
    )


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    checks: list[Question] = Field(description=f"Up to {BATCH_LIMIT} questions.")


class Answer(BaseModel):
    decision: str = Field(examples=["BLOCKED"])
    subject: str
    measure: str
    entries: list[str] = Field(description="The entries that block (empty when ALLOWED).")
    checked_at: str
    index_as_of: str | None = Field(description="The index held every change the agency committed before this.")
    interception_id: str | None = Field(description="The interception record of a block (its feedback event id).")


class Answers(BaseModel):
    results: list[Answer]


class Restriction(BaseModel):
    entry_id: str
    measure: str
    until: str | None = Field(description="When a retention ends; null while the entry stands.")


class Subject(BaseModel):
    subject: str
    restrictions: list[Restriction]
    checked_at: str
    index_as_of: str | None


class Problem(BaseModel):
    error: str = Field(examples=["invalid_subject"])
    field: str | None = Field(examples=["subject"])
    detail: str


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds")


def _answer(r: CheckResult) -> dict[str, Any]:
    return {
        "decision": r.decision,
        "subject": r.subject,
        "measure": r.measure,
        "entries": r.entries,
        "checked_at": _iso(r.checked_at),
        "index_as_of": _iso(r.index_as_of),
        "interception_id": r.interception_id,
    }


class RateLimits:
    """A token bucket per key: `rate` questions a second on average, bursts of up to one second's worth."""

    def __init__(self, default_rate: float):
        self.default_rate = default_rate
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: ApiKey, questions: int) -> float:
        """0 when allowed, else the seconds to wait."""
        rate = key.rate_per_second or self.default_rate
        now = time.monotonic()
        tokens, last = self._buckets.get(key.key_id, (rate, now))
        tokens = min(rate, tokens + (now - last) * rate)
        if tokens < questions:
            self._buckets[key.key_id] = (tokens, now)
            return (questions - tokens) / rate
        self._buckets[key.key_id] = (tokens - questions, now)
        return 0.0


class Metrics:
    def __init__(self, checker: InterceptionChecker):
        self.registry = CollectorRegistry()
        r = self.registry
        self.checks = Counter("hub_checks", "Questions answered, by decision.", ["decision"], registry=r)
        self.allowed, self.blocked = self.checks.labels("ALLOWED"), self.checks.labels("BLOCKED")
        self.latency = Histogram(
            "hub_check_duration_seconds",
            "Time to answer one request (a batch counts once), a block's durable record included.",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        follower, recorder = checker.follower, checker.recorder
        assert follower is not None and recorder is not None
        age = Gauge("hub_index_age_seconds", "Seconds since the index last matched the database.", registry=r)
        age.set_function(lambda: time.time() - follower.as_of if follower.as_of else float("nan"))
        subjects = Gauge("hub_index_subjects", "Subjects with a restriction in the index.", registry=r)
        subjects.set_function(lambda: len(follower.index))
        pending = Gauge(
            "hub_interceptions_pending",
            "Interception records not yet in the database (being written, or journaled while it is away).",
            registry=r,
        )
        pending.set_function(recorder.pending)
        journaling = Gauge("hub_interceptions_journaling", "1 while blocks go to the local journal.", registry=r)
        journaling.set_function(lambda: float(recorder.journaling))

    def count(self, results: list[CheckResult], started: float) -> None:
        blocked = sum(r.decision == "BLOCKED" for r in results)
        if blocked:
            self.blocked.inc(blocked)
        if len(results) > blocked:
            self.allowed.inc(len(results) - blocked)
        self.latency.observe(time.perf_counter() - started)


def _field(loc: tuple) -> str | None:
    parts = [p for p in loc if p != "body"]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or None


def malformed(errors: Sequence[Any], content_type: str) -> ApiError:
    """A body the models refused, said the same way on every route: the first problem, with its field."""
    first = errors[0]
    where = _field(tuple(first.get("loc", ())))
    detail = first.get("msg", "malformed body")
    if first.get("type") == "json_invalid":
        where, detail = None, f"the body is not valid JSON ({first.get('ctx', {}).get('error', 'cut short')})"
    elif not where and content_type and "json" not in content_type:
        detail = f"the body must be a JSON object sent as Content-Type: application/json, not {content_type}"
    elif where:
        detail = f"{where}: {detail}"
    return ApiError(400, "malformed_body", detail, where)


def _problem(exc: ApiError) -> JSONResponse:
    return JSONResponse({"error": exc.error, "field": exc.field, "detail": exc.detail}, exc.status, exc.headers)


def create_app(checker: InterceptionChecker, max_index_age: float, default_rate: float) -> "CheckApp":
    agency = checker.policy.name
    follower, recorder = checker.follower, checker.recorder
    assert follower is not None and recorder is not None
    limits = RateLimits(default_rate)
    metrics = Metrics(checker)
    errors = {401: {"model": Problem}, 422: {"model": Problem}, 429: {"model": Problem}}
    app = FastAPI(
        strict_content_type=False,  # a mainframe's client may send JSON without saying so
        title=f"Interception check: {agency}",
        version="1",
        description=(
            f"Is a subject restricted by {agency} for a measure, right now? Answers from an index that follows "
            f"the agency's commits; every BLOCKED answer is recorded before it is sent. Measures: "
            f"{', '.join(checker.policy.measures)}."
        ),
    )

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _problem(malformed(exc.errors(), request.headers.get("content-type", "")))

    def authorised(token: str | None) -> ApiKey:
        key = follower.keys.verify(token) if token else None
        if key is None:
            raise ApiError(
                401,
                "unauthorized",
                "send a valid API key as `Authorization: Bearer <key>` (issued by `hub agency keys add`)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return key

    async def caller(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> ApiKey:
        return authorised(credentials.credentials if credentials is not None else None)

    Caller = Annotated[ApiKey, Depends(caller)]

    def allow(key: ApiKey, questions: int) -> None:
        wait = limits.take(key, questions)
        if wait:
            raise ApiError(
                429,
                "rate_limited",
                f"system {key.system} asks faster than its {key.rate_per_second or default_rate:g} questions/s",
                headers={"Retry-After": str(max(1, round(wait)))},
            )

    async def answer(key: ApiKey, questions: list[Question]) -> list[CheckResult]:
        started = time.perf_counter()
        channel = key.system
        try:
            results, durable = checker.decide(
                [(q.subject, q.measure, f"{channel}/{q.channel}" if q.channel else channel) for q in questions]
            )
        except CheckError as exc:
            error = "invalid_subject" if exc.field == "subject" else "unknown_measure"
            raise ApiError(422, error, str(exc), exc.field) from None
        if durable is not None:
            await asyncio.wrap_future(durable)
        metrics.count(results, started)
        return results

    async def single(scope: dict, receive: Callable, send: Callable) -> None:
        """POST /v1/checks, the call a ticket office makes thousands of times a second, taken before the
        framework: its per-request machinery (dependency injection, middleware) costed more than half of a check's
        CPU. The same model validates the body; answers and errors are the same as on every other route."""
        headers = dict(scope["headers"])
        try:
            body = await _body(receive, SINGLE_BODY_LIMIT)
            token = headers.get(b"authorization", b"").decode("latin-1")
            scheme, _, token = token.partition(" ")
            key = authorised(token.strip() if scheme.lower() == "bearer" else None)
            try:
                question = Question.model_validate_json(body)
            except ValidationError as exc:
                raise malformed(exc.errors(), headers.get(b"content-type", b"").decode("latin-1")) from None
            allow(key, 1)
            (result,) = await answer(key, [question])
        except ApiError as exc:
            await _send(send, exc.status, {"error": exc.error, "field": exc.field, "detail": exc.detail}, exc.headers)
            return
        await _send(send, 200, _answer(result))

    @app.post(
        "/v1/checks/batch",
        response_model=Answers,
        responses=errors,
        summary=f"Up to {BATCH_LIMIT} questions in one call (all valid, or none answered)",
    )
    async def batch(body: Batch, key: Caller) -> JSONResponse:
        if len(body.checks) > BATCH_LIMIT:
            raise ApiError(422, "too_many_checks", f"{len(body.checks)} questions: at most {BATCH_LIMIT}", "checks")
        allow(key, max(1, len(body.checks)))
        try:
            results = await answer(key, body.checks)
        except ApiError as exc:
            if exc.field:
                index = next(i for i, q in enumerate(body.checks) if _fails(checker, q))
                exc.field = f"checks[{index}].{exc.field}"
            raise
        return JSONResponse({"results": [_answer(r) for r in results]})

    @app.get("/v1/subjects/{subject}", response_model=Subject, responses=errors, summary="A subject's restrictions")
    async def subject(subject: str, key: Caller) -> JSONResponse:
        allow(key, 1)
        try:
            held = checker.held(subject)
            subject = checker.question(subject, checker.policy.measures[0])
        except CheckError as exc:
            raise ApiError(422, "invalid_subject", str(exc), "subject") from None
        now = time.time()
        return JSONResponse(
            {
                "subject": subject,
                "restrictions": [{"entry_id": e, "measure": m, "until": _iso(u)} for e, m, u in held],
                "checked_at": _iso(now),
                "index_as_of": _iso(follower.as_of),
            }
        )

    @app.get("/healthz", summary="The process answers")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="Ready for traffic: the index is loaded and fresh")
    async def readyz() -> JSONResponse:
        age = None if follower.as_of is None else time.time() - follower.as_of
        ready = follower.loaded and age is not None and age <= max_index_age
        body = {
            "ready": ready,
            "index_as_of": _iso(follower.as_of),
            "index_age_seconds": None if age is None else round(age, 3),
            "max_index_age_seconds": max_index_age,
            "subjects": len(follower.index),
            "journaling": recorder.journaling,
            "interceptions_pending": recorder.pending(),
        }
        if not ready:
            body["detail"] = (
                "the index is not loaded yet"
                if not follower.loaded
                else f"the index has not matched the database for {age:.0f} s (HUB_CHECK_MAX_INDEX_AGE_SECONDS "
                f"{max_index_age:g}): is the {agency} database reachable?"
            )
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    schema = app.openapi
    app.openapi = lambda: _with_single_check(schema())  # type: ignore[method-assign]
    return CheckApp(app, single)


SINGLE_BODY_LIMIT = 64 * 1024


class CheckApp:
    """The ASGI application: POST /v1/checks by the fast path, everything else by FastAPI."""

    def __init__(self, app: FastAPI, single: Callable):
        self.app, self.single = app, single

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/checks" and scope["method"] == "POST":
            await self.single(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _body(receive: Callable, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"a single check's body is at most {limit} bytes", None)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(send: Callable, status: int, body: dict, headers: dict | None = None) -> None:
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode(), str(v).encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


def _with_single_check(document: dict) -> dict:
    """The fast path's route in the OpenAPI document, made of the same models as the batch route's."""
    if "/v1/checks" in document["paths"]:
        return document
    problem = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    document["paths"]["/v1/checks"] = {
        "post": {
            "summary": "Check one subject for one measure",
            "description": "A BLOCKED answer is sent once its interception record is durable.",
            "security": [{"HTTPBearer": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Question"}}},
            },
            "responses": {
                "200": {
                    "description": "The decision",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Answer"}}},
                },
                **{code: {"description": why, **problem} for code, why in _PROBLEMS.items()},
            },
        }
    }
    return document


_PROBLEMS = {
    "400": "A body that is not the JSON asked for",
    "401": "No valid API key",
    "413": "A body over 64 KiB",
    "422": "An invalid ID number or a measure the agency does not have",
    "429": "The key's rate exceeded (see Retry-After)",
}


def _fails(checker: InterceptionChecker, q: Question) -> bool:
    try:
        checker.question(q.subject, q.measure)
    except CheckError:
        return True
    return False
