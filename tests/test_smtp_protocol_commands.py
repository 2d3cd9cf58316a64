"""The SMTP state machine: greeting, EHLO/HELO, command order, simple verbs, limits."""

from __future__ import annotations

import pytest

from nmail.policy.decision import Decision
from nmail.protocols.smtp import (
    Ehlo,
    Event,
    Expn,
    Helo,
    Help,
    MailFrom,
    Noop,
    ProtocolError,
    Quit,
    RcptTo,
    Rset,
    SmtpConnection,
    SmtpOptions,
    SmtpState,
    SmtpUsageError,
    Vrfy,
)
from smtp_rig import Driver, final_lines

TX = "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@test.local>\r\n"


def test_greeting_names_the_host() -> None:
    d = Driver(SmtpOptions(hostname="mx.example.com", banner="ESMTP nmail"))
    assert d.greeting == "220 mx.example.com ESMTP nmail\r\n"
    assert d.conn.state is SmtpState.CONNECTED


def test_ehlo_advertises_the_extensions() -> None:
    d = Driver(
        SmtpOptions(hostname="mx.test", max_message_size=12345), plaintext_auth_allowed=False
    )
    lines = d.send("EHLO client.example.org\r\n")
    assert lines[0] == "250-mx.test"
    assert lines[1:] == [
        "250-PIPELINING",
        "250-SIZE 12345",
        "250-8BITMIME",
        "250-SMTPUTF8",
        "250-ENHANCEDSTATUSCODES",
        "250 DSN",
    ]
    assert d.events == [Ehlo("client.example.org")]
    assert d.conn.state is SmtpState.READY
    assert d.conn.received_protocol == "ESMTP"


def test_ehlo_offers_starttls_only_when_configured_and_not_active() -> None:
    options = SmtpOptions(starttls_available=True)
    plain = Driver(options, plaintext_auth_allowed=False).send("EHLO c.test\r\n")
    assert "250-STARTTLS" in plain or "250 STARTTLS" in plain
    assert not any("AUTH" in line for line in plain)
    secured = Driver(options, tls_active=True).send("EHLO c.test\r\n")
    assert not any("STARTTLS" in line for line in secured)
    assert secured[-1] == "250 AUTH PLAIN LOGIN"
    none = Driver(SmtpOptions(), plaintext_auth_allowed=False).send("EHLO c.test\r\n")
    assert not any("STARTTLS" in line for line in none)


def test_ehlo_offers_auth_in_plaintext_only_where_allowed() -> None:
    allowed = Driver(plaintext_auth_allowed=True).send("EHLO c.test\r\n")
    assert allowed[-1] == "250 AUTH PLAIN LOGIN"
    refused = Driver(plaintext_auth_allowed=False).send("EHLO c.test\r\n")
    assert not any("AUTH" in line for line in refused)
    disabled = Driver(SmtpOptions(auth_available=False), tls_active=True).send("EHLO c.test\r\n")
    assert not any("AUTH" in line for line in disabled)


def test_helo_is_plain_smtp_without_parameters() -> None:
    d = Driver()
    assert d.send("HELO client.test\r\n") == ["250 mx.test"]
    assert d.events == [Helo("client.test")]
    assert d.conn.received_protocol == "SMTP"
    assert d.last("MAIL FROM:<a@example.org> SIZE=10\r\n").startswith("555 5.5.4")
    assert d.last("MAIL FROM:<a@example.org>\r\n") == "250 2.1.0 Sender OK"


@pytest.mark.parametrize(
    "domain",
    ["client.example.org", "localhost", "[192.0.2.1]", "[IPv6:2001:db8::1]", "DESKTOP_42.lan"],
)
def test_ehlo_accepts_domains_and_address_literals(domain: str) -> None:
    assert Driver().send(f"EHLO {domain}\r\n")[0] == "250-mx.test"


@pytest.mark.parametrize(
    ("argument", "code"),
    [
        ("", "501 5.5.4"),
        ("bad..domain", "501 5.5.2"),
        ("-dash.example", "501 5.5.2"),
        ("[300.1.1.1]", "501 5.5.2"),
        ("[IPv6:nothex]", "501 5.5.2"),
        ("host name", "501 5.5.2"),
        ("exämple.org", "501 5.5.2"),
        ("a" * 64 + ".example", "501 5.5.2"),
    ],
)
def test_ehlo_refuses_bad_domains(argument: str, code: str) -> None:
    d = Driver()
    assert d.last(f"EHLO {argument}\r\n").startswith(code)
    assert d.conn.state is SmtpState.CONNECTED
    assert isinstance(d.events[-1], ProtocolError)


