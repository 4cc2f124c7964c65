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
from pydantic.json_schema import models_json_schema

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


class Decision(BaseModel):
    decision: str = Field(examples=["BLOCKED"], description="ALLOWED or BLOCKED.")
    subject: str = Field(description="The subject as normalised (upper-case check character).")
    measure: str
    entries: list[str] = Field(description="The entries that block (empty when ALLOWED).")
    interception_id: str | None = Field(description="The interception record of a block (its feedback event id).")


class Instants(BaseModel):
    checked_at: str = Field(description="When the question was answered (UTC, to the millisecond).")
    index_as_of: str | None = Field(description="The index held every change the agency committed before this.")


class Answer(Decision, Instants):
    pass


class Answers(Instants):
    results: list[Decision] = Field(description="In the order of the questions.")


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


def _shared(result: CheckResult) -> dict[str, Any]:
    """The instants of one request's answers: checker.decide reads the clock and the index once."""
    return {"checked_at": _iso(result.checked_at), "index_as_of": _iso(result.index_as_of)}


def _answers(results: list[CheckResult]) -> list[dict[str, Any]]:
    return [
        {
            "decision": r.decision,
            "subject": r.subject,
            "measure": r.measure,
            "entries": r.entries,
            "interception_id": r.interception_id,
        }
        for r in results
    ]


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
        docs_url=None,  # FastAPI's documentation pages load their scripts from a CDN: the document alone is served
        redoc_url=None,
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

    async def posted(scope: dict, receive: Callable, model: type[BaseModel], limit: int) -> tuple[ApiKey, Any]:
        headers = dict(scope["headers"])
        body = await _body(receive, limit)
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        key = authorised(token.strip() if scheme.lower() == "bearer" else None)
        try:
            return key, model.model_validate_json(body)
        except ValidationError as exc:
            raise malformed(exc.errors(), headers.get(b"content-type", b"").decode("latin-1")) from None

    async def single(scope: dict, receive: Callable) -> dict:
        key, question = await posted(scope, receive, Question, SINGLE_BODY_LIMIT)
        allow(key, 1)
        (result,) = await answer(key, [question])
        return {**_shared(result), **_answers([result])[0]}

    async def batch(scope: dict, receive: Callable) -> dict:
        key, body = await posted(scope, receive, Batch, BATCH_BODY_LIMIT)
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
        return {**(_shared(results[0]) if results else {}), "results": _answers(results)}

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
    app.openapi = lambda: _with_posted_routes(schema())  # type: ignore[method-assign]
    return CheckApp(app, {"/v1/checks": single, "/v1/checks/batch": batch})


SINGLE_BODY_LIMIT = 64 * 1024
BATCH_BODY_LIMIT = BATCH_LIMIT * 1024


class CheckApp:
    """The ASGI application. The two POST routes, which ticket offices call thousands of times a second, are
    taken before the framework, whose per-request machinery (dependency injection, middleware, a second JSON
    parse) cost more than half of a check's CPU: the same pydantic models parse and validate their bodies, and
    their answers and errors have the same shapes. FastAPI serves everything else, and the OpenAPI document."""

    def __init__(self, app: FastAPI, routes: dict[str, Callable]):
        self.app, self.routes = app, routes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        try:
            body = await route(scope, receive)
        except ApiError as exc:
            await _send(send, exc.status, {"error": exc.error, "field": exc.field, "detail": exc.detail}, exc.headers)
            return
        await _send(send, 200, body)


async def _body(receive: Callable, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"the body is over {limit // 1024} KiB", None)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(send: Callable, status: int, body: dict, headers: dict | None = None) -> None:
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode(), str(v).encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


def _with_posted_routes(document: dict) -> dict:
    """The routes CheckApp answers itself, in the OpenAPI document, made of the models that validate them."""
    if "/v1/checks" in document["paths"]:
        return document
    _, schemas = models_json_schema(
        [(m, "validation") for m in (Question, Batch, Answer, Answers, Problem)],
        ref_template="#/components/schemas/{model}",
    )
    document.setdefault("components", {}).setdefault("schemas", {}).update(schemas["$defs"])
    problem = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    routes = {
        "/v1/checks": ("Check one subject for one measure", "Question", "Answer"),
        "/v1/checks/batch": (
            f"Up to {BATCH_LIMIT} questions in one call (all valid, or none answered)",
            "Batch",
            "Answers",
        ),
    }
    for path, (summary, asked, answered) in routes.items():
        document["paths"][path] = {
            "post": {
                "summary": summary,
                "description": "A BLOCKED answer is sent once its interception record is durable.",
                "security": [{"HTTPBearer": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{asked}"}}},
                },
                "responses": {
                    "200": {
                        "description": "The decisions",
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{answered}"}}},
                    },
                    **{code: {"description": why, **problem} for code, why in _PROBLEMS.items()},
                },
            }
        }
    return document


_PROBLEMS = {
    "400": "A body that is not the JSON asked for",
    "401": "No valid API key",
    "413": "A body over 64 KiB (a batch: 1,000 KiB)",
    "422": "An invalid ID number or a measure the agency does not have",
    "429": "The key's rate exceeded (see Retry-After)",
}


def _fails(checker: InterceptionChecker, q: Question) -> bool:
    try:
        checker.question(q.subject, q.measure)
    except CheckError:
        return True
    return False
