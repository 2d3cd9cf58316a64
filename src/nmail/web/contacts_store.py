"""The webmail address book (table `contacts`): entries, groups, CSV and vCard.

Blocking SQL; the web app calls it through its facade. Import accepts the
CSV this module exports (and Outlook/Gmail-like headers with Name/E-mail
columns) and vCard 3/4 (FN, EMAIL, TEL, ORG, CATEGORIES, NOTE), bounded in
size and count so an upload cannot fill the database.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, insert, or_, select, update

from nmail.db.web_tables import contacts

MAX_CONTACTS = 5000
MAX_IMPORT = 1024 * 1024
_EMAIL = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9.\-]{1,253}\.[A-Za-z0-9\-]{2,63}$")


@dataclass(frozen=True, slots=True)
class Contact:
    id: int
    name: str
    email: str
    phone: str = ""
    company: str = ""
    groups: tuple[str, ...] = ()
    note: str = ""


class ContactError(ValueError):
    """Bad input for the address book; str() names the problem (English, translated by key)."""


def clean_groups(text: str) -> tuple[str, ...]:
    seen: list[str] = []
    for part in re.split(r"[,;]", text):
        name = " ".join(part.split())[:60]
        if name and name not in seen:
            seen.append(name)
    return tuple(seen[:10])


def check_email(email: str) -> str:
    email = email.strip()
    if not _EMAIL.match(email):
        raise ContactError("bad-email")
    return email


def _row(r: object) -> Contact:
    g = r.__getattribute__
    return Contact(int(g("id")), g("name"), g("email"), g("phone"), g("company"),
                   clean_groups(g("groups")), g("note"))


class ContactsStore:
    def __init__(self, engine: Engine, clock: Callable[[], float]) -> None:
        self._engine = engine
        self._clock = clock

    def entries(self, account_id: int, group: str = "", text: str = "") -> list[Contact]:
        query = select(contacts).where(contacts.c.account_id == account_id)
        if text:
            like = "%" + text.replace("\\", "").replace("%", "").replace("_", "")[:100] + "%"
            query = query.where(or_(contacts.c.name.like(like), contacts.c.email.like(like)))
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(contacts.c.name, contacts.c.email)
                                .limit(MAX_CONTACTS)).all()
        found = [_row(r) for r in rows]
        return [c for c in found if group in c.groups] if group else found

    def get(self, account_id: int, contact_id: int) -> Contact | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(contacts).where(
                contacts.c.account_id == account_id, contacts.c.id == contact_id)).first()
        return None if row is None else _row(row)

    def groups(self, account_id: int) -> list[str]:
        names: set[str] = set()
        for c in self.entries(account_id):
            names.update(c.groups)
        return sorted(names, key=str.casefold)

    def group_members(self, account_id: int) -> dict[str, list[tuple[str, str]]]:
        """Case-folded group name -> its members' (name, address), for sending to a group."""
        members: dict[str, list[tuple[str, str]]] = {}
        for c in self.entries(account_id):
            for group in c.groups:
                members.setdefault(group.casefold(), []).append((c.name, c.email))
        return members

    def matching_groups(self, account_id: int, text: str,
                        limit: int) -> list[tuple[str, int]]:
        """(group name, member count) of groups whose name contains `text`: completion."""
        wanted = text.strip().casefold()
        if not wanted:
            return []
        like = "%" + text.strip().replace("\\", "").replace("%", "").replace("_", "")[:60] + "%"
        with self._engine.connect() as conn:
            rows = conn.execute(select(contacts.c.groups).where(
                contacts.c.account_id == account_id,
                func.lower(contacts.c.groups).like(like.lower()))).all()
        counts: dict[str, int] = {}
        for (groups,) in rows:
            for group in clean_groups(groups):
                if wanted in group.casefold():
                    counts[group] = counts.get(group, 0) + 1
        return sorted(counts.items(), key=lambda item: item[0].casefold())[:limit]

    def save(self, account_id: int, contact: Contact) -> int:
        """Insert (id 0) or update; returns the id. ContactError for bad fields."""
        values = {
            "name": " ".join(contact.name.split())[:200],
            "email": check_email(contact.email),
            "phone": contact.phone.strip()[:64],
            "company": contact.company.strip()[:200],
            "groups": ",".join(contact.groups)[:400],
            "note": contact.note[:2000],
        }
        with self._engine.begin() as conn:
            if contact.id:
                done = conn.execute(update(contacts).where(
                    contacts.c.account_id == account_id, contacts.c.id == contact.id)
                    .values(**values)).rowcount
                if not done:
                    raise ContactError("not-found")
                return contact.id
            count = conn.execute(select(func.count()).select_from(contacts)
                                 .where(contacts.c.account_id == account_id)).scalar_one()
            if count >= MAX_CONTACTS:
                raise ContactError("too-many")
            result = conn.execute(insert(contacts).values(
                account_id=account_id, created_at=int(self._clock()), **values))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def delete(self, account_id: int, ids: list[int]) -> int:
        with self._engine.begin() as conn:
            return int(conn.execute(delete(contacts).where(
                contacts.c.account_id == account_id, contacts.c.id.in_(ids[:1000]))).rowcount or 0)

    def matching(self, account_id: int, text: str, limit: int) -> list[tuple[str, str]]:
        """(name, address) pairs whose name or address contains `text`: recipient completion."""
        return [(c.name, c.email) for c in self.entries(account_id, text=text)[:limit]]

    # -- import and export ---------------------------------------------------

    def export_csv(self, account_id: int) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["Name", "E-mail", "Phone", "Company", "Groups", "Note"])
        for c in self.entries(account_id):
            writer.writerow([_cell(v) for v in (c.name, c.email, c.phone, c.company,
                                                 ";".join(c.groups), c.note)])
        return out.getvalue()

    def export_vcard(self, account_id: int) -> str:
        cards = []
        for c in self.entries(account_id):
            lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{_vesc(c.name or c.email)}",
                     f"EMAIL;TYPE=INTERNET:{_vesc(c.email)}"]
            if c.phone:
                lines.append(f"TEL:{_vesc(c.phone)}")
            if c.company:
                lines.append(f"ORG:{_vesc(c.company)}")
            if c.groups:
                lines.append("CATEGORIES:" + ",".join(_vesc(g) for g in c.groups))
            if c.note:
                lines.append(f"NOTE:{_vesc(c.note)}")
            lines.append("END:VCARD")
            cards.append("\r\n".join(lines))
        return "\r\n".join(cards) + ("\r\n" if cards else "")

    def import_file(self, account_id: int, data: bytes) -> tuple[int, int]:
        """(added, skipped) from a CSV or vCard file; ContactError when unreadable."""
        if len(data) > MAX_IMPORT:
            raise ContactError("too-large")
        text = _decode(data)
        found = parse_vcards(text) if "BEGIN:VCARD" in text.upper() else parse_csv(text)
        existing = {c.email.lower() for c in self.entries(account_id)}
        added = skipped = 0
        for contact in found:
            try:
                if contact.email.lower() in existing:
                    raise ContactError("duplicate")
                self.save(account_id, contact)
                existing.add(contact.email.lower())
                added += 1
            except ContactError:
                skipped += 1
        return added, skipped


