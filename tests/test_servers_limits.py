"""Connection limits shared by the SMTP and POP3 listeners."""

from __future__ import annotations

from nmail.servers.limits import ConnectionLimits


def test_per_client_limit_counts_an_ipv6_64_as_one_and_spares_loopback() -> None:
    limits = ConnectionLimits(total=100, per_client=2)
    conns = [object() for _ in range(6)]
    for conn, ip in zip(
        conns,
        ["192.0.2.1", "192.0.2.1", "2001:db8:1:2::1", "2001:db8:1:2::9", "127.0.0.1", "::1"],
        strict=True,
    ):
        assert limits.admit(ip) is None
        limits.add(conn, ip)
    assert limits.admit("192.0.2.1") == "client"
    assert limits.admit("2001:db8:1:2::77") == "client"
    assert limits.admit("2001:db8:1:3::1") is None
    assert limits.admit("127.0.0.1") is None and limits.admit("::1") is None
    assert limits.admit("not an address") is None


def test_a_connection_is_counted_and_forgotten_once() -> None:
    limits = ConnectionLimits(total=100, per_client=1)
    conn = object()
    limits.add(conn, "192.0.2.1")
    limits.add(conn, "192.0.2.1")
    limits.remove(conn)
    assert limits.admit("192.0.2.1") is None
    limits.add(object(), "192.0.2.1")
    limits.remove(conn)  # already gone: changes nothing
    limits.remove(object())  # never added
    assert limits.admit("192.0.2.1") == "client"


def test_the_total_limit_applies_to_everyone() -> None:
    limits = ConnectionLimits(total=2, per_client=50)
    limits.add(object(), "127.0.0.1")
    limits.add(object(), "192.0.2.1")
    assert limits.admit("127.0.0.1") == "busy"
    assert limits.admit("198.51.100.1") == "busy"
