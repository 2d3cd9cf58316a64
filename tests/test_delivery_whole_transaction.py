"""End of data either stores every copy or none: no local copies behind a refusal."""

from __future__ import annotations

from pathlib import Path

from nmail.delivery.envelope import ClientInfo, Envelope
from nmail.directory.model import Resolution
from server_rig import RunningServer, make_data_dir

MESSAGE = b"From: bob@test.local\r\nTo: carol@test.local\r\nSubject: both\r\n\r\nhi\r\n"


def _resolve(srv: RunningServer, client: ClientInfo, address: str) -> Resolution:
    decision, resolution = srv.runtime.intake.check_recipient(
        client, "bob@test.local", address, None
    )
    assert decision.accepted and resolution is not None
    return resolution


def test_an_envelope_the_queue_refuses_stores_no_local_copy(tmp_path: Path) -> None:
    with RunningServer(make_data_dir(tmp_path), listeners=("smtp",)) as srv:
        srv.add_user("bob@test.local")
        srv.add_user("carol@test.local")
        client = ClientInfo(auth_user="bob@test.local", protocol="ESMTPA")
        rcpts = (
            _resolve(srv, client, "carol@test.local"),
            _resolve(srv, client, "friend@remote.example"),
        )
        # A door that skipped the SMTP parser's check (ENVID with CR LF).
        bad = Envelope("bob@test.local", rcpts, client, dsn_envid="id\r\nX-Injected: 1")
        for _ in range(3):  # a client retrying must not pile up copies
            decision = srv.runtime.intake.accept(bad, MESSAGE)
            assert decision.code == 554 and decision.enhanced == "5.5.4"
        inbox = srv.maildir("carol@test.local")
        assert list((inbox / "new").iterdir()) == []
        assert srv.runtime.queue.list_entries() == []

        good = Envelope("bob@test.local", rcpts, client, dsn_envid="id-1")
        assert srv.runtime.intake.accept(good, MESSAGE).code == 250
        assert len(list((inbox / "new").iterdir())) == 1
        assert len(srv.runtime.queue.list_entries()) == 1


def test_a_recipient_every_mailbox_takes_gets_its_resolution_as_resolved(tmp_path: Path) -> None:
    """RCPT hands on the directory's own Resolution when no mailbox refused (not
    an equal copy): the same fields as the copy it used to build."""
    with RunningServer(make_data_dir(tmp_path), listeners=("smtp",)) as srv:
        srv.add_user("carol@test.local")
        intake = srv.runtime.intake
        client = ClientInfo(protocol="ESMTP")
        decision, kept = intake.check_recipient(client, "bob@example.org", "carol@test.local", None)
        resolved = intake.lookups.resolve("carol@test.local")
        assert decision.accepted and kept is not None
        assert kept == Resolution(resolved.address, True, tuple(resolved.accounts), resolved.remote)
        assert kept.accounts and kept.hosted and not kept.remote
