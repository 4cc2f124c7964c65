"""`hub web serve`: the one web application: the public register's pages and JSON API, and the oversight desk.

Public routes need no login and are rate-limited per client address. The desk needs a session
(hub/web/accounts.py); a court's account sees its own court's entries only. Every page is rendered on the
server (Jinja2, no script); every text a page or export prints passes `mask_resident_ids`, so no response
can carry a full resident ID number, whatever a ledger detail line quotes. An ID number a visitor typed is
never echoed: pagination links carry it encrypted with a key this process made at start.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
from cryptography.fernet import Fernet, InvalidToken
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy.exc import DBAPIError

from hub.config import Settings
from hub.domain import oversight
from hub.domain.duties import entry_duties
from hub.domain.history import entry_states
from hub.domain.ids import mask_resident_ids
from hub.domain.lifecycle import lives
from hub.domain.register import Listing, shown_id
from hub.domain.rules import RULES, Violation
from hub.domain.times import read_instant
from hub.ledger.report import Report
from hub.log import get_logger
from hub.register import search
from hub.web import charts, labels
from hub.web.accounts import Accounts, Session
from hub.web.sources import Sources

HERE = Path(__file__).resolve().parent
SESSION_COOKIE, LOGIN_COOKIE = "hub_session", "hub_login_csrf"
DELAY_DAYS = 14  # the delays chart's window
BREACH_WEEKS = 12  # the breaches chart's window
_ID = re.compile(r"^[0-9A-Z]{18}$")
_COURT = re.compile(r"^[A-Z0-9]{1,16}$")
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Strict-Transport-Security": "max-age=31536000",
    "Cache-Control": "no-store",
}


class Refused(Exception):
    """A request the pages answer with a message: a 4xx with the field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


