"""A deterministic synthetic court history for demos, tests and benchmarks.

Lifecycles follow docs/design.md §1: risk warning, inclusion, corrections upheld or rejected, shielding after
performance, revocations, listing periods that expire. Every court act meets its deadline unless a
breach was asked for, and each injected breach is recorded, so the ledger's report can be checked
against the list. The same config always gives the same file, byte for byte.

Deadlines are counted with the legal calendar of `SimulationConfig.deadlines` (the act's own day not
counted, ending at 24:00 of the last day, carried past rest days and holidays): an on-time act falls at
or before `Deadlines.due(...)` of its period, an injected late act strictly after it, whatever the
weekday. The history is meant to be imported as history; with `live_at` set, `Simulation.live` also holds
a few events to publish live at that instant (new debtors and, with a breach rate, publications that come
too late and one event of the history published again under its own event id with other content),
generated from a random stream of their own so that the history does not depend on them.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.domain.ids import resident_id_check_char, uscc_check_char
from hub.domain.rules import COURT_RULES, Deadlines
from producers.parsing import write_events_file

CHINA = dt.timezone(dt.timedelta(hours=8))

COURTS = [
    ("J0105", "北京市朝阳区人民法院", "京0105"),
    ("J0108", "北京市海淀区人民法院", "京0108"),
    ("J3101", "上海市第一中级人民法院", "沪01"),
    ("J3115", "上海市浦东新区人民法院", "沪0115"),
    ("J4403", "广东省深圳市中级人民法院", "粤03"),
    ("J4401", "广东省广州市中级人民法院", "粤01"),
    ("J3301", "浙江省杭州市中级人民法院", "浙01"),
    ("J5101", "四川省成都市中级人民法院", "川01"),
    ("J4201", "湖北省武汉市中级人民法院", "鄂01"),
    ("J3201", "江苏省南京市中级人民法院", "苏01"),
    ("J3702", "山东省青岛市中级人民法院", "鲁02"),
    ("J6101", "陕西省西安市中级人民法院", "陕01"),
]
REGIONS = ["110105", "110108", "310101", "310115", "440305", "440106", "330106", "510107", "420102", "320102",
           "370202", "610113", "120101", "500103", "430102", "350203"]  # fmt: skip
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜"
    "叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴孔汤"
)
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国志红玉文斌宇浩凯鹏飞晨欣怡涵轩佳琪嘉俊慧婷鑫博睿"
CITIES = [
    "北京",
    "上海",
    "深圳",
    "广州",
    "杭州",
    "成都",
    "武汉",
    "南京",
    "青岛",
    "西安",
    "天津",
    "重庆",
    "长沙",
    "厦门",
]
BRANDS = [
    "宏达",
    "恒信",
    "华泰",
    "鑫源",
    "永盛",
    "金桥",
    "汇通",
    "瑞丰",
    "嘉禾",
    "中联",
    "新锐",
    "天成",
    "利民",
    "盛世",
]
TRADES = ["贸易", "建筑工程", "科技", "房地产开发", "物流", "餐饮管理", "投资管理", "电子", "纺织", "文化传媒"]
OBLIGATIONS = ["支付货款", "支付工程款", "偿还借款", "支付租金", "支付劳动报酬", "支付赔偿金", "返还购房款"]
EMPLOYERS = ["市第一人民医院", "区教育局", "某某集团有限公司", "市交通运输局", "某某大学", "某某银行支行"]
GROUNDS = ["CAPABLE_BUT_REFUSES", "OBSTRUCTS_EXECUTION", "EVADES_EXECUTION", "VIOLATES_ASSET_REPORTING",
           "VIOLATES_CONSUMPTION_RESTRICTION", "BREACHES_SETTLEMENT"]  # fmt: skip

# The court rules a simulated history can breach, one breach per chosen entry; publication comes late, and an
# event id is reused with other content, only in the live part (the history's random draws stay as they were).
EVENT_ID_CONFLICT = "EVENT_ID_CONFLICT"
LIVE_ONLY = ("PUBLICATION_LATE", EVENT_ID_CONFLICT)
INJECTABLE = tuple(dict.fromkeys((*COURT_RULES, EVENT_ID_CONFLICT)))
HISTORY_INJECTABLE = tuple(rule for rule in COURT_RULES if rule not in LIVE_ONLY)
LIVE_SAFE = dt.timedelta(hours=6)  # a court act this recent is still within its publication period


@dataclass(frozen=True)
class SimulationConfig:
    debtors: int
    seed: int
    start: dt.date = dt.date(2023, 1, 2)
    span_days: int = 3 * 365
    breach_rate: float = 0.01
    deadlines: Deadlines = field(default_factory=Deadlines)
    live_at: dt.datetime | None = None  # when the live events will be published (an aware instant)
    live_debtors: int = 0

    def __post_init__(self) -> None:
        if self.debtors < 1:
            raise ValueError("debtors must be at least 1")
        if not 0.0 <= self.breach_rate <= 1.0:
            raise ValueError("breach rate must be between 0 and 1")
        if self.live_at is not None and self.live_at.utcoffset() is None:
            raise ValueError("live_at must be an aware instant")
        if self.live_debtors < 0:
            raise ValueError("live_debtors must not be negative")


@dataclass
class Simulation:
    """The generated history: events in publication order, and the breaches put into them.

    `live` holds the events to publish at `SimulationConfig.live_at` (empty when it is not set), in
    publication order, every time in them before `live_at`. With a breach rate, one of them is a copy of an
    inclusion of the history under the same event id with another `obligation` (EVENT_ID_CONFLICT): the
    agencies act on the first copy only, the ledger keeps the second as evidence.
    """

    events: list[dict[str, Any]] = field(default_factory=list)
    breaches: list[dict[str, str]] = field(default_factory=list)
    live: list[dict[str, Any]] = field(default_factory=list)

    def write(self, path: Path) -> None:
        """The history in the format the file's extension names: JSON Lines (.jsonl, .ndjson, .json) or
        CSV (.csv), as `hub court publish` reads them; producers.parsing.UnknownFormatError otherwise."""
        write_events_file(path, self.events)

    def write_live(self, path: Path) -> None:
        """The live events, in the format the file's extension names (as `write`)."""
        write_events_file(path, self.live)

    def write_breaches(self, path: Path) -> None:
        path.write_text(json.dumps(self.breaches, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


@dataclass
class _Entry:
    entry_id: str
    court: tuple[str, str, str]
    case_number: str
    debtor: dict[str, Any]
    events: list[tuple[dt.datetime, int, dict[str, Any]]] = field(default_factory=list)
    injected: str | None = None


class _Generator:
    def __init__(self, config: SimulationConfig):
        self.config = config
        self.d = config.deadlines
        self.rng = random.Random(config.seed)
        self.window_start = dt.datetime.combine(config.start, dt.time(9), CHINA)
        self.window_end = self.window_start + dt.timedelta(days=config.span_days)
        self.ids: set[str] = set()
        self.order = 0
        self.case_seq: dict[str, int] = {}
        self.persons: list[dict[str, Any]] = []
        self.result = Simulation()

    # -- identities -------------------------------------------------------------------------------

    def _unique(self, make) -> str:
        while True:
            value = make()
            if value not in self.ids:
                self.ids.add(value)
                return value

    def resident_id(self) -> str:
        def make() -> str:
            birth = dt.date(1950, 1, 1) + dt.timedelta(days=self.rng.randrange(0, 50 * 365))
            body = f"{self.rng.choice(REGIONS)}{birth:%Y%m%d}{self.rng.randrange(1000):03d}"
            return body + resident_id_check_char(body)

        return self._unique(make)

    def credit_code(self) -> str:
        def make() -> str:
            digits = [self.rng.randrange(10) for _ in range(8)]
            check = 11 - sum(d * w for d, w in zip(digits, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
            org_code = "".join(map(str, digits)) + {10: "X", 11: "0"}.get(check, str(check))
            body = f"91{self.rng.choice(REGIONS)}{org_code}"
            return body + uscc_check_char(body)

        return self._unique(make)

    def person_name(self) -> str:
        given = "".join(self.rng.choice(GIVEN) for _ in range(self.rng.choice((1, 2, 2))))
        return self.rng.choice(SURNAMES) + given

    def org_name(self) -> str:
        suffix = self.rng.choice(("有限公司", "有限公司", "股份有限公司"))
        return f"{self.rng.choice(CITIES)}{self.rng.choice(BRANDS)}{self.rng.choice(TRADES)}{suffix}"

    def person(self) -> dict[str, Any]:
        return {"kind": "PERSON", "id_number": self.resident_id(), "name": self.person_name()}

    def org(self, representative: dict[str, Any] | None) -> dict[str, Any]:
        rep = representative or {"id_number": self.resident_id(), "name": self.person_name()}
        return {
            "kind": "ORG",
            "id_number": self.credit_code(),
            "name": self.org_name(),
            "legal_representative": {"id_number": rep["id_number"], "name": rep["name"]},
        }

    def debtor(self) -> dict[str, Any]:
        """A person (70%) or an organisation, whose representative is sometimes a debtor already."""
        rng = self.rng
        if rng.random() < 0.7:
            debtor = self.person()
            self.persons.append(debtor)
            return debtor
        representative = rng.choice(self.persons) if self.persons and rng.random() < 0.2 else None
        return self.org(representative)

    # -- time -------------------------------------------------------------------------------------

    def within(self, low: dt.timedelta, high: dt.timedelta) -> dt.timedelta:
        """A random whole-minute delay in [low, high], both ends possible."""
        minutes = self.rng.randint(int(low.total_seconds() // 60), int(high.total_seconds() // 60))
        return dt.timedelta(minutes=minutes)

    def days(self, low: float, high: float) -> dt.timedelta:
        return self.within(dt.timedelta(days=low), dt.timedelta(days=high))

    def on_time(self, act: dt.datetime, due: dt.datetime) -> dt.datetime:
        """A random instant from `act` to `due`, both possible: on time."""
        return act + self.within(dt.timedelta(0), due - act)

    def late(self, due: dt.datetime) -> dt.datetime:
        """A random instant from one minute to nine days after `due`: late."""
        return (due + self.within(dt.timedelta(minutes=1), dt.timedelta(days=9))).astimezone(CHINA)

    def period_due(self, included: dt.datetime, months: int) -> tuple[dt.datetime, dt.datetime]:
        """When a listing period of `months` from `included` ends, and when its shielding is due."""
        end = self.d.calendar.months_end(included, months).astimezone(CHINA)
        return end, self.d.due(end - dt.timedelta(microseconds=1), self.d.period_grace)

    # -- events -----------------------------------------------------------------------------------

    def event_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def emit(self, entry: _Entry, event_type: str, at: dt.datetime, **fields: Any) -> None:
        record = {
            "event_id": self.event_id(),
            "type": event_type,
            "occurred_at": at.isoformat(),
            "court_code": entry.court[0],
            "court_name": entry.court[1],
            "entry_id": entry.entry_id,
            "case_number": entry.case_number,
            "debtor": copy.deepcopy(entry.debtor),
            **fields,
        }
        self.order += 1
        entry.events.append((at, self.order, record))

    def breach(self, rule: str, entry: _Entry, detail: str) -> None:
        self.result.breaches.append(
            {"rule": rule, "party": f"court:{entry.court[0]}", "entry_id": entry.entry_id, "detail": detail}
        )

    def new_entry(self, debtor: dict[str, Any], start: dt.datetime) -> _Entry:
        court = self.rng.choice(COURTS)
        self.case_seq[court[0]] = self.case_seq.get(court[0], 0) + 1
        case_number = f"({start.year}){court[2]}执{self.case_seq[court[0]]}号"
        # Random, not sequential: histories simulated with different seeds can share one stack.
        entry_id = self._unique(lambda: f"E{start.year}-{court[0]}-{self.rng.getrandbits(40):010X}")
        return _Entry(entry_id, court, case_number, debtor)

    def include(
        self,
        entry: _Entry,
        included: dt.datetime,
        served: dt.datetime,
        period: int | None,
        restricted: bool,
        notice: dict[str, str] | None,
    ) -> None:
        rng = self.rng
        self.emit(
            entry,
            "Included",
            included,
            served_at=served.isoformat(),
            grounds=rng.sample(GROUNDS, rng.choice((1, 1, 1, 2))),
            obligation=f"{rng.choice(OBLIGATIONS)}{rng.randrange(1, 500)}万元",
            period_months=period,
            disclosure="RESTRICTED" if restricted else "PUBLIC",
            employer_notified=notice,
        )

    def pick_breach(self) -> str | None:
        if self.rng.random() >= self.config.breach_rate:
            return None
        rule = self.rng.choice(HISTORY_INJECTABLE)
        if rule == "PERIOD_EXPIRED_NOT_SHIELDED" and self.config.span_days < 26 * 31:
            rule = "SHIELD_OVERDUE"  # a 24-month period cannot run out inside a shorter window
        return rule

    # -- the history ------------------------------------------------------------------------------

    def lifecycle(self, debtor: dict[str, Any]) -> _Entry:
        rng, d = self.rng, self.d
        injected = self.pick_breach()
        if injected == "PERIOD_EXPIRED_NOT_SHIELDED":
            warned = self.window_start + self.days(0, 30)
        else:
            warned = self.window_start + self.days(0, max(self.config.span_days - 60, 1))
        entry = self.new_entry(debtor, warned)
        entry.injected = injected

        if injected == "INCLUDED_WITHOUT_RISK_WARNING":
            self.breach(injected, entry, "Included with no risk warning served")
        else:
            self.emit(entry, "RiskWarningIssued", warned, served_at=warned.isoformat())
        included = warned + self.days(7, 30)
        served = included + self.days(0, 2)
        restricted = injected == "RESTRICTED_WITHOUT_EMPLOYER_NOTICE" or rng.random() < 0.05
        notice = None
        if injected == "RESTRICTED_WITHOUT_EMPLOYER_NOTICE":
            self.breach(injected, entry, "RESTRICTED disclosure with no employer notified")
        elif restricted:
            notice = {"unit": rng.choice(EMPLOYERS), "notified_at": (included + self.days(0, 2)).isoformat()}
        # Injected entries carry no period unless the period is the breach, so nothing cuts the breach short.
        if injected == "PERIOD_EXPIRED_NOT_SHIELDED":
            period: int | None = 24
        elif injected is None and rng.random() < 0.3:
            period = rng.choice(range(24, 61, 6))
        else:
            period = None
        self.include(entry, included, served, period, restricted, notice)
        included_record = entry.events[-1][2]
        if injected == "PERIOD_EXPIRED_NOT_SHIELDED":
            assert period is not None
            self.expire(entry, included, period, injected)
            return self.with_orphan(entry, injected, debtor, included)

        now = included
        ended: dt.datetime | None = None
        path = rng.random()
        if injected in ("CORRECTION_REVIEW_OVERDUE", "CORRECTION_UPHELD_NOT_REVOKED") or path < 0.10:
            # Within the correction window counted from service: a later request would be an orphan.
            window = d.due(served, d.correction_request)
            requested = served + self.within(dt.timedelta(hours=1), window - served)
            self.emit(entry, "CorrectionRequested", requested, received_at=requested.isoformat())
            review_due = d.due(requested, d.review)
            if injected == "CORRECTION_REVIEW_OVERDUE":
                decided = self.late(review_due)
                self.breach(injected, entry, f"correction decided more than {d.review} after it was received")
            else:
                decided = self.on_time(requested, review_due)
            upheld = injected == "CORRECTION_UPHELD_NOT_REVOKED" or (
                injected != "CORRECTION_REVIEW_OVERDUE" and rng.random() < 0.3
            )
            self.emit(entry, "CorrectionDecided", decided, outcome="UPHELD" if upheld else "REJECTED")
            if upheld:
                revoke_due = d.due(decided, d.revoke)
                if injected == "CORRECTION_UPHELD_NOT_REVOKED":
                    revoked = self.late(revoke_due)
                    self.breach(injected, entry, f"correction upheld but not revoked within {d.revoke}")
                else:
                    revoked = self.on_time(decided, revoke_due)
                self.emit(entry, "Revoked", revoked, reason="CORRECTION_UPHELD")
                ended = revoked
            else:
                now = decided
                if rng.random() < 0.2:
                    revoked = decided + self.days(20, 60)
                    self.emit(entry, "Revoked", revoked, reason="RECONSIDERATION_UPHELD")
                    ended = revoked

        if ended is None:
            path = rng.random()
            if injected == "SHIELD_OVERDUE" or path < 0.45:
                performed = now + self.days(10, 500)
                if injected == "SHIELD_OVERDUE":
                    performed = min(performed, self.window_end - dt.timedelta(days=30))
                    performed = max(performed, now + dt.timedelta(days=1))
                if performed <= self.window_end:
                    shield_due = d.due(performed, d.shield)
                    if injected == "SHIELD_OVERDUE":
                        shielded = self.late(shield_due)
                        self.breach(injected, entry, f"shielded more than {d.shield} after performance")
                    else:
                        shielded = self.on_time(performed, shield_due)
                    reason = rng.choice(("FULL_PERFORMANCE", "FULL_PERFORMANCE", "SETTLEMENT_PERFORMED"))
                    self.emit(entry, "Shielded", shielded, reason=reason, performed_at=performed.isoformat())
                    ended = shielded
            elif path < 0.52:
                shielded = now + self.days(30, 400)
                if shielded <= self.window_end:
                    reason = rng.choice(("CREDITOR_REQUEST", "EXECUTION_TERMINATED"))
                    self.emit(entry, "Shielded", shielded, reason=reason, performed_at=None)
                    ended = shielded
            elif path < 0.55:
                revoked = now + self.days(30, 300)
                if revoked <= self.window_end:
                    self.emit(entry, "Revoked", revoked, reason="WRONGFUL_INCLUSION")
                    ended = revoked

        if period is not None:
            end, due = self.period_due(included, period)
            if ended is None or ended > due:
                if end <= self.window_end:
                    # The period runs out first: whatever was planned after it is dropped.
                    entry.events[:] = [e for e in entry.events if e[0] < end]
                    self.expire(entry, included, period, None)
                else:
                    # Still active when the simulated window closes: no expiry may fall due later.
                    included_record["period_months"] = None
        return self.with_orphan(entry, injected, debtor, included)

    def expire(self, entry: _Entry, included: dt.datetime, period: int, injected: str | None) -> None:
        end, due = self.period_due(included, period)
        if injected == "PERIOD_EXPIRED_NOT_SHIELDED":
            shielded = self.late(due)
            self.breach(
                injected, entry, f"listing period expired, entry shielded more than {self.d.period_grace} later"
            )
        else:
            shielded = self.on_time(end, due)
        self.emit(entry, "Shielded", shielded, reason="PERIOD_EXPIRED", performed_at=None)

    def with_orphan(self, entry: _Entry, injected: str | None, debtor: dict[str, Any], included: dt.datetime) -> _Entry:
        if injected == "ORPHAN_EVENT":
            orphan = _Entry(f"{entry.entry_id}-X", entry.court, entry.case_number, debtor)
            self.emit(orphan, "Shielded", included + self.days(5, 40), reason="CREDITOR_REQUEST", performed_at=None)
            entry.events.extend(orphan.events)
            self.breach(injected, orphan, "Shielded for an entry that was never included")
        return entry

    # -- the live part ----------------------------------------------------------------------------

    def live(self, entries: list[_Entry], live_at: dt.datetime) -> list[dict[str, Any]]:
        """The events to publish at `live_at`, from a random stream of their own: new debtors listed in
        the last hours and, when breaches are asked for, one late publication of each kind."""
        self.rng = random.Random(f"{self.config.seed}/live/{live_at.astimezone(dt.UTC).isoformat()}")
        rng, d = self.rng, self.d
        # Whole minutes, at or before live_at: every offset below is positive, so all times are before it.
        base = live_at.astimezone(CHINA).replace(second=0, microsecond=0)
        count = self.config.live_debtors
        breaches = self.config.breach_rate > 0 and count > 0
        late_index = rng.randrange(count) if breaches else None
        live: list[_Entry] = []
        for number in range(count):
            debtor = self.debtor()
            if number == late_index:
                warned = base - self.days(20, 30)
                included = base - self.days(5, 15)
                while d.due(included, d.publication) >= live_at:  # a long holiday can stretch the period
                    included -= dt.timedelta(days=1)
                warned = min(warned, included - dt.timedelta(days=7))
            else:
                warned = base - self.within(dt.timedelta(hours=3), LIVE_SAFE - dt.timedelta(minutes=10))
                included = warned + self.within(dt.timedelta(minutes=10), dt.timedelta(hours=2))
            entry = self.new_entry(debtor, warned)
            self.emit(entry, "RiskWarningIssued", warned, served_at=warned.isoformat())
            soon = min(dt.timedelta(days=2), base - included - dt.timedelta(minutes=1))
            served = included + self.within(dt.timedelta(0), soon)
            restricted = rng.random() < 0.05
            notice = None
            if restricted:
                notified = included + self.within(dt.timedelta(0), soon)
                notice = {"unit": rng.choice(EMPLOYERS), "notified_at": notified.isoformat()}
            period = rng.choice(range(24, 61, 6)) if rng.random() < 0.3 else None
            if number == late_index:
                period = None  # nothing but the late publication to judge on this entry
                entry.injected = "PUBLICATION_LATE"
                days_late = (live_at - included).days
                self.breach("PUBLICATION_LATE", entry, f"published {days_late} days after the court act")
            self.include(entry, included, served, period, restricted, notice)
            live.append(entry)
        if breaches:
            shielding = self.late_shielding(entries, live, base, live_at)
            if shielding is not None:
                live.append(shielding)
            conflict = self.conflicting_copy(entries, {e.entry_id for e in live}, live_at)
            if conflict is not None:
                live.append(conflict)
        timeline = sorted((e for entry in live for e in entry.events), key=lambda e: (e[0], e[1]))
        return [e[2] for e in timeline]

    def conflicting_copy(self, entries: list[_Entry], taken: set[str], live_at: dt.datetime) -> _Entry | None:
        """An inclusion of the history, published again under its own event id with another obligation
        (everything else equal, still valid): one event id naming two different court acts. Taken from an
        entry the live part does not touch, with no breach of its own when there is one, every time in it
        before `live_at`."""
        candidates = [
            (entry, at, record)
            for entry in entries
            if entry.entry_id not in taken
            for at, _order, record in entry.events
            if record["type"] == "Included"
            and record["entry_id"] == entry.entry_id
            and all(time < live_at for time in _stated_times(record))
        ]
        if not candidates:
            return None
        plain = [c for c in candidates if c[0].injected is None]
        chosen, at, original = self.rng.choice(plain or candidates)
        copy_record = copy.deepcopy(original)
        while copy_record["obligation"] == original["obligation"]:
            copy_record["obligation"] = f"{self.rng.choice(OBLIGATIONS)}{self.rng.randrange(1, 500)}万元"
        entry = _Entry(chosen.entry_id, chosen.court, chosen.case_number, chosen.debtor)
        self.order += 1
        entry.events.append((at, self.order, copy_record))
        detail = f"event id {original['event_id']} published again with different content"
        self.breach(EVENT_ID_CONFLICT, entry, detail)
        return entry

    def late_shielding(
        self, entries: list[_Entry], live: list[_Entry], base: dt.datetime, live_at: dt.datetime
    ) -> _Entry | None:
        """An entry of the history, still active at its end, shielded on time by its own date but published
        too late: after the publication period and after the shielding deadline."""
        d = self.d
        performed = base - self.days(8, 12)
        while d.due(d.due(performed, d.shield), d.publication) >= live_at:
            performed -= dt.timedelta(days=1)
        plain = [e for e in entries if self.still_active(e, performed)]
        if not plain:
            return None
        reps = {e.debtor["legal_representative"]["id_number"] for e in entries + live if e.debtor["kind"] == "ORG"}
        per_debtor: dict[str, int] = {}
        for e in entries:
            per_debtor[e.debtor["id_number"]] = per_debtor.get(e.debtor["id_number"], 0) + 1
        simplest = [
            e
            for e in plain
            if e.debtor["kind"] == "PERSON"
            and per_debtor[e.debtor["id_number"]] == 1
            and e.debtor["id_number"] not in reps
        ]
        chosen = self.rng.choice(simplest or plain)
        entry = _Entry(chosen.entry_id, chosen.court, chosen.case_number, chosen.debtor)
        shield_due = d.due(performed, d.shield)
        shielded = self.on_time(performed, shield_due)
        self.emit(entry, "Shielded", shielded, reason="FULL_PERFORMANCE", performed_at=performed.isoformat())
        self.breach("PUBLICATION_LATE", entry, f"published {(live_at - shielded).days} days after the court act")
        self.breach("SHIELD_OVERDUE", entry, f"shielding recorded after the {d.shield} deadline")
        return entry

    @staticmethod
    def still_active(entry: _Entry, before: dt.datetime) -> bool:
        """Included, never closed, no period, no breach, and nothing in it from `before` on."""
        if entry.injected is not None:
            return False
        own = [r for _, _, r in entry.events if r["entry_id"] == entry.entry_id]
        included = [r for r in own if r["type"] == "Included"]
        if len(included) != 1 or included[0]["period_months"] is not None:
            return False
        if any(r["type"] in ("Shielded", "Revoked") for r in own):
            return False
        last = max(at + dt.timedelta(days=2) for at, _, r in entry.events)  # served_at is at most 2 days on
        return last < before

    def run(self) -> Simulation:
        rng = self.rng
        entries: list[_Entry] = []
        for _ in range(self.config.debtors):
            debtor = self.debtor()
            count = 1 + (rng.random() < 0.15) + (rng.random() < 0.05)
            entries.extend(self.lifecycle(debtor) for _ in range(count))
        timeline = sorted((e for entry in entries for e in entry.events), key=lambda e: (e[0], e[1]))
        self.result.events = [e[2] for e in timeline]
        if self.config.live_at is not None:
            self.result.live = self.live(entries, self.config.live_at)
        self.result.breaches.sort(key=lambda b: (b["entry_id"], b["rule"]))
        return self.result


def _stated_times(record: dict[str, Any]) -> list[dt.datetime]:
    """Every time a record states (the act and any service, receipt, performance or notice)."""
    names = ("occurred_at", "served_at", "received_at", "performed_at")
    times = [dt.datetime.fromisoformat(record[name]) for name in names if record.get(name)]
    notice = record.get("employer_notified")
    if notice:
        times.append(dt.datetime.fromisoformat(notice["notified_at"]))
    return times


def simulate(config: SimulationConfig) -> Simulation:
    return _Generator(config).run()


def iter_simulated(config: SimulationConfig) -> Iterator[dict[str, Any]]:
    yield from simulate(config).events
