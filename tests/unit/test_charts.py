"""The dashboard's SVG charts: well-formed, inline-ready, and saying what they show in text."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import pytest

from hub.domain.oversight import DailyDelays, WeeklyCounts
from hub.web.charts import FONTS, NO_DATA, OTHERS, breaches_chart, delays_chart, lag_chart

SVG = "{http://www.w3.org/2000/svg}"
WEEKS = [dt.date(2026, 3, 2), dt.date(2026, 3, 9), dt.date(2026, 3, 16)]
DAYS = [dt.date(2026, 3, 16), dt.date(2026, 3, 17), dt.date(2026, 3, 18)]
HOUR = 3600.0


def breaches(parties: dict[str, list[int]] | None = None) -> WeeklyCounts:
    counts = parties if parties is not None else {"agency:bank": [1, 0, 2], "court:J0105": [0, 3, 1]}
    return WeeklyCounts(weeks=WEEKS, parties=sorted(counts), counts=counts)


def delays() -> DailyDelays:
    return DailyDelays(
        days=DAYS,
        agencies=["bank", "transport"],
        median={"bank": [2 * HOUR, None, 4 * HOUR], "transport": [None, HOUR, None]},
        p99={"bank": [6 * HOUR, None, 10 * HOUR], "transport": [None, 3 * HOUR, None]},
        count={"bank": [5, 0, 9], "transport": [0, 1, 0]},
    )


def parse(svg: str) -> ET.Element:
    assert svg.startswith("<svg"), svg[:80]  # inline-ready: no XML prolog, no DOCTYPE
    assert "<!DOCTYPE" not in svg and "<?xml" not in svg
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    """Every text the chart draws (text stays text: svg.fonttype none)."""
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def check_chart(svg: str, title: str, *labels: str) -> list[str]:
    root = parse(svg)
    assert root.get("role") == "img"
    first = root[0]
    assert first.tag == f"{SVG}title" and first.text == title  # the accessible name
    drawn = texts(root)
    for label in (title, *labels):
        assert label in drawn, (label, drawn)
    assert len(svg.encode()) < 100_000
    return drawn


def test_breaches_chart_shows_title_axes_and_parties():
    drawn = check_chart(
        breaches_chart(breaches(), "每周违规 (breaches per week)"),
        "每周违规 (breaches per week)",
        "周 (week starting)",
        "违规数 (breaches)",
        "agency:bank",
        "court:J0105",
    )
    assert {"2026-03-02", "2026-03-09", "2026-03-16"} <= set(drawn)
    assert NO_DATA not in drawn


def test_breaches_chart_counts_are_integers():
    drawn = texts(parse(breaches_chart(breaches({"agency:bank": [0, 1, 0]}), "t")))
    numbers = [t for t in drawn if re.fullmatch(r"[\d.,]+", t)]
    assert numbers and all(re.fullmatch(r"\d+", n) for n in numbers), numbers


def test_breaches_chart_sums_parties_beyond_ten_as_others():
    many = {f"court:J{i:04d}": [i, 0, 0] for i in range(12)}
    drawn = texts(parse(breaches_chart(breaches(many), "t")))
    assert OTHERS in drawn
    assert "court:J0011" in drawn and "court:J0003" in drawn  # the nine with most breaches
    assert "court:J0000" not in drawn and "court:J0002" not in drawn  # the three with fewest


def test_delays_chart_shows_agencies_styles_and_hours():
    drawn = check_chart(
        delays_chart(delays(), "反馈延迟 (feedback delay)"),
        "反馈延迟 (feedback delay)",
        "日期 (day)",
        "小时 (hours)",
        "bank",
        "transport",
        "中位数 (median)",
        "P99",
        "2026-03-18",
    )
    ticks = [float(t) for t in drawn if re.fullmatch(r"\d+(\.\d+)?", t)]
    assert 10 <= max(ticks) < 20  # the worst p99 is 10 hours, not 36,000 seconds


def test_lag_chart_shows_consumers_and_their_numbers():
    drawn = check_chart(
        lag_chart({"register": 0, "bank": 1234, "ledger": 1_234_567}, "积压 (lag)"),
        "积压 (lag)",
        "未处理记录数 (records behind)",
        "register",
        "bank",
        "ledger",
        "0",
        "1,234",
        "1,234,567",
    )
    assert not any("e6" in t or "e+" in t for t in drawn)  # no scientific offset on the axis


@pytest.mark.parametrize(
    "render",
    [
        lambda: breaches_chart(WeeklyCounts(weeks=WEEKS, parties=[], counts={}), "空 (empty)"),
        lambda: breaches_chart(WeeklyCounts(weeks=[], parties=[], counts={}), "空 (empty)"),
        lambda: delays_chart(DailyDelays(days=DAYS, agencies=[], median={}, p99={}, count={}), "空 (empty)"),
        lambda: delays_chart(
            DailyDelays(
                days=DAYS,
                agencies=["bank"],
                median={"bank": [None] * 3},
                p99={"bank": [None] * 3},
                count={"bank": [0] * 3},
            ),
            "空 (empty)",
        ),
        lambda: lag_chart({}, "空 (empty)"),
    ],
    ids=["breaches", "no-weeks", "delays", "delays-all-none", "lag"],
)
def test_an_empty_dataset_says_so(render):
    check_chart(render(), "空 (empty)", NO_DATA)


def test_markup_and_dollars_in_labels_are_text_not_markup_nor_mathematics():
    odd = "a <b> & 'c' \"d\" $x$"
    data = breaches({odd: [1, 2, 3]})
    check_chart(breaches_chart(data, odd), odd, odd)
    check_chart(delays_chart(DailyDelays(DAYS, [odd], {odd: [HOUR] * 3}, {odd: [HOUR] * 3}, {odd: [1] * 3}), odd), odd)
    check_chart(lag_chart({odd: 3}, odd), odd, odd)


def test_characters_xml_cannot_hold_are_dropped():
    svg = lag_chart({"bad\x01name": 1}, "ti\x00t\x1ble")
    check_chart(svg, "title", "badname")


def test_fonts_and_text_stay_text_for_the_browser():
    svg = breaches_chart(breaches(), "t")
    family = ", ".join(f"'{f}'" if f != "sans-serif" else f for f in FONTS)
    assert f"font-family: {family}" in svg
    assert "<style" not in svg  # no page-wide CSS rule when inlined
    assert 'stroke-linejoin="round"' in svg.split(">", 1)[0]


def test_two_charts_in_one_page_share_no_id():
    ids = [set(re.findall(r' id="([^"]+)"', breaches_chart(breaches(), "t"))) for _ in range(2)]
    assert ids[0] and not ids[0] & ids[1]
    svg = delays_chart(delays(), "t")
    for ref in re.findall(r'(?:href="#|url\(#)([^")]+)', svg):
        assert f'id="{ref}"' in svg  # every reference still resolves


def test_charts_render_concurrently():
    def render(n: int) -> tuple[int, str]:
        return n, breaches_chart(breaches(), f"chart {n}")

    with ThreadPoolExecutor(4) as pool:
        for n, svg in pool.map(render, range(8)):
            check_chart(svg, f"chart {n}")


def test_delays_chart_counts_in_seconds_when_every_answer_came_within_a_minute():
    fast = DailyDelays(
        days=DAYS,
        agencies=["bank"],
        median={"bank": [2.0, None, 4.0]},
        p99={"bank": [6.0, None, 30.0]},
        count={"bank": [5, 0, 9]},
    )
    drawn = texts(parse(delays_chart(fast, "t")))
    assert "秒 (seconds)" in drawn and "小时 (hours)" not in drawn
