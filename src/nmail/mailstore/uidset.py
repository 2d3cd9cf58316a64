"""UID sets in IMAP syntax (`1:5,7,9:*`), checked against a folder's UIDNEXT.

A UidSet is a sorted tuple of disjoint, non-adjacent inclusive ranges, so a
set of 10,000 consecutive UIDs is one pair, whatever the caller typed. The
same type carries message sequence ranges (FolderView resolves them to UIDs).

Stricter than RFC 3501 on purpose (the mailbox API's promise): a reversed
range (`5:1`), a number at or past UIDNEXT, zero, or anything that is not the
grammar is a BadUidSet naming the problem, never a silent empty result. An
IMAP server that must accept `5:1` swaps it before calling parse.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from nmail.mailstore.model import BadUidSet

MAX_UID = 2**32 - 1  # RFC 3501 nz-number
MAX_TEXT = 100_000
MAX_RANGES = 10_000


@dataclass(frozen=True, slots=True)
class UidSet:
    """Disjoint inclusive ranges, ascending: ((1, 5), (7, 7), (9, 12))."""

    ranges: tuple[tuple[int, int], ...] = ()

    @classmethod
    def parse(cls, text: str, *, uid_next: int) -> UidSet:
        """`text` in IMAP sequence-set syntax; `*` is the highest UID in use (UIDNEXT - 1).

        BadUidSet for garbage, zero, a reversed range, or a number >= uid_next.
        """
        if not isinstance(text, str) or not text:
            raise BadUidSet("empty UID set")
        if len(text) > MAX_TEXT:
            raise BadUidSet("UID set too long")
        last = uid_next - 1
        pairs: list[tuple[int, int]] = []
        for part in text.split(","):
            low_text, colon, high_text = part.partition(":")
            low = _number(low_text, last, text)
            high = _number(high_text, last, text) if colon else low
            if low > high:
                raise BadUidSet(f"reversed range {part!r} in UID set {text!r}")
            if high > last:
                raise BadUidSet(f"{part!r} is past the last UID ({last}) in {text!r}"
                                if last > 0 else f"{part!r}: the folder has no UIDs yet")
            pairs.append((low, high))
        return cls.of_ranges(pairs)

    @classmethod
    def of(cls, uids: Iterable[int]) -> UidSet:
        """The set of the given UIDs (BadUidSet for one that is not 1..2^32-1)."""
        pairs: list[tuple[int, int]] = []
        for uid in sorted(set(uids)):
            if type(uid) is not int or not 0 < uid <= MAX_UID:
                raise BadUidSet(f"bad UID {uid!r}")
            if pairs and pairs[-1][1] + 1 == uid:
                pairs[-1] = (pairs[-1][0], uid)
            else:
                pairs.append((uid, uid))
        return cls(tuple(pairs))

    @classmethod
    def of_ranges(cls, pairs: Iterable[tuple[int, int]]) -> UidSet:
        """Ranges in any order, overlapping or not, merged; BadUidSet for a bad one."""
        checked = []
        for low, high in pairs:
            if type(low) is not int or type(high) is not int or not 0 < low <= high <= MAX_UID:
                raise BadUidSet(f"bad UID range {low!r}:{high!r}")
            checked.append((low, high))
        checked.sort()
        merged: list[tuple[int, int]] = []
        for low, high in checked:
            if merged and low <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
            else:
                merged.append((low, high))
        if len(merged) > MAX_RANGES:
            raise BadUidSet(f"UID set of more than {MAX_RANGES} ranges")
        return cls(tuple(merged))

    def __iter__(self) -> Iterator[int]:
        for low, high in self.ranges:
            yield from range(low, high + 1)

    def __contains__(self, uid: object) -> bool:
        return any(low <= uid <= high for low, high in self.ranges)  # type: ignore[operator]

    def __len__(self) -> int:
        return sum(high - low + 1 for low, high in self.ranges)

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __str__(self) -> str:
        return ",".join(f"{a}" if a == b else f"{a}:{b}" for a, b in self.ranges)

    @property
    def first(self) -> int:
        return self.ranges[0][0]

    @property
    def last(self) -> int:
        return self.ranges[-1][1]


def _number(text: str, last: int, whole: str) -> int:
    if text == "*":
        if last < 1:
            raise BadUidSet(f"'*' in {whole!r}: the folder has no UIDs yet")
        return last
    if not text.isascii() or not text.isdigit() or text.startswith("0") or len(text) > 10:
        raise BadUidSet(f"bad number {text!r} in UID set {whole!r}")
    value = int(text)
    if value > MAX_UID:
        raise BadUidSet(f"{text} is beyond the largest UID in {whole!r}")
    return value
