"""A mixed mail load on a running `nmail serve`, over its real doors, for the crash test.

Threads, each a real client: SMTP senders (port 25, one or two local
recipients a message, each message with its own Message-ID), a webmail user
per account (moves between folders, to Trash, flag changes, opening
messages, expunges from Trash: the mailbox service every door uses,
committed by the index writer), and a POP3 user deleting mail (an expunge at
QUIT). Every answered change is written to a `Ledger`; the test waits on it
for the moment to kill the server, then stops the threads, which end as soon
as their connection fails.
"""

from __future__ import annotations

import poplib
import random
import re
import smtplib
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from sqlalchemy import Engine, select

from mail_truth import Promises
from nmail.db.tables import accounts, domains, folders, messages
from serve_kill_rig import ClientThreads

Key = tuple[str, str]  # (account address, Message-ID)
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
KINDS = ("deliver", "move", "flag", "expunge")


@dataclass
class Ledger:
    """What the clients were told, shared by their threads.

    A change about to be sent makes what it touches unknown (`ask`); its answer
    makes it known again (`note`). A change the kill left unanswered stays
    unknown until a later answer: it may or may not have happened.
    """

    acked: set[Key] = field(default_factory=set)  # delivery answered 250
    maybe_gone: set[Key] = field(default_factory=set)  # an expunge was asked
    gone: set[Key] = field(default_factory=set)  # an expunge was answered
    folder: dict[Key, str] = field(default_factory=dict)  # where the last move put it
    flags: dict[tuple[Key, str], bool] = field(default_factory=dict)  # as last set
    opened: set[Key] = field(default_factory=set)  # \Seen set some time after the page
    counts: Counter[str] = field(default_factory=Counter)  # answered changes by kind
    errors: list[str] = field(default_factory=list)  # failures while the server was up
    cond: threading.Condition = field(default_factory=threading.Condition)

    def ask(self, keys: set[Key], *, moving: bool = False, flag: str = "",
            expunging: bool = False, opening: bool = False) -> None:
        with self.cond:
            for key in keys:
                if moving:
                    self.folder.pop(key, None)
                if flag or opening:
                    self.flags.pop((key, flag or "\\Seen"), None)
            if opening:
                self.opened |= keys
            if expunging:
                self.maybe_gone |= keys

    def note(self, kind: str, keys: set[Key], *, acked: bool = False, folder: str = "",
             flag: str = "", value: bool = False, gone: bool = False) -> None:
        with self.cond:
            for key in keys:
                if folder:
                    self.folder[key] = folder
                if flag and not (flag == "\\Seen" and key in self.opened):
                    self.flags[(key, flag)] = value
            if acked:
                self.acked |= keys
            if gone:
                self.gone |= keys
            self.counts[kind] += 1
            self.cond.notify_all()

    def promises(self) -> Promises:
        with self.cond:
            return Promises(frozenset(self.acked), frozenset(self.maybe_gone),
                            frozenset(self.gone), dict(self.folder), dict(self.flags))

    def fail(self, text: str) -> None:
        with self.cond:
            self.errors.append(text)
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[Counter[str]], bool], deadline: float,
                 what: str) -> None:
        """Until `predicate(counts)` holds; AssertionError at the deadline or on an error."""
        end = time.monotonic() + deadline
        with self.cond:
            while not predicate(self.counts):
                assert not self.errors, f"load failed: {self.errors[:3]}"
                left = end - time.monotonic()
                assert left > 0, f"timed out waiting for {what}; done so far: {self.counts}"
                self.cond.wait(left)


def message(mid: str, to: list[str], rng: random.Random) -> bytes:
    words = [rng.choice(("회의", "meeting", "견적서", "invoice", "crash"))
             for _ in range(rng.randint(5, 400))]
    text = "\r\n".join(" ".join(words[i:i + 12]) for i in range(0, len(words), 12))
    return (f"From: Sender <sender@remote.example>\r\nTo: {', '.join(to)}\r\n"
            f"Subject: load {mid}\r\nMessage-ID: {mid}\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n").encode()


