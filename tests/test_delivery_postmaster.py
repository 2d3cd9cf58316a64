"""postmaster and MAILER-DAEMON at our host name reach the server administrators
(policy/postmaster.py, EnvelopeChecks.resolve), on every database.

The RCPT answer and the resolution it hands on, as every front door gets them;
tests/test_smtp_relay_sweep.py drives the same through a real `nmail serve`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from nmail.config import SmtpSettings
from nmail.delivery.envelope import ClientInfo
from nmail.delivery.envelope_checks import EnvelopeChecks
from nmail.directory import Directory
from nmail.directory.cache import DirectoryCache
from nmail.directory.passwords import fast_hashing

PW = "correct-horse"
HOST = "mail.example.com"
STRANGER = ClientInfo(ip="192.0.2.7", helo="evil.test")


@pytest.fixture
def directory(engine: Engine) -> Directory:
    d = Directory(engine, passwords=fast_hashing())
    d.add_domain("example.com")
    d.add_domain("other.org")
    d.add_account("example.com", "Postmaster", "postmaster", PW, True, server_admin=True)
    d.add_account("other.org", "Root", "root", PW, server_admin=True)
    d.add_account("example.com", "Bob", "bob", PW, True)  # a domain admin only
    d.add_relay_network("198.51.100.0/24")  # the stranger is not in it, nor loopback
    return d


@pytest.fixture
def checks(directory: Directory) -> Iterator[EnvelopeChecks]:
    lookups = DirectoryCache(directory)
    yield EnvelopeChecks(lookups=lookups, settings=SmtpSettings(), usage=lambda _: 0,
                         outbound=True, srs=None, clock=time.time, host_name=HOST)
    lookups.close()


def rcpt(checks: EnvelopeChecks, address: str, *, sender: str = "someone@remote.test",
         client: ClientInfo = STRANGER) -> tuple[str, list[str], tuple[str, ...]]:
    """The RCPT reply, the mailboxes it reaches and the remote addresses it queues."""
    decision, resolution = checks.check_recipient(client, sender, address, None)
    reply = f"{decision.code} {decision.enhanced} {decision.text}"
    if resolution is None:
        return reply, [], ()
    return reply, [a.address for a in resolution.accounts], resolution.remote


ADMINS = ["postmaster@example.com", "root@other.org"]


@pytest.mark.parametrize(
    "address",
    [
        "postmaster@mail.example.com",
        "PostMaster@MAIL.Example.COM",
        "postmaster@mail.example.com.",
        '"postmaster"@mail.example.com',  # the same mailbox (RFC 5321 4.1.2)
        "MAILER-DAEMON@mail.example.com",
    ],
)
def test_postmaster_at_the_host_name_reaches_every_server_admin(
    checks: EnvelopeChecks, address: str
) -> None:
    reply, to, queued = rcpt(checks, address)
    assert reply.startswith("250") and to == ADMINS and queued == ()
    assert rcpt(checks, address, sender="")[1] == ADMINS  # a bounce too


@pytest.mark.parametrize(
    "address",
    [
        "postmaster%remote.test@mail.example.com",
        '"postmaster@remote.test"@mail.example.com',
        "remote.test!postmaster@mail.example.com",
        "postmaster+x@mail.example.com",
        "abuse@mail.example.com",
        "postmaster@remote.test",
        "postmaster@sub.mail.example.com",
        "postmaster@mail.example.com.remote.test",
        "postmaster@example.org",
    ],
)
def test_nothing_else_at_or_near_the_host_name_is_relayed(
    checks: EnvelopeChecks, address: str
) -> None:
    assert rcpt(checks, address) == ("554 5.7.1 Relay denied", [], ())


def test_a_hosted_domains_postmaster_is_the_directorys(checks: EnvelopeChecks) -> None:
    assert rcpt(checks, "postmaster@other.org")[0].startswith("550 5.1.1 Mailbox unavailable")
    assert rcpt(checks, "postmaster@example.com")[1] == ["postmaster@example.com"]


def test_a_logged_in_user_reaches_the_admins_here_not_through_the_queue(
    checks: EnvelopeChecks,
) -> None:
    bob = ClientInfo(auth_user="bob@example.com", protocol="ESMTPA")
    reply, to, queued = rcpt(checks, "postmaster@mail.example.com", client=bob,
                             sender="bob@example.com")
    assert reply.startswith("250") and to == ADMINS and queued == ()


def test_with_no_server_admin_postmaster_mail_is_refused_saying_why(
    directory: Directory, checks: EnvelopeChecks
) -> None:
    directory.delete_account("postmaster@example.com")
    assert rcpt(checks, "postmaster@mail.example.com")[1] == ["root@other.org"]
    directory.delete_account("root@other.org")
    assert rcpt(checks, "postmaster@mail.example.com") == (
        "550 5.1.1 No server administrator receives mail for <postmaster@mail.example.com>"
        " on this host", [], ())
    # The answer follows the directory (its generation), in memory or not.
    directory.add_account("other.org", "Admin", "admin", PW, server_admin=True)
    assert rcpt(checks, "postmaster@mail.example.com")[1] == ["admin@other.org"]


def test_an_admin_who_does_not_receive_is_skipped_and_alone_refuses(
    directory: Directory, checks: EnvelopeChecks
) -> None:
    directory.set_receive_enabled("root@other.org", False)
    assert rcpt(checks, "postmaster@mail.example.com")[1] == ["postmaster@example.com"]
    directory.set_receive_enabled("postmaster@example.com", False)
    reply, to, _ = rcpt(checks, "postmaster@mail.example.com")
    assert reply.startswith("550 5.2.1 Account disabled") and to == []


def test_when_the_host_name_is_a_hosted_domain_its_own_postmaster_comes_first(
    directory: Directory, checks: EnvelopeChecks
) -> None:
    directory.add_domain("mail.example.com")
    # Nothing there by that name: the server administrators, as before.
    assert rcpt(checks, "postmaster@mail.example.com")[1] == ADMINS
    assert rcpt(checks, "bob@mail.example.com")[0].startswith("550 5.1.1 Mailbox unavailable")
    directory.add_account("mail.example.com", "Host master", "postmaster", PW)
    assert rcpt(checks, "postmaster@mail.example.com")[1] == ["postmaster@mail.example.com"]
    assert rcpt(checks, "mailer-daemon@mail.example.com")[1] == ADMINS
    directory.add_alias("mailer-daemon@mail.example.com", ["ops@remote.test"])
    assert rcpt(checks, "mailer-daemon@mail.example.com")[1:] == ([], ("ops@remote.test",))


def test_answered_from_memory_as_from_the_database(checks: EnvelopeChecks) -> None:
    """The event loop's answer (SQLite only: a database server is always asked
    in a worker thread) is the worker's, once the admins are in memory."""
    checks.lookups.refresh()
    assert checks.check_recipient_now(STRANGER, "", "postmaster@mail.example.com", None) is None
    waited = checks.check_recipient(STRANGER, "", "postmaster@mail.example.com", None)
    assert waited[0].accepted
    now = checks.check_recipient_now(STRANGER, "", "postmaster@mail.example.com", None)
    assert now == (waited if checks.lookups.local else None)
