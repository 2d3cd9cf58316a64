"""A loopback DNS server for tests, built on dnspython.

An authoritative server on one free port of 127.0.0.1, over UDP and TCP,
answering A/AAAA/MX/TXT from a dict: unknown names get NXDOMAIN, known
names without the asked type get an empty answer with an SOA (negative
TTL), names in `servfail` get SERVFAIL and names in `silent` no answer.
"""

from __future__ import annotations

import socket
import struct
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

SOA = "ns.test. hostmaster.test. 1 3600 600 86400 {ttl}"


class DnsServer:
    """Answers A/AAAA/MX/TXT from `records`; unknown names get NXDOMAIN."""

    def __init__(self, ttl: int = 300, negative_ttl: int = 60) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        self.servfail: set[str] = set()
        self.silent: set[str] = set()  # names never answered (a timeout)
        self.queries: list[tuple[str, str]] = []
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.port = 0
        self._udp, self._tcp = self._bind()

    def add(self, name: str, rdtype: str, *values: str) -> None:
        self.records.setdefault((name.lower().rstrip("."), rdtype.upper()), []).extend(values)

    def mx(self, domain: str, *hosts: tuple[int, str]) -> None:
        for pref, host in hosts:
            self.add(domain, "MX", f"{pref} {host.rstrip('.')}.")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def count(self, name: str, rdtype: str) -> int:
        return self.queries.count((name.lower().rstrip("."), rdtype))

    def _bind(self) -> tuple[socket.socket, socket.socket]:
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(16)
            self.port = port
            return udp, tcp
        raise RuntimeError("no free port for the DNS fixture")

    def start(self) -> DnsServer:
        self._udp.settimeout(0.2)
        self._tcp.settimeout(0.2)
        for target in (self._serve_udp, self._serve_tcp):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._udp.close()
        self._tcp.close()

    def answer(self, wire: bytes) -> bytes | None:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        if name in self.silent:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        values = self.records.get((name, rdtype))
        if values:
            response.answer.append(
                dns.rrset.from_text_list(question.name, self.ttl, "IN", rdtype, values)
            )
        else:
            if not any(key[0] == name for key in self.records):
                response.set_rcode(dns.rcode.NXDOMAIN)
            soa = dns.rrset.from_text("test.", self.negative_ttl, "IN", "SOA",
                                      SOA.format(ttl=self.negative_ttl))
            response.authority.append(soa)
        return response.to_wire()

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._udp.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            reply = self.answer(data)
            if reply is not None:
                self._udp.sendto(reply, peer)

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._tcp.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(2)
                try:
                    size = struct.unpack("!H", _recv_exact(conn, 2))[0]
                    reply = self.answer(_recv_exact(conn, size))
                    if reply is not None:
                        conn.sendall(struct.pack("!H", len(reply)) + reply)
                except (OSError, ValueError):
                    pass


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ValueError("short read")
        data += chunk
    return data
