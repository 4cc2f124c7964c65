"""P3 interception checks against an agency database holding N restricted subjects.

The database is made by the agency's own migrations and then bulk-loaded with COPY (synthetic, valid resident
ID numbers; each subject restricted by one applied entry for both transport measures), because replaying
millions of court events through the service would measure P1 again. Then, in a separate process, the Python
`InterceptionChecker.check` is timed call by call (half restricted subjects, half unrestricted), with its
construction timed apart; and `hub agency check` is timed per invocation, as a shell script would call it.

Then the check service, `hub agency serve`, on the same database (bench/README.md, rows "P3 service"): its
index load time and memory; single checks over HTTPS with keep-alive from Debian's `wrk` at 32 connections
(half blocked, then all allowed), beside the same `wrk` against a plain uvicorn TLS app (bench/plain_https.py,
the ceiling of the Python HTTPS stack here); batches of 1,000 from bench/http_load.py; lift-to-check (an
agency's commit of a lift until the service first answers ALLOWED); and the index's bytes per subject
(bench/index_memory.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import text

from bench.common import (
    BENCH_DIR,
    HUB,
    Finished,
    Measured,
    Namespaces,
    Section,
    Sizes,
    Target,
    hub_env,
    libpq_url,
    percentile,
    run_measured,
    run_worker,
    say,
    step,
)
from bench.ids import resident_id
from consumers import load_policy
from hub.agency.service import open_database
from hub.agency.store import CHANGES_LOCK
from hub.config import Settings
from hub.devstack.secrets import ca_file

AGENCY = "transport"
_CHUNK = 50_000


def load_restricted(settings: Settings, subjects: int, measures: tuple[str, ...]) -> dict[str, int]:
    """One APPLIED entry per subject and its restrictions, as the agency's store would have written them."""
    open_database(settings, AGENCY).dispose()  # create and migrate: the schema is the product's
    array = "{" + ",".join(measures) + "}"
    ids = [resident_id(i) for i in range(subjects)]
    with psycopg.connect(libpq_url(settings, AGENCY)) as conn, conn.cursor() as cur:
        with cur.copy(
            "copy entries (entry_id, debtor_id, subject_id, measures, status, included_event_id, retained) from stdin"
        ) as copy:
            for start in range(0, subjects, _CHUNK):
                buf = io.StringIO()
                for i in range(start, min(start + _CHUNK, subjects)):
                    subject = ids[i]
                    buf.write(f"EBENCH-{i:08d}\t{subject}\t{subject}\t{array}\tAPPLIED\t{uuid.UUID(int=i + 1)}\t{{}}\n")
                copy.write(buf.getvalue())
        with cur.copy("copy restrictions (subject_id, measure, entry_id) from stdin") as copy:
            for start in range(0, subjects, _CHUNK):
                buf = io.StringIO()
                for i in range(start, min(start + _CHUNK, subjects)):
                    subject = ids[i]
                    for measure in measures:
                        buf.write(f"{subject}\t{measure}\tEBENCH-{i:08d}\n")
                copy.write(buf.getvalue())
        conn.commit()
        conn.execute("analyze entries")
        conn.execute("analyze restrictions")
        conn.commit()
        entries = conn.execute("select count(*) from entries").fetchone()[0]
        restrictions = conn.execute("select count(*) from restrictions").fetchone()[0]
    return {"entries": entries, "restrictions": restrictions}


def cli_checks(settings: Settings, sizes: Sizes, measures: tuple[str, ...], logs: Path) -> dict:
    """`hub agency check` per call: interpreter, imports, database and (for a block) the feedback's delivery."""
    walls, rss, wrong = [], [], 0
    for i in range(sizes.p3_cli_calls):
        restricted = i % 2 == 0
        subject = resident_id((i * 7919) % sizes.p3_subjects, restricted=restricted)
        argv = [str(HUB), "agency", "check", AGENCY, "--subject", subject, "--measure", measures[i % len(measures)]]
        done = run_measured([*argv, "--format", "json"], hub_env(settings), logs / f"p3-cli-{i}.log", 120)
        if done.returncode != 0:
            raise RuntimeError(f"`hub agency check` exited {done.returncode}:\n{done.tail()}")
        answer = next(
            (json.loads(line) for line in done.log.read_text().splitlines() if line.startswith('{"decision"')), None
        )
        wrong += answer is None or (answer["decision"] == "BLOCKED") != restricted
        walls.append(done.seconds * 1000)
        rss.append(done.peak_kb)
    return {
        "calls": len(walls),
        "mean_ms": statistics.fmean(walls),
        "p50_ms": statistics.median(walls),
        "max_ms": max(walls),
        "peak_rss_kb": max(rss),
        "wrong_answers": wrong,
    }


