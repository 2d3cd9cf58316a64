"""The queue's SMTP client against a recording loopback server: pipelining and every failure."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from fixtures_outbound import self_signed_context, wait_until
from fixtures_smtp_recorder import Behaviour, Recorder
from manual_timers import ManualTimers
from nmail.queue import smtp_client
from nmail.queue.outcomes import (
    DELIVERED,
    PERMANENT,
    TEMPORARY,
    HostUnusable,
    Outcome,
    Outgoing,
    SessionLost,
)
from nmail.queue.routing import TLS_IMPLICIT, TLS_NONE, TLS_OPPORTUNISTIC, TLS_REQUIRED, Route
from nmail.queue.smtp_client import RemoteSession, TlsContexts
from nmail.timers import Timers

pytestmark = pytest.mark.timeout(30)

BODY = b"Subject: t\r\n\r\nhello\r\n"
CONTEXTS: list[TlsContexts] = []


def item(*recipients: str, sender: str = "a@nmail.test", body: bytes = BODY) -> Outgoing:
    return Outgoing("q1", sender, recipients or ("b@remote.test",), body)


def contexts() -> TlsContexts:
    if not CONTEXTS:
        CONTEXTS.append(TlsContexts())
    return CONTEXTS[0]


async def connect(server: Recorder, tls: str = TLS_NONE, *, timers: Timers | None = None,
                  **route: object) -> RemoteSession:
    where = Route(("rec.test",), server.port, tls, **route)  # type: ignore[arg-type]
    return await RemoteSession.open(where, "rec.test", "127.0.0.1", "client.test", contexts(),
                                    timers=timers)


def run(body: Callable[[Recorder], Awaitable[None]], behaviour: Behaviour | None = None,
        **server: object) -> Recorder:
    recorder = Recorder(behaviour, **server)  # type: ignore[arg-type]

    async def main() -> None:
        await recorder.start()
        try:
            await body(recorder)
        finally:
            await recorder.stop()

    asyncio.run(main())
    return recorder


async def quit_done(server: Recorder) -> None:
    """Wait until the server has seen QUIT and the line is closed."""
    await wait_until(lambda: "QUIT" in server.verbs() and server.sessions[-1].transport is None,
                     5, "QUIT and the hang-up")


def kinds(outcomes: list[Outcome]) -> list[str]:
    return [o.kind for o in outcomes]


# -- pipelining ------------------------------------------------------------------------


def test_pipelining_sends_mail_rcpts_and_data_in_one_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A client waiting for each reply fails at this timeout, before the test's
    # own limit; a pipelining one is answered at once, far within it.
    monkeypatch.setattr(smtp_client, "COMMAND_TIMEOUT", 20.0)

    async def body(server: Recorder) -> None:
        session = await connect(server)
        outcomes = await session.send(item("b@remote.test", "c@remote.test", "d@remote.test"))
        assert kinds(outcomes) == [DELIVERED] * 3
        assert outcomes[0].reply == "250 2.0.0 Queued"
        await session.close()
        await quit_done(server)

    # The server answers MAIL and RCPT only once DATA is in: a client that
    # waited for each reply would stall here.
    server = run(body, Behaviour(hold_until_data=True))
    group = [c for c in server.commands if c.line.split(" ")[0].split(":")[0] in
             ("MAIL", "RCPT", "DATA")]
    assert [c.line[:4] for c in group] == ["MAIL", "RCPT", "RCPT", "RCPT", "DATA"]
    assert len({c.replies_before for c in group}) == 1, "all sent before any reply"
    chunk = next(c for c in server.chunks if b"MAIL FROM" in c)
    assert chunk.endswith(b"DATA\r\n") and chunk.count(b"RCPT TO") == 3, "one write"
    assert server.messages[0].recipients == ["b@remote.test", "c@remote.test", "d@remote.test"]
    assert server.verbs()[-1] == "QUIT"


def test_without_pipelining_one_command_at_a_time() -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        assert kinds(await session.send(item("b@remote.test", "c@remote.test"))) == [DELIVERED] * 2
        await session.close()
        await quit_done(server)

    server = run(body, Behaviour(extensions=("8BITMIME", "SIZE 1000000")))
    before = [c.replies_before for c in server.commands]
    assert before == sorted(before) and len(set(before)) == len(before), "each after a reply"
    assert server.verbs() == ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"]
    assert len(server.messages) == 1


def test_partial_refusals() -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        outcomes = await session.send(item("b@remote.test", "nobody@remote.test", "c@remote.test"))
        assert kinds(outcomes) == [DELIVERED, PERMANENT, DELIVERED]
        assert outcomes[1].status == "5.1.1" and "No such user" in outcomes[1].reply
        assert session.alive

    server = run(body, Behaviour(rcpt_replies={"nobody@remote.test": "550 5.1.1 No such user"}))
    assert server.messages[0].recipients == ["b@remote.test", "c@remote.test"]


@pytest.mark.parametrize("pipelining", [True, False])
def test_all_refused_sends_no_body_and_resets_before_the_next(pipelining: bool) -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        outcomes = await session.send(item("x@remote.test", "y@remote.test"))
        assert kinds(outcomes) == [PERMANENT, TEMPORARY]
        assert [o.status for o in outcomes] == ["5.1.1", "4.2.2"]
        assert session.alive
        assert kinds(await session.send(item("b@remote.test"))) == [DELIVERED]
        await session.close()
        await quit_done(server)

    exts = ("PIPELINING", "SIZE 1000") if pipelining else ("SIZE 1000",)
    server = run(body, Behaviour(extensions=exts, rcpt_replies={
        "x@remote.test": "550 5.1.1 No such user", "y@remote.test": "452 4.2.2 Mailbox full"}))
    verbs = server.verbs()
    if pipelining:  # DATA went with the group and got 554; RSET leads the next group
        assert verbs == ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA",
                         "QUIT"]
        assert any(c.startswith(b"RSET\r\nMAIL FROM:<a@nmail.test>") for c in server.chunks)
    else:
        assert verbs == ["EHLO", "MAIL", "RCPT", "RCPT", "RSET", "MAIL", "RCPT", "DATA", "QUIT"]
    assert len(server.messages) == 1 and server.messages[0].recipients == ["b@remote.test"]
    assert sum(c.count(b"hello") for c in server.chunks) == 1, "the first body never left"


def test_354_with_no_recipient_accepted_ends_an_empty_message() -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        outcomes = await session.send(item("x@remote.test"))
        assert kinds(outcomes) == [PERMANENT] and outcomes[0].status == "5.1.1"
        assert session.alive
        assert kinds(await session.send(item("b@remote.test"))) == [DELIVERED]

    # A broken server: 354 to DATA even though it refused every recipient.
    server = run(body, Behaviour(data_reply="354 Go ahead",
                                 rcpt_replies={"x@remote.test": "550 5.1.1 No such user"}))
    assert b".\r\n" in server.chunks, "only the end of data, no body"
    assert sum(c.count(b"hello") for c in server.chunks) == 1
    assert server.verbs()[-4:] == ["RSET", "MAIL", "RCPT", "DATA"]


def test_refused_sender_gives_every_recipient_its_reply() -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        outcomes = await session.send(item("b@remote.test", "c@remote.test"))
        assert kinds(outcomes) == [PERMANENT, PERMANENT]
        assert outcomes[0].reply == "553 5.7.1 Sender rejected"
        assert session.alive

    server = run(body, Behaviour(mail_reply="553 5.7.1 Sender rejected"))
    assert server.messages == []


def test_data_refused_after_accepted_recipients() -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        outcomes = await session.send(item("b@remote.test", "nobody@remote.test"))
        assert kinds(outcomes) == [PERMANENT, PERMANENT]
        assert [o.status for o in outcomes] == ["5.7.1", "5.1.1"]
        assert session.alive

    server = run(body, Behaviour(data_reply="554 5.7.1 Not from you",
                                 rcpt_replies={"nobody@remote.test": "550 5.1.1 No such user"}))
    assert sum(c.count(b"hello") for c in server.chunks) == 0


def test_final_reply_refused() -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        outcomes = await session.send(item("b@remote.test"))
        assert outcomes[0].kind == PERMANENT and outcomes[0].status == "5.3.4"
        assert not outcomes[0].remote_dsn

    run(body, Behaviour(final_reply="552 5.3.4 Too big"))


def test_dsn_parameters_and_remote_dsn() -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        outgoing = Outgoing("q1", "a@nmail.test", ("b@remote.test",), "caf\u00e9\r\n".encode(),
                            notify=("SUCCESS,FAILURE",), orcpt=("rfc822;b+x@remote.test",),
                            envid="id 1", ret="HDRS")
        outcomes = await session.send(outgoing)
        assert outcomes[0].kind == DELIVERED and outcomes[0].remote_dsn

    server = run(body)
    mail = next(c.line for c in server.commands if c.line.startswith("MAIL"))
    rcpt = next(c.line for c in server.commands if c.line.startswith("RCPT"))
    assert mail == "MAIL FROM:<a@nmail.test> SIZE=7 BODY=8BITMIME RET=HDRS ENVID=id+201"
    assert rcpt == "RCPT TO:<b@remote.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Bx@remote.test"


# -- the server going away -------------------------------------------------------------


@pytest.mark.parametrize("pipelining", [True, False])
def test_421_on_rcpt_gives_the_rest_the_same_and_ends_the_session(pipelining: bool) -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        outcomes = await session.send(
            item("nobody@remote.test", "b@remote.test", "bye@remote.test", "c@remote.test")
        )
        assert kinds(outcomes) == [PERMANENT, TEMPORARY, TEMPORARY, TEMPORARY]
        assert [o.status for o in outcomes] == ["5.1.1", "4.3.2", "4.3.2", "4.3.2"]
        assert not session.alive
        await session.close()  # nothing to say any more; must not hang

    exts = ("PIPELINING",) if pipelining else ()
    server = run(body, Behaviour(extensions=exts, rcpt_replies={
        "nobody@remote.test": "550 5.1.1 No such user",
        "bye@remote.test": "421 4.3.2 Shutting down"}))
    assert server.messages == []


def test_421_to_mail_ends_the_session() -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        outcomes = await session.send(item("b@remote.test", "c@remote.test"))
        assert kinds(outcomes) == [TEMPORARY, TEMPORARY] and outcomes[0].status == "4.7.0"
        assert not session.alive

    run(body, Behaviour(mail_reply="421 4.7.0 Try again later"))


def test_line_dropped_mid_body_is_a_lost_session() -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        with pytest.raises(SessionLost, match=r"rec\.test"):
            await session.send(item("b@remote.test", body=BODY * 2000))
        assert not session.alive

    run(body, Behaviour(close_in_body=True))


def test_a_server_that_never_answers_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        # Short only once connected: EHLO's answer, late on a loaded machine,
        # must not be what times out.
        monkeypatch.setattr(smtp_client, "COMMAND_TIMEOUT", 0.3)
        with pytest.raises(SessionLost, match="timed out"):
            await session.send(item("b@remote.test"))
        assert not session.alive

    run(body, Behaviour(silent_from="MAIL"))


def test_a_busy_session_outlives_its_first_deadline() -> None:
    """The link's one timer, set for the first wait's deadline, finds a later
    wait with a later deadline there and waits on; a wait fails only when it
    has itself lasted a whole timeout.

    On a clock the test moves: the server "takes" 5/6 of the timeout to answer
    each MAIL, so the first deadlines pass while a later MAIL is awaited, and
    a stalled test process cannot make any wait look longer than it is."""
    timeout = smtp_client.COMMAND_TIMEOUT
    clocks: list[ManualTimers] = []
    takes = [timeout * 5 / 6]  # the server's time to answer the next MAIL

    def slow_mail(verb: str) -> None:
        if verb == "MAIL":
            clocks[0].advance(takes[0])

    async def body(server: Recorder) -> None:
        clocks.append(ManualTimers(asyncio.get_running_loop()))
        session = await connect(server, timers=clocks[0])
        for _ in range(3):  # 2.5 timeouts of waiting for MAIL, every wait shorter than one
            assert kinds(await session.send(item("b@remote.test"))) == [DELIVERED]
        assert session.alive
        takes[0] = timeout  # a MAIL answered a whole timeout late: the wait times out
        with pytest.raises(SessionLost, match="timed out"):
            await session.send(item("b@remote.test"))
        assert not session.alive

    server = run(body, Behaviour(on_command=slow_mail))
    assert len(server.messages) == 3


def test_a_silent_greeting_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smtp_client, "CONNECT_TIMEOUT", 0.3)

    async def body(server: Recorder) -> None:
        with pytest.raises(HostUnusable, match=r"rec\.test"):
            await connect(server)

    run(body, Behaviour(greeting="220-first line of a greeting that never ends"))


def test_a_silent_final_reply_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smtp_client, "DATA_TIMEOUT", 0.3)

    async def body(server: Recorder) -> None:
        session = await connect(server)
        with pytest.raises(SessionLost, match="timed out"):
            await session.send(item("b@remote.test"))

    run(body, Behaviour(final_reply="250-partial final reply, never finished"))


def test_a_reader_that_stalls_mid_body_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smtp_client, "DATA_TIMEOUT", 0.5)

    async def body(server: Recorder) -> None:
        session = await connect(server)
        big = b"x" * 998 + b"\r\n"
        with pytest.raises(SessionLost, match="timed out"):
            await session.send(item("b@remote.test", body=big * 8000))  # 8 MB
        assert not session.alive

    run(body, Behaviour(stall_body=True))


def test_refused_greeting() -> None:
    async def body(server: Recorder) -> None:
        with pytest.raises(HostUnusable, match=r"refused service: 554 5\.3\.2 Go away"):
            await connect(server)

    server = run(body, Behaviour(greeting="554 5.3.2 Go away"))
    assert server.commands == []


# -- replies that do not add up --------------------------------------------------------


def test_an_extra_reply_is_never_taken_for_the_next_one() -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        assert kinds(await session.send(item("b@remote.test"))) == [DELIVERED]
        assert not session.alive, "the reply nobody asked for ended the session"

    run(body, Behaviour(final_reply="250 2.0.0 Queued\r\n250 2.0.0 Queued again"))


def test_an_unsolicited_reply_between_messages_ends_the_session() -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        assert session.alive
        server.say("421 4.4.2 Idle timeout")
        await wait_until(lambda: not session.alive, 5, "the session to notice")
        with pytest.raises(SessionLost):
            await session.send(item("b@remote.test"))

    run(body)


@pytest.mark.parametrize("garbage", ["HTTP/1.1 400 Bad Request", "250 " + "x" * 5000,
                                     "250-a\r\n550 b"])
def test_garbage_replies_lose_the_session(garbage: str) -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        with pytest.raises(SessionLost, match="protocol error"):
            await session.send(item("b@remote.test"))
        assert not session.alive

    run(body, Behaviour(mail_reply=garbage))


def test_no_control_character_reaches_the_server() -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        outcomes = await session.send(item("b@remote.test", "x@remote.test>\r\nRSET\r\nRCPT TO:<y"))
        assert kinds(outcomes) == [DELIVERED, PERMANENT] and outcomes[1].status == "5.1.3"
        bad_sender = item("b@remote.test", sender="a@nmail.test\r\nQUIT")
        assert kinds(await session.send(bad_sender)) == [PERMANENT]

    server = run(body)
    assert server.verbs() == ["EHLO", "MAIL", "RCPT", "DATA"]


def test_a_body_with_bare_line_endings_and_dots_is_one_message() -> None:
    content = b"Subject: t\r\n\r\n.leading dot\r\nsmuggled\n.\r\nMAIL FROM:<x@y>\r\n..two\r\n."

    async def body(server: Recorder) -> None:
        session = await connect(server)
        assert kinds(await session.send(item("b@remote.test", body=content))) == [DELIVERED]
        assert kinds(await session.send(item("c@remote.test"))) == [DELIVERED]

    server = run(body)
    assert len(server.messages) == 2
    assert server.messages[0].content == (
        b"Subject: t\r\n\r\n.leading dot\r\nsmuggled\r\n.\r\nMAIL FROM:<x@y>\r\n..two\r\n.\r\n"
    )


def test_smtputf8_needed_but_not_offered() -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        outcomes = await session.send(item("j\u00f6rg@remote.test", "b@remote.test"))
        assert kinds(outcomes) == [PERMANENT, PERMANENT]
        assert {o.status for o in outcomes} == {"5.6.7"}

    server = run(body, Behaviour(extensions=("PIPELINING",)))
    assert "MAIL" not in server.verbs()


def test_smtputf8_used_when_offered() -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        assert kinds(await session.send(item("j\u00f6rg@remote.test"))) == [DELIVERED]

    server = run(body)
    assert server.commands[1].line.endswith(" SMTPUTF8")
    assert server.messages[0].recipients == ["j\u00f6rg@remote.test"]


# -- greeting, TLS, AUTH ---------------------------------------------------------------


def test_helo_when_ehlo_is_refused() -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        assert kinds(await session.send(item("b@remote.test"))) == [DELIVERED]

    server = run(body, Behaviour(ehlo_reply="502 5.5.1 EHLO not implemented"))
    assert server.verbs() == ["EHLO", "HELO", "MAIL", "RCPT", "DATA"]
    assert server.commands[2].line == "MAIL FROM:<a@nmail.test>", "no extensions after HELO"


def test_ehlo_4xx_makes_the_host_unusable() -> None:
    async def body(server: Recorder) -> None:
        with pytest.raises(HostUnusable, match="451"):
            await connect(server)

    run(body, Behaviour(ehlo_reply="451 4.3.0 Not now"))


def test_starttls_then_ehlo_again(tmp_path: Path) -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server, TLS_OPPORTUNISTIC)
        assert session.tls
        assert kinds(await session.send(item("b@remote.test"))) == [DELIVERED]
        await session.close()
        await quit_done(server)

    server = run(body, tls=self_signed_context(tmp_path, "rec.test"))
    assert server.verbs()[:3] == ["EHLO", "STARTTLS", "EHLO"]
    assert server.messages[0].tls


def test_implicit_tls(tmp_path: Path) -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server, TLS_IMPLICIT)
        assert session.tls
        assert kinds(await session.send(item("b@remote.test"))) == [DELIVERED]
        await session.close()
        await quit_done(server)

    server = run(body, tls=self_signed_context(tmp_path, "rec.test"), implicit_tls=True)
    assert server.verbs() == ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]
    assert server.messages[0].tls


def test_starttls_handshake_failure_is_marked(tmp_path: Path) -> None:
    async def body(server: Recorder) -> None:
        with pytest.raises(HostUnusable) as failed:
            await connect(server, TLS_OPPORTUNISTIC)
        assert failed.value.tls_failed

    run(body, Behaviour(close_at_tls=True), tls=self_signed_context(tmp_path, "rec.test"))


def test_a_reply_injected_after_starttls_is_refused(tmp_path: Path) -> None:
    async def body(server: Recorder) -> None:
        with pytest.raises(HostUnusable) as failed:
            await connect(server, TLS_OPPORTUNISTIC)
        assert failed.value.tls_failed

    behaviour = Behaviour(starttls_reply="220 go ahead\r\n250 injected in the clear")
    run(body, behaviour, tls=self_signed_context(tmp_path, "rec.test"))


def test_required_tls_not_offered() -> None:
    async def body(server: Recorder) -> None:
        with pytest.raises(HostUnusable, match="does not offer STARTTLS") as failed:
            await connect(server, TLS_REQUIRED)
        assert not failed.value.tls_failed

    server = run(body)
    assert "MAIL" not in server.verbs()


@pytest.mark.parametrize("mechanisms", [("LOGIN", "PLAIN"), ("LOGIN",)])
def test_auth(mechanisms: tuple[str, ...]) -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server, username="relay", password="s3cret")
        assert kinds(await session.send(item("b@remote.test"))) == [DELIVERED]

    server = run(body, Behaviour(auth={"relay": "s3cret"}, auth_mechanisms=mechanisms))
    assert server.logins == [("relay", "s3cret")]
    auth = next(c.line for c in server.commands if c.line.startswith("AUTH"))
    assert auth.split()[1] == ("PLAIN" if "PLAIN" in mechanisms else "LOGIN")


@pytest.mark.parametrize("mechanisms", [("PLAIN",), ("LOGIN",), ("CRAM-MD5",)])
def test_auth_refused_makes_the_host_unusable(mechanisms: tuple[str, ...]) -> None:
    async def body(server: Recorder) -> None:
        with pytest.raises(HostUnusable, match=r"535|no AUTH PLAIN or LOGIN"):
            await connect(server, username="relay", password="wrong")
        await quit_done(server)

    server = run(body, Behaviour(auth={"relay": "s3cret"}, auth_mechanisms=mechanisms))
    assert server.logins == [] and server.verbs()[-1] == "QUIT"


def test_close_waits_for_the_reply_to_quit_then_hangs_up() -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        await session.close()
        assert not session.alive
        await quit_done(server)  # the server left the hanging up to us

    server = run(body, Behaviour(linger_after_quit=True))
    assert server.verbs() == ["EHLO", "QUIT"]


def test_close_gives_up_on_a_silent_quit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smtp_client, "QUIT_TIMEOUT", 0.2)

    async def body(server: Recorder) -> None:
        session = await connect(server)
        await session.close()
        await quit_done(server)

    run(body, Behaviour(silent_from="QUIT", linger_after_quit=True))


def test_abort_hangs_up_without_quit() -> None:
    async def body(server: Recorder) -> None:
        session = await connect(server)
        session.abort()
        assert not session.alive
        await wait_until(lambda: server.sessions[0].transport is None, 5, "the hang-up")

    server = run(body)
    assert "QUIT" not in server.verbs()
