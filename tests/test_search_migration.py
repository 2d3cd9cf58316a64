"""Migration 0014: index rows made before it get their account and folder, and are found."""

from __future__ import annotations

from sqlalchemy import insert, select, text

from nmail.db.engine import make_engine
from nmail.db.migrate import downgrade, upgrade
from nmail.db.tables import accounts, domains, folders, message_search, messages
from nmail.mailstore.search import search


def test_rows_indexed_before_0014_are_filled_in_and_found(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        downgrade(engine, "0013")
        with engine.begin() as conn:
            dom = conn.execute(insert(domains).values(name="m.test", created_at=0)
                               ).inserted_primary_key[0]
            ids = []
            for userid in ("a", "b"):
                account = conn.execute(insert(accounts).values(
                    domain_id=dom, userid=userid, password_hash="x", created_at=0)
                ).inserted_primary_key[0]
                folder = conn.execute(insert(folders).values(
                    account_id=account, name="INBOX", uidvalidity=1)).inserted_primary_key[0]
                message = conn.execute(insert(messages).values(
                    folder_id=folder, uid=1, modseq=1, filename=f"m{userid}", size=10,
                    internal_date=0, date=0)).inserted_primary_key[0]
                ids.append((int(account), int(folder), int(message)))
            # The terms as 0005 wrote them (MariaDB's without the spaces 0014 adds).
            value = ("'zsreport':1 'zb회의':2 'zb의록':3" if engine.dialect.name == "postgresql"
                     else "zsreport zb회의 zb의록")
            for _, _, message in ids:
                conn.execute(text("INSERT INTO message_search (message_id, terms) VALUES "
                                  + ("(:m, CAST(:t AS tsvector))"
                                     if engine.dialect.name == "postgresql" else "(:m, :t)")),
                             {"m": message, "t": value})
        upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(select(message_search.c.account_id, message_search.c.folder_id,
                                       message_search.c.message_id)
                                .order_by(message_search.c.message_id)).all()
        assert [tuple(r) for r in rows] == ids
        for account, folder, message in ids:
            for query in ("report", "회의록", "의록"):
                hits = search(engine, account, query)
                assert [(h.folder_id, h.message_id) for h in hits] == [(folder, message)]
            assert search(engine, account, "report", folder_id=folder)[0].uid == 1
    finally:
        engine.dispose()
