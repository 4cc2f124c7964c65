"""The public register's queries, shared by the HTML pages and the JSON API (and the benchmark).

A name is matched from its start (张三 finds 张三 and 张三丰), byte-wise on an index; an ID number is
compared by its digest (the register keeps no full resident ID); court code and case number exactly.
The number of matches is counted up to COUNT_CAP only, so a one-character name stays fast.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

from sqlalchemy import Connection, text

from hub.domain.register import Listing, id_digest

PER_PAGE = 20
COUNT_CAP = 1000
MAX_PAGE = COUNT_CAP // PER_PAGE


@dataclass(frozen=True)
class Query:
    name: str = ""
    id_number: str = ""
    court_code: str = ""
    case_number: str = ""
    page: int = 1

    @property
    def empty(self) -> bool:
        return not (self.name or self.id_number or self.case_number)


@dataclass(frozen=True)
class Page:
    listings: list[Listing]
    total: int  # matches, counted up to COUNT_CAP
    capped: bool  # there are more than COUNT_CAP
    page: int
    pages: int


COLUMNS = tuple(f.name for f in fields(Listing))  # public_entries' columns: a Listing's fields, in order
_SELECT = ", ".join(COLUMNS)


def _listing(row) -> Listing:
    return Listing(**{**row._mapping, "grounds": tuple(row.grounds)})


def _like_prefix(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search(conn: Connection, query: Query) -> Page:
    """One page of matches, ordered by name then entry id (the index's order). An empty query finds nothing:
    the register is for looking someone up, not for downloading."""
    if query.empty:
        return Page([], 0, False, 1, 0)
    where, params = [], {}
    if query.name:
        where.append("name like :name")
        params["name"] = _like_prefix(query.name)
    if query.id_number:
        where.append("id_digest = :digest")
        params["digest"] = id_digest(query.id_number)
    if query.court_code:
        where.append("court_code = :court")
        params["court"] = query.court_code
    if query.case_number:
        where.append("case_number = :case")
        params["case"] = query.case_number
    clause = " and ".join(where)
    total = conn.execute(
        text(f"select count(*) from (select 1 from public_entries where {clause} limit {COUNT_CAP + 1}) m"), params
    ).scalar_one()
    pages = max(1, -(-min(total, COUNT_CAP) // PER_PAGE))
    page = min(max(query.page, 1), pages)
    rows = conn.execute(
        text(
            f"select {_SELECT} from public_entries where {clause} order by name, entry_id "
            f"limit {PER_PAGE} offset {(page - 1) * PER_PAGE}"
        ),
        params,
    )
    return Page([_listing(r) for r in rows], min(total, COUNT_CAP), total > COUNT_CAP, page, pages)


def entry(conn: Connection, entry_id: str) -> Listing | None:
    row = conn.execute(text(f"select {_SELECT} from public_entries where entry_id = :id"), {"id": entry_id}).first()
    return None if row is None else _listing(row)


def size(conn: Connection) -> tuple[int, dt.datetime | None]:
    """How many entries the register lists, and when it last changed."""
    row = conn.execute(text("select count(*), max(listed_at) from public_entries")).one()
    return row[0], row[1]
