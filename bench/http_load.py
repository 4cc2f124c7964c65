"""Batch checks over HTTPS against `hub agency serve`, from a process of its own.

Each of `--threads` threads holds one keep-alive httpx client and posts batches of `--batch` questions to
/v1/checks/batch until `--seconds` have passed; half of each batch are restricted subjects (loaded by P3:
`bench.ids.resident_id(i)` for i < --subjects), half unrestricted ones. The bodies are made before the clock
starts, so the figure is the service's, not the generator's; every answer is checked (each restricted subject
BLOCKED, every other ALLOWED, in the order asked). Prints one JSON line.

Usage: python -m bench.http_load --url https://127.0.0.1:P --ca CA.pem --key KEY --subjects N --seconds S
       --measures A,B [--threads 4] [--batch 1000]
"""

from __future__ import annotations

import argparse
import json
import random
import ssl
import threading
import time

import httpx

from bench.common import percentile
from bench.ids import resident_id

BODIES_PER_THREAD = 16


def bodies(rng: random.Random, subjects: int, size: int, measures: list[str]) -> list[tuple[bytes, list[bool]]]:
    """Encoded batches and, for each question, whether its subject is restricted."""
    made = []
    for _ in range(BODIES_PER_THREAD):
        checks, restricted = [], []
        for k in range(size):
            blocked = k % 2 == 0
            subject = resident_id(rng.randrange(subjects), restricted=blocked)
            checks.append({"subject": subject, "measure": measures[(k // 2) % len(measures)]})
            restricted.append(blocked)
        made.append((json.dumps({"checks": checks}, separators=(",", ":")).encode(), restricted))
    return made


class Client(threading.Thread):
    def __init__(self, args: argparse.Namespace, number: int, start: threading.Event):
        super().__init__(name=f"load-{number}", daemon=True)
        self.args = args
        self.start_event = start
        self.batches = self.subjects = self.wrong = self.failed = 0
        self.latencies_ms: list[float] = []
        self.errors: list[str] = []
        self.work = bodies(random.Random(number + 1), args.subjects, args.batch, args.measures.split(","))

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # reported in the answer, never a silent thread
            self.failed += 1
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def _run(self) -> None:
        args = self.args
        headers = {"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"}
        verify = ssl.create_default_context(cafile=args.ca)
        with httpx.Client(base_url=args.url, verify=verify, headers=headers, timeout=60) as client:
            client.get("/readyz")  # the TLS handshake and the connection, before the clock
            self.start_event.wait()
            deadline = time.monotonic() + args.seconds
            i = 0
            while time.monotonic() < deadline:
                body, restricted = self.work[i % len(self.work)]
                i += 1
                began = time.perf_counter()
                try:
                    response = client.post("/v1/checks/batch", content=body)
                except httpx.HTTPError as exc:
                    self.failed += 1
                    if len(self.errors) < 5:
                        self.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                elapsed = (time.perf_counter() - began) * 1000
                if response.status_code != 200:
                    self.failed += 1
                    if len(self.errors) < 5:
                        self.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
                    continue
                results = response.json()["results"]
                self.latencies_ms.append(elapsed)
                self.batches += 1
                self.subjects += len(results)
                self.wrong += abs(len(results) - len(restricted))
                for result, blocked in zip(results, restricted, strict=False):
                    self.wrong += (result["decision"] == "BLOCKED") != blocked


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http_load", description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--subjects", type=int, required=True, help="restricted subjects loaded (0..N-1)")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--measures", required=True, help="comma-separated")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args(argv)
    start = threading.Event()
    clients = [Client(args, n, start) for n in range(args.threads)]
    for client in clients:
        client.start()
    time.sleep(0.5)  # connected (or failing) before the clock starts
    began = time.perf_counter()
    start.set()
    for client in clients:
        client.join()
    seconds = time.perf_counter() - began
    latencies = sorted(ms for c in clients for ms in c.latencies_ms)
    subjects = sum(c.subjects for c in clients)

    answer = {
        "bench_http_load": True,
        "threads": args.threads,
        "batch": args.batch,
        "seconds": seconds,
        "batches": sum(c.batches for c in clients),
        "subjects": subjects,
        "rate": subjects / seconds if seconds else 0.0,
        "wrong_answers": sum(c.wrong for c in clients),
        "failed_requests": sum(c.failed for c in clients),
        "errors": [e for c in clients for e in c.errors][:10],
        "batch_p50_ms": percentile(latencies, 50) if latencies else None,
        "batch_p99_ms": percentile(latencies, 99) if latencies else None,
        "batch_max_ms": latencies[-1] if latencies else None,
    }
    print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