@pytest.mark.parametrize(
    ("commands", "reply"),
    [
        ("MAIL FROM:<a@example.org>\r\n", "503 5.5.1 Send EHLO/HELO first"),
        ("RCPT TO:<b@test.local>\r\n", "503 5.5.1 Send EHLO/HELO first"),
        ("DATA\r\n", "503 5.5.1 Send EHLO/HELO first"),
        ("EHLO c.test\r\nRCPT TO:<b@test.local>\r\n", "503 5.5.1 Need MAIL before RCPT"),
        ("EHLO c.test\r\nDATA\r\n", "503 5.5.1 Need MAIL before DATA"),
        ("EHLO c.test\r\nMAIL FROM:<a@example.org>\r\nDATA\r\n", "503 5.5.1 Need RCPT before DATA"),
        (
            "EHLO c.test\r\nMAIL FROM:<a@example.org>\r\nMAIL FROM:<x@example.org>\r\n",
            "503 5.5.1 Sender already specified",
        ),
    ],
)
def test_commands_in_the_wrong_state_get_503(commands: str, reply: str) -> None:
    d = Driver()
    assert d.send(commands)[-1] == reply


def test_data_after_only_refused_recipients_is_554() -> None:
    d = Driver(
        decide=lambda e: (
            Decision(550, "5.1.1", "no") if isinstance(e, RcptTo) else Decision(250, "2.0.0", "OK")
        )
    )
    lines = final_lines(d.send("EHLO c.test\r\n" + TX + "DATA\r\n"))
    assert lines[-2:] == ["550 5.1.1 no", "554 5.5.1 No valid recipients"]
    assert d.conn.state is SmtpState.MAIL


def test_unknown_commands_get_500_5_5_1() -> None:
    d = Driver()
    assert d.last("BDAT 100 LAST\r\n") == "500 5.5.1 Command unrecognized"
    assert d.last("\r\n") == "500 5.5.1 Command unrecognized"
    assert d.last("GETX / HTTP/1.1\r\n") == "500 5.5.1 Command unrecognized"
    assert d.conn.bad_commands == 3


@pytest.mark.parametrize("line", ["\u017fTARTTLS", "qu\u0131t", "ma\u0131l FROM:<a@b.test>",
                                  "\ufb06ARTTLS", "EHLO\u00a0c.test"])
def test_verbs_are_ascii_words(line: str) -> None:
    """Unicode case mapping makes "\u017fTARTTLS" (long s) STARTTLS and "qu\u0131t"
    (dotless i) QUIT: words a filter in front of us does not read as commands."""
    d = Driver()
    d.send("EHLO c.test\r\n")
    assert d.last(line + "\r\n") == "500 5.5.1 Command unrecognized"
    assert d.conn.bad_commands == 1


@pytest.mark.parametrize("verb", ["GET", "POST", "CONNECT", "head", "PUT", "OPTIONS"])
def test_an_http_request_ends_the_session_at_once(verb: str) -> None:
    """A browser or proxy made to talk to port 25 gets one reply, not one per header."""
    d = Driver()
    lines = d.send(f"{verb} / HTTP/1.1\r\nHost: mx.test\r\nMAIL FROM:<a@b.example>\r\n\r\n")
    assert lines == ["221 2.7.0 This is a mail server, not a web server or proxy"]
    assert d.conn.state is SmtpState.CLOSED


def test_verbs_are_case_insensitive_and_bare_lf_ends_a_command_line() -> None:
    d = Driver()
    assert d.send("ehlo c.test\n")[0] == "250-mx.test"
    assert d.last("mail from:<a@example.org>\n") == "250 2.1.0 Sender OK"


def test_vrfy_help_noop_expn() -> None:
    d = Driver()
    assert d.last("VRFY bob\r\n") == (
        "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery"
    )
    assert d.last("VRFY\r\n").startswith("501 5.5.4")
    assert d.last("HELP\r\n").startswith("214 2.0.0")
    assert d.last("NOOP\r\n") == "250 2.0.0 OK"
    assert d.last("NOOP anything at all\r\n") == "250 2.0.0 OK"
    assert d.last("EXPN staff\r\n").startswith("502 5.5.1")
    kinds = [type(e) for e in d.events]
    assert kinds == [Vrfy, ProtocolError, Help, Noop, Noop, Expn]