def _cell(value: str) -> str:
    # A cell starting with = + - @ runs as a formula in spreadsheets (CSV injection).
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _vesc(value: str) -> str:
    return (value.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")
            .replace("\r\n", "\\n").replace("\n", "\\n"))


def _decode(data: bytes) -> str:
    for codec in ("utf-8-sig", "cp949"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def parse_csv(text: str) -> list[Contact]:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]

    def col(*names: str) -> int:
        for i, h in enumerate(header):
            if h in names:
                return i
        return -1

    email_i = col("e-mail", "email", "e-mail address", "e-mail 1 - value", "메일", "이메일")
    if email_i < 0:
        raise ContactError("no-email-column")
    name_i = col("name", "이름", "display name", "full name")
    phone_i = col("phone", "전화", "mobile phone", "phone 1 - value")
    company_i = col("company", "회사", "organization 1 - name")
    groups_i = col("groups", "그룹", "categories", "group membership")
    note_i = col("note", "notes", "메모")
    out = []
    for row in rows[1:MAX_CONTACTS + 1]:
        def get(i: int, row: list[str] = row) -> str:
            value = row[i].strip() if 0 <= i < len(row) else ""
            return value[1:] if value.startswith("'") and value[1:2] in "=+-@" else value
        out.append(Contact(0, get(name_i), get(email_i), get(phone_i), get(company_i),
                           clean_groups(get(groups_i).replace(" ::: ", ";")), get(note_i)))
    return out


def parse_vcards(text: str) -> list[Contact]:
    unfolded = re.sub(r"\r?\n[ \t]", "", text)
    out: list[Contact] = []
    card: dict[str, str] = {}
    for line in unfolded.splitlines():
        key, _, value = line.partition(":")
        name = key.split(";")[0].strip().upper()
        if name == "BEGIN":
            card = {}
        elif name == "END" and card:
            out.append(Contact(0, card.get("FN", ""), card.get("EMAIL", ""), card.get("TEL", ""),
                               card.get("ORG", "").split(";")[0],
                               clean_groups(card.get("CATEGORIES", "")), card.get("NOTE", "")))
            if len(out) >= MAX_CONTACTS:
                break
        elif name in ("FN", "EMAIL", "TEL", "ORG", "CATEGORIES", "NOTE") and name not in card:
            card[name] = (value.replace("\\n", "\n").replace("\\,", ",")
                          .replace("\\;", ";").replace("\\\\", "\\"))
    return out
