"""The quick path for common command lines (protocols/smtp/quick.py) against the full parser.

Every line QUICK_LINE matches must give exactly what the full parser gives
(address, parameters, EHLO name); a connection that takes the quick path
must send the same bytes, emit the same events and end in the same state as
one that parses every line in full, for any line and any session state,
hostile lines included. The reference connection also reads lines the way
connection.py did before (a find bounded by the line limit, a copy to bytes).
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmail.policy.decision import ACCEPT, Decision
from nmail.protocols.smtp import (
    AuthCredentials,
    Ehlo,
    Event,
    Helo,
    MailFrom,
    MailParams,
    MessageData,
    RcptTo,
    SmtpConnection,
    SmtpOptions,
    StartTls,
)
from nmail.protocols.smtp import replies as r
from nmail.protocols.smtp import state as smtp_state
from nmail.protocols.smtp.addresses import parse_helo_domain, parse_mailbox, split_path
from nmail.protocols.smtp.commands import SmtpCommands
from nmail.protocols.smtp.events import NO_RCPT_PARAMS
from nmail.protocols.smtp.options import MAX_COMMAND_LINE, MAX_SASL_LINE
from nmail.protocols.smtp.params import parse_mail_params, parse_rcpt_params
from nmail.protocols.smtp.quick import QUICK_LINE
from nmail.protocols.smtp.replies import CommandError


class FullParser(SmtpConnection):
    """Every line through the full dispatch, read as before the quick path."""

    _dispatch = SmtpCommands._dispatch

    def _take_line(self) -> str | None:
        buf = self._buf
        if self._discarding_line:
            end = buf.find(b"\n")
            if end < 0:
                buf.clear()
                return None
            del buf[: end + 1]
            self._discarding_line = False
        limit = MAX_SASL_LINE if self._state is smtp_state.AUTH else MAX_COMMAND_LINE
        end = buf.find(b"\n", 0, limit)
        if end < 0:
            if len(buf) < limit:
                return None
            rest = buf.find(b"\n", limit)
            if rest < 0:
                buf.clear()
                self._discarding_line = True
            else:
                del buf[: rest + 1]
            self._end_sasl()
            self._error(r.LINE_TOO_LONG)
            return None
        line = bytes(buf[:end])
        del buf[: end + 1]
        raw = line[:-1] if line.endswith(b"\r") else line
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self._end_sasl()
            self._error(r.SYNTAX_ERROR)
            return None


# -- generated lines ----------------------------------------------------------------

ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
# What a mutation puts in: specials of the address syntax, controls, spaces,
# non-ASCII (upper-cases to ASCII: ı -> I, ſ -> S; bidi; NBSP; a surrogate).
HOSTILE = ' "\\()<>[]:;@,.=+\x00\r\n\t\x0b\x7fé\u202e\u0131\u017f\u00a0\ud800ABZaz09-_'


def case_variants(word: str) -> st.SearchStrategy[str]:
    """`word` with each letter in either case (only ASCII ones)."""
    def spell(upper: list[bool]) -> str:
        return "".join(c.upper() if u else c.lower() for c, u in zip(word, upper, strict=True))

    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(spell)


atoms = st.text(alphabet=ATEXT, min_size=1, max_size=12)
local_parts = st.one_of(
    st.lists(atoms, min_size=1, max_size=4).map(".".join),
    st.sampled_from(["a" * 64, "a" * 65, "a" * 32 + "." + "b" * 31, "a" * 32 + "." + "b" * 32]),
)
labels = st.one_of(
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True),
    st.sampled_from(["a" * 63, "a" * 64, "b" * 61 + "-c", "xn--bcher-kva"]),
)
domains = st.one_of(
    st.lists(labels, min_size=1, max_size=4).map(".".join),
    st.sampled_from(["b" * 63 + "." + "b" * 63 + "." + "c" * 61,
                     "b" * 63 + "." + "b" * 63 + "." + "c" * 62]),
)
mailboxes = st.tuples(local_parts, domains).map("@".join)
sizes = st.one_of(st.from_regex(r"[0-9]{1,21}", fullmatch=True), st.just("9" * 20))
size_params = st.tuples(case_variants("size"), sizes).map("=".join)
body_params = st.tuples(
    case_variants("body"), st.one_of(case_variants("7bit"), case_variants("8bitmime"))
).map("=".join)
mail_params = st.one_of(
    st.just([]),
    st.lists(st.one_of(size_params, body_params), min_size=1, max_size=3),
)
quick_forms = st.one_of(
    st.tuples(case_variants("mail from:"), st.one_of(mailboxes, st.just("")), mail_params).map(
        lambda p: f"{p[0]}<{p[1]}>" + "".join(" " + param for param in p[2])
    ),
    st.tuples(case_variants("rcpt to:"), mailboxes).map(lambda p: f"{p[0]}<{p[1]}>"),
    st.tuples(
        st.one_of(case_variants("helo"), case_variants("ehlo")),
        st.one_of(domains, st.from_regex(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,5}[A-Za-z0-9_])?"
                                         r"(\.[A-Za-z0-9_]{1,3})*", fullmatch=True)),
    ).map(" ".join),
)
"""Lines of the forms the quick path takes (and a few just past its limits)."""


@st.composite
def mutated(draw: st.DrawFn, lines: st.SearchStrategy[str]) -> str:
    """A quick-form line with a few characters put in, replaced or taken out."""
    line = draw(lines)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        start, end = line.find("<"), line.find(">")
        if 0 <= start < end and draw(st.booleans()):  # inside the path, half the time
            at = draw(st.integers(min_value=start + 1, max_value=end))
        else:
            at = draw(st.integers(min_value=0, max_value=len(line)))
        char = draw(st.one_of(st.sampled_from(HOSTILE), st.sampled_from(HOSTILE), st.characters()))
        how = draw(st.sampled_from(["insert", "replace", "delete"]))
        if how == "insert":
            line = line[:at] + char + line[at:]
        elif how == "replace":
            line = line[:at] + char + line[at + 1 :]
        else:
            line = line[:at] + line[at + 1 :]
    return line


ALL_LINES = st.one_of(quick_forms, mutated(quick_forms), st.text(max_size=40))


# -- the match against the full parser, line by line --------------------------------


def full_mail(arg: str, esmtp: bool) -> tuple[str, MailParams]:
    path, rest = split_path(arg[5:])
    mail_params = parse_mail_params(rest, esmtp=esmtp)
    address = parse_mailbox(path, utf8=mail_params.smtputf8, recipient=False) if path else ""
    return address, mail_params


def full_rcpt(arg: str, utf8: bool) -> str:
    path, rest = split_path(arg[3:])
    assert parse_rcpt_params(rest, esmtp=True, utf8=utf8) is NO_RCPT_PARAMS
    return parse_mailbox(path, utf8=utf8, recipient=True)


def check_line(line: str) -> None:
    quick = QUICK_LINE.match(line)
    if quick is None:
        return
    mail, size, body, body_first, size_after, rcpt, greeting, name = quick.groups()
    verb, _, arg = line.rstrip(" \t").partition(" ")
    assert (verb, arg) == (line[:4], line[5:])
    if rcpt is not None:
        assert verb.upper() == "RCPT" and arg[:3].upper() == "TO:"
        assert full_rcpt(arg, utf8=False) == rcpt
        assert full_rcpt(arg, utf8=True) == rcpt
        assert rcpt.lower() != "postmaster"
    elif mail is not None:
        assert verb.upper() == "MAIL" and arg[:5].upper() == "FROM:"
        if body_first is not None:
            size, body = size_after, body_first
        expected = MailParams(
            size=None if size is None else int(size), body=None if body is None else body.upper()
        )
        assert full_mail(arg, esmtp=True) == (mail, expected)
        if size is None and body is None:
            assert full_mail(arg, esmtp=False) == (mail, expected)
    else:
        assert greeting is not None and name is not None
        assert verb.upper() in ("HELO", "EHLO") and greeting == verb
        if len(name) <= 255:
            assert parse_helo_domain(arg) == name
        else:
            with pytest.raises(CommandError):
                parse_helo_domain(arg)


@settings(max_examples=1000, deadline=None)
@given(ALL_LINES)
def test_what_the_quick_line_matches_the_full_parser_reads_alike(line: str) -> None:
    check_line(line)


@pytest.mark.parametrize(
    "line",
    [
        "MAIL FROM:<a@test.local>",
        "mail from:<First.Last+tag@mail-1.example.org> SIZE=10240 BODY=8BITMIME",
        "MAIL FROM:<> BODY=7bit size=0",
        "MAIL FROM:<x@a-b.c> size=00000000000000000012",
        "RCPT TO:<b@test.local>",
        "rcpt to:<UPPER.local@x.y>",
        "EHLO client.example.org",
        "helo my_host",
        "RCPT TO:<" + "a" * 64 + "@" + "b" * 63 + "." + "b" * 63 + "." + "c" * 61 + ">",
    ],
)
def test_common_lines_are_quick(line: str) -> None:
    assert QUICK_LINE.match(line) is not None
    check_line(line)


@pytest.mark.parametrize(
    "line",
    [
        "MAIL FROM:<a@Test.local>",  # upper-case domain: the full parser lower-cases it
        "MAIL FROM:<a@test.local.>",  # the absolute form
        "MAIL FROM: <a@test.local>",
        "MAIL FROM:<a@test.local> ",
        "MAIL FROM:<a@test.local>  SIZE=1",
        "MAIL FROM:<a@test.local> SIZE=1 SIZE=2",
        "MAIL FROM:<a@test.local> SIZE=" + "1" * 21,
        "MAIL FROM:<a@test.local> SIZE=1 BODY=8BITMIME SMTPUTF8",
        "MAIL FROM:<\"a b\"@test.local>",
        "MAIL FROM:<a\"b@test.local>",
        "RCPT TO:<a\\b@test.local>",
        "RCPT TO:<a(b)@test.local>",
        "RCPT TO:<a,b@test.local>",
        "RCPT TO:<a b@test.local>",
        "RCPT TO:<a@b@test.local>",
        "RCPT TO:<a@test_x.local>",
        "MAIL FROM:<@relay.test:a@test.local>",
        "MAIL FROM:<a..b@test.local>",
        "MAIL FROM:<.a@test.local>",
        "MAIL FROM:<a@-test.local>",
        "MAIL FROM:<a@test-.local>",
        "MAIL FROM:<a@[127.0.0.1]>",
        "MAIL FROM:<üser@test.local>",
        "MAIL FROM:<a\x00@test.local>",
        "MAIL FROM:a@test.local",
        "MAıL FROM:<a@test.local>",
        "RCPT TO:<Postmaster>",
        "RCPT TO:<>",
        "RCPT TO:<b@test.local> NOTIFY=NEVER",
        "RCPT TO:<" + "a" * 65 + "@test.local>",
        "RCPT TO:<a@" + "b" * 64 + ".local>",
        "RCPT TO:<" + "a" * 64 + "@" + "b" * 63 + "." + "b" * 63 + "." + "c" * 62 + ">",
        "EHLO client.example.org ",
        "EHLO [127.0.0.1]",
        "EHLO -client",
    ],
)
def test_other_lines_go_to_the_full_parser(line: str) -> None:
    assert QUICK_LINE.match(line) is None


# -- whole sessions: the quick connection against the full one -------------------------

OPTIONS = [
    SmtpOptions(hostname="mx.test"),
    SmtpOptions(hostname="mx.test", max_message_size=1000, max_recipients=2, max_bad_commands=6),
    SmtpOptions(hostname="mx.test", auth_required=True, postmaster_address="pm@test.local"),
]
OPENINGS = [b"", b"EHLO c.test\r\n", b"HELO c.test\r\n", b"EHLO c.test\r\nMAIL FROM:<a@b.c>\r\n"]


def run(
    kind: type[SmtpConnection], options: SmtpOptions, chunks: list[bytes], decide: list[bool]
) -> list[tuple[object, ...]]:
    """Feed each chunk; after each, what the session sent, emitted and knows."""
    conn = kind(options, plaintext_auth_allowed=True)
    answers = itertools.chain(decide, itertools.repeat(True))
    trace: list[tuple[object, ...]] = [(conn.data_to_send(),)]
    for chunk in chunks:
        conn.receive_data(chunk)
        events: list[Event] = []
        while (event := conn.next_event()) is not None:
            events.append(event)
            if isinstance(event, StartTls):
                conn.tls_started()
            elif isinstance(event, AuthCredentials):
                conn.auth_succeeded(event.username)
            elif event.needs_decision:
                if next(answers):
                    conn.answer(ACCEPT)
                else:
                    conn.reject(Decision(550, "5.7.1", "No"))
        trace.append((
            conn.data_to_send(), events, conn.state, conn.helo, conn.esmtp, conn.sender,
            conn.mail_params, conn.recipients, conn.bad_commands, conn.buffered,
        ))
    return trace


def chunks_of(stream: bytes, cuts: list[int]) -> list[bytes]:
    bounds = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(OPTIONS),
    st.sampled_from(OPENINGS),
    st.lists(ALL_LINES, min_size=1, max_size=8),
    st.lists(st.booleans(), max_size=6),
)
def test_a_session_answers_alike_with_and_without_the_quick_path(
    options: SmtpOptions, opening: bytes, lines: list[str], decide: list[bool]
) -> None:
    data = [opening] + [(line + "\r\n").encode("utf-8", "surrogatepass") for line in lines]
    assert run(SmtpConnection, options, data, decide) == run(FullParser, options, data, decide)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            ALL_LINES.map(lambda line: (line + "\r\n").encode("utf-8", "surrogatepass")),
            st.binary(max_size=40),
            st.sampled_from([b"\n", b"\r", b"\r\n", b"x" * 600, b"y" * 520 + b"\r\n", b"\xff\r\n",
                             b"AUTH PLAIN\r\n", b"AUTH LOGIN\r\n", b"DATA\r\n", b".\r\n",
                             b"a" * 13000 + b"\r\n"]),
        ),
        max_size=12,
    ).map(b"".join),
    st.lists(st.integers(min_value=0), max_size=8),
)
def test_any_bytes_in_any_pieces_are_read_alike(stream: bytes, cuts: list[int]) -> None:
    chunks = chunks_of(b"EHLO c.test\r\n" + stream, cuts)
    assert run(SmtpConnection, OPTIONS[1], chunks, []) == run(FullParser, OPTIONS[1], chunks, [])


def test_the_quick_path_keeps_the_events_and_replies() -> None:
    conn = SmtpConnection(SmtpOptions(hostname="mx.test"))
    conn.receive_data(
        b"EHLO c.test\r\nMAIL FROM:<a@b.example> SIZE=20 BODY=8bitmime\r\n"
    )
    assert conn.next_event() is not None
    event = conn.next_event()
    assert event == MailFrom("a@b.example", MailParams(size=20, body="8BITMIME"))
    conn.answer(ACCEPT)
    conn.receive_data(b"RCPT TO:<c@d.example>\r\n")
    assert conn.next_event() == RcptTo("c@d.example")
    conn.answer(ACCEPT)
    assert conn.recipients == (("c@d.example", NO_RCPT_PARAMS),)
    assert conn.data_to_send().endswith(b"250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n")


@pytest.mark.parametrize(
    ("made", "fields"),
    [
        (MailParams(10, "8BITMIME", True, "HDRS", "id", "<>"),
         dict(size=10, body="8BITMIME", smtputf8=True, ret="HDRS", envid="id", auth="<>")),
        (MailParams(size=7),
         dict(size=7, body=None, smtputf8=False, ret=None, envid=None, auth=None)),
        (MailFrom("a@b.c"), dict(address="a@b.c", params=MailParams())),
        (MailFrom(address="", params=MailParams(size=1)), dict(address="", params=MailParams(1))),
        (RcptTo("x@y.z"), dict(address="x@y.z", params=NO_RCPT_PARAMS)),
        (Ehlo("c.test"), dict(domain="c.test")),
        (Helo(domain="c.test"), dict(domain="c.test")),
        (MessageData(b"x"), dict(content=b"x", dot_lines=None)),
        (MessageData(b"y", False), dict(content=b"y", dot_lines=False)),
    ],
)
def test_the_events_with_their_own_init_are_the_same_frozen_dataclasses(
    made: object, fields: dict[str, object]
) -> None:
    assert dataclasses.asdict(made) == dataclasses.asdict(type(made)(**fields))  # type: ignore[call-overload]
    assert made == type(made)(**fields)
    assert hash(made) == hash(type(made)(**fields))
    assert {f.name for f in dataclasses.fields(made)} == set(fields)  # type: ignore[arg-type]
    assert dataclasses.replace(made) == made  # type: ignore[type-var]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, next(iter(fields)), None)
    assert pickle.loads(pickle.dumps(made)) == made
    with pytest.raises(TypeError):
        type(made)(*fields.values(), None)  # one argument too many


@pytest.mark.parametrize("kind", [MailParams, Ehlo, Helo, MailFrom, RcptTo, MessageData])
def test_an_own_init_takes_every_field_as_the_dataclass_would(kind: type) -> None:
    parameters = list(inspect.signature(kind.__init__).parameters.values())[1:]
    fields = dataclasses.fields(kind)
    assert [p.name for p in parameters] == [f.name for f in fields]
    for parameter, field in zip(parameters, fields, strict=True):
        default = field.default
        if field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        assert parameter.default == (
            inspect.Parameter.empty if default is dataclasses.MISSING else default
        )


BOUNDARY_LINES = [
    "EHLO " + "a." * 127 + "a",  # 255 characters
    "EHLO " + "a." * 127 + "ab",  # 256
    "MAIL FROM:<" + "a" * 64 + "@b.c>",
    "MAIL FROM:<" + "a" * 65 + "@b.c>",
    "RCPT TO:<" + "a" * 64 + "@" + "b" * 63 + "." + "b" * 63 + "." + "c" * 61 + ">",  # 254
    "RCPT TO:<" + "a" * 64 + "@" + "b" * 63 + "." + "b" * 63 + "." + "c" * 62 + ">",  # 255
    "MAIL FROM:<a@b.c> SIZE=" + "9" * 20,
    "MAIL FROM:<a@b.c> SIZE=" + "9" * 21,
    "MAIL FROM:<a@b.c> SIZE=1000",  # the limit of OPTIONS[1]
    "MAIL FROM:<a@b.c> SIZE=1001",
    "NOOP\r",  # with the line's own CR: "NOOP\r\r\n"
    "QUIT \r",
    "MAIL FROM:<a@b.c>\r",
]


@pytest.mark.parametrize("opening", [b"EHLO c.test\r\n", b"HELO c.test\r\n"])
@pytest.mark.parametrize("options", OPTIONS[:2])
@pytest.mark.parametrize("line", BOUNDARY_LINES)
def test_lines_at_the_limits_are_answered_alike(
    opening: bytes, options: SmtpOptions, line: str
) -> None:
    # after EHLO/HELO, and inside a transaction with two recipients (the
    # limit of OPTIONS[1]) for RCPT
    tx = [b"MAIL FROM:<x@y.z>\r\n", b"RCPT TO:<r1@y.z>\r\n", b"RCPT TO:<r2@y.z>\r\n"]
    for before in ([], tx):
        data = [opening, *before, (line + "\r\n").encode(), b"MAIL FROM:<a@b.c> SIZE=5\r\n"]
        assert run(SmtpConnection, options, data, []) == run(FullParser, options, data, [])