def test_rset_ends_the_transaction_but_keeps_the_greeting() -> None:
    d = Driver()
    d.send("EHLO c.test\r\n" + TX)
    assert d.conn.state is SmtpState.RCPT
    assert d.last("RSET\r\n") == "250 2.0.0 OK"
    assert d.conn.state is SmtpState.READY
    assert d.conn.sender is None and d.conn.recipients == ()
    assert d.last("RSET now\r\n").startswith("501 5.5.4")
    assert d.last("MAIL FROM:<a@example.org>\r\n") == "250 2.1.0 Sender OK"
    assert isinstance(d.of_type(Rset)[0], Rset)


def test_rset_before_ehlo_stays_before_ehlo() -> None:
    d = Driver()
    assert d.last("RSET\r\n") == "250 2.0.0 OK"
    assert d.conn.state is SmtpState.CONNECTED


def test_ehlo_in_a_transaction_resets_it() -> None:
    d = Driver()
    d.send("EHLO c.test\r\n" + TX)
    d.send("EHLO again.test\r\n")
    assert d.conn.state is SmtpState.READY and d.conn.sender is None
    assert d.conn.helo == "again.test"


def test_quit_says_bye_and_ignores_everything_after() -> None:
    d = Driver()
    assert d.send("QUIT\r\nEHLO c.test\r\n") == ["221 2.0.0 Bye"]
    assert d.conn.closed
    assert d.send("NOOP\r\n") == []
    assert d.of_type(Quit) == [Quit()]
    assert not d.of_type(Ehlo)


def test_overlong_command_line_is_refused_and_the_rest_of_it_dropped() -> None:
    d = Driver()
    d.send("EHLO c.test\r\n")
    line = "NOOP " + "x" * 600 + " MAIL FROM:<evil@example.org>\r\n"
    assert d.send(line) == ["500 5.5.2 Line too long"]
    assert d.last("NOOP\r\n") == "250 2.0.0 OK"
    assert not d.of_type(MailFrom)


def test_command_line_limit_is_512_octets_with_crlf() -> None:
    d = Driver()
    fits = "NOOP " + "x" * (512 - 2 - 5) + "\r\n"
    assert len(fits) == 512
    assert d.last(fits) == "250 2.0.0 OK"
    over = "NOOP " + "x" * (512 - 1 - 5) + "\r\n"
    assert d.last(over) == "500 5.5.2 Line too long"


def test_overlong_line_arriving_in_pieces_is_dropped_to_its_end() -> None:
    d = Driver()
    assert d.send("NOOP " + "y" * 700) == ["500 5.5.2 Line too long"]
    assert d.send("z" * 5000) == []
    assert d.send("zzz\r\nQUIT\r\n") == ["221 2.0.0 Bye"]


def test_invalid_utf8_command_is_a_syntax_error() -> None:
    d = Driver()
    assert d.last(b"EHLO \xff\xfe\r\n") == "500 5.5.2 Syntax error"


def test_too_many_bad_commands_close_the_session() -> None:
    d = Driver(SmtpOptions(max_bad_commands=3))
    lines = d.send("XXX\r\nYYY\r\nZZZ\r\nNOOP\r\n")
    assert lines == [
        "500 5.5.1 Command unrecognized",
        "500 5.5.1 Command unrecognized",
        "500 5.5.1 Command unrecognized",
        "421 4.7.0 Too many errors",
    ]
    assert d.conn.closed
    closing = d.events[-1]
    assert isinstance(closing, ProtocolError) and closing.closes
    assert not d.of_type(Noop)


def test_default_flood_limit_is_twenty() -> None:
    d = Driver()
    lines = d.send("BAD\r\n" * 25)
    assert lines.count("500 5.5.1 Command unrecognized") == 20
    assert lines[-1] == "421 4.7.0 Too many errors"


def test_pipelined_commands_are_answered_in_order() -> None:
    d = Driver()
    lines = final_lines(
        d.send(
            "EHLO c.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@test.local>\r\n"
            "RCPT TO:<c@test.local>\r\nDATA\r\nhello\r\n.\r\nQUIT\r\n"
        )
    )
    assert lines == [
        "250 AUTH PLAIN LOGIN",
        "250 2.1.0 Sender OK",
        "250 2.1.5 Recipient OK",
        "250 2.1.5 Recipient OK",
        "354 End data with <CR><LF>.<CR><LF>",
        "250 2.0.0 Message accepted",
        "221 2.0.0 Bye",
    ]


