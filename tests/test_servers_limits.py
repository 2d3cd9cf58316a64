"""Connection limits shared by the SMTP and POP3 listeners."""

from __future__ import annotations

import os

import pytest

from nmail.servers.limits import ConnectionLimits, SharedCounts


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


def test_shared_counts_see_every_process() -> None:
    """Two processes (a fork, as `serve --workers` does) count into one table."""
    counts = SharedCounts(2)
    mine = ConnectionLimits(total=5, per_client=3, shared=counts.row(0))
    held = [object(), object()]
    for conn in held:
        mine.add(conn, "192.0.2.1")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the other worker
        other = ConnectionLimits(total=5, per_client=3, shared=counts.row(1))
        verdicts = [other.admit("192.0.2.1")]
        other.add(object(), "192.0.2.1")
        other.add(object(), "198.51.100.7")
        verdicts.append(other.admit("192.0.2.1"))
        os.write(write, repr(verdicts).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 200).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child == "[None, 'client']"  # its own count of the address is 1, the sum 3
    assert mine.admit("192.0.2.1") == "client"  # 3 from it in all, 4 open
    assert mine.admit("203.0.113.9") is None
    mine.add(object(), "203.0.113.5")  # the fifth
    assert mine.admit("203.0.113.9") == "busy"
    mine.remove(held[0])
    assert mine.admit("203.0.113.9") is None
    assert mine.admit("192.0.2.1") is None  # 2 left from that address
    # A worker started in slot 1 again forgets what its predecessor counted.
    counts.row(1)
    assert counts.total() == 2


def test_shared_counts_refuse_a_worker_they_do_not_have() -> None:
    counts = SharedCounts(2)
    with pytest.raises(ValueError, match="no worker 2"):
        counts.row(2)
    row = counts.row(0)
    limits = ConnectionLimits(total=5, per_client=3, shared=row)
    limits.remove(object())  # never added: nothing goes below zero
    row.change(counts.bucket("ip:192.0.2.1"), -1)
    assert counts.total() == 0


def test_shared_totals_and_buckets_are_the_plain_sums_and_hashes() -> None:
    """total() sums one strided view and bucket() keeps what it computed: both
    against the per-row sum and the keyed hash they replaced, through the
    bucket memory's clearing."""
    import zlib

    counts = SharedCounts(3)
    rows = [counts.row(i) for i in range(3)]
    keys = [f"ip:192.0.2.{i}" for i in range(40)] + ["ip:2001:db8::/64"]
    for n, key in enumerate(keys):
        bucket = counts.bucket(key)
        assert bucket == 1 + zlib.crc32(key.encode(), counts._seed) % counts.BUCKETS
        rows[n % 3].change(bucket, 1 + n % 2)
    for offset in (0, 1, counts.BUCKETS, *(counts.bucket(k) for k in keys)):
        plain = sum(counts._cells[row * counts._stride + offset] for row in range(3))
        assert counts.total(offset) == plain
    assert counts.total() == sum(1 + n % 2 for n in range(len(keys)))
    for i in range(counts.BUCKETS + 5):  # past the memory's bound: cleared, still right
        key = f"ip:10.{i >> 8}.{i & 255}.1"
        assert counts.bucket(key) == 1 + zlib.crc32(key.encode(), counts._seed) % counts.BUCKETS
    assert len(counts._buckets) <= counts.BUCKETS