class AddressLimits:
    """A token bucket per client address: `rate` a second, bursts of twice that."""

    def __init__(self, rate: float, burst: float | None = None):
        self.rate, self.burst = rate, burst or 2 * rate
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, address: str, spend: bool = True) -> float:
        """0 when allowed (a token spent unless `spend` is false: a look only), else the seconds to wait."""
        now = time.monotonic()
        if len(self._buckets) > 100_000:
            self._buckets.clear()
        tokens, last = self._buckets.get(address, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[address] = (tokens, now)
            return (1 - tokens) / self.rate
        self._buckets[address] = (tokens - 1 if spend else tokens, now)
        return 0.0


def _masked(value: Any) -> Any:
    return mask_resident_ids(value) if isinstance(value, str) and not isinstance(value, Markup) else value


def public_listing(e: Listing) -> dict[str, Any]:
    """A listing as the JSON API gives it: never the ID digest, which with the masked number would give the
    full number back in a few hundred guesses."""
    data = e.as_dict()
    del data["id_digest"]
    return data


class WebApp:
    def __init__(self, settings: Settings, sources: Sources, accounts: Accounts):
        self.settings, self.sources, self.accounts = settings, sources, accounts
        self.zone = settings.zone
        self.public_limits = AddressLimits(settings.web_rate_per_address)
        self.login_limits = AddressLimits(5 / 60, burst=5)  # failed sign-ins: 5 a minute per address
        self._ids = Fernet(Fernet.generate_key())
        self.log = get_logger("hub.web")
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(), finalize=_masked
        )
        self.templates.globals.update(
            day=lambda t: t.astimezone(self.zone).date().isoformat(),
            when=lambda t: t.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S") if t else "",
            grounds=labels.GROUNDS,
            events=labels.EVENTS,
            kinds=labels.KINDS,
        )

    # -- rendering -------------------------------------------------------------------------------

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.templates.get_template(name).render(**context), status_code=status, headers=HEADERS)

    def message(self, status: int, text: str, back: str = "/", template_base: str = "message.html") -> HTMLResponse:
        return self.page(template_base, status, error=text, back=back)

    # -- the public register ---------------------------------------------------------------------

    def query(self, params: dict[str, str]) -> tuple[search.Query, str | None]:
        """The query of a request, checked; and the visitor's ID number as its encrypted token for links."""
        name = params.get("name", "").strip()
        court = params.get("court", "").strip().upper()
        case = params.get("case", "").strip()
        number = params.get("id", "").strip().upper().replace(" ", "")
        token = params.get("idt", "").strip()
        if len(name) > 50:
            raise Refused(400, "姓名或名称过长：最多 50 个字 (name: at most 50 characters)", "name")
        if len(case) > 100:
            raise Refused(400, "案号过长：最多 100 个字 (case: at most 100 characters)", "case")
        if court and not _COURT.match(court):
            raise Refused(400, "法院代码应为 1–16 位字母或数字 (court: 1-16 letters or digits)", "court")
        if number and not _ID.match(number):
            raise Refused(
                400,
                "证件号码应为 18 位：身份证号码或统一社会信用代码 (id: 18 characters, a resident ID or a credit code)",
                "id",
            )
        if not number and token:
            try:
                number = self._ids.decrypt(token.encode(), ttl=3600).decode()
            except InvalidToken:
                raise Refused(
                    400, "查询已过期，请重新输入证件号码 (the ID narrowing expired: enter it again)", "idt"
                ) from None
        try:
            page = int(params.get("page", "1"))
        except ValueError:
            raise Refused(400, "页码应为整数 (page: a whole number)", "page") from None
        if not 1 <= page <= search.MAX_PAGE:
            raise Refused(400, f"页码应在 1–{search.MAX_PAGE} 之间 (page: 1-{search.MAX_PAGE})", "page")
        q = search.Query(name=name, id_number=number, court_code=court, case_number=case, page=page)
        return q, (self._ids.encrypt(number.encode()).decode() if number else None)

    def lookup(self, q: search.Query) -> search.Page:
        with self.sources.register.connect() as conn:
            return search.search(conn, q)

    def listing(self, entry_id: str) -> Listing | None:
        with self.sources.register.connect() as conn:
            return search.entry(conn, entry_id)

    def search_page(self, params: dict[str, str]) -> HTMLResponse:
        try:
            q, token = self.query(params)
        except Refused as refused:
            return self.page("search.html", refused.status, q=search.Query(), error=refused.message, page=None)
        if q.empty:
            if q.court_code:
                return self.page(
                    "search.html",
                    400,
                    q=q,
                    page=None,
                    error="请输入姓名、证件号码或案号 (enter a name, ID or case number)",
                )
            return self.page("search.html", q=q, page=None)
        found = self.lookup(q)

        def link(number: int) -> str:
            kept = {"name": q.name, "idt": token or "", "court": q.court_code, "case": q.case_number, "page": number}
            return "/?" + urlencode({k: v for k, v in kept.items() if v})

        id_shown = (
            shown_id("ORG" if q.id_number and not q.id_number[:17].isdigit() else "PERSON", q.id_number)
            if q.id_number
            else None
        )
        return self.page("search.html", q=q, page=found, link=link, idt=token, id_shown=id_shown)

    def api_search(self, params: dict[str, str]) -> JSONResponse:
        try:
            q, _token = self.query(params)
        except Refused as refused:
            return refusal_json(refused)
        if q.empty:
            return refusal_json(Refused(400, "give name, id or case (court narrows them)", "name"))
        found = self.lookup(q)
        return JSONResponse(
            {
                "query": {"name": q.name, "court": q.court_code, "case": q.case_number, "id_given": bool(q.id_number)},
                "total": found.total,
                "more_than_total": found.capped,
                "page": found.page,
                "pages": found.pages,
                "per_page": search.PER_PAGE,
                "results": [public_listing(e) for e in found.listings],
            },
            headers=HEADERS,
        )

    # -- the desk --------------------------------------------------------------------------------

    def session(self, request: Request) -> Session | None:
        return self.accounts.session(request.cookies.get(SESSION_COOKIE), dt.datetime.now(dt.UTC))

    def violations(self, session: Session, as_of: dt.datetime | None = None) -> tuple[dt.datetime, list[Violation]]:
        """The breaches this account may see, as of `as_of` (None: now), and that instant: a court's account
        sees those of its own court's entries."""
        as_of, found = self.sources.breaches(as_of)
        if session.account.kind == "auditor":
            return as_of, found
        courts = self.sources.courts_of(v.entry_id for v in found)
        return as_of, [v for v in found if courts.get(v.entry_id) == session.account.court_code]

    def overview(self, session: Session) -> HTMLResponse:
        breaches = len(self.violations(session)[1])
        return self.page(
            "desk.html",
            session=session,
            ledger_rows=self.sources.ledger_rows(),
            read_at=dt.datetime.now(dt.UTC),
            breaches=breaches,
            verified=self.sources.last_verification(),
        )

    def entry_page(self, session: Session, entry_id: str) -> HTMLResponse:
        court, feedback = self.sources.entry(entry_id)
        if not court:
            return self.page("desk_base.html", 404, session=session, error=f"账本中没有条目 {entry_id} (no such entry)")
        if not session.account.sees(court[0].event.court_code):
            return self.page(
                "desk_base.html",
                403,
                session=session,
                error="此条目不属于您的法院 (this entry belongs to another court)",
            )
        now = dt.datetime.now(dt.UTC)
        deadlines = self.settings.deadlines()
        duties = entry_duties(court, feedback, self.settings.agencies, deadlines, now, self.sources.agency_starts())
        life = next(iter(lives(court).values()))
        refused = {a.item.event.event_id: f"不生效 refused: {why}" for a, why in life.refused}
        state = entry_states(court, now, now).get(entry_id, {})
        first = court[0].event
        summary = {
            "name": first.debtor.name,
            "id_shown": shown_id(first.debtor.kind, first.debtor.id_number),
            "court": f"{first.court_name}（{first.court_code}）",
            "case_number": first.case_number,
            "state": state.get("state"),
        }
        interceptions: dict[str, list] = {}
        for r in feedback:
            if r.event.event_type == "InterceptionRecorded":
                interceptions.setdefault(r.event.agency, []).append(r)
        violations = [v for v in self.sources.breaches()[1] if v.entry_id == entry_id]
        return self.page(
            "desk_entry.html",
            session=session,
            entry_id=entry_id,
            court=sorted(court, key=lambda r: (r.event.occurred_at, r.position)),
            duties=duties,
            refused=refused,
            summary=summary,
            interceptions=interceptions,
            violations=violations,
        )

    def breach_filters(self, session: Session, params: dict[str, str]) -> tuple[dt.datetime | None, str, str, str]:
        text = params.get("as_of", "").strip()
        try:
            as_of = read_instant(text, self.zone) if text else None
        except ValueError as exc:
            raise Refused(400, f"截至时间无法识别 (as_of): {exc}", "as_of") from None
        party, rule = params.get("party", "").strip(), params.get("rule", "").strip()
        if rule and rule not in RULES:
            raise Refused(400, f"没有规则 {rule} (unknown rule)", "rule")
        return as_of, text, party, rule

    def breaches_page(self, session: Session, params: dict[str, str], csv: bool) -> Response:
        try:
            as_of, text, party, rule = self.breach_filters(session, params)
        except Refused as refused:
            return self.page("desk_base.html", refused.status, session=session, error=refused.message)
        as_of, found = self.violations(session, as_of)
        parties = sorted({v.party for v in found})
        chosen = [v for v in found if (not party or v.party == party) and (not rule or v.rule == rule)]
        if csv:
            report = Report(as_of, chosen, {}, self.zone)
            stamp = as_of.astimezone(self.zone).strftime("%Y%m%d-%H%M")
            return PlainTextResponse(
                mask_resident_ids(report.as_csv()),
                media_type="text/csv; charset=utf-8",
                headers={**HEADERS, "Content-Disposition": f'attachment; filename="breaches-{stamp}.csv"'},
            )
        query = urlencode({k: v for k, v in {"as_of": text, "party": party, "rule": rule}.items() if v})
        return self.page(
            "breaches.html",
            session=session,
            as_of=as_of,
            as_of_text=text,
            party=party,
            rule=rule,
            parties=parties,
            rules=RULES,
            violations=chosen,
            csv_link="/desk/breaches.csv" + (f"?{query}" if query else ""),
        )

    def chart(self, session: Session, name: str) -> Response:
        now = dt.datetime.now(dt.UTC)
        if name == "breaches":
            judged_at, found = self.violations(session)
            data = oversight.breaches_per_week(found, self.zone, BREACH_WEEKS, until=judged_at)
            weeks = BREACH_WEEKS
            title = f"每周违规数（按责任方，近 {weeks} 周） Breaches per week, by party, last {weeks} weeks"
            svg = charts.breaches_chart(data, title)
        elif name == "delays":
            found = self.sources.answers(DELAY_DAYS, now, session.account.court_code)
            starts = self.sources.agency_starts()
            data = oversight.daily_delays(found, self.zone, DELAY_DAYS, until=now, starts=starts)
            title = f"法院记录到单位反馈的时间（中位数与 p99，按日，近 {DELAY_DAYS} 日） Court record → feedback"
            svg = charts.delays_chart(data, title)
        elif name == "lag":
            lags = {k: v for k, v in self.sources.lag().items() if v is not None}
            svg = charts.lag_chart(lags, "当前消费滞后 Consumer lag now")
        else:
            return PlainTextResponse("no such chart", status_code=404)
        return Response(
            mask_resident_ids(svg),
            media_type="image/svg+xml",
            headers={**HEADERS, "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
        )


def refusal_json(refused: Refused) -> JSONResponse:
    return JSONResponse(
        {
            "error": {400: "invalid_query", 404: "not_found", 503: "unavailable"}.get(refused.status, "refused"),
            "field": refused.field,
            "detail": refused.message,
        },
        status_code=refused.status,
        headers=HEADERS,
    )


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def create_app(settings: Settings, sources: Sources, accounts: Accounts) -> FastAPI:
    web = WebApp(settings, sources, accounts)
    app = FastAPI(title="Credit-sanction hub: public register and oversight desk", docs_url=None, redoc_url=None)
    app.state.web = web
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(DBAPIError)
    async def database_away(request: Request, exc: DBAPIError):
        """The register or the ledger not there yet, or the database server away: a 503 that says which."""
        missing = isinstance(exc.orig, psycopg.errors.UndefinedTable) or "does not exist" in str(exc.orig)
        what = (
            "尚未建立 (not made yet: start hub register run / hub ledger run)"
            if missing
            else "暂时无法访问 (unreachable)"
        )
        web.log.warning("database unavailable", path=request.url.path, error=str(exc.orig).strip()[:300])
        if request.url.path.startswith("/v1/"):
            return refusal_json(
                Refused(503, f"the database is {'not made yet' if missing else 'unreachable'}; try again")
            )
        return web.message(503, f"服务暂不可用：数据库{what}。请稍后再试。")

    @app.middleware("http")
    async def limit_public(request: Request, call_next: Callable):
        """The per-address limit of the public routes; and the security headers on every response (the
        stylesheet, /healthz and the OpenAPI document included), unless a route set its own."""
        path = request.url.path
        if path == "/" or path.startswith(("/entries/", "/v1/register")):
            wait = web.public_limits.take(_address(request))
            if wait:
                retry = {"Retry-After": str(max(1, round(wait)))}
                if path.startswith("/v1/"):
                    return JSONResponse(
                        {"error": "rate_limited", "field": None, "detail": "too many requests from this address"},
                        status_code=429,
                        headers={**HEADERS, **retry},
                    )
                response = web.message(429, "查询过于频繁，请稍后再试 (too many requests: wait a moment)")
                response.headers.update(retry)
                return response
        response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request):
        return web.search_page(dict(request.query_params))

    @app.get("/entries/{entry_id}", response_class=HTMLResponse)
    def public_entry(entry_id: str):
        found = web.listing(entry_id)
        if found is None:
            return web.message(404, "该条目不在公开名单中 (no public entry of that id)")
        return web.page("entry.html", e=found)

    @app.get("/v1/register")
    def api_register(request: Request):
        return web.api_search(dict(request.query_params))

    @app.get("/v1/register/{entry_id}")
    def api_entry(entry_id: str):
        found = web.listing(entry_id)
        if found is None:
            return refusal_json(Refused(404, "no public entry of that id", "entry_id"))
        return JSONResponse(public_listing(found), headers=HEADERS)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    # -- the desk --------------------------------------------------------------------------------

    def login_redirect(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/desk/login?" + urlencode({"next": target}), status_code=303)

    def cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/desk", secure=True, httponly=True, samesite="strict")

    @app.get("/desk/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/desk"):
        token = secrets.token_urlsafe(32)
        response = web.page("login.html", csrf=token, next=_local(next))
        cookie(response, LOGIN_COOKIE, token, max_age=3600)
        return response

    @app.post("/desk/login", response_class=HTMLResponse)
    async def login(request: Request):
        form = await request.form()
        token = request.cookies.get(LOGIN_COOKIE, "")
        sent = str(form.get("csrf", ""))
        target = _local(str(form.get("next", "/desk")))
        if not token or not hmac.compare_digest(token, sent):
            return web.message(403, "表单已失效，请重新登录 (the form expired: sign in again)", "/desk/login")
        wait = web.login_limits.take(_address(request), spend=False)  # only a failed attempt spends
        if wait:
            response = web.message(429, "登录失败次数过多，请稍后再试 (too many failed sign-ins)", "/desk/login")
            response.headers["Retry-After"] = str(max(1, round(wait)))
            return response
        done = accounts.login(str(form.get("username", "")), str(form.get("password", "")), dt.datetime.now(dt.UTC))
        if done is None:
            web.login_limits.take(_address(request))
            fresh = secrets.token_urlsafe(32)
            response = web.page(
                "login.html",
                401,
                csrf=fresh,
                next=target,
                error="用户名或密码错误，或账户已停用 (wrong name or password, or disabled)",
            )
            cookie(response, LOGIN_COOKIE, fresh, max_age=3600)
            return response
        value, _session = done
        response = RedirectResponse(target, status_code=303)
        cookie(response, SESSION_COOKIE, value)
        response.delete_cookie(LOGIN_COOKIE, path="/desk")
        return response

    @app.post("/desk/logout")
    async def logout(request: Request):
        session = web.session(request)
        form = await request.form()
        if session is not None and hmac.compare_digest(session.csrf, str(form.get("csrf", ""))):
            accounts.logout(request.cookies.get(SESSION_COOKIE))
        elif session is not None:
            return web.message(403, "表单已失效 (the form expired)", "/desk")
        response = RedirectResponse("/desk/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/desk")
        return response

    @app.get("/desk", response_class=HTMLResponse)
    def desk(request: Request):
        session = web.session(request)
        return login_redirect(request) if session is None else web.overview(session)

    @app.get("/desk/entries", response_class=HTMLResponse)
    def desk_find(request: Request, entry_id: str = ""):
        session = web.session(request)
        if session is None:
            return login_redirect(request)
        if not entry_id.strip():
            return web.page("desk_base.html", 400, session=session, error="请输入条目编号 (enter an entry id)")
        return RedirectResponse(f"/desk/entries/{entry_id.strip()}", status_code=303)

    @app.get("/desk/entries/{entry_id}", response_class=HTMLResponse)
    def desk_entry(request: Request, entry_id: str):
        session = web.session(request)
        return login_redirect(request) if session is None else web.entry_page(session, entry_id)

    @app.get("/desk/breaches", response_class=HTMLResponse)
    def desk_breaches(request: Request):
        session = web.session(request)
        return (
            login_redirect(request)
            if session is None
            else web.breaches_page(session, dict(request.query_params), False)
        )

    @app.get("/desk/breaches.csv")
    def desk_breaches_csv(request: Request):
        session = web.session(request)
        return (
            login_redirect(request) if session is None else web.breaches_page(session, dict(request.query_params), True)
        )

    @app.get("/desk/charts/{name}.svg")
    def desk_chart(request: Request, name: str):
        session = web.session(request)
        return login_redirect(request) if session is None else web.chart(session, name)

    return app


def _local(target: str) -> str:
    """Where a login may send the browser on: a desk page of this server, never elsewhere."""
    return target if target.startswith("/desk") and "//" not in target and "\\" not in target else "/desk"
