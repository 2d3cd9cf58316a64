"""MailResolver against a loopback DNS server: MX order, fallbacks, failures, TTL cache."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest

from fixtures_outbound import DnsServer, FakeClock
from nmail.dns.errors import DnsLookupError
from nmail.dns.resolver import MailResolver, ascii_domain, parse_nameserver

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer(ttl=300, negative_ttl=60).start()
    try:
        yield server
    finally:
        server.stop()


def resolver(dns_server: DnsServer, clock: FakeClock, **kwargs: object) -> MailResolver:
    return MailResolver([dns_server.address], clock=clock, **kwargs)  # type: ignore[arg-type]


def test_mx_hosts_in_preference_order(dns_server: DnsServer) -> None:
    dns_server.mx("example.test", (20, "backup.example.test"), (10, "MX1.example.test"),
                  (30, "last.example.test"))
    hosts = asyncio.run(resolver(dns_server, FakeClock()).mail_hosts("Example.TEST."))
    assert hosts == ["mx1.example.test", "backup.example.test", "last.example.test"]


def test_equal_preferences_are_shuffled(dns_server: DnsServer) -> None:
    pool = [(10, f"mx{i}.pool.test") for i in range(6)]
    dns_server.mx("pool.test", *pool, (5, "first.pool.test"))
    res = resolver(dns_server, FakeClock(), rng=random.Random(7))

    async def many() -> set[tuple[str, ...]]:
        return {tuple(await res.mail_hosts("pool.test")) for _ in range(30)}

    orders = asyncio.run(many())
    assert len(orders) > 1, "equal preferences must not always come in one order"
    for order in orders:
        assert order[0] == "first.pool.test"
        assert sorted(order[1:]) == [f"mx{i}.pool.test" for i in range(6)]


def test_no_mx_means_the_domain_itself(dns_server: DnsServer) -> None:
    dns_server.add("plain.test", "A", "127.0.0.5")
    res = resolver(dns_server, FakeClock())
    assert asyncio.run(res.mail_hosts("plain.test")) == ["plain.test"]
    assert asyncio.run(res.addresses("plain.test")) == ["127.0.0.5"]


def test_addresses_ipv4_then_ipv6_and_literals(dns_server: DnsServer) -> None:
    dns_server.add("dual.test", "AAAA", "::1")
    dns_server.add("dual.test", "A", "127.0.0.6")
    res = resolver(dns_server, FakeClock())
    assert asyncio.run(res.addresses("dual.test")) == ["127.0.0.6", "::1"]
    assert asyncio.run(res.addresses("[192.0.2.1]")) == ["192.0.2.1"]
    assert asyncio.run(res.addresses("2001:db8::1")) == ["2001:db8::1"]


def test_null_mx_is_permanent(dns_server: DnsServer) -> None:
    dns_server.mx("nomail.test", (0, "."))
    with pytest.raises(DnsLookupError) as info:
        asyncio.run(resolver(dns_server, FakeClock()).mail_hosts("nomail.test"))
    assert info.value.permanent and info.value.status == "5.1.10"
    assert "Domain does not accept mail" in str(info.value)


def test_nxdomain_is_permanent_servfail_and_timeout_temporary(dns_server: DnsServer) -> None:
    dns_server.servfail.add("broken.test")
    dns_server.silent.add("slow.test")
    # The answers that come get the default timeout: on a loaded machine an
    # NXDOMAIN later than a short timeout would read as a temporary failure.
    # Only the lookup that must time out gets a short one (the test's wait).
    res = resolver(dns_server, FakeClock())
    with pytest.raises(DnsLookupError) as gone:
        asyncio.run(res.mail_hosts("gone.test"))
    assert gone.value.permanent and gone.value.status == "5.1.2"
    with pytest.raises(DnsLookupError) as broken:
        asyncio.run(res.mail_hosts("broken.test"))
    assert not broken.value.permanent and broken.value.status.startswith("4.")
    with pytest.raises(DnsLookupError) as slow:
        asyncio.run(resolver(dns_server, FakeClock(), timeout=0.6).mail_hosts("slow.test"))
    assert not slow.value.permanent


def test_host_without_address_is_permanent(dns_server: DnsServer) -> None:
    dns_server.add("txtonly.test", "TXT", '"hello"')
    with pytest.raises(DnsLookupError) as info:
        asyncio.run(resolver(dns_server, FakeClock()).addresses("txtonly.test"))
    assert info.value.permanent


def test_cache_honours_positive_ttl(dns_server: DnsServer) -> None:
    dns_server.mx("cached.test", (10, "mx.cached.test"))
    clock = FakeClock()
    res = resolver(dns_server, clock)

    async def lookups() -> None:
        for _ in range(5):
            assert await res.mail_hosts("cached.test") == ["mx.cached.test"]
        assert dns_server.count("cached.test", "MX") == 1
        clock.advance(299)
        await res.mail_hosts("cached.test")
        assert dns_server.count("cached.test", "MX") == 1
        clock.advance(2)  # past the 300 s TTL
        await res.mail_hosts("cached.test")
        assert dns_server.count("cached.test", "MX") == 2

    asyncio.run(lookups())


def test_cache_honours_negative_ttl_but_not_failures(dns_server: DnsServer) -> None:
    dns_server.servfail.add("broken.test")
    clock = FakeClock()
    res = resolver(dns_server, clock)

    async def lookups() -> None:
        for _ in range(3):
            with pytest.raises(DnsLookupError):
                await res.mail_hosts("missing.test")
        assert dns_server.count("missing.test", "MX") == 1
        clock.advance(61)  # the SOA's negative TTL
        with pytest.raises(DnsLookupError):
            await res.mail_hosts("missing.test")
        assert dns_server.count("missing.test", "MX") == 2
        for _ in range(2):
            with pytest.raises(DnsLookupError):
                await res.mail_hosts("broken.test")
        assert dns_server.count("broken.test", "MX") >= 2, "SERVFAIL is not cached"

    asyncio.run(lookups())


def test_tcp_works_too(dns_server: DnsServer) -> None:
    import dns.asyncquery
    import dns.message

    query = dns.message.make_query("tcp.test", "A")
    dns_server.add("tcp.test", "A", "127.0.0.7")
    answer = asyncio.run(dns.asyncquery.tcp(query, "127.0.0.1", port=dns_server.port, timeout=3))
    assert answer.answer[0][0].to_text() == "127.0.0.7"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("127.0.0.1", ("127.0.0.1", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)),
     ("[::1]:5300", ("::1", 5300)), ("::1", ("::1", 53)), ("[::1]", ("::1", 53))],
)
def test_parse_nameserver(spec: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(spec) == expected


@pytest.mark.parametrize("spec", ["ns.example.com", "127.0.0.1:0", "127.0.0.1:99999",
                                  "127.0.0.1:x", "[::1", "[::1]x", ""])
def test_parse_nameserver_refuses_bad_values(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_nameserver(spec)


def test_bad_domain_names_are_permanent() -> None:
    for bad in ("", ".", "a..b", "x" * 300):
        with pytest.raises(DnsLookupError) as info:
            ascii_domain(bad)
        assert info.value.permanent
    assert ascii_domain("한국.test") == "xn--3e0b707e.test"
