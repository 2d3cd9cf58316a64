"""A deleted and re-created account, with `nmail serve` running: the new owner reads
only their own mail (issue 9 item 8), over SMTP and POP3."""

from __future__ import annotations

import poplib
from pathlib import Path

from nmail.accounts import AccountService, StoreMailboxes
from nmail.directory import Directory
from nmail.mailstore.store import MailStore
from server_rig import PASSWORD, RunningServer, make_data_dir


def test_the_new_owner_of_an_address_reads_only_their_own_mail(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path)
    with RunningServer(data, listeners=("smtp", "pop3")) as server:
        server.runtime.accounts.create("example.com", "Bob", "bob", PASSWORD)
        with server.smtp("smtp") as client:
            client.sendmail("a@elsewhere.example", ["bob@example.com"],
                            b"Subject: for the first owner\r\n\r\nprivate\r\n")
        # The shell deletes and re-creates bob while the server runs (its own store).
        store = MailStore(server.runtime.engine, data / "mail", "mail.example.com")
        try:
            shell = AccountService(Directory(server.runtime.engine), StoreMailboxes(store),
                                   data / "mail")
            deleted = shell.delete("bob@example.com")
            shell.create("example.com", "Bob Two", "bob", PASSWORD)
        finally:
            store.close()
        assert deleted.mail_moved_to is not None
        with server.smtp("smtp") as client:
            client.sendmail("a@elsewhere.example", ["bob@example.com"],
                            b"Subject: for the new owner\r\n\r\nhello\r\n")
        pop = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
        try:
            pop.user("bob@example.com")
            pop.pass_(PASSWORD)
            count, _ = pop.stat()
            assert count == 1
            lines = b"\n".join(pop.retr(1)[1])
            assert b"for the new owner" in lines and b"private" not in lines
        finally:
            pop.quit()
        kept = list((deleted.mail_moved_to / "Maildir" / "new").iterdir())
        assert len(kept) == 1 and b"private" in kept[0].read_bytes()
