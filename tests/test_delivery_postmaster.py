"""postmaster and MAILER-DAEMON at our host name reach the server administrators,
postmaster at a hosted domain with no address of its own that domain's
administrators, else the server's (policy/postmaster.py, EnvelopeChecks.resolve),
on every database.

The RCPT answer and the resolution it hands on, as every front door gets them;
tests/test_smtp_relay_sweep.py drives the same through a real `nmail serve`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, update

from nmail.config import SmtpSettings
from nmail.db.tables import accounts
from nmail.delivery.envelope import ClientInfo
from nmail.delivery.envelope_checks import EnvelopeChecks
from nmail.directory import Directory, LastServerAdmin
from nmail.directory.cache import DirectoryCache
from nmail.directory.generation import bump_generation
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


def revoke_every_server_admin_by_hand(directory: Directory) -> None:
    """What the directory refuses (server_admins.py), as a database changed by hand
    or one from before `nmail init` is: no server administrator at all."""
    with directory.engine.begin() as conn:
        bump_generation(conn)
        conn.execute(update(accounts).values(is_server_admin=False))


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


def test_a_hosted_domains_own_postmaster_comes_first(checks: EnvelopeChecks) -> None:
    assert rcpt(checks, "postmaster@example.com")[1] == ["postmaster@example.com"]
    # other.org has no postmaster and no domain administrator: the server's.
    assert rcpt(checks, "postmaster@other.org")[1] == ADMINS


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
    with pytest.raises(LastServerAdmin):
        directory.delete_account("root@other.org")
    revoke_every_server_admin_by_hand(directory)
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


# -- postmaster at a hosted domain ------------------------------------------------------

CAROL = ["carol@shop.net"]


@pytest.fixture
def shop(directory: Directory) -> Directory:
    """shop.net (alias shop-alias.net) with a domain administrator and a user;
    bücher.example with a user only."""
    directory.add_domain("shop.net")
    directory.add_domain_alias("shop-alias.net", "shop.net")
    directory.add_account("shop.net", "Carol", "carol", PW, True)
    directory.add_account("shop.net", "Dave", "dave", PW)
    directory.add_domain("bücher.example")
    directory.add_account("bücher.example", "Me", "me", PW)
    return directory


@pytest.mark.parametrize(
    "address",
    [
        "postmaster@shop.net",
        "PostMaster@SHOP.Net",
        "postmaster@shop.net.",
        '"postmaster"@shop.net',
        "postmaster@shop\u3002net",
        "postmaster@shop-alias.net",
        "POSTMASTER@Shop-Alias.NET.",
    ],
)
def test_a_domains_postmaster_reaches_its_administrators(
    shop: Directory, checks: EnvelopeChecks, address: str
) -> None:
    reply, to, queued = rcpt(checks, address)
    assert reply.startswith("250") and to == CAROL and queued == ()
    assert rcpt(checks, address, sender="")[1] == CAROL  # a bounce too


@pytest.mark.parametrize(
    "address", ["postmaster@bücher.example", "postmaster@xn--bcher-kva.example",
                "Postmaster@BÜCHER.example."],
)
def test_a_domain_without_administrators_sends_its_postmaster_to_the_server(
    shop: Directory, checks: EnvelopeChecks, address: str
) -> None:
    reply, to, _ = rcpt(checks, address)
    assert reply.startswith("250") and to == ADMINS


@pytest.mark.parametrize(
    "address",
    [
        "postmaster+x@shop.net",
        "postmaster%remote.test@shop.net",
        '"postmaster%remote.test"@shop.net',
        '"postmaster@remote.test"@shop.net',
        "remote.test!postmaster@shop.net",
        "postmasters@shop.net",
        "post.master@shop.net",
        "mailer-daemon@shop.net",
        "abuse@shop.net",
        "postmaster+x@shop-alias.net",
    ],
)
def test_only_the_exact_postmaster_of_a_domain_reaches_its_administrators(
    shop: Directory, checks: EnvelopeChecks, address: str
) -> None:
    reply, to, queued = rcpt(checks, address)
    assert reply.startswith("550 5.1.1 Mailbox unavailable") and to == [] and queued == ()


@pytest.mark.parametrize(
    "address", ["postmaster@sub.shop.net", "postmaster@shop.net.remote.test",
                "postmaster@shop-net", "shop.net!postmaster@remote.test"],
)
def test_names_near_a_hosted_domain_are_not_relayed(
    shop: Directory, checks: EnvelopeChecks, address: str
) -> None:
    assert rcpt(checks, address) == ("554 5.7.1 Relay denied", [], ())


def test_an_explicit_postmaster_always_wins(shop: Directory, checks: EnvelopeChecks) -> None:
    shop.set_catchall("shop.net", "dave")
    assert rcpt(checks, "postmaster@shop.net")[1] == ["dave@shop.net"]
    shop.add_alias("postmaster@shop.net", ["ops@remote.test"])
    assert rcpt(checks, "postmaster@shop-alias.net")[1:] == ([], ("ops@remote.test",))
    shop.delete_alias("postmaster@shop.net")
    shop.add_account("shop.net", "Postmaster", "postmaster", PW)
    assert rcpt(checks, "postmaster@shop.net")[1] == ["postmaster@shop.net"]


def test_only_administrators_who_receive_and_then_the_server(
    shop: Directory, checks: EnvelopeChecks
) -> None:
    shop.add_account("shop.net", "Erin", "erin", PW, True)
    assert rcpt(checks, "postmaster@shop.net")[1] == ["carol@shop.net", "erin@shop.net"]
    shop.set_receive_enabled("erin@shop.net", False)
    assert rcpt(checks, "postmaster@shop.net")[1] == CAROL
    shop.set_receive_enabled("carol@shop.net", False)
    assert rcpt(checks, "postmaster@shop.net")[1] == ADMINS
    # A plain user is no administrator; the role given follows at once.
    shop.set_roles("dave@shop.net", admin=True, server_admin=False)
    assert rcpt(checks, "postmaster@shop.net")[1] == ["dave@shop.net"]


def test_with_nobody_to_receive_a_domains_postmaster_is_refused_saying_why(
    shop: Directory, checks: EnvelopeChecks
) -> None:
    shop.delete_account("carol@shop.net")
    shop.delete_account("postmaster@example.com")
    revoke_every_server_admin_by_hand(shop)
    assert rcpt(checks, "postmaster@shop-alias.net") == (
        "550 5.1.1 No server administrator receives mail for <postmaster@shop-alias.net>"
        " on this host", [], ())
    shop.set_roles("dave@shop.net", admin=False, server_admin=True)
    assert rcpt(checks, "postmaster@shop.net")[1] == ["dave@shop.net"]


def test_the_host_names_postmaster_stays_the_servers_when_it_is_hosted(
    shop: Directory, checks: EnvelopeChecks
) -> None:
    """The host name is the server's (its postmaster: RFC 5321 4.5.1), even when a
    tenant's domain has that name and administrators of its own."""
    shop.add_domain("mail.example.com")
    shop.add_account("mail.example.com", "Tenant", "tenant", PW, True)
    assert rcpt(checks, "postmaster@mail.example.com")[1] == ADMINS


def test_a_domains_postmaster_is_answered_from_memory_as_from_the_database(
    shop: Directory, checks: EnvelopeChecks
) -> None:
    for address in ("postmaster@shop.net", "postmaster@bücher.example"):
        checks.lookups.refresh()
        assert checks.check_recipient_now(STRANGER, "", address, None) is None
        waited = checks.check_recipient(STRANGER, "", address, None)
        assert waited[0].accepted
        now = checks.check_recipient_now(STRANGER, "", address, None)
        assert now == (waited if checks.lookups.local else None)
