"""Trace headers, message ids and the delivery log: formatting that is cached per second."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmail.delivery.envelope import ClientInfo
from nmail.delivery.log import DeliveryLog
from nmail.delivery.trace import (
    delivered_to,
    new_message_id,
    received_header,
    return_path,
    rfc5322_date,
)


def reference_date(when: float) -> str:
    stamp = dt.datetime.fromtimestamp(when, dt.UTC).astimezone()
    return stamp.strftime("%a, %d %b %Y %H:%M:%S %z")


@pytest.mark.parametrize(
    "times",
    [
        [1_700_000_000.1, 1_700_000_000.9, 1_700_000_001.0, 1_700_000_000.5],
        [86_399.999, 86_400.0, 86_399.5],  # across midnight, and back
    ],
)
def test_dates_match_a_fresh_formatting_whatever_the_order(times: list[float]) -> None:
    for when in times:
        assert rfc5322_date(when) == reference_date(when)


def test_received_header_carries_the_date_and_no_line_breaks_from_the_client() -> None:
    client = ClientInfo(ip="192.0.2.1", helo="evil\r\nX-Injected: 1", protocol="ESMTP",
                        auth_user=None, tls=None)
    header = received_header(client, "mx.example", "abc", "bob@example.com", 1_700_000_000.5)
    assert header.endswith(f"; {reference_date(1_700_000_000)}\r\n".encode())
    assert b"\r\nX-Injected" not in header
    assert b"from evil  X-Injected: 1 ([192.0.2.1])" in header
    # Non-ASCII and DEL go the long way; plain text is kept as it is.
    client = ClientInfo(ip="192.0.2.1", helo="예시.example\x7f\n", protocol="ESMTP")
    header = received_header(client, "mx.example", "abc", "b\tob@example.com", 1_700_000_000.5)
    assert b"from \xec\x98\x88\xec\x8b\x9c.example   ([192.0.2.1])" in header
    assert b"for <b ob@example.com>" in header
    assert return_path("a\r\n@x") == b"Return-Path: <a  @x>\r\n"
    assert delivered_to("b@example.com") == b"Delivered-To: b@example.com\r\n"


def test_message_ids_are_unique_and_sortable_by_time() -> None:
    ids = [new_message_id(1_700_000_000.0) for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 20 and int(i, 16) >= 0 for i in ids)
    assert new_message_id(1_700_000_001.0) > max(ids)


def test_a_forked_child_counts_from_its_own_start() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the next id and leave at once
        os.write(write, new_message_id(1_700_000_000.0).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent = [new_message_id(1_700_000_000.0) for _ in range(3)]
    assert child not in parent


def test_log_lines_go_to_the_file_of_their_day(tmp_path: Path) -> None:
    now = [86_400.0 * 20_000 - 0.5]  # half a second before a UTC midnight
    log = DeliveryLog(tmp_path, clock=lambda: now[0])
    log.write("id1", "a@example.com", "b@example.com", 10, "delivered", "250 ok")
    log.write("id2", "", "b@example.com", 11, "delivered", "250 ok")
    now[0] += 1.0
    log.write("id3", "a@example.com", "b\tc@example.com", 12, "bounced", "550\r\nx")
    log.close()
    before = dt.datetime.fromtimestamp(86_400 * 20_000 - 1, dt.UTC)
    after = before + dt.timedelta(seconds=1)
    first = (tmp_path / f"delivery-{before:%Y%m%d}.log").read_text().splitlines()
    second = (tmp_path / f"delivery-{after:%Y%m%d}.log").read_text().splitlines()
    assert [line.split("\t")[:3] for line in first] == [
        [f"{before:%Y-%m-%dT%H:%M:%SZ}", "id1", "a@example.com"],
        [f"{before:%Y-%m-%dT%H:%M:%SZ}", "id2", "<>"],
    ]
    assert len(second) == 1
    fields = second[0].split("\t")
    assert fields[0] == f"{after:%Y-%m-%dT%H:%M:%SZ}" and len(fields) == 7


def test_log_fields_keep_plain_text_and_write_out_controls(tmp_path: Path) -> None:
    log = DeliveryLog(tmp_path, clock=lambda: 86_400.0 * 20_000)
    log.write("id1", "ü@예시.example", "x\x1by@example.com", 10, "", "550 \u202eevil\x7f")
    log.close()
    line = next(tmp_path.glob("delivery-*.log")).read_text().rstrip("\n")
    fields = line.split("\t")
    assert fields[1:] == [
        "id1", "ü@예시.example", "x\\x1by@example.com", "10", "-", "550 \\u202eevil\\x7f",
    ]


def plain_received_header(client: ClientInfo, hostname: str, msg_id: str,
                          recipient: str | None, when: float) -> bytes:
    """received_header as it was before its first lines were kept per client."""

    def safe(text: str) -> str:
        return re.sub(r"[\x00-\x1f\x7f]", " ", text)

    lines = [f"Received: from {safe(client.helo) or 'unknown'} ([{safe(client.ip)}])"]
    with_part = f"by {hostname} (nmail) with {client.protocol}"
    if client.tls:
        with_part += f" (using {safe(client.tls)})"
    lines.append(f"\t{with_part}")
    if client.auth_user:
        lines.append(f"\t(authenticated as {safe(client.auth_user)})")
    tail = f"\tid {msg_id}"
    if recipient:
        tail += f"\r\n\tfor <{safe(recipient)}>"
    lines.append(f"{tail}; {rfc5322_date(when)}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


_TEXTS = st.sampled_from(["", "c.test", "192.0.2.7", "x\r\ny", "h\u00e9llo", "\x00\x7f", "a b"])


@settings(max_examples=400, deadline=None)
@given(_TEXTS, _TEXTS, st.sampled_from(["SMTP", "ESMTP", "ESMTPSA", "E\nSMTP"]),
       st.one_of(st.none(), _TEXTS), st.one_of(st.none(), _TEXTS),
       st.sampled_from(["mx.example", "mx.\u00e9"]), st.one_of(st.none(), _TEXTS),
       st.floats(1e9, 2e9))
def test_received_header_is_the_plain_one(helo: str, ip: str, protocol: str, tls: str | None,
                                          auth: str | None, host: str, rcpt: str | None,
                                          when: float) -> None:
    """The first lines kept per client (received_header's cache) change nothing."""
    client = ClientInfo(ip=ip, helo=helo, protocol=protocol, auth_user=auth, tls=tls)
    for _ in range(2):  # computed, then from the cache
        assert received_header(client, host, "abc", rcpt, when) == plain_received_header(
            client, host, "abc", rcpt, when)
