"""Reading account lists for `nmail user import`: CSV from Excel, Korean or not.

The header names the columns: domain,name,userid,password, and optionally
admin and quota, in any order. Files come as UTF-8 (with or without the BOM
Excel writes), UTF-16 ("Unicode text"), or CP949/EUC-KR from Korean Excel.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass

from nmail.directory.errors import InvalidName
from nmail.directory.sizes import parse_size

REQUIRED = ("domain", "name", "userid", "password")
OPTIONAL = ("admin", "quota")
HEADER_HINT = "domain,name,userid,password[,admin][,quota]"

_ADMIN_YES = {"admin", "yes", "y", "true", "1", "o", "관리자"}
_ADMIN_NO = {"", "no", "n", "false", "0", "x", "-", "user", "일반"}


@dataclass(frozen=True, slots=True)
class AccountLine:
    """One account to create, from file line `line`."""

    line: int
    domain: str
    name: str
    userid: str
    password: str
    admin: bool
    quota: int


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that cannot become an account, and why."""

    line: int
    reason: str


def decode_csv(data: bytes) -> tuple[str, str]:
    """(text, encoding) of a CSV file; InvalidName when it is no text we know."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError:
            pass
    else:
        try:
            return data.decode("utf-8-sig"), "UTF-8"
        except UnicodeDecodeError:
            pass
        # EUC-KR is a subset of CP949, so one codec reads both.
        try:
            return data.decode("cp949"), "CP949"
        except UnicodeDecodeError:
            pass
    raise InvalidName("the file is not text in UTF-8, UTF-16 or CP949/EUC-KR")


def read_accounts_csv(text: str) -> tuple[list[AccountLine | BadLine], int]:
    """(parsed lines, header line number); InvalidName when the header is wrong."""
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    columns: list[str] | None = None
    header_line = 0
    results: list[AccountLine | BadLine] = []
    for row in reader:
        if not any(field.strip() for field in row):
            continue
        if columns is None:
            columns = _header(row)
            header_line = reader.line_num
            continue
        results.append(_account_line(reader.line_num, columns, row))
    if columns is None:
        raise InvalidName(f"the file is empty (expected a header {HEADER_HINT})")
    return results, header_line


def _header(row: list[str]) -> list[str]:
    columns = [field.strip().lower() for field in row]
    unknown = [c for c in columns if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise InvalidName(
            f"bad CSV header: unknown column {unknown[0]!r} (expected {HEADER_HINT})"
        )
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise InvalidName(
            f"bad CSV header: missing column {missing[0]!r} (expected {HEADER_HINT})"
        )
    repeated = [c for c in columns if columns.count(c) > 1]
    if repeated:
        raise InvalidName(f"bad CSV header: column {repeated[0]!r} appears twice")
    return columns


def _account_line(line: int, columns: list[str], row: list[str]) -> AccountLine | BadLine:
    if len(row) != len(columns):
        return BadLine(line, f"expected {len(columns)} fields, found {len(row)}")
    values = dict(zip(columns, row, strict=True))
    # Passwords are kept exactly; other fields lose the blanks spreadsheets leave.
    fields = {key: value if key == "password" else value.strip() for key, value in values.items()}
    admin_text = fields.get("admin", "").lower()
    if admin_text in _ADMIN_YES:
        admin = True
    elif admin_text in _ADMIN_NO:
        admin = False
    else:
        return BadLine(line, f"admin column: expected ADMIN or nothing, found {fields['admin']!r}")
    quota_text = fields.get("quota", "")
    try:
        quota = parse_size(quota_text) if quota_text else 0
    except InvalidName as exc:
        return BadLine(line, f"quota column: {exc}")
    return AccountLine(
        line=line,
        domain=fields["domain"],
        name=fields["name"],
        userid=fields["userid"],
        password=fields["password"],
        admin=admin,
        quota=quota,
    )
