"""P4 audit replay: `hub.audit.replay.replay` over N court events (and nothing else) in a fresh namespace.

Timed inside its own process (interpreter start-up excluded): records read / the replay's wall time, which
includes reading the topics, decoding, and the bitemporal reconstruction with its digest.
"""

from __future__ import annotations

from pathlib import Path

from bench import data
from bench.common import Namespaces, Section, Sizes, Target, run_worker, say, step


def run(section: Section, namespaces: Namespaces, sizes: Sizes, logs: Path) -> None:
    n = sizes.p4_events
    settings = namespaces.make("p4")
    with step(f"P4: simulating and publishing {n:,} court events"):
        publish_s = data.publish(settings, data.court_events(n, seed=404), n, "P4")
    with step(f"P4: hub.audit.replay.replay over {n:,} events"):
        # Generous (about 50x the target's time), yet a replay that hangs cannot eat the run's time budget.
        answer, rss = run_worker("replay", settings, logs / "p4-replay.log", max(300.0, n / 1000))
    if answer["records"] != n:
        raise RuntimeError(f"P4: the replay read {answer['records']:,} records, expected {n:,}")
    section.details.update({"events": n, "publish_s": publish_s, **answer, "peak_rss_kb": rss})
    after = answer["seconds"] - answer["read_s"]
    say(f"P4: {answer['seconds']:.1f}s, of which {after:.1f}s after the last progress report (reading done)")
    section.add(
        "rate",
        f"P4 audit replay ({n:,} events)",
        answer["rate"],
        "events/s",
        Target(">=", 100_000),
        rss_kb=rss,
        note=f"{answer['seconds']:.1f}s, {after:.1f}s of it after the last progress report; "
        f"{answer['entries']:,} entries"
        + (f"; RSS summed over {answer['processes']} processes" if answer["processes"] > 1 else ""),
    )
    section.add(
        "peak_rss",
        "P4 replay peak RSS, all its processes",
        rss / 1024,
        "MiB",
        Target("<=", 1024),
        rss_kb=rss,
    )
    with step(f"P4: the peer, a plain fold over the same {n:,} events (fastavro, the lifecycle, one process)"):
        peer, peer_rss = run_worker("plain-fold", settings, logs / "p4-plain-fold.log", max(300.0, n / 1000))
    section.details["peer"] = {**peer, "peak_rss_kb": peer_rss}
    same = peer["states_digest"] == answer["states_digest"]
    section.add(
        "peer_rate",
        "P4 peer: plain fold, one process",
        peer["rate"],
        "events/s",
        rss_kb=peer_rss,
        note=f"{peer['entries']:,} entries; "
        + ("the same entry states as the hub's replay" if same else "WRONG: entry states differ from the hub's"),
    )
    section.add("peer_ratio", "P4 hub / peer", answer["rate"] / peer["rate"] if peer["rate"] else None, "ratio")
    if not same:
        raise RuntimeError("P4: the plain fold and the hub's replay disagree on the entries' states")
