"""The mailbox model against a plain model, by a hypothesis state machine.

Any sequence of deliver, append, flag, copy, move, expunge, folder create,
rename and delete, from two sessions (two MailStores, each with its own
writer, on one database), sometimes two at the same moment, must keep: UIDs
strictly increasing and never reused, HIGHESTMODSEQ never going back, every
kept count equal to the truth, and "changes since" equal to the model's
difference. Each example is a fresh account in a fresh mail directory.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine

from nmail.mailstore.model import FolderExists, NoSuchFolder
from nmail.mailstore.store import MailStore
from nmail.mailstore.uidset import UidSet
from test_mailstore_support import HOST, make_account, message

FLAGS = ("\\Seen", "\\Flagged", "\\Answered", "$Forwarded", "$Label")
NAMES = ("Work", "Work/2026", "거래처", "Old")
_accounts = itertools.count()


@dataclass
class ModelFolder:
    messages: dict[int, tuple[str, frozenset[str]]] = field(default_factory=dict)  # uid -> ...
    next_uid: int = 1
    modseq_seen: int = 0


@dataclass
class Snapshot:
    folder: str
    modseq: int
    messages: dict[int, frozenset[str]]


class MailboxMachine(RuleBasedStateMachine):
    engine: Engine

    @initialize()
    def start(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(dir="/var/tmp")
        root = Path(self.tmp.name)
        self.account = make_account(self.engine, userid=f"sm{next(_accounts)}")
        self.sessions = [MailStore(self.engine, root, HOST) for _ in range(2)]
        self.sessions[0].ensure_account(self.account)
        self.folders: dict[str, ModelFolder] = {"INBOX": ModelFolder(), "Archive": ModelFolder()}
        self.snapshots: list[Snapshot] = []
        self.serial = itertools.count()

    def teardown(self) -> None:
        for s in getattr(self, "sessions", []):
            s.close()
        if hasattr(self, "tmp"):
            self.tmp.cleanup()

    # -- helpers ---------------------------------------------------------------------

    def _view(self, session: int, folder: str):  # type: ignore[no-untyped-def]
        return self.sessions[session].open_folder(self.account.id, folder)

    def _uids(self, folder: str, picks: list[int]) -> list[int]:
        existing = sorted(self.folders[folder].messages)
        return sorted({existing[p % len(existing)] for p in picks}) if existing else []

    def _new_uid(self, folder: str, uid: int) -> None:
        model = self.folders[folder]
        assert uid == model.next_uid, (folder, uid, model.next_uid)  # never reused, no gaps
        model.next_uid = uid + 1

    # -- rules -----------------------------------------------------------------------

    @rule(session=st.integers(0, 1), folder=st.sampled_from(("INBOX", "Archive")),
          count=st.integers(1, 3))
    def deliver(self, session: int, folder: str, count: int) -> None:
        from nmail.mailstore.model import NewMessage

        subjects = [f"m{next(self.serial)}" for _ in range(count)]
        stored = self.sessions[session].store([
            NewMessage(self.account, folder, b"", message(s)) for s in subjects])
        for s, subject in zip(stored, subjects, strict=True):
            self._new_uid(folder, s.uid)
            self.folders[folder].messages[s.uid] = (subject, frozenset())

    @rule(session=st.integers(0, 1), flags=st.sets(st.sampled_from(FLAGS), max_size=2))
    def append(self, session: int, flags: set[str]) -> None:
        target = next(n for n in self.folders if n != "INBOX")
        subject = f"a{next(self.serial)}"
        result = self.sessions[session].append(self.account, target, message(subject),
                                                flags=flags, internal_date=1_700_000_000)
        self._new_uid(target, result.uid)
        self.folders[target].messages[result.uid] = (subject, frozenset(flags))

    @rule(session=st.integers(0, 1), folder=st.sampled_from(("INBOX", "Archive")),
          picks=st.lists(st.integers(0, 50), min_size=1, max_size=4),
          mode=st.sampled_from(("set", "add", "remove")),
          flags=st.sets(st.sampled_from(FLAGS), max_size=3))
    def flag(self, session: int, folder: str, picks: list[int], mode: str,
             flags: set[str]) -> None:
        uids = self._uids(folder, picks)
        if not uids:
            return
        result = self._view(session, folder).store_flags(UidSet.of(uids), mode, flags)  # type: ignore[arg-type]
        model = self.folders[folder].messages
        changed = []
        for uid in uids:
            subject, old = model[uid]
            new = frozenset(flags) if mode == "set" else (
                old | flags if mode == "add" else old - flags)
            if new != old:
                changed.append(uid)
            model[uid] = (subject, new)
        assert [uid for uid, _ in result.changed] == changed
        assert len({m for _, m in result.changed}) <= 1

    @rule(session=st.integers(0, 1), move=st.booleans(),
          picks=st.lists(st.integers(0, 50), min_size=1, max_size=4), data=st.data())
    def transfer(self, session: int, move: bool, picks: list[int], data: st.DataObject) -> None:
        names = sorted(self.folders)
        source = data.draw(st.sampled_from(names))
        target = data.draw(st.sampled_from([n for n in names if n != source]))
        uids = self._uids(source, picks)
        if not uids:
            return
        view = self._view(session, source)
        result = view.move(UidSet.of(uids), target) if move else view.copy(UidSet.of(uids), target)
        assert [old for old, _ in result.pairs] == uids
        for old, new in result.pairs:
            self._new_uid(target, new)
            self.folders[target].messages[new] = self.folders[source].messages[old]
            if move:
                del self.folders[source].messages[old]

    @rule(session=st.integers(0, 1), folder=st.sampled_from(("INBOX", "Archive")),
          picks=st.lists(st.integers(0, 50), min_size=1, max_size=3))
    def expunge(self, session: int, folder: str, picks: list[int]) -> None:
        uids = self._uids(folder, picks)
        if not uids:
            return
        assert self._view(session, folder).expunge(UidSet.of(uids)) == tuple(uids)
        for uid in uids:
            del self.folders[folder].messages[uid]

    @rule(name=st.sampled_from(NAMES))
    def create(self, name: str) -> None:
        try:
            self.sessions[1].create_folder(self.account.id, name)
        except FolderExists:
            assert name in self.folders
            return
        assert name not in self.folders
        for level in range(1, name.count("/") + 2):
            self.folders.setdefault("/".join(name.split("/")[:level]), ModelFolder())

    @rule(old=st.sampled_from(NAMES), new=st.sampled_from(("Renamed", "Work/Inner", "Old")))
    def rename(self, old: str, new: str) -> None:
        try:
            self.sessions[0].rename_folder(self.account.id, old, new)
        except (NoSuchFolder, FolderExists, Exception) as exc:
            assert old not in self.folders or new in self.folders or \
                new.startswith(old + "/") or old == new, exc
            return
        moving = [n for n in self.folders if n == old or n.startswith(old + "/")]
        for name in moving:
            self.folders[new + name[len(old):]] = self.folders.pop(name)
        for level in range(1, new.count("/") + 1):
            self.folders.setdefault("/".join(new.split("/")[:level]), ModelFolder())
        self.snapshots = [s for s in self.snapshots if s.folder in self.folders]

    @precondition(lambda self: any(n not in ("INBOX", "Archive") for n in self.folders))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(n for n in self.folders
                                                if n not in ("INBOX", "Archive"))))
        self.sessions[1].delete_folder(self.account.id, name, force=True)
        for gone in [n for n in self.folders if n == name or n.startswith(name + "/")]:
            del self.folders[gone]
        self.snapshots = [s for s in self.snapshots if s.folder in self.folders]

    @rule(picks=st.lists(st.integers(0, 50), min_size=1, max_size=3))
    def at_once(self, picks: list[int]) -> None:
        """Session 0 flags INBOX while session 1 delivers to it, at the same moment."""
        uids = self._uids("INBOX", picks)
        stored: list[int] = []
        errors: list[BaseException] = []

        def deliver() -> None:
            from nmail.mailstore.model import NewMessage

            try:
                out = self.sessions[1].store([NewMessage(self.account, "INBOX", b"",
                                                         message("together"))])
                stored.extend(s.uid for s in out)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=deliver)
        thread.start()
        if uids:
            self._view(0, "INBOX").store_flags(UidSet.of(uids), "add", ["\\Seen"])
        thread.join()
        assert not errors
        for uid in uids:
            subject, old = self.folders["INBOX"].messages[uid]
            self.folders["INBOX"].messages[uid] = (subject, old | {"\\Seen"})
        for uid in stored:
            self._new_uid("INBOX", uid)
            self.folders["INBOX"].messages[uid] = ("together", frozenset())

    @rule(folder=st.sampled_from(("INBOX", "Archive")))
    def snapshot(self, folder: str) -> None:
        info = self._view(0, folder).info
        self.snapshots.append(Snapshot(folder, info.highest_modseq, {
            uid: flags for uid, (_, flags) in self.folders[folder].messages.items()}))

    # -- what must always hold ----------------------------------------------------------

    @invariant()
    def index_equals_model(self) -> None:
        if not hasattr(self, "sessions"):
            return
        infos = {f.name: f for f in self.sessions[1].list_folders(self.account.id)}
        model_names = set(self.folders) | {"Sent", "Drafts", "Trash", "Spam"}
        assert set(infos) == model_names
        for name, model in self.folders.items():
            info = infos[name]
            assert info.highest_modseq >= model.modseq_seen
            model.modseq_seen = info.highest_modseq
            assert info.next_uid == model.next_uid
            assert info.message_count == len(model.messages)
            assert info.unseen_count == sum(1 for _, f in model.messages.values()
                                            if "\\Seen" not in f)
            if model.messages:
                view = self._view(0, name)
                rows = view.summaries(view.uid_set("1:*"))
                assert {r.uid: (r.subject, r.flags) for r in rows} == model.messages
                assert info.total_size == sum(r.size for r in rows)

    @invariant()
    def changes_since_equal_the_difference(self) -> None:
        for snap in getattr(self, "snapshots", [])[-3:]:
            now = {uid: flags for uid, (_, flags) in self.folders[snap.folder].messages.items()}
            changes = self._view(1, snap.folder).changes_since(snap.modseq)
            assert set(changes.new) == set(now) - set(snap.messages)
            # Vanished: every UID that went, and perhaps some that came and went
            # after the snapshot (QRESYNC allows that), never one still there.
            assert set(snap.messages) - set(now) <= set(changes.vanished)
            assert not set(changes.vanished) & set(now)
            assert all(uid < self.folders[snap.folder].next_uid for uid in changes.vanished)
            reported = {uid: flags for uid, _, flags in changes.changed}
            really = {uid for uid in now if uid in snap.messages and now[uid] != snap.messages[uid]}
            assert really <= set(reported) <= set(now) & set(snap.messages)
            assert all(now[uid] == flags for uid, flags in reported.items())


@pytest.mark.timeout(900)
def test_the_mailbox_model_matches_a_plain_model(engine: Engine) -> None:
    MailboxMachine.engine = engine
    examples = int(os.environ.get("NMAIL_STATE_EXAMPLES", "10" if engine.dialect.name ==
                                  "sqlite" else "3"))
    run_state_machine_as_test(MailboxMachine, settings=settings(
        max_examples=examples, stateful_step_count=20, deadline=None,
        suppress_health_check=list(HealthCheck)))
