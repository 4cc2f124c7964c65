"""Valid resident ID numbers by index, for synthetic agency records: unique, deterministic, cheap.

Index i gives region i % 16, a birth date from 1950 on, and a sequence number; restricted subjects take
sequence numbers 0-499 and unrestricted ones 500-999, so the two sets never meet.
"""

from __future__ import annotations

import datetime as dt

from hub.domain.ids import resident_id_check_char
from producers.simulator import REGIONS

_DAYS = 50 * 365
_EPOCH = dt.date(1950, 1, 1)
CAPACITY = len(REGIONS) * _DAYS * 500
_BIRTHS = [f"{_EPOCH + dt.timedelta(days=d):%Y%m%d}" for d in range(_DAYS)]


def resident_id(index: int, restricted: bool = True) -> str:
    if not 0 <= index < CAPACITY:
        raise ValueError(f"index {index} outside 0..{CAPACITY - 1}")
    region = REGIONS[index % len(REGIONS)]
    rest = index // len(REGIONS)
    seq = rest // _DAYS + (0 if restricted else 500)
    body = f"{region}{_BIRTHS[rest % _DAYS]}{seq:03d}"
    return body + resident_id_check_char(body)
