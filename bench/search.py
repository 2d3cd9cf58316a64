"""Full-text search at 100,000 messages: query latency, and indexing against delivery.

    python bench/search.py [--messages 100000] [--db URL] [--data DIR] [--runs 30]

Builds one account with N messages (Korean and English text, some EUC-KR,
some HTML) through the mail store (real files, group commits), then:

- delivery: messages/s of MailStore.store() in batches of 100 (what the
  index writer does for concurrent SMTP sessions), and
- indexing: messages/s of the search follower catching up on them
  (text extraction + insert), so "keeps up with delivery" is a ratio;
- search latency p50/p99 for several query shapes (rare and common words,
  Korean two-syllable and one-syllable, an address, two words, one folder,
  subject only), against the peer a webmail without a text index runs:
  LIKE '%word%' over the index's subject, from, to and preview columns
  (which does not even read the bodies).

`--data DIR` keeps the mail and, run again with the same --db, only times
the searches (a separate database: it adds an account named bench).

Measured 2026-12-06, 100,000 messages, 30 runs, 2 shared cores (ms):
SQLite at load 7-12: p50 0.14-13, p99 at most 30; indexing 1.47x delivery.
PostgreSQL at load 7-12 (two runs): p50 0.7-24, p99 at most 35 and 62
(common word 0.7-2.2 p50; before the newest-first walk, at load 10-11: 85
p50, 213 p99). MariaDB at load 9-11 (two runs): p50 1.3-30, p99 at most 25
and 112 (a rare word's first run after the LIKE peer emptied the 128 MB
buffer pool; before: rare words 270/499, a rare Korean phrase 4,535/6,201).

Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine, or_, select

from benchlib import bench_account, percentiles_ms
from nmail.db.engine import make_engine
from nmail.db.migrate import upgrade
from nmail.db.tables import folders, messages
from nmail.mailstore.search import search
from nmail.mailstore.search_indexer import SearchIndexer
from nmail.mailstore.store import MailStore, NewMessage


def _words(text: str) -> list[str]:
    return text.split()


KOREAN = _words("회의록을 견적서를 보고서 일정 확인 부탁드립니다 계약서 검토 결과 안내 공지 "
          "거래처 납품 세금계산서 발행 요청 주간 업무 회의 참석 자료 첨부 파일 송부 "
          "프로젝트 진행 상황 예산 승인 담당자 연락처 변경 사항 감사합니다 수고하셨습니다")
ENGLISH = _words("meeting agenda budget review quarterly report invoice shipment delivery update "
           "schedule contract proposal deadline customer support ticket release notes "
           "server maintenance migration database performance results attached please")
RARE = ["zanzibar", "견적서번호", "xylophone"]


def _body(rng: random.Random, n: int) -> str:
    words = [rng.choice(KOREAN if rng.random() < 0.5 else ENGLISH) for _ in range(n)]
    if rng.random() < 0.001:
        words.insert(rng.randrange(len(words)), rng.choice(RARE))
    return " ".join(words)


def _message(rng: random.Random, i: int) -> bytes:
    sender = f"user{rng.randrange(500)}@partner{rng.randrange(50)}.example"
    subject = _body(rng, 5)
    body = _body(rng, rng.randrange(40, 300))
    kind = rng.random()
    head = (f"From: Sender {i % 97} <{sender}>\r\nTo: bench@example.test\r\n"
            f"Message-ID: <{i}@bench>\r\nDate: Tue, 01 Jul 2025 10:00:00 +0000\r\n"
            "MIME-Version: 1.0\r\n")
    if kind < 0.15:  # Korean mail as Outlook sent it
        encoded = base64.b64encode(subject.encode("cp949", "replace")).decode()
        head += (f"Subject: =?ks_c_5601-1987?B?{encoded}?=\r\n"
                 "Content-Type: text/plain; charset=ks_c_5601-1987\r\n")
        return head.encode() + b"\r\n" + body.encode("cp949", "replace") + b"\r\n"
    encoded = base64.b64encode(subject.encode()).decode()
    head += f"Subject: =?utf-8?B?{encoded}?=\r\n"
    if kind < 0.35:
        head += "Content-Type: text/html; charset=utf-8\r\n"
        body = f"<html><body><p>{body}</p><style>.x{{}}</style></body></html>"
    else:
        head += "Content-Type: text/plain; charset=utf-8\r\n"
    return head.encode() + b"\r\n" + body.encode() + b"\r\n"


def _like_peer(engine: Engine, account_id: int, word: str) -> None:
    pattern = f"%{word}%"
    with engine.connect() as conn:
        conn.execute(
            select(messages.c.folder_id, messages.c.uid)
            .join(folders, folders.c.id == messages.c.folder_id)
            .where(folders.c.account_id == account_id,
                   or_(messages.c.subject.like(pattern), messages.c.from_addr.like(pattern),
                       messages.c.to_addrs.like(pattern), messages.c.preview.like(pattern)))
            .order_by(messages.c.id.desc()).limit(50)
        ).all()


def _build(engine: Engine, store: MailStore, root: Path, messages_wanted: int) -> int:
    """Deliver and index the bench mail, print the rates; the number delivered."""
    account = bench_account(engine)
    store.ensure_account(account)
    rng = random.Random(1)
    indexer = SearchIndexer(engine, root / "mail")
    print(f"building {messages_wanted} messages in {root} ({engine.dialect.name})")
    delivered = indexed = 0
    deliver_time = index_time = 0.0
    while delivered < messages_wanted:
        chunk = min(5_000, messages_wanted - delivered)
        items = [NewMessage(account, "Sent" if (delivered + i) % 10 == 0 else "INBOX", b"",
                            _message(rng, delivered + i)) for i in range(chunk)]
        start = time.perf_counter()
        for at in range(0, chunk, 100):
            store.store(items[at:at + 100])
        deliver_time += time.perf_counter() - start
        delivered += chunk
        start = time.perf_counter()
        while (count := indexer.catch_up(budget=5_000)) > 0:
            indexed += count
        index_time += time.perf_counter() - start
        print(f"  {delivered} delivered, {indexed} indexed", flush=True)
    deliver_rate = delivered / deliver_time
    index_rate = indexed / index_time
    print(f"delivery (store, batches of 100): {deliver_rate:8.0f} msg/s")
    print(f"indexing (follower catch-up):     {index_rate:8.0f} msg/s "
          f"= {index_rate / deliver_rate:.2f}x delivery")
    (root / "built.json").write_text(json.dumps(
        {"account": account.id, "messages": delivered, "db": str(engine.url)}))
    return delivered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--db", help="database URL, of an empty database (default: SQLite "
                                     "in the data directory)")
    parser.add_argument("--data", help="directory for the mail (default: a new temporary "
                                       "one); if it holds a set built before with the same "
                                       "--db, only the searches run again")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    root = (Path(args.data) if args.data
            else Path(tempfile.mkdtemp(prefix="nmail-bench-search-", dir="/var/tmp")))
    root.mkdir(parents=True, exist_ok=True)
    engine = make_engine(args.db or f"sqlite:///{root / 'index.sqlite3'}")
    upgrade(engine)
    store = MailStore(engine, root / "mail", "bench.example.test")
    built = root / "built.json"
    if built.exists():
        facts = json.loads(built.read_text())
        if facts["db"] != str(engine.url):
            raise SystemExit(f"{root} was built for {facts['db']}, not {engine.url}")
        account_id, delivered = int(facts["account"]), int(facts["messages"])
        print(f"searching the {delivered} messages built before in {root}")
    else:
        delivered = _build(engine, store, root, args.messages)
        account_id = int(json.loads(built.read_text())["account"])

    inbox = store.folder(account_id, "INBOX").id
    sent = store.folder(account_id, "Sent").id
    queries: list[tuple[str, str, dict[str, object]]] = [
        ("rare word", "zanzibar", {}),
        ("rare word, one folder", "xylophone", {"folder_id": inbox}),
        ("rare Korean (phrase)", "견적서번호", {}),
        ("common word", "meeting", {}),
        ("common word, page 3", "meeting", {"offset": 100}),
        ("Korean 2 syllables", "견적", {}),
        ("Korean in a longer word", "회의록", {}),
        ("Korean, small folder", "회의록", {"folder_id": sent}),
        ("Korean 1 syllable (prefix)", "예", {}),
        ("English prefix", "quart", {}),
        ("address", "user7@partner3.example", {}),
        ("two words", "budget 승인", {}),
        ("one folder", "invoice", {"folder_id": inbox}),
        ("subject only", "deadline", {"fields": {"subject"}}),
        ("no match", "qqqqzzzz", {}),
    ]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nsearch at {delivered} messages, {args.runs} runs each, load average {load} "
          "(ms; peer = LIKE '%word%' on subject/from/to/preview, no bodies)")
    print(f"{'query':30} {'hits':>5} {'p50':>8} {'p99':>8} {'peer p50':>9} {'ratio':>7}")
    for label, query, options in queries:
        samples = []
        hits = []
        for _ in range(args.runs):
            start = time.perf_counter()
            hits = search(engine, account_id, query, **options)  # type: ignore[arg-type]
            samples.append(time.perf_counter() - start)
        peer = []
        for _ in range(max(3, args.runs // 10)):
            start = time.perf_counter()
            _like_peer(engine, account_id, query.split()[0])
            peer.append(time.perf_counter() - start)
        p50, p99 = percentiles_ms(samples)
        peer50 = statistics.median(peer) * 1000
        print(f"{label:30} {len(hits):5d} {p50:8.2f} {p99:8.2f} {peer50:9.2f} "
              f"{peer50 / p50:6.1f}x")
    store.close()
    engine.dispose()


if __name__ == "__main__":
    main()
