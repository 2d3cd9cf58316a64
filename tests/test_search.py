"""Full-text search on every database: Korean, English, addresses, fields, hostile queries."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from nmail.db.tables import message_search
from nmail.directory.model import Account
from nmail.mailstore.search import QueryError, SearchHit, search
from nmail.mailstore.search_indexer import SearchIndexer
from nmail.mailstore.search_terms import MAX_BODY_CHARS, MAX_QUERY_CHARS
from nmail.mailstore.store import MailStore, NewMessage
from test_mailstore_support import alice, mail_root, make_account, store, trace

__all__ = ["alice", "mail_root", "store"]  # fixtures


def _mail(subject: str, body: bytes, *, sender: str = "Bob <bob@sender.test>",
          to: str = "alice@example.test", headers: str = "") -> bytes:
    head = (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            "Date: Tue, 01 Jul 2025 10:00:00 +0000\r\nMIME-Version: 1.0\r\n" + headers)
    if "Content-Type" not in headers:
        head += "Content-Type: text/plain; charset=utf-8\r\n"
    return head.encode() + b"\r\n" + body


def _euckr_mail() -> bytes:
    body = "견적서를 보내 드립니다. 검토 부탁드립니다.\r\n".encode("cp949")
    encoded = base64.b64encode("거래처 견적".encode("cp949")).decode()
    subject = "=?ks_c_5601-1987?B?" + encoded + "?="
    return _mail(subject, body, sender="=?euc-kr?B?" + base64.b64encode(
        "김철수".encode("cp949")).decode() + "?= <kim@example.com>",
        headers="Content-Type: text/plain; charset=ks_c_5601-1987\r\n"
                "Content-Transfer-Encoding: 8bit\r\n")


def _html_mail() -> bytes:
    html = ("<html><head><style>.budget{color:red}</style></head><body>"
            "<p>다음 주 <b>회의록</b>을 확인해 주세요</p>"
            "<script>secretscriptword()</script><div>Quarterly&nbsp;meeting notes</div>"
            "</body></html>")
    return _mail("공지", html.encode(),
                 headers="Content-Type: text/html; charset=utf-8\r\n")


class Box:
    def __init__(self, engine: Engine, store: MailStore, account: Account,
                 mail_root: Path) -> None:
        self.engine = engine
        self.store = store
        self.account = account
        self.indexer = SearchIndexer(engine, mail_root)

    def put(self, content: bytes, folder: str = "INBOX", account: Account | None = None) -> int:
        [stored] = self.store.store([NewMessage(account or self.account, folder, trace(),
                                                content)])
        return stored.uid

    def find(self, query: str, **kw: object) -> list[tuple[str, int]]:
        self.indexer.catch_up()
        account = kw.pop("account", self.account)
        assert isinstance(account, Account)
        hits = search(self.engine, account.id, query, **kw)  # type: ignore[arg-type]
        return [(hit.folder, hit.uid) for hit in hits]


@pytest.fixture
def box(engine: Engine, store: MailStore, alice: Account, mail_root: Path) -> Box:
    return Box(engine, store, alice, mail_root)


def test_korean_words_are_found_inside_longer_words(box: Box) -> None:
    euckr = box.put(_euckr_mail())
    html = box.put(_html_mail())
    box.put(_mail("의회 소식", "국회 의사당\r\n".encode()))
    assert box.find("견적") == [("INBOX", euckr)]  # body 견적서를, subject 견적
    assert box.find("견적서") == [("INBOX", euckr)]
    assert box.find("회의") == [("INBOX", html)]  # 회의록을, split by a <b> tag
    assert box.find("회의록") == [("INBOX", html)]
    assert box.find("김철수") == [("INBOX", euckr)]  # an EUC-KR encoded name
    assert box.find("록회") == []
    assert box.find("의회") == [("INBOX", 3)]  # not 회의
    assert box.find("견") == [("INBOX", euckr)]  # one syllable: a prefix


def test_english_words_addresses_and_mixed_scripts(box: Box) -> None:
    plain = box.put(_mail("Budget review", b"Let's meet on Monday. Call 010-1234-5678.\r\n",
                          sender="Kim Minsu <kim@example.com>"))
    mixed = box.put(_mail("nmail 회의 agenda", "Agenda회의 for NMAIL2026\r\n".encode()))
    html = box.put(_html_mail())
    assert box.find("meet") == [("INBOX", html), ("INBOX", plain)]  # a prefix: meeting
    assert box.find("meet", fields={"body"}, folder_id=None) == [("INBOX", html),
                                                                ("INBOX", plain)]
    assert box.find("MONDAY") == [("INBOX", plain)]
    assert box.find("kim@example.com") == [("INBOX", plain)]
    assert box.find("Kim") == [("INBOX", plain)]
    assert box.find("010-1234-5678") == [("INBOX", plain)]
    assert box.find("agenda회의") == [("INBOX", mixed)]
    assert box.find("nmail2026") == [("INBOX", mixed)]
    assert box.find("quarterly meeting") == [("INBOX", html)]  # HTML text, &nbsp; decoded
    assert box.find("budget") == [("INBOX", plain)]  # not the HTML's <style> class
    assert box.find("secretscriptword") == []  # script content is not text
    assert box.find("meet budget") == [("INBOX", plain)]  # every word must match
    assert box.find("monday agenda") == []


def test_fields_folders_accounts_order_and_paging(box: Box, engine: Engine) -> None:
    first = box.put(_mail("invoice", b"nothing here\r\n"))
    second = box.put(_mail("hello", b"the invoice is attached\r\n"))
    sent = box.put(_mail("invoice copy", b"x\r\n", to="carol@example.com"), folder="Sent")
    bob = make_account(engine, "bob")
    box.store.ensure_account(bob)
    box.put(_mail("invoice for bob", b"x\r\n"), account=bob)
    assert box.find("invoice") == [("Sent", sent), ("INBOX", second), ("INBOX", first)]
    assert box.find("invoice", fields={"subject"}) == [("Sent", sent), ("INBOX", first)]
    assert box.find("invoice", fields={"body"}) == [("INBOX", second)]
    assert box.find("carol", fields={"to"}) == [("Sent", sent)]
    assert box.find("carol", fields={"from"}) == []
    assert box.find("bob@sender.test", fields={"from"})[-1] == ("INBOX", first)
    inbox = box.store.folder(box.account.id, "INBOX").id
    assert box.find("invoice", folder_id=inbox) == [("INBOX", second), ("INBOX", first)]
    assert box.find("invoice", limit=1, offset=1) == [("INBOX", second)]
    assert box.find("invoice", account=bob) == [("INBOX", 1)]
    hits = search(engine, box.account.id, "invoice", limit=1)
    assert hits == [SearchHit(hits[0].folder_id, "Sent", sent, hits[0].message_id)]


def test_expunged_messages_leave_the_index(box: Box, engine: Engine) -> None:
    keep = box.put(_mail("report one", b"quarterly\r\n"))
    gone = box.put(_mail("report two", b"quarterly\r\n"))
    assert box.find("quarterly") == [("INBOX", gone), ("INBOX", keep)]
    box.store.expunge(box.account.id, "INBOX", [gone])
    assert box.find("quarterly") == [("INBOX", keep)]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(message_search)).scalar() == 1


def test_bodies_are_indexed_to_a_bound(box: Box) -> None:
    long_body = ("filler " * (MAX_BODY_CHARS // 7 + 10) + "farbeyondword\r\n").encode()
    box.put(_mail("long", long_body))
    assert box.find("filler") == [("INBOX", 1)]
    assert box.find("farbeyondword") == []


def test_rebuild_makes_the_same_index(box: Box, engine: Engine) -> None:
    box.put(_euckr_mail())
    box.put(_html_mail())
    before = box.find("견적") + box.find("meeting")
    assert box.indexer.rebuild([box.account.id]) == 2
    assert box.find("견적") + box.find("meeting") == before
    assert box.indexer.rebuild(None) == 2


@pytest.mark.parametrize("query", [
    '"', '""', "*", "AND", "OR", "NOT", "NEAR", "NEAR(a b)", "a AND", '"unclosed',
    "') OR 1=1 --", "zb회의", "{subject}: x", "subject:x", "^start", "-minus", "+plus",
    "a*b", "(", ")", "~tilde", "@", "@@", "'", "\\", "%", "_", "\x00", "\u202e", ":*",
    "a <-> b", "!x", "x | y", "x & y", "회의\" OR \"x",
])
def test_hostile_queries_are_plain_text(box: Box, query: str) -> None:
    box.put(_mail("and or not near", "operators 회의 a b x y start minus plus tilde\r\n".encode()))
    hits = box.find(query)  # never a database error
    assert hits in ([], [("INBOX", 1)])


def test_operator_words_are_searched_as_words(box: Box) -> None:
    box.put(_mail("plain", b"cats and dogs\r\n"))
    box.put(_mail("other", b"cats or dogs\r\n"))
    assert box.find("AND") == [("INBOX", 1)]
    assert box.find("cats AND dogs") == [("INBOX", 1)]
    assert box.find('"cats') == [("INBOX", 2), ("INBOX", 1)]


def test_empty_long_and_bad_arguments(box: Box, engine: Engine) -> None:
    box.put(_mail("x", b"words\r\n"))
    assert box.find("") == []
    assert box.find("   \t ") == []
    assert box.find("!!! ??? ...") == []
    assert box.find("w" * MAX_QUERY_CHARS) == []
    with pytest.raises(QueryError):
        box.find("w" * (MAX_QUERY_CHARS + 1))
    with pytest.raises(QueryError):
        box.find(" ".join(f"w{i}" for i in range(40)))
    with pytest.raises(QueryError):
        box.find("words", fields={"bcc"})
    with pytest.raises(QueryError):
        box.find("words", fields=set())
    with pytest.raises(QueryError):
        box.find("words", limit=0)
    with pytest.raises(QueryError):
        box.find("words", offset=-1)


@pytest.mark.parametrize("plan", [
    # (PG_WINDOW, PG_FEW, MY_WINDOW, POSTING_COST): small windows send every
    # query below them; PG_FEW 1 makes PostgreSQL walk on past the GIN index,
    # MariaDB's posting cost chooses MATCH (0) or the walk (huge).
    (3, 5_000, 3, 0), (3, 1, 3, 10**9), (1, 1, 1, 0), (2, 3, 2, 10**9),
])
def test_every_plan_gives_the_same_results(
    box: Box, monkeypatch: pytest.MonkeyPatch, plan: tuple[int, int, int, int]
) -> None:
    """PostgreSQL and MariaDB look at the scope's newest rows first, then below
    them by their full-text index or by walking on (search_postgres,
    search_mariadb); SQLite has one plan. Every plan gives the same pages."""
    from nmail.mailstore import search_mariadb, search_postgres

    uids = [box.put(_mail(f"report {i}", f"quarterly 견적서 {i}\r\n".encode()),
                    folder="Sent" if i % 3 == 0 else "INBOX") for i in range(12)]
    box.put(_mail("other", "nothing 회의록을 meeting\r\n".encode()))
    for i in range(5):
        box.put(_mail(f"late {i}", b"filler words\r\n"), folder="INBOX" if i % 2 else "Sent")
    inbox = box.store.folder(box.account.id, "INBOX").id
    sent = box.store.folder(box.account.id, "Sent").id
    cases: list[tuple[str, dict[str, object]]] = [
        ("quarterly", {}), ("견적", {"limit": 5, "offset": 3}), ("quart", {"folder_id": inbox}),
        ("report 견적서", {"limit": 4}), ("nothing", {}), ("absent", {}), ("회의", {}),
        ("회의록 meet", {"fields": {"body"}}), ("report 1", {"fields": {"subject"}}),
        ("quarterly 견적서", {"folder_id": sent, "offset": 1, "limit": 2}),
        ("quarterly", {"folder_id": box.store.folder(box.account.id, "Trash").id}),
        ("filler", {"limit": 2}), ("words filler", {}),  # some in every window
    ]
    few = [box.find(query, **options) for query, options in cases]
    pg_window, pg_few, my_window, posting_cost = plan
    monkeypatch.setattr(search_postgres, "PG_WINDOW", pg_window)
    monkeypatch.setattr(search_postgres, "PG_FEW", pg_few)
    monkeypatch.setattr(search_mariadb, "MY_WINDOW", my_window)
    monkeypatch.setattr(search_mariadb, "POSTING_COST", posting_cost)
    assert [box.find(query, **options) for query, options in cases] == few
    assert len(few[0]) == len(uids)
    assert few[6] == few[7] == [("INBOX", 9)]
    assert few[8] == [("INBOX", 8), ("INBOX", 7), ("INBOX", 1)]  # 11, 10, 1: a prefix
