"""The supervisor's arithmetic (hub/engine/workers.py): what each worker runs, and the one summary of them all."""

import pytest

from hub.config import ConfigError
from hub.engine import RunSummary
from hub.engine.workers import check_ports, child_argv, combined, instance_id


@pytest.mark.parametrize(
    ("argv", "index", "port", "expected"),
    [
        (["agency", "run", "bank", "--once"], 0, None, ["agency", "run", "bank", "--once", "--workers", "1"]),
        (["agency", "run", "--workers", "3", "bank"], 2, None, ["agency", "run", "bank", "--workers", "1"]),
        (
            ["--debug", "agency", "run", "bank", "--workers=2", "--metrics-port", "9101"],
            1,
            9101,
            ["--debug", "agency", "run", "bank", "--metrics-port", "9102", "--workers", "1"],
        ),
        (
            ["register", "run", "--metrics-port=9300"],
            0,
            9300,
            ["register", "run", "--metrics-port", "9300", "--workers", "1"],
        ),
    ],
)
def test_a_worker_runs_the_same_command_as_one_worker_on_its_own_metrics_port(argv, index, port, expected):
    assert child_argv(argv, index, port) == expected


def test_the_summary_adds_the_workers_counts_and_takes_the_longest_time():
    parts = [
        RunSummary("bank", read=10, applied=4, lifted=1, published=5, seconds=2.5),
        RunSummary("bank", read=7, applied=2, failed=1, duplicates=3, dead_lettered=1, published=3, seconds=3.25),
    ]
    total = combined(parts)
    assert total == RunSummary(
        "bank", read=17, applied=6, lifted=1, failed=1, duplicates=3, dead_lettered=1, published=8, seconds=3.25
    )
    assert parts[0].read == 10, "the parts are left as they were"
    assert total.line().startswith("bank: read 17 events: 6 applied, 1 lifted, 0 retained, 1 failed, 1 dead-lettered")


def test_every_workers_metrics_port_is_checked_before_any_starts():
    asked: list[int] = []
    check_ports(9101, 3, asked.append)
    assert asked == [9101, 9102, 9103]
    check_ports(None, 3, asked.append)
    assert asked == [9101, 9102, 9103]
    with pytest.raises(ConfigError, match="--metrics-port 65535 with --workers 2: worker 1 would serve port 65536"):
        check_ports(65535, 2, asked.append)


def test_each_worker_is_its_own_static_member():
    assert [instance_id("bank-1", i) for i in range(2)] == ["bank-1.w0", "bank-1.w1"]
