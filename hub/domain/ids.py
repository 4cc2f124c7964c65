"""Check-digit rules for the two national identifiers a debtor can carry.

A mistyped ID number would sanction the wrong citizen, so both are verified before anything is
published, and every rejection says which check failed. Valid numbers are remembered: the same debtor
recurs in every event and every agency's feedback about it.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from operator import mul

RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
RESIDENT_ID_CHECK = "10X98765432"

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_FORM = re.compile(f"[{USCC_CHARSET}]*").fullmatch
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


class IdNumberError(ValueError):
    """An identifier failed its format or check-character rule; the message says which."""


def resident_id_check_char(first17: str) -> str:
    """GB 11643-1999: ISO 7064 MOD 11-2 over the first 17 digits (map: every interception check runs this)."""
    if len(first17) != 17:
        raise ValueError(f"17 digits expected, got {len(first17)}")
    total = sum(map(mul, map(int, first17), RESIDENT_ID_WEIGHTS))
    return RESIDENT_ID_CHECK[total % 11]


@lru_cache(maxsize=1 << 18)
def validate_resident_id(value: str) -> str:
    """Return the normalised resident ID number (upper-case X) or raise IdNumberError."""
    if not isinstance(value, str):
        raise IdNumberError("resident ID number must be a string")
    number = value.strip().upper()
    if len(number) != 18:
        raise IdNumberError(f"resident ID number must have 18 characters, got {len(number)} (GB 11643)")
    if not number[:17].isdigit() or not number[:17].isascii():
        raise IdNumberError("resident ID number: the first 17 characters must be digits (GB 11643)")
    if not (number[17].isdigit() or number[17] == "X"):
        raise IdNumberError("resident ID number: the check character must be a digit or X (GB 11643)")
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise IdNumberError(
            f"resident ID number: {number[6:14]} in positions 7-14 is not a valid birth date (GB 11643)"
        ) from None
    if birth.year < 1900:
        raise IdNumberError(f"resident ID number: birth year {birth.year} is implausible (GB 11643)")
    expected = resident_id_check_char(number[:17])
    if number[17] != expected:
        raise IdNumberError(
            f"resident ID number fails the GB 11643 mod 11-2 check: "
            f"check character should be '{expected}', not '{number[17]}'"
        )
    return number


def uscc_check_char(first17: str) -> str:
    """GB 32100-2015: modulus 31 over the first 17 characters."""
    if len(first17) != 17:
        raise ValueError(f"17 characters expected, got {len(first17)}")
    total = sum(map(mul, map(USCC_CHARSET.index, first17), USCC_WEIGHTS))
    return USCC_CHARSET[(31 - total % 31) % 31]


@lru_cache(maxsize=1 << 18)
def validate_uscc(value: str) -> str:
    """Return the normalised unified social credit code or raise IdNumberError."""
    if not isinstance(value, str):
        raise IdNumberError("unified social credit code must be a string")
    code = value.strip().upper()
    if len(code) != 18:
        raise IdNumberError(f"unified social credit code must have 18 characters, got {len(code)} (GB 32100)")
    bad = [] if _USCC_FORM(code) else sorted({c for c in code if c not in USCC_CHARSET})
    if bad:
        raise IdNumberError(
            f"unified social credit code contains {', '.join(repr(c) for c in bad)}, "
            "outside the GB 32100 character set (digits and capitals except I, O, S, V, Z)"
        )
    if not code[2:8].isdigit():
        raise IdNumberError(
            "unified social credit code: positions 3-8 must be the 6-digit administrative division code"
        )
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        raise IdNumberError(
            f"unified social credit code fails the GB 32100 mod 31 check: "
            f"check character should be '{expected}', not '{code[17]}'"
        )
    return code


@lru_cache(maxsize=1 << 18)
def validate_any_id(value: str) -> str:
    """A subject or debtor may be a person or an organisation: either identifier, checked."""
    try:
        return validate_resident_id(value)
    except IdNumberError as person_error:
        try:
            return validate_uscc(value)
        except IdNumberError as org_error:
            raise IdNumberError(
                f"neither a resident ID number ({person_error}) nor a unified social credit code ({org_error})"
            ) from None


def mask_resident_id(number: str) -> str:
    """Hide birth month and day as the courts' public portal does: 3423011964****3224."""
    return number[:10] + "****" + number[14:]


RESIDENT_LIKE = re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9])")


def is_resident_id(text: str) -> bool:
    try:
        validate_resident_id(text.upper())
    except IdNumberError:
        return False
    return True


def mask_resident_ids(text: str) -> str:
    """Every valid resident ID number in a text masked like mask_resident_id: the last guard of pages and
    exports that quote the ledger's detail lines, which name subjects in full. (A credit code is left whole:
    it is public, and it never passes the resident ID's checks.)"""
    return RESIDENT_LIKE.sub(lambda m: mask_resident_id(m.group()) if is_resident_id(m.group()) else m.group(), text)
