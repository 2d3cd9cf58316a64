"""MX routing over dnspython's async resolver, with a TTL cache.

`MailResolver.mail_hosts(domain)` answers "which hosts take mail for this
domain, in the order to try them" (RFC 5321 section 5.1): MX records by
preference with equal preferences shuffled, the domain itself when it has
no MX, a permanent failure for a null MX (RFC 7505) or a domain that does
not exist, and a temporary one when DNS itself fails.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from nmail.dns.cache import TtlCache
from nmail.dns.errors import DnsLookupError, permanent, temporary

DEFAULT_NEGATIVE_TTL = 300
NULL_MX_TEXT = "Domain does not accept mail (null MX)"

Records = tuple[tuple[int, str], ...]


def parse_nameserver(spec: str) -> tuple[str, int]:
    """'192.0.2.1', '192.0.2.1:5353', '[2001:db8::1]:53' or '2001:db8::1' -> (ip, port)."""
    text = spec.strip()
    host, port = text, 53
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"bad nameserver {spec!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad nameserver {spec!r}")
            port = _port(rest[1:], spec)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text, spec)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"bad nameserver {spec!r}: expected an IP address") from None
    return host, port


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"bad nameserver {spec!r}: bad port")
    return int(text)


def ascii_domain(domain: str) -> str:
    """The IDNA (ASCII) form of a domain, lower case, without a trailing dot."""
    name = domain.strip().rstrip(".").lower()
    if not name:
        raise permanent("empty domain name", "5.1.3")
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        raise permanent(f"bad domain name {domain!r}", "5.1.3") from None


class MailResolver:
    """Asynchronous MX/A/AAAA lookups with a cache that honours TTLs."""

    def __init__(
        self,
        nameservers: Sequence[str] = (),
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self._resolver = _make_resolver(nameservers, timeout)
        self._cache: TtlCache[Records] = TtlCache(clock)
        self._rng = rng or random.Random()

    async def mail_hosts(self, domain: str) -> list[str]:
        """Host names to try for `domain`, best first; raises DnsLookupError."""
        name = ascii_domain(domain)
        records = await self._lookup(name, "MX")
        if not records:
            # No MX: the domain itself is the implicit MX (RFC 5321 5.1).
            return [name]
        real = [(pref, host) for pref, host in records if host]
        if not real:
            raise permanent(f"{name}: {NULL_MX_TEXT}", "5.1.10")
        return self._order(real)

    async def addresses(self, host: str) -> list[str]:
        """IPv4 then IPv6 addresses of `host` (or the host itself if it is an IP)."""
        literal = host.strip("[]")
        try:
            return [str(ipaddress.ip_address(literal))]
        except ValueError:
            pass
        name = ascii_domain(host)
        results = await asyncio.gather(
            self._lookup(name, "A"), self._lookup(name, "AAAA"), return_exceptions=True
        )
        found: list[str] = []
        errors: list[DnsLookupError] = []
        for result in results:
            if isinstance(result, DnsLookupError):
                errors.append(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                found.extend(value for _, value in result)
        if found:
            return found
        for error in errors:
            if not error.permanent:
                raise error
        raise permanent(f"{name}: no address (A/AAAA) found", "5.4.4")

    def clear_cache(self) -> None:
        self._cache.clear()

    def _order(self, records: list[tuple[int, str]]) -> list[str]:
        # Shuffle first, then a stable sort keeps the shuffle within equal preferences.
        shuffled = list(records)
        self._rng.shuffle(shuffled)
        shuffled.sort(key=lambda item: item[0])
        hosts: list[str] = []
        for _, host in shuffled:
            if host not in hosts:
                hosts.append(host)
        return hosts

    async def _lookup(self, name: str, rdtype: str) -> Records:
        key = (name, rdtype)
        entry = self._cache.get(key)
        if entry is not None:
            if isinstance(entry.error, DnsLookupError):
                # A fresh exception each time: re-raising one object grows its traceback.
                raise DnsLookupError(
                    str(entry.error), permanent=entry.error.permanent, status=entry.error.status
                )
            assert entry.value is not None
            return entry.value
        try:
            answer = await self._resolver.resolve(name + ".", rdtype, search=False)
        except dns.resolver.NXDOMAIN as exc:
            error = permanent(f"Host or domain name not found: {name} (NXDOMAIN)")
            self._cache.put_error(key, error, _negative_ttl(_nx_response(exc, name)))
            raise error from None
        except dns.resolver.NoAnswer as exc:
            self._cache.put_value(key, (), _negative_ttl(_noanswer_response(exc)))
            return ()
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
            raise temporary(f"DNS lookup of {name} {rdtype} failed: {_short(exc)}") from None
        except dns.exception.DNSException as exc:
            raise temporary(f"DNS lookup of {name} {rdtype} failed: {_short(exc)}") from None
        records = _records(answer, rdtype)
        ttl = answer.rrset.ttl if answer.rrset is not None else DEFAULT_NEGATIVE_TTL
        self._cache.put_value(key, records, ttl)
        return records


def _make_resolver(nameservers: Sequence[str], timeout: float) -> dns.asyncresolver.Resolver:
    if nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        servers: list[dns.nameserver.Nameserver] = []
        for spec in nameservers:
            ip, port = parse_nameserver(spec)
            servers.append(dns.nameserver.Do53Nameserver(ip, port))
        resolver.nameservers = servers
    else:
        try:
            resolver = dns.asyncresolver.Resolver(configure=True)
        except dns.resolver.NoResolverConfiguration:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = ["127.0.0.1"]
    resolver.lifetime = timeout
    resolver.timeout = min(timeout, 2.0)
    return resolver


def _records(answer: dns.resolver.Answer, rdtype: str) -> Records:
    out: list[tuple[int, str]] = []
    for rdata in answer:
        if rdtype == "MX":
            target = rdata.exchange.to_text(omit_final_dot=True).lower()
            # The root name "." is the null MX; keep it as "" so callers can tell.
            out.append((int(rdata.preference), "" if target in ("", ".") else target))
        else:
            out.append((0, rdata.to_text()))
    return tuple(out)


def _nx_response(exc: dns.resolver.NXDOMAIN, name: str) -> dns.message.Message | None:
    try:
        responses: dict[Any, dns.message.Message] = exc.responses()  # type: ignore[no-untyped-call]
    except Exception:
        return None
    for response in responses.values():
        return response
    return None


def _noanswer_response(exc: dns.resolver.NoAnswer) -> dns.message.Message | None:
    try:
        response: dns.message.Message = exc.response()  # type: ignore[no-untyped-call]
    except Exception:
        return None
    return response


def _negative_ttl(response: dns.message.Message | None) -> int:
    """RFC 2308: the SOA in the authority section bounds how long 'no' is valid."""
    if response is None:
        return DEFAULT_NEGATIVE_TTL
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA:
            minimum = min(int(rdata.minimum) for rdata in rrset)
            return min(int(rrset.ttl), minimum)
    return DEFAULT_NEGATIVE_TTL


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


__all__ = ["NULL_MX_TEXT", "DnsLookupError", "MailResolver", "ascii_domain", "parse_nameserver"]