@dataclass(frozen=True, slots=True)
class Doors:
    """Where the running server listens, and who may log in."""

    smtp: int
    pop3: int
    http: int
    web_users: tuple[str, ...]
    pop3_user: str
    password: str


class Load:
    """The clients of one round, started together; `stop()` before the kill."""

    def __init__(self, doors: Doors, engine: Engine, ledger: Ledger, seed: int,
                 senders: int = 2) -> None:
        self._clients = ClientThreads(ledger.fail, "a load thread")
        self._stopping = self._clients.stopping
        self._doors = doors
        self._engine = engine
        self._ledger = ledger
        recipients = [*doors.web_users, doors.pop3_user]
        jobs: list[Callable[[], None]] = [
            lambda n=n: send_mail(doors.smtp, ledger, self._stopping,
                                  random.Random(seed * 100 + n), f"{seed}.{n}",
                                  lambda rng: rng.sample(recipients, rng.choice((1, 1, 2))))
            for n in range(senders)
        ]
        jobs += [lambda u=u, n=n: self._web(random.Random(seed * 100 + 50 + n), u)
                 for n, u in enumerate(doors.web_users)]
        jobs.append(lambda: self._pop3(random.Random(seed * 100 + 99), doors.pop3_user))
        self._clients.start(jobs)

    def stop(self) -> None:
        """From now on a failure is the kill's doing, not an error."""
        self._clients.stop()

    def join(self) -> None:
        self._clients.join()

    # -- the webmail: moves, Trash, flags, reading, expunges (SMTP: send_mail) ----

    def _web(self, rng: random.Random, address: str) -> None:
        web = httpx.Client(base_url=f"http://127.0.0.1:{self._doors.http}",
                           headers={"Host": "mail.example.com", "Accept": "text/html"},
                           timeout=30)
        with web:
            csrf = _login(web, address, self._doors.password)
            ids = _folder_ids(self._engine, address)
            while not self._stopping.is_set():
                self._web_step(rng, web, csrf, address, ids)

    def _web_step(self, rng: random.Random, web: httpx.Client, csrf: str, address: str,
                  ids: dict[str, int]) -> None:
        listed = _listing(self._engine, ids)
        choice = rng.random()
        source = rng.choice(("INBOX", "Archive"))
        if choice < 0.15 and listed["Trash"]:
            picked = rng.sample(listed["Trash"], min(len(listed["Trash"]), rng.randint(1, 4)))
            keys = {(address, mid) for _, mid in picked}
            self._ledger.ask(keys, expunging=True)
            _act(web, csrf, ids["Trash"], "delete", [uid for uid, _ in picked])
            self._ledger.note("expunge", keys, gone=True)
            return
        if not listed[source]:
            return
        picked = rng.sample(listed[source], min(len(listed[source]), rng.randint(1, 8)))
        uids = [uid for uid, _ in picked]
        keys = {(address, mid) for _, mid in picked}
        if choice < 0.6:
            target = "Trash" if choice < 0.3 else "Archive" if source == "INBOX" else "INBOX"
            self._ledger.ask(keys, moving=True)
            if target == "Trash":
                _act(web, csrf, ids[source], "delete", uids)
            else:
                _act(web, csrf, ids[source], "move", uids, target=str(ids[target]))
            self._ledger.note("move", keys, folder=target)
        elif choice < 0.9:
            action = rng.choice(("read", "unread", "flag", "unflag"))
            flag = "\\Seen" if action in ("read", "unread") else "\\Flagged"
            self._ledger.ask(keys, flag=flag)
            _act(web, csrf, ids[source], action, uids)
            self._ledger.note("flag", keys, flag=flag, value=action in ("read", "flag"))
        else:  # opening a message sets \Seen after the page went out
            self._ledger.ask({(address, picked[0][1])}, opening=True)
            page = web.get(f"/mail/{ids[source]}/{uids[0]}",  # from the list, as a browser
                           headers={"Sec-Fetch-Site": "same-origin"})  # says (guard.py)
            assert page.status_code == 200, page.status_code

    # -- POP3: deletions at QUIT ------------------------------------------------

    def _pop3(self, rng: random.Random, address: str) -> None:
        while not self._stopping.is_set():
            pop = poplib.POP3("127.0.0.1", self._doors.pop3, timeout=30)
            pop.user(address)
            pop.pass_(self._doors.password)
            count = pop.stat()[0]
            if not count:
                pop.quit()
                continue
            numbers = rng.sample(range(1, count + 1), min(count, rng.randint(1, 3)))
            keys = set()
            for number in numbers:
                _, head, _ = pop.top(number, 0)
                mid = next(line.split(b":", 1)[1].strip().decode() for line in head
                           if line.lower().startswith(b"message-id:"))
                keys.add((address, mid))
                pop.dele(number)
            self._ledger.ask(keys, expunging=True)
            pop.quit()
            self._ledger.note("expunge", keys, gone=True)


