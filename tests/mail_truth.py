"""The mail store's truth, read from the disk and the index, and what must hold between them.

After a crash and the restart's repair, the files are the truth and the index
must say exactly what they say: one row per file (same name and UID), each
message in one folder once, the folder counters equal to the rows, and the
numbers IMAP clients keep (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) never going
back, nor a UID naming another message than it did. `Truth.problems` lists
every breach in words, so a failing crash test says what went wrong where.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from nmail.db.tables import folders, messages, search_folders
from nmail.mailstore.folder_names import name_from_disk
from nmail.mailstore.layout import disk_folder_names, folder_dir, read_uid_state
from nmail.mailstore.mailboxes import Mailbox, all_mailboxes
from nmail.mailstore.names import SEEN_BIT, parse_disk_name

Key = tuple[str, str]  # (account address, Message-ID)


@dataclass(frozen=True, slots=True)
class Promises:
    """What clients were told (see serve_kill_load.Ledger)."""

    acked: frozenset[Key]  # delivered (250): there once, unless in maybe_gone
    maybe_gone: frozenset[Key]  # an expunge was asked
    gone: frozenset[Key]  # an expunge was answered: stays gone
    folder: dict[Key, str]  # the folder an answered move put it in
    flags: dict[tuple[Key, str], bool]  # \Seen, \Flagged as an answered change set them


@dataclass(frozen=True, slots=True)
class DiskMessage:
    folder: str
    filename: str  # the name before ':' (messages.filename)
    uid: int | None
    size: int  # bytes in the file
    named_size: int | None  # S= in the name
    letters: str  # flag letters ("" in new/)
    message_id: str

    @property
    def seen(self) -> bool:
        return "S" in self.letters


@dataclass(frozen=True, slots=True)
class FolderMark:
    """The numbers of a folder a client may have seen: they never go back."""

    uidvalidity: int
    next_uid: int
    highest_modseq: int


def _message_id(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(64 * 1024).split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode("ascii", "replace")
    return ""


def disk_messages(maildir: Path) -> list[DiskMessage]:
    """Every message file of the account's folders (new/ and cur/)."""
    found = []
    for name in disk_folder_names(maildir):
        directory = folder_dir(maildir, name)
        for sub in ("new", "cur"):
            for entry in os.listdir(directory / sub):
                path = directory / sub / entry
                parsed = parse_disk_name(entry)
                found.append(DiskMessage(
                    name, parsed.filename, parsed.uid, path.stat().st_size, parsed.size,
                    parsed.letters if sub == "cur" else "", _message_id(path)))
    return found


def folder_marks(engine: Engine) -> dict[tuple[int, str], FolderMark]:
    """(account id, folder name) -> its committed UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ."""
    with engine.connect() as conn:
        rows = conn.execute(select(folders.c.account_id, folders.c.name, folders.c.uidvalidity,
                                   folders.c.next_uid, folders.c.highest_modseq)).all()
    return {(int(r[0]), str(r[1])): FolderMark(int(r[2]), int(r[3]), int(r[4])) for r in rows}


def search_caught_up(engine: Engine) -> bool:
    """Whether the search follower has read every folder up to its HIGHESTMODSEQ."""
    indexed = func.coalesce(search_folders.c.indexed_modseq, -1)
    with engine.connect() as conn:
        behind = conn.execute(
            select(func.count()).select_from(folders.outerjoin(
                search_folders, search_folders.c.folder_id == folders.c.id))
            .where(indexed < folders.c.highest_modseq)).scalar_one()
    return int(behind) == 0


