"""`hub web serve` over real HTTPS on the real register and ledger: the public query page and its JSON API,
and the oversight desk's login, sessions, CSRF and court scoping. Every response body is checked for full
resident ID numbers by the client itself (tests/check_service.py WebServer)."""

from __future__ import annotations

import re
import subprocess
import time

import httpx

from tests.check_service import HUB, WebServer
from tests.support import ORG_ID, PERSON_ID, hub_env, run_hub
from tests.web_world import CROWD, PASSWORD, RESTRICTED_ID, add_account

MASKED = PERSON_ID[:10] + "****" + PERSON_ID[14:]


def login(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    form = client.get("/desk/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    return client.post("/desk/login", data={"csrf": csrf, "username": username, "password": password, "next": "/desk"})


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def test_public_search_shows_public_entries_masked_and_never_restricted_ones(web_world):
    with web_world.web.client() as client:
        page = client.get("/", params={"name": "张三"})
        assert page.status_code == 200 and MASKED in page.text and "北京市" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        for path in ("/static/style.css", "/healthz"):
            assert client.get(path).headers["x-content-type-options"] == "nosniff"
        api = client.get("/v1/register", params={"name": "张三"}).json()
        assert [r["entry_id"] for r in api["results"]] == ["P-1"]
        assert api["results"][0]["id_shown"] == MASKED and "id_digest" not in api["results"][0]
        org = client.get("/v1/register", params={"name": "某某"}).json()["results"][0]
        assert org["id_shown"] == ORG_ID and org["legal_representative"] == "李四"
        assert client.get("/entries/P-1").status_code == 200

        for params in ({"name": "王五"}, {"id": RESTRICTED_ID}, {"name": "王", "id": RESTRICTED_ID}):
            assert client.get("/v1/register", params=params).json()["results"] == []
            page = client.get("/", params=params).text
            assert 'class="result"' not in page and "/entries/R-1" not in page and "未找到" in page
        assert client.get("/entries/R-1").status_code == 404
        assert client.get("/v1/register/R-1").json()["error"] == "not_found"


def test_an_id_narrowing_is_never_echoed_and_pages_follow(web_world):
    with web_world.web.client() as client:
        first = client.get("/", params={"name": "陈"})
        assert first.text.count('class="result"') == 20 and "下一页" in first.text
        second = client.get("/", params={"name": "陈", "page": "2"})
        assert second.text.count('class="result"') == CROWD - 20
        narrowed = client.get("/", params={"name": "张", "id": PERSON_ID})
        assert narrowed.status_code == 200 and "已按证件号码" in narrowed.text and MASKED in narrowed.text
        token = re.search(r'name="idt" value="([^"]+)"', narrowed.text).group(1)  # type: ignore[union-attr]
        again = client.get("/v1/register", params={"name": "张", "idt": token}).json()
        assert [r["entry_id"] for r in again["results"]] == ["P-1"]
        assert client.get("/v1/register", params={"name": "张", "idt": "forged"}).json()["field"] == "idt"


def test_bad_queries_get_a_4xx_naming_the_field(web_world):
    with web_world.web.client() as client:
        for params, field in (
            ({"name": "张", "id": "123"}, "id"),
            ({"name": "张", "court": "j 01"}, "court"),
            ({"name": "张", "page": "x"}, "page"),
            ({"name": "张" * 51}, "name"),
            ({}, "name"),
        ):
            answer = client.get("/v1/register", params=params)
            assert answer.status_code == 400 and answer.json()["field"] == field, (params, answer.text)
        page = client.get("/", params={"name": "张", "id": "123"})
        assert page.status_code == 400 and "18 位" in page.text


def test_the_public_pages_are_rate_limited_per_address(web_world, tmp_path):
    with (
        WebServer(web_world.settings, tmp_path / "web.log", HUB_WEB_RATE_PER_ADDRESS="2") as server,
        server.client() as client,
    ):
        codes = [client.get("/v1/register", params={"name": "张三"}).status_code for _ in range(8)]
        assert codes[:4] == [200] * 4 and 429 in codes
        limited = client.get("/", params={"name": "张三"})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert client.get("/desk/login").status_code == 200  # the desk is not the public's budget


def test_the_desk_needs_a_login_and_keeps_courts_to_their_own_entries(web_world):
    with web_world.web.client() as client:
        assert client.get("/desk").status_code == 303
        assert client.get("/desk/breaches.csv").headers["location"].startswith("/desk/login")
        assert login(client, "auditor1", "wrong password!").status_code == 401
        forged = client.post("/desk/login", data={"csrf": "x", "username": "auditor1", "password": PASSWORD})
        assert forged.status_code == 403
        assert login(client, "auditor1").status_code == 303
        overview = client.get("/desk")
        assert overview.status_code == 200 and "/desk/charts/breaches.svg" in overview.text
        entry = client.get("/desk/entries/P-1")
        assert entry.status_code == 200
        for agency in web_world.settings.agencies:
            assert f"<h4>{agency}</h4>" in entry.text
        assert "SanctionApplied" in entry.text and "按时 on time" in entry.text and MASKED in entry.text
        chart = client.get("/desk/charts/breaches.svg")
        assert chart.headers["content-type"].startswith("image/svg+xml") and "<svg" in chart.text
        for name in ("delays", "lag"):
            assert client.get(f"/desk/charts/{name}.svg").status_code == 200
        breaches = client.get("/desk/breaches", params={"rule": "INCLUDED_WITHOUT_RISK_WARNING"})
        assert breaches.status_code == 200 and "P-1" in breaches.text
        csv = client.get("/desk/breaches.csv", params={"rule": "INCLUDED_WITHOUT_RISK_WARNING"})
        assert csv.headers["content-type"].startswith("text/csv") and csv.text.startswith("rule,party,entry_id")
        assert "P-1" in csv.text
        assert client.get("/desk/breaches", params={"as_of": "yesterday-ish"}).status_code == 400
        assert client.post("/desk/logout", data={"csrf": "wrong"}).status_code == 403
        assert client.post("/desk/logout", data={"csrf": csrf_of(overview.text)}).status_code == 303
        assert client.get("/desk").status_code == 303

    with web_world.web.client() as clerk:
        assert login(clerk, "clerk-j0108").status_code == 303
        assert clerk.get("/desk/entries/O-1").status_code == 200
        assert clerk.get("/desk/entries/P-1").status_code == 403
        assert "P-1" not in clerk.get("/desk/breaches").text


def test_audit_verify_result_reaches_the_desk(web_world):
    done = run_hub(web_world.settings, "audit", "verify")
    assert "note:" not in done.stderr, done.stderr
    with web_world.web.client() as client:
        login(client, "auditor1")
        overview = client.get("/desk").text
        assert ("通过 PASSED" if done.returncode == 0 else "未通过 FAILED") in overview


def test_disabled_accounts_and_idle_sessions_end(web_world, tmp_path):
    add_account(web_world.settings, "short-lived", "--auditor")
    idle = {"HUB_WEB_SESSION_IDLE_MINUTES": "0.05"}
    with WebServer(web_world.settings, tmp_path / "web.log", **idle) as server, server.client() as client:
        assert login(client, "short-lived").status_code == 303
        assert client.get("/desk").status_code == 200
        time.sleep(3.5)
        assert client.get("/desk").status_code == 303  # idle for longer than 3 s
        assert login(client, "short-lived").status_code == 303
        disabled = subprocess.run(
            [HUB, "web", "accounts", "disable", "short-lived"],
            env=hub_env(web_world.settings),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert disabled.returncode == 0, disabled.stderr
        assert client.get("/desk").status_code == 303
        assert login(client, "short-lived").status_code == 401
    refused = run_hub(web_world.settings, "web", "accounts", "add", "x", "--auditor", "--court", "J0105")
    assert refused.returncode == 2 and "exactly one" in refused.stderr