def send_mail(port: int, ledger: Ledger, stopping: threading.Event, rng: random.Random,
              tag: str, recipients: Callable[[random.Random], list[str]]) -> None:
    """An SMTP client sending numbered messages to `recipients(rng)` until `stopping`;
    each 250 is noted as a delivery."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        n = 0
        while not stopping.is_set():
            n += 1
            mid = f"<{tag}.{n}@kill.test>"
            to = recipients(rng)
            refused = client.sendmail("sender@remote.example", to, message(mid, to, rng))
            assert refused == {}, refused
            ledger.note("deliver", {(address, mid) for address in to}, acked=True)


def _login(web: httpx.Client, address: str, password: str) -> str:
    form = web.get("/login")
    answer = web.post("/login", data={"userid": address, "password": password,
                                      "csrf_token": _csrf(form.text)})
    assert answer.status_code == 303, answer.status_code
    page = web.get("/", follow_redirects=True)
    return _csrf(page.text)


def _csrf(page: str) -> str:
    found = CSRF_FIELD.search(page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def _act(web: httpx.Client, csrf: str, folder_id: int, action: str, uids: list[int],
         **extra: str) -> None:
    answer = web.post(f"/mail/{folder_id}/actions",
                      data={"action": action, "uid": [str(u) for u in uids],
                            "csrf_token": csrf, **extra},
                      headers={"Accept": "application/json"})
    assert answer.status_code == 200, (action, answer.status_code, answer.text[:200])


def _folder_ids(engine: Engine, address: str) -> dict[str, int]:
    userid, domain = address.split("@")
    with engine.connect() as conn:
        rows = conn.execute(
            select(folders.c.name, folders.c.id)
            .join(accounts, accounts.c.id == folders.c.account_id)
            .join(domains, domains.c.id == accounts.c.domain_id)
            .where(accounts.c.userid == userid, domains.c.name == domain)).all()
    return {str(name): int(fid) for name, fid in rows}


def _listing(engine: Engine, ids: dict[str, int]) -> dict[str, list[tuple[int, str]]]:
    """(UID, Message-ID) of INBOX, Archive and Trash, as the index has them now."""
    wanted = {ids[name]: name for name in ("INBOX", "Archive", "Trash")}
    listed: dict[str, list[tuple[int, str]]] = {name: [] for name in wanted.values()}
    with engine.connect() as conn:
        for fid, uid, mid in conn.execute(
                select(messages.c.folder_id, messages.c.uid, messages.c.message_id)
                .where(messages.c.folder_id.in_(list(wanted)))):
            listed[wanted[int(fid)]].append((int(uid), "<" + str(mid).strip("<>") + ">"))
    return listed
