"""Date: headers to Unix seconds: RFC 5322 and the broken forms mailers really send."""

from __future__ import annotations

import functools
import re
from datetime import date

_MONTHS = {
    name: number
    for number, names in enumerate(
        (("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
         ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
         ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
         ("dec", "december")),
        start=1,
    )
    for name in names
}

# Named zones seen in real Date: headers, in minutes east of UTC. Unknown
# names count as UTC (RFC 5322 section 4.3 says to treat them as -0000).
_ZONES = {
    "ut": 0, "utc": 0, "gmt": 0, "z": 0, "wet": 0, "bst": 60, "cet": 60, "met": 60,
    "cest": 120, "mest": 120, "eet": 120, "eest": 180, "msk": 180,
    "est": -300, "edt": -240, "cst": -360, "cdt": -300, "mst": -420, "mdt": -360,
    "pst": -480, "pdt": -420, "akst": -540, "hst": -600,
    "kst": 540, "jst": 540, "hkt": 480, "sgt": 480, "awst": 480, "aest": 600,
    "aedt": 660, "nzst": 720, "nzdt": 780,
}

# The standard shape, fast: "[Tue, ]25 Nov 2025 10:11[:12] +0900".
_RFC5322 = re.compile(
    r"\s*(?:[A-Za-z]+,?\s*)?(\d{1,2})[\s-]+([A-Za-z]{3,9})[\s-]+(\d{2,4})\s+"
    r"(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*([+-]\d{4}|[A-Za-z]{1,5})?"
)
# ISO-like and Korean numeric dates: "2025-11-25", "2025/11/25", "2025. 11. 25", "2025년 11월 25일".
_NUMERIC_DATE = re.compile(r"(\d{4})\s*[-/.년]\s*(\d{1,2})\s*[-/.월]\s*(\d{1,2})")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?(?:[.,]\d+)?")
_OFFSET = re.compile(r"(?:gmt|utc)?\s*([+-])(\d{1,2}):?(\d{2})?(?!\d)", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]+")
_NUMBER = re.compile(r"\d+")
_COMMENT = re.compile(r"\([^()]*\)")
_AFTERNOON = re.compile(r"\b(?:pm|p\.m\.)|오후", re.IGNORECASE)
_MORNING = re.compile(r"\b(?:am|a\.m\.)|오전", re.IGNORECASE)
_LATEST = 253402300799  # 9999-12-31T23:59:59Z; anything later is nonsense
_EPOCH_DAY = date(1970, 1, 1).toordinal()


def parse_date(value: bytes | str) -> int:
    """Unix seconds for a Date: header value; 0 when it cannot be understood."""
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text[:200]
    match = _RFC5322.match(text)
    if match is not None:
        day, month_name, year, hour, minute, second, zone = match.groups()
        month = _MONTHS.get(month_name.lower())
        if month is not None:
            minutes = _zone_minutes(zone)
            if zone and zone[0] not in "+-":
                # "GMT+09:00": the offset after the name is what counts.
                offset = _OFFSET.match(text, match.end())
                if offset is not None:
                    minutes = _offset_minutes(offset)
            days = _day_number(year, month, day)
            if days is None:
                return 0
            return _seconds(days, int(hour), int(minute), int(second or 0), minutes)
    return _parse_loose(text)


@functools.lru_cache(maxsize=64)  # a day's mail shares its Date: day, month and year
def _day_number(year: str, month: int, day: str) -> int | None:
    """Days since the epoch of an RFC 5322 date's day, or None when there is no such day."""
    try:
        return date(_year(year), month, int(day)).toordinal() - _EPOCH_DAY
    except (ValueError, OverflowError):
        return None


def _parse_loose(text: str) -> int:
    """Dates in any order, named months or numbers, optional time and zone."""
    text = _COMMENT.sub(" ", text)
    time = _TIME.search(text)
    hour = minute = second = 0
    after_time = text
    if time is not None:
        hour, minute = int(time.group(1)), int(time.group(2))
        second = int(time.group(3) or 0)
        after_time = text[time.end():]
        if _AFTERNOON.search(text) and hour < 12:
            hour += 12
        elif _MORNING.search(text) and hour == 12:
            hour = 0
        text = text[:time.start()] + " " + after_time
    numeric = _NUMERIC_DATE.search(text)
    if numeric is not None:
        year, month, day = (int(group) for group in numeric.groups())
        rest = text[numeric.end():]
    else:
        month = 0
        for word in _WORD.findall(text):
            month = _MONTHS.get(word.lower(), 0)
            if month:
                break
        numbers = _NUMBER.findall(_OFFSET.sub(" ", text))
        if not month or len(numbers) < 2:
            return 0
        # The year is the four-digit number (or the last one); the day is another.
        year_at = next((i for i, n in enumerate(numbers) if len(n) == 4), len(numbers) - 1)
        days = [n for i, n in enumerate(numbers) if i != year_at and len(n) <= 2]
        if not days:
            return 0
        year, day = _year(numbers[year_at]), int(days[0])
        rest = after_time
    return _to_unix(year, month, day, hour, minute, second, _zone_from_text(rest))


def _zone_from_text(text: str) -> int:
    """Offset in minutes from "+0900", "+09:00", "GMT+9" or a zone name; 0 if none."""
    offset = _OFFSET.search(text)
    if offset is not None:
        return _offset_minutes(offset)
    for word in _WORD.findall(text):
        zone = _ZONES.get(word.lower())
        if zone is not None:
            return zone
    return 0


def _offset_minutes(offset: re.Match[str]) -> int:
    """Minutes east of UTC from an `_OFFSET` match."""
    sign, hours, minutes = offset.groups()
    total = int(hours) * 60 + int(minutes or 0)
    return -total if sign == "-" else total


@functools.lru_cache(maxsize=256)  # a few zones make up nearly all mail
def _zone_minutes(zone: str | None) -> int:
    """Minutes east of UTC for "+0900" or "KST"; unknown or missing is UTC."""
    if not zone:
        return 0
    if zone[0] in "+-":
        total = int(zone[1:3]) * 60 + int(zone[3:5])
        return -total if zone[0] == "-" else total
    return _ZONES.get(zone.lower(), 0)


def _year(text: str) -> int:
    """RFC 5322 obsolete years: 2 digits are 19xx from 50 up, else 20xx; 3 digits add 1900."""
    year = int(text)
    if len(text) == 2:
        return year + (1900 if year >= 50 else 2000)
    if len(text) == 3:
        return year + 1900
    return year


def _to_unix(year: int, month: int, day: int, hour: int, minute: int, second: int,
             zone_minutes: int) -> int:
    """Seconds since the epoch, or 0 for an impossible date."""
    try:
        days = date(year, month, day).toordinal() - _EPOCH_DAY  # checks the day exists
    except (ValueError, OverflowError):
        return 0
    return _seconds(days, hour, minute, second, zone_minutes)


def _seconds(days: int, hour: int, minute: int, second: int, zone_minutes: int) -> int:
    """Seconds since the epoch of a time on the day `days` after it, or 0 for an impossible one."""
    if second == 60:
        second = 59  # a leap second
    if abs(zone_minutes) > 18 * 60:
        zone_minutes = 0  # "+9900" is junk: better a date in UTC than none
    if not (0 <= hour < 24 and 0 <= minute < 60 and 0 <= second < 60):
        return 0
    # Plain arithmetic (no datetime objects): this runs for every delivered message.
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - zone_minutes * 60
    return seconds if 0 < seconds <= _LATEST else 0