def run(section: Section, namespaces: Namespaces, sizes: Sizes, logs: Path) -> None:
    settings = namespaces.make("p3")  # topics too: a block's feedback is published
    measures = load_policy(AGENCY, settings).person_measures
    n = sizes.p3_subjects
    with step(f"P3: loading {n:,} restricted subjects into the {AGENCY} database"):
        loaded = load_restricted(settings, n, measures)
    section.details.update({"agency": AGENCY, "subjects": n, **loaded})
    # The CLI first: a blocking `hub agency check` delivers the whole pending outbox, and the Python calls
    # leave one InterceptionRecorded row there per block (the agency's service, not running here, relays them).
    with step(f"P3: `hub agency check` x{sizes.p3_cli_calls}"):
        cli = cli_checks(settings, sizes, measures, logs)
    section.details["cli"] = cli
    with step(f"P3: InterceptionChecker.check, up to {sizes.p3_calls:,} calls or {sizes.p3_seconds:.0f}s"):
        args = ["--agency", AGENCY, "--subjects", str(n), "--calls", str(sizes.p3_calls)]
        args += ["--seconds", str(sizes.p3_seconds), "--measures", ",".join(measures)]
        answer, rss = run_worker("checks", settings, logs / "p3-checks.log", 900, *args)
    section.details["python"] = {**answer, "peak_rss_kb": rss}
    if answer["wrong_answers"]:
        section.details["python"]["warning"] = "some checks answered differently from the loaded data"
    calls = f"{answer['calls']:,} calls, half blocked"
    section.add(
        "rate",
        f"P3 check() ({n:,} restricted)",
        answer["rate"],
        "checks/s",
        Target(">=", 50_000),
        rss_kb=rss,
        note=calls,
    )
    section.add("p50", "P3 check() p50", answer["p50_us"], "µs")
    section.add(
        "p99", "P3 check() p99", answer["p99_us"], "µs", Target("<=", 1000), note=f"max {answer['max_us']:,.0f} µs"
    )
    section.add(
        "construct",
        "P3 checker construction",
        answer["construct_s"],
        "s",
        rss_kb=answer["rss_after_construct_kb"],
        note=f"first call {answer['first_call_us']:,.0f} µs; close() {answer.get('close_s', 0):.2f}s",
    )
    section.add("peak_rss", "P3 checker process peak RSS", rss / 1024, "MiB", Target("<=", 1024), rss_kb=rss)
    section.add(
        "cli",
        "P3 `hub agency check` per call",
        cli["mean_ms"],
        "ms",
        rss_kb=cli["peak_rss_kb"],
        note=f"mean of {cli['calls']}; p50 {cli['p50_ms']:.0f} ms, max {cli['max_ms']:.0f} ms",
    )
    http_checks(section, settings, sizes, measures, logs)


# -- the check service over HTTPS (`hub agency serve`) ----------------------------------------------------

WRK_THREADS, WRK_CONNECTIONS = 2, 32
LUA_SUBJECTS = 2_000  # bodies the wrk script rotates through
BATCH, BATCH_THREADS = 1_000, 4
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


