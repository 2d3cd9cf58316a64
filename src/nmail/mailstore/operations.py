"""The mailbox's write operations as typed values, and their wire form.

Every change but a delivery (deliveries keep their own lean format, see
delivery_batch.PreparedMessage) is one of these, run by the index writer in
the one order it gives every write. Each carries the account's Maildir path
(as a delivery carries its folder's directory: the writer needs no
configuration) and folder ids resolved once by the caller's FolderView; the
writer checks again that each folder belongs to the account, under its lock.

On the wire (index_wire) an operation is `(class name, *fields)` with
exactly the field types below, checked before anything runs; a result is
`(class name, *fields)` of a result dataclass, or None.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from nmail.mailstore.model import (
    AppendResult,
    CopyResult,
    FlagChange,
    FolderInfo,
    StoreError,
)

Ranges = tuple[tuple[int, int], ...]  # UidSet.ranges


@dataclass(frozen=True, slots=True)
class StoreFlags:
    """Set, add or remove flags on the UIDs (IMAP STORE, UID STORE)."""

    account_id: int
    maildir: str
    folder_id: int
    ranges: Ranges
    mode: str  # "set" | "add" | "remove"
    flags: tuple[str, ...]  # normalized (names.normalize_flags)
    unchanged_since: int  # 0: no condition (CONDSTORE UNCHANGEDSINCE otherwise)


@dataclass(frozen=True, slots=True)
class CopyMessages:
    """Copy or move the UIDs to another folder of the same account."""

    account_id: int
    maildir: str
    folder_id: int
    ranges: Ranges
    target_id: int
    move: bool


@dataclass(frozen=True, slots=True)
class ExpungeMessages:
    account_id: int
    maildir: str
    folder_id: int
    ranges: Ranges
    keep_tombstones: int  # seconds; older tombstones of the folder are pruned


@dataclass(frozen=True, slots=True)
class CreateFolder:
    account_id: int
    maildir: str
    name: str  # checked API name
    role: str  # "" for none


@dataclass(frozen=True, slots=True)
class CreateDefaultFolders:
    """Rows for a new mailbox's default folders (their directories exist, empty)."""

    account_id: int
    maildir: str
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RenameFolder:
    account_id: int
    maildir: str
    name: str
    new_name: str


@dataclass(frozen=True, slots=True)
class DeleteFolder:
    account_id: int
    maildir: str
    name: str
    force: bool  # also when it holds messages or subfolders


@dataclass(frozen=True, slots=True)
class Subscribe:
    account_id: int
    maildir: str
    name: str
    subscribed: bool


Operation = StoreFlags | CopyMessages | ExpungeMessages | CreateFolder | \
    CreateDefaultFolders | RenameFolder | DeleteFolder | Subscribe

_OPERATIONS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (StoreFlags, CopyMessages, ExpungeMessages, CreateFolder,
                CreateDefaultFolders, RenameFolder, DeleteFolder, Subscribe)
}
_RESULTS: dict[str, type[Any]] = {
    cls.__name__: cls for cls in (FlagChange, CopyResult, AppendResult, FolderInfo)
}
MAX_RANGES = 10_000
MAX_FLAGS = 64


def encode_operation(op: Operation) -> tuple[Any, ...]:
    return (type(op).__name__, *(getattr(op, f.name) for f in dataclasses.fields(op)))


def decode_operation(data: Any) -> Operation:
    """An operation from the wire; ValueError unless it is exactly what encode made."""
    if type(data) is not tuple or not data or type(data[0]) is not str:
        raise ValueError("an operation is a tuple led by its name")
    cls = _OPERATIONS.get(data[0])
    if cls is None:
        raise ValueError(f"unknown operation {data[0]!r}")
    fields = dataclasses.fields(cls)
    values = data[1:]
    if len(values) != len(fields):
        raise ValueError(f"{data[0]}: {len(values)} fields, not {len(fields)}")
    for f, value in zip(fields, values, strict=True):
        if not _fits(f.name, f.type, value):
            raise ValueError(f"{data[0]}.{f.name}: bad value")
    op: Operation = cls(*values)
    return op


def _fits(name: str, annotation: Any, value: Any) -> bool:
    kind = str(annotation)
    if kind == "int":
        return type(value) is int and 0 <= value < 2**63
    if kind == "bool":
        return type(value) is bool
    if kind == "str":
        return type(value) is str and len(value) <= 4096
    if kind == "Ranges":
        return type(value) is tuple and len(value) <= MAX_RANGES and all(
            type(p) is tuple and len(p) == 2 and type(p[0]) is int and type(p[1]) is int
            and 0 < p[0] <= p[1] < 2**32 for p in value)
    if kind == "tuple[str, ...]":
        return type(value) is tuple and len(value) <= MAX_FLAGS and all(
            type(v) is str and len(v) <= 64 for v in value)
    raise AssertionError(f"no wire check for {name}: {kind}")


def encode_result(result: Any) -> Any:
    """A result dataclass (or None, or a tuple of ints) as plain values."""
    if result is None or type(result) is tuple:
        return result
    if type(result).__name__ not in _RESULTS:
        raise StoreError(f"no wire form for {type(result).__name__}")
    return (type(result).__name__, *(getattr(result, f.name) for f in dataclasses.fields(result)))


def decode_result(data: Any) -> Any:
    """The inverse of encode_result; ValueError for anything else."""
    if data is None:
        return None
    if type(data) is not tuple:
        raise ValueError("a result is a tuple")
    if not data or type(data[0]) is int:
        if not all(type(v) is int for v in data):
            raise ValueError("bad UID list")
        return data
    cls = _RESULTS.get(data[0]) if type(data[0]) is str else None
    if cls is None:
        raise ValueError(f"unknown result {data[0]!r}")
    try:
        return cls(*data[1:])
    except TypeError as exc:
        raise ValueError(f"bad {data[0]}: {exc}") from None
