"""Jars from Maven Central, resolved once per pom: the broker's, and the benchmarks' Kafka tools."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from hub.devstack.state import StackError


def fetch_jars(pom: Path, libs: Path, what: str) -> None:
    """Copy `pom`'s dependencies into `libs`; skipped while the pom's hash matches the stamp left last time."""
    stamp = libs / ".pom-sha256"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    mvn = shutil.which("mvn")
    if not mvn:
        raise StackError(f"mvn not found on PATH: Maven fetches {what} (e.g. apt install maven)")
    if libs.exists():
        shutil.rmtree(libs)
    libs.mkdir(parents=True)
    print(f"fetching {what} with Maven into {libs} ...", flush=True)
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={libs}"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise StackError(f"Maven could not fetch {what} ({pom}):\n{result.stdout}{result.stderr}")
    stamp.write_text(digest)