class WrkError(RuntimeError):
    """A wrk run that gave no figures (not installed, or it failed): its rows are reported as failed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tls(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def _vmrss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


class HttpsServer:
    """A measured HTTPS server process (the check service, or the plain baseline) on a free port of 127.0.0.1."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, ca: Path, port: int):
        self.port, self.ca, self.log = port, ca, log
        self.url = f"https://127.0.0.1:{port}"
        self.started = time.monotonic()
        self.process = Measured(argv, env, log, cwd=BENCH_DIR.parent)
        self.finished: Finished | None = None

    def wait_ready(self, path: str, timeout: float) -> float:
        """Seconds from the start until `path` answers 200."""
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, verify=_tls(self.ca), timeout=5) as client:
            while True:
                if not self.process.running():
                    raise RuntimeError(
                        f"{self.process.name} exited before it was ready; end of {self.log}:\n{self.tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if client.get(path).status_code == 200:
                        return time.monotonic() - self.started
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{self.url}{path} not 200 within {timeout:.0f}s; end of {self.log}:\n{self.tail()}"
                    )
                time.sleep(0.1)

    def pid(self) -> int:
        return int(Path(f"{self.process.result}.pid").read_text())

    def rss_kb(self) -> int | None:
        return _vmrss_kb(self.pid())

    def tail(self, lines: int = 30) -> str:
        return Finished(0, 0, 0, self.log).tail(lines)

    def log_lines(self) -> list[dict]:
        """The JSON lines of its log (structlog's, on stderr)."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    found.append(json.loads(line))
        return found

    def stop(self, timeout: float = 60) -> Finished | None:
        """SIGTERM and wait; killed past `timeout`. Safe to call again, and after a failure."""
        if self.finished is None and self.process in Measured.live:
            self.process.terminate()
            try:
                self.finished = self.process.wait(timeout)
            except (TimeoutError, RuntimeError) as exc:
                say(f"warning: {exc}")
        return self.finished


def add_key(settings: Settings) -> str:
    """A key for the bench's calls, with a rate no measurement reaches."""
    argv = [str(HUB), "agency", "keys", "add", AGENCY, "--system", "bench", "--rate", "1000000000"]
    done = subprocess.run(argv, env=hub_env(settings), capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"`hub agency keys add` exited {done.returncode}:\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def wrk_indices(subjects: int) -> list[int]:
    """The restricted subjects the wrk script asks about (spread over the loaded ones)."""
    count = min(LUA_SUBJECTS // 2, subjects)
    return sorted({k * subjects // count for k in range(count)})


def lift_indices(subjects: int, count: int, avoid: set[int]) -> list[int]:
    """Distinct restricted subjects to lift, none of those the wrk script asks about."""
    step_ = max(1, subjects // count)
    chosen: list[int] = []
    for k in range(count):
        i = (k * step_ + step_ // 2 + 1) % subjects
        while i in avoid or i in chosen:
            i = (i + 1) % subjects
        chosen.append(i)
    return chosen


def wrk_script(path: Path, key: str, subjects: int, measures: tuple[str, ...], mixed: bool) -> Path:
    """A wrk Lua script POSTing rotating bodies: half restricted subjects when `mixed`, else none."""
    bodies = []
    restricted = wrk_indices(subjects)
    for k in range(LUA_SUBJECTS):
        blocked = mixed and k % 2 == 0
        index = restricted[(k // 2) % len(restricted)] if blocked else (k * 7919) % subjects
        subject = resident_id(index, restricted=blocked)
        body = json.dumps({"subject": subject, "measure": measures[(k // 2) % len(measures)]}, separators=(",", ":"))
        bodies.append(f"  '{body}',")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", key):
        raise RuntimeError("unexpected characters in the API key")
    path.write_text(
        "-- generated by bench/p3_checks.py: POST /v1/checks, rotating bodies "
        f"({'half restricted subjects' if mixed else 'unrestricted subjects only'})\n"
        f'local headers = {{["Content-Type"] = "application/json", ["Authorization"] = "Bearer {key}"}}\n'
        "local bodies = {\n" + "\n".join(bodies) + "\n}\n"
        "local n = #bodies\n"
        "local i = 0\n"
        "local threads = 0\n"
        "setup = function(thread)\n"
        '  thread:set("offset", threads * 997)\n'
        "  threads = threads + 1\n"
        "end\n"
        "init = function(args)\n"
        "  i = (offset or 0) % n\n"
        "end\n"
        "request = function()\n"
        "  i = i % n + 1\n"
        '  return wrk.format("POST", nil, headers, bodies[i])\n'
        "end\n"
    )
    return path


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_wrk(output: str) -> dict[str, Any]:
    """wrk's report: Requests/sec, the --latency distribution (in ms), non-2xx responses and socket errors."""
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if rate is None:
        raise WrkError(f"no Requests/sec in wrk's output:\n{output[-1500:]}")
    out: dict[str, Any] = {"rate": float(rate.group(1))}
    for q, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M):
        out[f"p{q}_ms"] = _ms(value, unit)
    stats = re.search(r"^\s+Latency\s+([\d.]+)(us|ms|s|m)\s+([\d.]+)(us|ms|s|m)\s+([\d.]+)(us|ms|s|m)", output, re.M)
    if stats:
        out["mean_ms"], out["max_ms"] = _ms(*stats.group(1, 2)), _ms(*stats.group(5, 6))
    done = re.search(r"^\s+(\d+) requests in ([\d.]+)(us|ms|s|m)", output, re.M)
    if done:
        out["requests"], out["seconds"] = int(done.group(1)), _ms(*done.group(2, 3)) / 1000
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    out["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    out["socket_errors"] = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True)) if errors else {}
    )
    if "p50_ms" not in out or "p99_ms" not in out:
        raise WrkError(f"no latency distribution in wrk's output (--latency):\n{output[-1500:]}")
    return out


def run_wrk(url: str, lua: Path, seconds: float, log: Path) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise WrkError("wrk not found on PATH (`make bench-tools` installs Debian's wrk)")
    argv = [wrk, f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds:.0f}s", "--latency", "-s", str(lua), url]
    done = run_measured(argv, dict(os.environ), log, seconds + 120)
    output = log.read_text(errors="replace")
    if done.returncode != 0:
        raise WrkError(f"wrk exited {done.returncode}:\n{done.tail()}")
    return {
        **parse_wrk(output),
        "command": " ".join(Path(a).name if a == wrk else a for a in argv),
        "rss_kb": done.peak_kb,
    }


def _metrics(client: httpx.Client) -> dict[str, float]:
    """The service's answered questions by decision (its Prometheus counters)."""
    text = client.get("/metrics").text
    return {d: float(v) for d, v in re.findall(r'^hub_checks_total\{decision="(\w+)"\} (\S+)$', text, re.M)}


def lift_to_check(
    settings: Settings, server: HttpsServer, key: str, indices: list[int], measure: str, timeout: float = 10.0
) -> dict[str, Any]:
    """Per subject: the agency's owner commits a lift as its store would; a poller asks about the subject without
    pause; lift-to-check = the poller's first ALLOWED answer minus the moment the commit returned."""
    engine = open_database(settings, AGENCY)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    client = httpx.Client(base_url=server.url, verify=_tls(server.ca), headers=headers, timeout=timeout)
    delays, commits, polls, missed, early = [], [], [], 0, 0
    try:
        for i in indices:
            subject, entry = resident_id(i), f"EBENCH-{i:08d}"
            body = json.dumps({"subject": subject, "measure": measure}).encode()
            blocked, halt = threading.Event(), threading.Event()
            seen: dict[str, Any] = {"polls": 0}

            def poll(
                body: bytes = body,
                blocked: threading.Event = blocked,
                halt: threading.Event = halt,
                seen: dict[str, Any] = seen,
            ) -> None:
                try:
                    while not halt.is_set():
                        response = client.post("/v1/checks", content=body)
                        at = time.monotonic()
                        seen["polls"] += 1
                        if response.status_code != 200:
                            seen["error"] = f"HTTP {response.status_code}: {response.text[:200]}"
                            return
                        if response.json()["decision"] == "ALLOWED":
                            seen["allowed_at"] = at
                            return
                        blocked.set()
                except Exception as exc:
                    seen["error"] = f"{type(exc).__name__}: {exc}"
                finally:
                    blocked.set()

            poller = threading.Thread(target=poll, name="lift-poller", daemon=True)
            poller.start()
            blocked.wait(timeout)
            if "error" in seen or "allowed_at" in seen:
                halt.set()
                poller.join(timeout)
                raise RuntimeError(f"subject {i} was not BLOCKED before its lift: {seen}")
            with engine.connect() as conn:
                conn.execute(text("select pg_advisory_xact_lock_shared(:key)"), {"key": CHANGES_LOCK})
                conn.execute(text("delete from restrictions where entry_id = :e"), {"e": entry})
                conn.execute(
                    text(
                        "update entries set status = 'LIFTED', updated_at = now(), "
                        "change_seq = nextval('entry_changes') where entry_id = :e"
                    ),
                    {"e": entry},
                )
                before = time.monotonic()
                conn.commit()
                committed = time.monotonic()
            poller.join(timeout)
            halt.set()
            poller.join(timeout)
            if "error" in seen:
                raise RuntimeError(f"lift-to-check poller for subject {i}: {seen['error']}")
            commits.append((committed - before) * 1000)
            polls.append(seen["polls"])
            if "allowed_at" not in seen:
                missed += 1
                continue
            early += seen["allowed_at"] < before  # ALLOWED before the commit was even sent: a wrong answer
            delays.append((seen["allowed_at"] - committed) * 1000)
    finally:
        client.close()
        engine.dispose()
    ordered = sorted(delays)
    return {
        "lifts": len(indices),
        "answered": len(delays),
        "missed": missed,  # no ALLOWED within `timeout`
        "allowed_before_commit": early,
        "timeout_s": timeout,
        "p50_ms": percentile(ordered, 50),
        "p99_ms": percentile(ordered, 99),
        "min_ms": ordered[0] if ordered else None,
        "max_ms": ordered[-1] if ordered else None,
        "commit_p50_ms": statistics.median(commits) if commits else None,
        "polls_per_lift_mean": statistics.fmean(polls) if polls else None,
        "delays_ms": [round(d, 3) for d in delays],
    }


def _log_problems(server: HttpsServer) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {"error": [], "warning": []}
    for line in server.log_lines():
        level = str(line.get("level", "")).lower()
        if level in ("error", "critical", "exception"):
            problems["error"].append(line.get("event", ""))
        elif level == "warning":
            problems["warning"].append(line.get("event", ""))
    output = server.log.read_text(errors="replace")
    if "Traceback" in output:
        problems["error"].append(f"{output.count('Traceback')} Python traceback(s)")
    return problems


def http_checks(section: Section, settings: Settings, sizes: Sizes, measures: tuple[str, ...], logs: Path) -> None:
    n = sizes.p3_subjects
    ca = ca_file(settings.state_dir)
    got: dict[str, Any] = {}
    section.details["http"] = got
    service: HttpsServer | None = None
    try:
        with step("P3: index bytes per subject (bench.index_memory, 1,000,000 subjects)"):
            try:
                got["index"] = index_memory(settings, logs)
            except (RuntimeError, TimeoutError) as exc:
                got["index"] = {"failed": str(exc).splitlines()[0]}
        key = add_key(settings)
        mixed_lua = wrk_script(logs / "p3-wrk-mixed.lua", key, n, measures, mixed=True)
        allowed_lua = wrk_script(logs / "p3-wrk-allowed.lua", key, n, measures, mixed=False)

        with step("P3: plain uvicorn TLS baseline (wrk)"):
            port = free_port()
            argv = [sys.executable, "-m", "bench.plain_https", "--port", str(port)]
            plain = HttpsServer(argv, hub_env(settings), logs / "p3-plain-https.log", ca, port)
            try:
                plain.wait_ready("/", 60)
                got["plain"] = run_wrk(f"{plain.url}/v1/checks", mixed_lua, sizes.p3_seconds, logs / "p3-wrk-plain.log")
            except (WrkError, RuntimeError, TimeoutError) as exc:  # a missing baseline must not cost the rest
                got["plain"] = {"failed": str(exc).splitlines()[0]}
            finally:
                plain.stop()

        with step(f"P3: `hub agency serve {AGENCY}` loading {n:,} restricted subjects"):
            port = free_port()
            argv = [str(HUB), "agency", "serve", AGENCY, "--port", str(port)]
            service = HttpsServer(argv, hub_env(settings), logs / "p3-serve.log", ca, port)
            ready = service.wait_ready("/readyz", 600)
            loaded = next((e for e in service.log_lines() if e.get("event") == "interception index loaded"), None)
            got["serve"] = {
                "ready_after_s": ready,
                "load_seconds": None if loaded is None else loaded.get("seconds"),
                "index_subjects": None if loaded is None else loaded.get("subjects"),
                "rss_after_load_kb": service.rss_kb(),
            }

        client = httpx.Client(base_url=service.url, verify=_tls(ca), timeout=10)
        try:
            for mix, lua in (("mixed", mixed_lua), ("allowed", allowed_lua)):
                with step(f"P3: wrk POST /v1/checks, {WRK_CONNECTIONS} connections, {mix}, {sizes.p3_seconds:.0f}s"):
                    before = _metrics(client)
                    try:
                        result = run_wrk(f"{service.url}/v1/checks", lua, sizes.p3_seconds, logs / f"p3-wrk-{mix}.log")
                    except WrkError as exc:
                        result = {"failed": str(exc)}
                    after = _metrics(client)
                    result["answered"] = {d: after.get(d, 0) - before.get(d, 0) for d in ("ALLOWED", "BLOCKED")}
                    got[mix] = result
        finally:
            client.close()

        with step(f"P3: batches of {BATCH:,} from {BATCH_THREADS} clients, {sizes.p3_seconds / 2:.0f}s"):
            argv = [sys.executable, "-m", "bench.http_load", "--url", service.url, "--ca", str(ca), "--key", key]
            argv += ["--subjects", str(n), "--seconds", str(sizes.p3_seconds / 2), "--measures", ",".join(measures)]
            argv += ["--threads", str(BATCH_THREADS), "--batch", str(BATCH)]
            log = logs / "p3-http-batch.log"
            done = run_measured(argv, hub_env(settings), log, sizes.p3_seconds + 300)
            answer = next((json.loads(x) for x in log.read_text().splitlines() if '"bench_http_load"' in x), None)
            if done.returncode != 0 or answer is None:
                raise RuntimeError(f"bench.http_load exited {done.returncode}; end of {log}:\n{done.tail()}")
            got["batch"] = {**answer, "rss_kb": done.peak_kb}

        lifts = 50 if sizes.name == "full" else 20
        with step(f"P3: lift-to-check x{lifts}"):
            avoid = set(wrk_indices(n))
            got["lift"] = lift_to_check(settings, service, key, lift_indices(n, lifts, avoid), measures[0])
        got["serve"]["rss_at_end_kb"] = service.rss_kb()
    finally:
        if service is not None:
            finished = service.stop()
            got.setdefault("serve", {})["exit"] = None if finished is None else finished.returncode
            got["serve"]["peak_rss_kb"] = None if finished is None else finished.peak_kb
            got["serve"]["log_problems"] = _log_problems(service)
        report_http(section, got, sizes)


def index_memory(settings: Settings, logs: Path, subjects: int = 1_000_000) -> dict[str, Any]:
    """bench.index_memory.measure in a process of its own, so its RSS figure is the index's alone."""
    argv = [sys.executable, "-m", "bench.index_memory", "--subjects", str(subjects)]
    log = logs / "p3-index-memory.log"
    done = run_measured(argv, hub_env(settings), log, 600)
    answer = next((json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")), None)
    if done.returncode != 0 or answer is None:
        raise RuntimeError(f"bench.index_memory exited {done.returncode}:\n{done.tail()}")
    return {**answer, "peak_rss_kb": done.peak_kb}


def _ms_text(value: float | None) -> str:
    return "?" if value is None else f"{value:,.2f} ms" if abs(value) < 10 else f"{value:,.1f} ms"


def _number_text(value: float | None) -> str:
    return "?" if value is None else f"{value:,.0f}"


def report_http(section: Section, got: dict[str, Any], sizes: Sizes) -> None:
    """The rows, from whatever was measured (a failed step leaves its rows out, or marks them failed)."""
    n = sizes.p3_subjects
    serve = got.get("serve", {})
    if "load_seconds" in serve:
        problems = serve.get("log_problems", {})
        flagged = (
            f"; log: {len(problems.get('error', []))} errors, {len(problems.get('warning', []))} warnings"
            if any(problems.values())
            else ""
        )
        section.add(
            "serve_load",
            f"P3 service index load ({n:,} restricted)",
            serve["load_seconds"],
            "s",
            rss_kb=serve.get("peak_rss_kb"),
            note=f"{serve.get('index_subjects') or 0:,} subjects in its log line; /readyz 200 "
            f"{serve['ready_after_s']:.1f}s after start; exit {serve.get('exit')} on SIGTERM{flagged}",
        )
        rss = serve.get("rss_after_load_kb")
        section.add(
            "serve_rss",
            "P3 service RSS after load",
            None if rss is None else rss / 1024,
            "MiB",
            rss_kb=rss,
            note=""
            if serve.get("rss_at_end_kb") is None
            else f"{serve['rss_at_end_kb'] / 1024:,.0f} MiB after the run",
        )
    plain = got.get("plain", {})
    plain_rate = plain.get("rate")
    for mix, label in (("mixed", "half blocked"), ("allowed", "all allowed")):
        if mix not in got:
            continue
        r = got[mix]
        base = f"P3 HTTPS /v1/checks, {WRK_CONNECTIONS} conns, {label}"
        if "failed" in r:
            section.add(f"http_{mix}_rate", base, None, "checks/s", Target(">=", 5000), note=f"failed: {r['failed']}")
            continue
        answered = r.get("answered", {})
        ceiling = (
            f"plain uvicorn TLS: {plain_rate:,.0f} req/s, this {r['rate'] / plain_rate:.0%} of it"
            if plain_rate
            else "plain uvicorn TLS: not measured"
        )
        non2xx = f"non-2xx {r['non_2xx']}" + (" (must be 0!)" if r["non_2xx"] else "")
        section.add(
            f"http_{mix}_rate",
            base,
            r["rate"],
            "checks/s",
            Target(">=", 5000),
            rss_kb=serve.get("peak_rss_kb"),
            note=f"wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{sizes.p3_seconds:.0f}s; {ceiling}; {non2xx}; "
            f"{answered.get('BLOCKED', 0):,.0f} blocked / {answered.get('ALLOWED', 0):,.0f} allowed",
        )
        section.add(f"http_{mix}_p50", f"{base} p50", r["p50_ms"], "ms")
        errors = sum(r.get("socket_errors", {}).values())
        section.add(
            f"http_{mix}_p99",
            f"{base} p99",
            r["p99_ms"],
            "ms",
            Target("<=", 20),
            note=f"p90 {_ms_text(r.get('p90_ms'))}, max {_ms_text(r.get('max_ms'))}; socket errors {errors}",
        )
    if plain:
        label = "P3 plain uvicorn TLS (no framework), ceiling"
        if "failed" in plain:
            section.add("http_plain_rate", label, None, "req/s", note=f"failed: {plain['failed']}")
        else:
            section.add(
                "http_plain_rate",
                label,
                plain["rate"],
                "req/s",
                rss_kb=plain.get("rss_kb"),
                note=f"same wrk command; p50 {_ms_text(plain['p50_ms'])}, p99 {_ms_text(plain['p99_ms'])}; "
                f"non-2xx {plain['non_2xx']}",
            )
    if "batch" in got:
        b = got["batch"]
        failed = (
            f"; {b['failed_requests']} failed requests: {'; '.join(b['errors'][:2])}" if b["failed_requests"] else ""
        )
        section.add(
            "http_batch_rate",
            f"P3 HTTPS /v1/checks/batch x{b['batch']:,}, {b['threads']} clients",
            b["rate"],
            "subjects/s",
            Target(">=", 100_000),
            rss_kb=b.get("rss_kb"),
            note=f"{b['batches']:,} batches, half blocked; {b['wrong_answers']} wrong answers; batch p50 "
            f"{_ms_text(b['batch_p50_ms'])}, p99 {_ms_text(b['batch_p99_ms'])}{failed}",
        )
    if "lift" in got:
        lift = got["lift"]
        wrong = f"; {lift['allowed_before_commit']} ALLOWED before the commit!" if lift["allowed_before_commit"] else ""
        section.add(
            "lift_p50",
            "P3 lift-to-check p50",
            lift["p50_ms"],
            "ms",
            note=f"{lift['answered']} of {lift['lifts']} lifts answered; commit p50 {_ms_text(lift['commit_p50_ms'])}; "
            f"{_number_text(lift['polls_per_lift_mean'])} polls a lift",
        )
        section.add(
            "lift_p99",
            "P3 lift-to-check p99",
            lift["p99_ms"],
            "ms",
            Target("<=", 100),
            note=f"min {_ms_text(lift['min_ms'])}, max {_ms_text(lift['max_ms'])}; {lift['missed']} missed "
            f"(no ALLOWED in {lift['timeout_s']:.0f}s){wrong}",
        )
    index = got.get("index")
    if index is not None:
        subjects = index.get("subjects", 1_000_000)
        if "failed" in index:
            section.add(
                "index_bytes",
                "P3 index bytes/subject (nbytes)",
                None,
                "B",
                Target("<=", 120),
                note=f"failed: {index['failed']}",
            )
            return
        for key, label, field_ in (
            ("index_bytes", "nbytes", "bytes_per_subject"),
            ("index_rss_bytes", "RSS", "rss_bytes_per_subject"),
        ):
            per = index.get(field_)
            extra = (
                f"; build {index['build_seconds']:.2f}s, {index['lookups_per_second']:,.0f} lookups/s"
                if key == "index_bytes" and "build_seconds" in index
                else ""
            )
            section.add(
                key,
                f"P3 index bytes/subject ({label}, {subjects:,})",
                per,
                "B",
                Target("<=", 120),
                rss_kb=index.get("peak_rss_kb") if key == "index_rss_bytes" else None,
                note="" if per is None else f"15,000,000 subjects: {per * 15e6 / 2**20:,.0f} MiB{extra}",
            )
