"""The pure policy decisions, with their exact reply texts."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nmail.policy import limits, loops, postmaster, recipients, rejects, relay, senders
from nmail.policy.decision import ACCEPT, Decision


def text(d: Decision) -> str:
    return f"{d.code} {d.enhanced} {d.text}"


# -- recipients --------------------------------------------------------------------


def test_unknown_user_and_disabled_account_texts() -> None:
    assert text(recipients.unknown_user("u@d.example")) == (
        "550 5.1.1 Mailbox unavailable <u@d.example>"
    )
    assert text(recipients.account_disabled("u@d.example")) == (
        "550 5.2.1 Account disabled <u@d.example>"
    )


@pytest.mark.parametrize(
    ("usage", "quota", "hint", "accepted"),
    [
        (0, 0, 10**12, True),  # 0 = unlimited
        (900, 1000, 100, True),  # exactly full is still within
        (900, 1000, 101, False),
        (1001, 1000, None, False),
        (1000, 1000, None, True),
        (0, 1000, None, True),
    ],
)
def test_quota(usage: int, quota: int, hint: int | None, accepted: bool) -> None:
    decision = recipients.check_quota("u@d.example", usage, quota, hint)
    assert decision.accepted is accepted
    if not accepted:
        assert text(decision) == (
            "552 5.2.2 Requested mail action aborted: exceeded storage allocation - <u@d.example>"
        )


def test_check_account_order_of_refusals() -> None:
    def check(receive_enabled: bool, sender_rejected: bool) -> Decision:
        return recipients.check_account(
            address="u@d.example",
            receive_enabled=receive_enabled,
            sender_rejected=sender_rejected,
            usage=0,
            quota=0,
            size_hint=None,
        )

    assert check(True, False) == ACCEPT
    assert check(False, True).enhanced == "5.2.1"
    spam = check(True, True)
    assert text(spam) == "550 5.7.1 You are registered as spammer (by user's reject list)"
    full = recipients.check_account(
        address="u@d.example",
        receive_enabled=True,
        sender_rejected=False,
        usage=10,
        quota=10,
        size_hint=1,
    )
    assert full.code == 552 and full.enhanced == "5.2.2"


# -- reject lists ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "entries", "listed"),
    [
        ("spam@bad.example", ["spam@bad.example"], True),
        ("SPAM@Bad.Example", ["spam@bad.example"], True),
        ("ham@bad.example", ["spam@bad.example"], False),
        ("anyone@bad.example", ["bad.example"], True),
        ("anyone@bad.example", ["@bad.example"], True),
        ("anyone@sub.bad.example", ["bad.example"], False),
        ("anyone@sub.bad.example", ["*@*.bad.example"], True),
        ("news123@x.example", ["news*@x.example"], True),
        ("", ["*"], False),  # the null sender is never on a list
        ("a@b.example", ["", "  "], False),
        ("no-at-sign", ["no-at-sign"], False),
    ],
)
def test_reject_list_matching(sender: str, entries: list[str], listed: bool) -> None:
    assert rejects.sender_matches(sender, entries) is listed


# -- relay ---------------------------------------------------------------------------


def test_relay_defaults_to_loopback_when_nothing_is_listed() -> None:
    for ip in ("127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"):
        assert relay.check_relay(client_ip=ip, authenticated=False, relay_networks=()) == ACCEPT
    denied = relay.check_relay(client_ip="192.0.2.9", authenticated=False, relay_networks=())
    assert text(denied) == "554 5.7.1 Relay denied"


def test_relay_networks_listed_by_the_admin_replace_the_default() -> None:
    nets = ("10.0.0.0/8", ipaddress.ip_network("2001:db8::/32"))
    assert relay.check_relay(client_ip="10.1.2.3", authenticated=False, relay_networks=nets)
    assert relay.check_relay(client_ip="2001:db8::5", authenticated=False, relay_networks=nets)
    assert not relay.check_relay(
        client_ip="127.0.0.1", authenticated=False, relay_networks=nets
    ).accepted
    assert not relay.check_relay(
        client_ip="172.16.0.1", authenticated=False, relay_networks=nets
    ).accepted


def test_authenticated_users_may_relay_from_anywhere() -> None:
    assert (
        relay.check_relay(client_ip="198.51.100.7", authenticated=True, relay_networks=()) == ACCEPT
    )


def test_bad_client_addresses_are_not_in_any_network() -> None:
    assert not relay.ip_in_networks("not-an-ip", relay.DEFAULT_RELAY_NETWORKS)
    assert not relay.ip_in_networks("", ["0.0.0.0/0"])
    assert relay.ip_in_networks("fe80::1%eth0", ["fe80::/10"])
    with pytest.raises(ValueError):
        relay.parse_networks(["10.0.0.0/33"])


# -- postmaster at our host name -----------------------------------------------------


HOST = "mail.example.com"


@pytest.mark.parametrize(
    "address",
    ["postmaster@mail.example.com", "mailer-daemon@mail.example.com"],
)
def test_postmaster_and_mailer_daemon_at_the_host_name_are_ours(address: str) -> None:
    assert postmaster.is_host_mailbox(address, HOST)


@pytest.mark.parametrize(
    "address",
    [
        "postmaster@example.com",  # a hosted domain's own postmaster: the directory's
        "postmaster@remote.test",
        "postmaster@sub.mail.example.com",
        "postmaster@mail.example.com.remote.test",
        "postmaster@mail.example.com@remote.test",
        "postmaster%remote.test@mail.example.com",
        '"postmaster@remote.test"@mail.example.com',
        "remote.test!postmaster@mail.example.com",
        "postmaster+x@mail.example.com",
        "post.master@mail.example.com",
        "root@mail.example.com",
        "abuse@mail.example.com",
        "postmaster@[127.0.0.1]",
        "postmaster",
        "@mail.example.com",
        "",
        # Not in normal form: the caller normalizes first (EnvelopeChecks.resolve).
        "PostMaster@mail.example.com",
        "postmaster@mail.example.com.",
    ],
)
def test_nothing_else_is_a_host_mailbox(address: str) -> None:
    assert not postmaster.is_host_mailbox(address, HOST)


def test_without_a_host_name_nothing_is_a_host_mailbox() -> None:
    assert not postmaster.is_host_mailbox("postmaster@", "")


def test_postmaster_mail_with_no_administrator_is_refused_saying_why() -> None:
    refused = postmaster.no_administrator("postmaster@mail.example.com")
    assert text(refused) == (
        "550 5.1.1 No server administrator receives mail for <postmaster@mail.example.com>"
        " on this host"
    )


@pytest.mark.parametrize("address", ["postmaster@shop.net", "postmaster@xn--bcher-kva.test"])
def test_postmaster_at_any_domain_is_a_domain_postmaster(address: str) -> None:
    assert postmaster.is_domain_postmaster(address)


@pytest.mark.parametrize(
    "address",
    [
        "postmaster+x@shop.net",
        "postmaster%remote.test@shop.net",
        "postmaster@remote.test@shop.net",
        "remote.test!postmaster@shop.net",
        "postmasters@shop.net",
        "post.master@shop.net",
        "mailer-daemon@shop.net",  # MAILER-DAEMON is the host name's only
        "postmaster",
        "postmaster@",
        "",
        "PostMaster@shop.net",  # not in normal form: the caller normalizes first
    ],
)
def test_nothing_else_is_a_domain_postmaster(address: str) -> None:
    assert not postmaster.is_domain_postmaster(address)


@dataclass(frozen=True)
class Admin:
    name: str
    receive_enabled: bool = True


def test_a_domains_postmaster_goes_to_its_receiving_administrators_else_the_servers() -> None:
    carol, erin, root = Admin("carol"), Admin("erin", receive_enabled=False), Admin("root")
    assert postmaster.domain_administrators([carol, erin], [root]) == (carol,)
    assert postmaster.domain_administrators([erin], [root]) == (root,)
    assert postmaster.domain_administrators([], [root]) == (root,)
    assert postmaster.domain_administrators([erin], []) == ()


# -- senders -------------------------------------------------------------------------


def test_sender_must_be_owned_by_the_authenticated_user() -> None:
    owned = {"bob@test.local", "b.smith@test.local"}
    assert senders.check_sender_owned("bob@test.local", owned) == ACCEPT
    assert senders.check_sender_owned("B.Smith@Test.Local", owned) == ACCEPT
    assert senders.check_sender_owned("", owned) == ACCEPT
    refused = senders.check_sender_owned("alice@test.local", owned)
    assert text(refused) == (
        "553 5.7.1 Sender address rejected: not owned by user <alice@test.local>"
    )
    assert not senders.check_sender_owned("bob@test.local", set()).accepted


# -- limits --------------------------------------------------------------------------


def test_size_and_recipient_limits() -> None:
    assert limits.check_size(100, 100) == ACCEPT
    assert text(limits.check_size(101, 100)) == "552 5.3.4 Message size exceeds the server limit"
    assert limits.check_size(10**12, 0) == ACCEPT
    assert limits.check_recipient_count(99, 100) == ACCEPT
    assert text(limits.check_recipient_count(100, 100)) == "452 4.5.3 Too many recipients"


# -- loops ---------------------------------------------------------------------------


def received(n: int) -> bytes:
    return b"".join(
        b"Received: from h%d by mx; Tue, 1 Jan 2030 00:00:00 +0000\r\n" % i for i in range(n)
    )


def test_hop_limit() -> None:
    assert loops.check_hops(30) == ACCEPT
    assert text(loops.check_hops(31)) == "554 5.4.6 Mail loop detected"
    assert loops.check_hops(5, max_hops=4).code == 554


def test_count_received_looks_only_at_the_header_section() -> None:
    body_with_quotes = b"Received: in the body does not count\r\n" * 50
    message = received(3) + b"Subject: x\r\n\r\n" + body_with_quotes
    assert loops.count_received(message) == 3


def test_count_received_case_folding_and_layout() -> None:
    message = (
        b"RECEIVED: from a\r\nreceived : from b\r\n"
        b"X-Received: not this one\r\nSubject: received: not this either\r\n"
        b"Received: from c\r\n\tcontinued\r\n\r\nbody"
    )
    assert loops.count_received(message) == 3
    assert loops.count_received(b"Received: from a\nReceived: from b\n\nReceived: x\n") == 2
    assert loops.count_received(b"\r\nReceived: only body\r\n") == 0
    assert loops.count_received(b"") == 0
    assert loops.count_received(received(2)) == 2  # no body at all


def test_header_section_ends_at_the_first_blank_line_of_either_kind() -> None:
    assert loops.header_section(b"A: 1\r\n\r\nB: 2\n\nC: 3\r\n") == b"A: 1"
    assert loops.header_section(b"A: 1\n\nB: 2\r\n\r\nC: 3\r\n") == b"A: 1"
    assert loops.header_section(b"A: 1\r\nB: 2\n\nC: 3") == b"A: 1\r\nB: 2"
    assert loops.header_section(b"A: 1\n\r\nB: 2") == b"A: 1\n\r\nB: 2"  # no blank line


@given(st.lists(st.sampled_from([b"Received: x", b"A: b", b"\r\n", b"\n", b"\r", b" "]),
                max_size=30))
def test_header_section_is_everything_before_the_first_blank_line(pieces: list[bytes]) -> None:
    content = b"".join(pieces)
    if content.startswith((b"\r\n", b"\n")):
        expected = b""
    else:
        ends = [i for i in (content.find(b"\r\n\r\n"), content.find(b"\n\n")) if i >= 0]
        expected = content[: min(ends)] if ends else content
    assert loops.header_section(content) == expected


def test_loop_detection_end_to_end() -> None:
    message = received(31) + b"\r\nbody\r\n"
    decision = loops.check_hops(loops.count_received(message), 30)
    assert decision == loops.MAIL_LOOP