def index_snapshot(engine: Engine) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Every folder row and message row, sorted: equal before and after a dbsync that
    found nothing to fix."""
    with engine.connect() as conn:
        folder_rows = conn.execute(select(
            folders.c.id, folders.c.account_id, folders.c.name, folders.c.uidvalidity,
            folders.c.next_uid, folders.c.highest_modseq, folders.c.message_count,
            folders.c.unseen_count, folders.c.total_size).order_by(folders.c.id)).all()
        message_rows = conn.execute(select(
            messages.c.folder_id, messages.c.uid, messages.c.filename, messages.c.in_new,
            messages.c.flags, messages.c.sysflags, messages.c.size, messages.c.modseq,
        ).order_by(messages.c.folder_id, messages.c.uid)).all()
    return [tuple(r) for r in folder_rows], [tuple(r) for r in message_rows]


@dataclass(slots=True)
class Truth:
    """What a crash test knows across its rounds, and the check after each restart."""

    mail_dir: Path
    # Folders that hold copies (a message there is also elsewhere): left out of
    # "in one folder once"; the test counts them itself.
    copy_folders: frozenset[str] = frozenset()
    # UID -> Message-ID once seen, per (address, folder, UIDVALIDITY): a UID never
    # names another message.
    uid_names: dict[tuple[str, str, int, int], str] = field(default_factory=dict)
    # UIDVALIDITY of each folder the first time it was seen.
    uidvalidity: dict[tuple[int, str], int] = field(default_factory=dict)

    def problems(self, engine: Engine, promises: Promises,
                 marks: dict[tuple[int, str], FolderMark]) -> list[str]:
        """Every way the store breaks `promises` or its own rules, in words (empty:
        all is well). `marks`: the folders' numbers at the crash (none may be
        lower now)."""
        with engine.connect() as conn:
            boxes = all_mailboxes(conn)
        found: list[str] = []
        for box in boxes:
            found += self._account(engine, box, promises, marks)
        return found

    def _account(self, engine: Engine, box: Mailbox, promises: Promises,
                 marks: dict[tuple[int, str], FolderMark]) -> list[str]:
        who = box.address
        maildir = box.maildir(self.mail_dir)
        disk = disk_messages(maildir)
        with engine.connect() as conn:
            folder_rows = {str(r.name): r for r in conn.execute(
                select(folders).where(folders.c.account_id == box.account_id))}
            rows = conn.execute(
                select(folders.c.name, messages.c.uid, messages.c.filename, messages.c.size,
                       messages.c.sysflags, messages.c.in_new, messages.c.modseq,
                       messages.c.flags)
                .join(folders, folders.c.id == messages.c.folder_id)
                .where(folders.c.account_id == box.account_id)).all()
        out: list[str] = []
        once = [m for m in disk if m.folder not in self.copy_folders]
        copies = Counter(m.message_id for m in once)
        for mid, n in copies.items():
            if n > 1:
                where = sorted(m.folder for m in once if m.message_id == mid)
                out.append(f"{who}: {mid} is there {n} times ({', '.join(where)})")
        present = {(who, m.message_id) for m in once}
        for key in sorted(k for k in promises.acked if k[0] == who):
            if key not in present and key not in promises.maybe_gone:
                out.append(f"{who}: acknowledged {key[1]} is missing")
        for key in sorted(k for k in promises.gone if k[0] == who):
            if key in present:
                out.append(f"{who}: expunged {key[1]} came back")
        out += _moves_and_flags(who, disk, rows, promises)
        folder_entries = {folder_dir(maildir, name).name for name in disk_folder_names(maildir)}
        for entry in sorted(os.listdir(maildir)):
            if entry.startswith("nmail-deleted-"):
                out.append(f"{who}: {entry} left behind")
            elif name_from_disk(entry) is not None and entry not in folder_entries:
                out.append(f"{who}: {entry} is a folder directory without cur/ and new/")
        on_disk = {(m.folder, m.filename, m.uid) for m in disk}
        indexed = {(str(r.name), str(r.filename), int(r.uid)) for r in rows}
        for item in sorted(on_disk - indexed, key=str):
            out.append(f"{who}: file {item} has no row")
        for item in sorted(indexed - on_disk, key=str):
            out.append(f"{who}: row {item} has no file")
        for m in disk:
            if m.named_size != m.size:
                out.append(f"{who}: {m.folder}/{m.filename} holds {m.size} bytes")
        for name in sorted(set(folder_rows) | {m.folder for m in disk}):
            out += self._folder(box, name, folder_rows.get(name),
                                [m for m in disk if m.folder == name],
                                [r for r in rows if r.name == name], marks)
        return out

    def _folder(self, box: Mailbox, name: str, folder: object, disk: list[DiskMessage],
                rows: list[object], marks: dict[tuple[int, str], FolderMark]) -> list[str]:
        where = f"{box.address} {name}"
        if folder is None:
            return [f"{where}: a directory without a folder row"]
        if not folder_dir(box.maildir(self.mail_dir), name).is_dir():
            return [f"{where}: a folder row without a directory"]
        f = folder  # a Row
        out: list[str] = []
        unseen = sum(1 for r in rows if not int(r.sysflags) & SEEN_BIT)  # type: ignore[attr-defined]
        truth = (len(disk), sum(1 for m in disk if not m.seen), sum(m.size for m in disk))
        kept = (int(f.message_count), int(f.unseen_count), int(f.total_size))  # type: ignore[attr-defined]
        if kept != truth:
            out.append(f"{where}: counts (messages, unseen, size) {kept}, files say {truth}")
        if unseen != truth[1]:
            out.append(f"{where}: {unseen} rows unseen, file names say {truth[1]}")
        uids = [m.uid for m in disk if m.uid is not None]
        next_uid, modseq = int(f.next_uid), int(f.highest_modseq)  # type: ignore[attr-defined]
        if uids and next_uid <= max(uids):
            out.append(f"{where}: UIDNEXT {next_uid} is not above UID {max(uids)}")
        top_modseq = max((int(r.modseq) for r in rows), default=0)  # type: ignore[attr-defined]
        if modseq < top_modseq:
            out.append(f"{where}: HIGHESTMODSEQ {modseq} below a row's {top_modseq}")
        validity = int(f.uidvalidity)  # type: ignore[attr-defined]
        state = read_uid_state(folder_dir(box.maildir(self.mail_dir), name))
        if state is None or state.uidvalidity != validity:
            out.append(f"{where}: nmail-uidvalidity says {state}, the index {validity}")
        elif state.next_uid > next_uid:
            out.append(f"{where}: nmail-uidvalidity's next UID {state.next_uid} > {next_uid}")
        first = self.uidvalidity.setdefault((box.account_id, name), validity)
        if first != validity:
            out.append(f"{where}: UIDVALIDITY changed from {first} to {validity}")
        mark = marks.get((box.account_id, name))
        if mark is not None and (next_uid < mark.next_uid or modseq < mark.highest_modseq):
            out.append(f"{where}: UIDNEXT/HIGHESTMODSEQ went back from "
                       f"{mark.next_uid}/{mark.highest_modseq} to {next_uid}/{modseq}")
        for m in disk:
            if m.uid is None:
                continue
            key = (box.address, name, validity, m.uid)
            before = self.uid_names.setdefault(key, m.message_id)
            if before != m.message_id:
                out.append(f"{where}: UID {m.uid} was {before}, now {m.message_id}")
        return out


def _moves_and_flags(who: str, disk: list[DiskMessage], rows: list[Any],
                     promises: Promises) -> list[str]:
    """Answered moves and flag changes survived: in the file's folder and name, and
    in its row."""
    out = []
    flags_of = {(str(r.name), str(r.filename)): str(r.flags).split() for r in rows}
    for m in disk:
        key = (who, m.message_id)
        wanted = promises.folder.get(key)
        if wanted is not None and wanted != m.folder:
            out.append(f"{who}: {m.message_id} is in {m.folder}, moved to {wanted}")
        for flag, letter in (("\\Seen", "S"), ("\\Flagged", "F")):
            value = promises.flags.get((key, flag))
            if value is None:
                continue
            if (letter in m.letters) != value:
                out.append(f"{who}: {m.message_id}'s file says {flag} {not value}, "
                           f"an answered change set {value}")
            if (flag in flags_of.get((m.folder, m.filename), ())) != value:
                out.append(f"{who}: {m.message_id}'s row says {flag} {not value}, "
                           f"an answered change set {value}")
    return out