def test_bytes_may_arrive_one_at_a_time() -> None:
    d = Driver()
    out: list[str] = []
    for byte in b"EHLO c.test\r\n" + TX.encode() + b"DATA\r\nhi\r\n.\r\n":
        out += d.send(bytes([byte]))
    assert final_lines(out)[-1] == "250 2.0.0 Message accepted"


def test_the_connection_waits_for_each_decision() -> None:
    conn = SmtpConnection(SmtpOptions())
    conn.receive_data(b"EHLO c.test\r\nMAIL FROM:<a@example.org>\r\nNOOP\r\n")
    assert isinstance(conn.next_event(), Ehlo)
    event = conn.next_event()
    assert isinstance(event, MailFrom)
    assert conn.awaiting_decision is event
    with pytest.raises(SmtpUsageError):
        conn.next_event()
    with pytest.raises(SmtpUsageError):
        conn.accept_rcpt()
    with pytest.raises(SmtpUsageError):
        conn.reject(Decision(250, "2.0.0", "not a refusal"))
    conn.reject(Decision(550, "5.7.1", "Go away"))
    assert isinstance(conn.next_event(), Noop)
    assert conn.data_to_send().endswith(b"550 5.7.1 Go away\r\n250 2.0.0 OK\r\n")


def test_decision_texts_reach_the_client() -> None:
    def decide(event: Event) -> Decision:
        if isinstance(event, RcptTo) and event.address.startswith("nobody"):
            return Decision(550, "5.1.1", f"Mailbox unavailable <{event.address}>")
        return Decision(250, "2.0.0", "Fine")

    d = Driver(decide=decide)
    lines = final_lines(d.send("EHLO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<nobody@test.local>\r\n"))
    assert lines[-2:] == ["250 2.0.0 Fine", "550 5.1.1 Mailbox unavailable <nobody@test.local>"]
    assert d.conn.sender == ""


def test_too_many_recipients() -> None:
    d = Driver(SmtpOptions(max_recipients=3))
    d.send("EHLO c.test\r\nMAIL FROM:<a@example.org>\r\n")
    lines = d.send("".join(f"RCPT TO:<u{i}@test.local>\r\n" for i in range(5)))
    assert lines == ["250 2.1.5 Recipient OK"] * 3 + ["452 4.5.3 Too many recipients"] * 2
    assert len(d.conn.recipients) == 3


def test_default_recipient_limit_is_one_hundred() -> None:
    d = Driver()
    d.send("EHLO c.test\r\nMAIL FROM:<a@example.org>\r\n")
    lines = d.send("".join(f"RCPT TO:<u{i}@test.local>\r\n" for i in range(101)))
    assert lines.count("250 2.1.5 Recipient OK") == 100
    assert lines[-1] == "452 4.5.3 Too many recipients"


def test_terminate_sends_a_last_reply() -> None:
    d = Driver()
    d.send("EHLO c.test\r\n" + TX)
    from nmail.protocols.smtp.replies import SERVICE_SHUTTING_DOWN

    d.conn.terminate(SERVICE_SHUTTING_DOWN)
    assert d.conn.data_to_send() == b"421 4.3.2 Service shutting down\r\n"
    assert d.conn.closed
    assert d.send("NOOP\r\n") == []


def test_busy_while_a_transaction_is_open() -> None:
    d = Driver()
    d.send("EHLO c.test\r\n")
    assert not d.conn.busy
    d.send("MAIL FROM:<a@example.org>\r\n")
    assert d.conn.busy
    d.send("RSET\r\n")
    assert not d.conn.busy


def test_postmaster_without_domain() -> None:
    d = Driver(SmtpOptions(postmaster_address="postmaster@example.com"))
    d.send("EHLO c.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<Postmaster>\r\n")
    assert d.of_type(RcptTo)[0].address == "postmaster@example.com"


def test_options_refuse_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        SmtpOptions(max_recipients=0)


def test_decision_text_cannot_break_the_reply_line() -> None:
    d = Driver(decide=lambda e: Decision(550, "5.7.1", "No\r\n250 2.0.0 forged"))
    d.send("EHLO c.test\r\n")
    assert d.send("MAIL FROM:<a@example.org>\r\n") == ["550 5.7.1 No 250 2.0.0 forged"]


def test_multiline_reply_format() -> None:
    from nmail.protocols.smtp.replies import Reply

    assert Reply(250, None, ("a", "b", "c")).encode() == b"250-a\r\n250-b\r\n250 c\r\n"
    assert Reply(550, "5.1.1", ("x", "y")).encode() == b"550-5.1.1 x\r\n550 5.1.1 y\r\n"
