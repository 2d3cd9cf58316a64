"""The queue's refusals, classified and counted by `nmail bounce report`.

A loopback SMTP sink answers RCPT with one category's reply per
destination domain; the report must count every category's messages
right, a plain temporary failure only from its second attempt, and the
DSNs the queue sends back must analyse to the same categories.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cli_admin_support import Cli, write_config
from fixtures_outbound import Harness, message, wait_until
from nmail.bounce import categories
from nmail.bounce.analysis import analyze
from nmail.bounce.outbound_log import RefusalLog, refusal
from nmail.db.engine import make_engine
from nmail.db.migrate import upgrade
from nmail.queue.store import FAILED, QUEUED

pytestmark = pytest.mark.timeout(90)

# One SMTP reply per category, as the sink sends it at RCPT.
REPLIES = {
    categories.NO_SUCH_USER: "550 5.1.1 No such user",
    categories.DISABLED: "550 5.1.1 Inactive mbox",
    categories.MAILBOX_FULL: "552 Requested mail action aborted: exceeded storage allocation",
    categories.REJECT_LIST: "550 You are registered as spammer (by user's reject list)",
    categories.RELAY_DENIED: "554 Relay operation rejected",
    categories.IP_BLOCKED: "421 4.3.1 You send too many messages.",
    categories.RBL: "553 5.3.0 ... Rejected - see http://www.mail-abuse.org/rbl/",
    categories.SPAM: "553 Blocked for spam",
    categories.VIRUS: "550 Virus in your mail!!!",
    categories.ATTACHMENT: "552 5.7.0 Illegal Attachment 36si248323nzk+I9:I15",
    categories.LOOP: "554 Message blocked by mail loop check",
    categories.TOO_BIG: "552 Message exceeds fixed maximum message size",
    categories.UNKNOWN: "554 5.0.0 Go away",
    categories.TEMPORARY: "451 4.7.1 Greylisting in action, please come back later",
}


def domain_of(category: str) -> str:
    return f"{category.replace('_', '-')}.test"


def run(engine: Engine, tmp_path: Path, body: Callable[[Harness], Awaitable[None]]) -> None:
    harness = Harness(engine, tmp_path, first_retry=60, max_retry=60)

    async def main() -> None:
        try:
            await body(harness)
        finally:
            await harness.close()

    asyncio.run(main())


def counts(engine: Engine) -> dict[tuple[str, str], int]:
    return {(line.domain, line.category): line.messages for line in RefusalLog(engine).report(0)}


def test_each_category_reply_is_counted_in_the_report(engine: Engine, tmp_path: Path) -> None:
    # 1, 2 or 3 messages per category, so a count that is off shows.
    sent = {category: 1 + number % 3 for number, category in enumerate(REPLIES)}

    async def body(h: Harness) -> None:
        await h.start_sinks()
        for category, reply in REPLIES.items():
            domain = domain_of(category)
            h.dns.mx(domain, (10, f"mx.{domain}"))
            h.dns.add(f"mx.{domain}", "A", "127.0.0.2")
            for number in range(sent[category]):
                h.sinks[0].rcpt_replies[f"user{number}@{domain}"] = [reply]
        queue = await h.start()
        ids = {
            (category, number): queue.enqueue(
                "alice@nmail.test", [f"user{number}@{domain_of(category)}"],
                message(to=f"user{number}@{domain_of(category)}", subject=f"{category} {number}"),
            )
            for category in REPLIES for number in range(sent[category])
        }

        def state(qid: str) -> str:
            return queue.show(qid).recipients[0].state

        def attempts(qid: str) -> int:
            return queue.show(qid).recipients[0].attempts

        await wait_until(lambda: all(attempts(qid) >= 1 or state(qid) == FAILED
                                     for qid in ids.values()), what="first attempts")
        await h.settled()
        first = counts(h.engine)
        # One greylisting reply is normal: not recorded yet. Everything else is.
        assert (domain_of(categories.TEMPORARY), categories.TEMPORARY) not in first
        assert first[(domain_of(categories.IP_BLOCKED), categories.IP_BLOCKED)] == sent[
            categories.IP_BLOCKED]
        temporary = [ids[(categories.TEMPORARY, n)] for n in range(sent[categories.TEMPORARY])]
        blocked = [ids[(categories.IP_BLOCKED, n)] for n in range(sent[categories.IP_BLOCKED])]
        assert all(state(qid) == QUEUED for qid in temporary + blocked)

        h.advance(61)
        await wait_until(lambda: all(attempts(qid) >= 2 for qid in temporary + blocked),
                         what="second attempts")
        await h.settled()
        # Permanent refusals bounced: their DSNs read back as the same category.
        await wait_until(lambda: len(h.bounces) == sum(
            n for c, n in sent.items() if c not in (categories.TEMPORARY, categories.IP_BLOCKED)
        ), what="bounces")
        for data, rcpt in h.bounces:
            assert rcpt == "alice@nmail.test"
            result = analyze(data)
            assert result is not None and result.source == "dsn" and result.server == "nmail"
            failed = result.recipients[0]
            expected = failed.address.split("@")[1].split(".")[0].replace("-", "_")
            assert failed.category == expected, failed
            assert result.original_subject.startswith(expected)

    run(engine, tmp_path, body)
    report = counts(engine)
    assert report == {(domain_of(c), c): n for c, n in sent.items()}
    lines = {line.category: line for line in RefusalLog(engine).report(0)}
    assert lines[categories.IP_BLOCKED].refusals == 2 * sent[categories.IP_BLOCKED]
    assert lines[categories.IP_BLOCKED].permanent == 0
    assert lines[categories.SPAM].permanent == sent[categories.SPAM]
    assert lines[categories.LOOP].last_reply == REPLIES[categories.LOOP]
    assert lines[categories.LOOP].last_host == f"mx.{domain_of(categories.LOOP)}"


def test_the_report_command_in_text_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    write_config(tmp_path, url)
    engine = make_engine(url)
    upgrade(engine)
    now = time.time()
    log = RefusalLog(engine)
    log.record([
        refusal(f"q{n}", f"u{n}@naver.com", "421 4.3.2 Your IP(192.0.2.1) is filtered and this "
                "connection will be closed.", "4.3.2", "mx1.naver.com",
                permanent=False, at=now - 600 + n)
        for n in range(37)
    ] + [
        refusal("q99", "x@old.example", "550 5.1.1 No such user", "5.1.1", None,
                permanent=True, at=now - 3 * 86400),
        refusal("q98", "y@example.net", "550 5.1.1 No such user", "5.1.1", "mx.example.net",
                permanent=True, at=now - 60),
        refusal("q98", "y@example.net", "550 5.1.1 No such user", "5.1.1", "mx.example.net",
                permanent=True, at=now - 30),
    ])
    engine.dispose()
    cli = Cli(tmp_path, capsys)
    text = cli.ok("bounce", "report")
    assert re.search(r"naver\.com: Server IP blocked for bulk sending, 37 messages since "
                     r"\d\d(-\d\d \d\d)?:\d\d UTC", text), text
    assert "example.net: Recipient does not exist, 1 message since" in text
    assert "(2 refusals)" in text
    assert "old.example" not in text  # three days ago: outside the default day
    data = json.loads(cli.ok("bounce", "report", "--days", "7", "--json"))
    by_domain = {line["domain"]: line for line in data["lines"]}
    assert by_domain["naver.com"]["messages"] == 37
    assert by_domain["naver.com"]["category"] == categories.IP_BLOCKED
    assert by_domain["old.example"]["messages"] == 1
    assert data["lines"][0]["domain"] == "naver.com"  # the most messages first
    korean = cli.ok("bounce", "report", "--lang", "ko")
    assert "대량 발송으로 대형 포털에서 서버 IP를 차단함" in korean
    bad = cli("bounce", "report", "--days", "0")
    assert bad.code == 2 and "days must be between" in bad.err


def test_refusals_past_the_keep_period_are_pruned(sqlite_engine: Engine) -> None:
    log = RefusalLog(sqlite_engine, keep_seconds=100)
    log.record([refusal("a", "u@d.test", "550 5.1.1 x", "5.1.1", None, permanent=True, at=1000)])
    log.record([refusal("b", "u@d.test", "550 5.1.1 x", "5.1.1", None, permanent=True, at=1050)])
    assert log.prune(1001) == 1
    assert [line.messages for line in log.report(0)] == [1]
