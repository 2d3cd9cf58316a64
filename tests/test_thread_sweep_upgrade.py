"""An install upgraded from before thread_sweep.py forgets its stale links once, at start.

Every database. The upgraded state is made for real: accounts with messages
and live conversations, the schema taken back to 0018, then the links of
conversations with no message that versions before the sweep left (more than
two sweep steps of them). The upgrade path is what `nmail serve` runs first
(runtime.prepare_data: migration 0019 lists the accounts with links, then
thread_sweep.sweep_pending): the stale links are gone, every live one is
kept, the list is empty, and a later start sweeps nothing again. The sweep
goes in steps, each committed on its own: between two steps another
connection sees the links already dropped and can write at once (on SQLite
a step still open would hold the database's write lock).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, delete, func, insert, inspect, select

from nmail.config import load_config
from nmail.db.engine import make_engine
from nmail.db.migrate import downgrade, upgrade
from nmail.db.tables import accounts, thread_link_sweeps, thread_links
from nmail.mailstore.store import MailStore
from nmail.mailstore.thread_sweep import CHUNK, STEP, sweep_pending
from nmail.startup import prepare_data
from server_rig import make_data_dir
from test_mailstore_support import make_account
from test_thread_sweep import agenda, links
from test_threads import deliver, mail, threads_of


def stale_rows(account_id: int, n: int, tag: str) -> list[dict[str, object]]:
    return [{"account_id": account_id, "link_key": f"{tag}{i:015x}",
             "thread_id": f"{tag}{i:023x}"} for i in range(n)]


def pending(engine: Engine) -> set[int]:
    with engine.connect() as conn:
        return {int(r[0]) for r in conn.execute(select(thread_link_sweeps.c.account_id))}


def count_links(engine: Engine, account_id: int) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(thread_links)
                                .where(thread_links.c.account_id == account_id)).scalar_one())


def test_an_upgraded_install_forgets_its_stale_links_at_its_first_start(
        tmp_path: Path, db_url: str) -> None:
    config = load_config(make_data_dir(tmp_path, database_url=db_url))
    engine = make_engine(db_url)
    store = MailStore(engine, config.mail_dir, config.hostname)
    try:
        alice, bob = make_account(engine, "alice"), make_account(engine, "bob")
        carol = make_account(engine, "carol")  # no message, no link
        for account in (alice, bob, carol):
            store.ensure_account(account)
        agenda(store, alice)
        deliver(store, bob, mail("q@x", "질문", day=2))
        live_alice, live_bob = links(engine, alice), links(engine, bob)
        assert live_alice and live_bob

        # The install as it was: schema 0018, and the links nothing ever removed.
        downgrade(engine, "0018")
        assert "thread_link_sweeps" not in inspect(engine).get_table_names()
        many = 2 * STEP + CHUNK + 7  # three sweep steps, several checks of CHUNK
        with engine.begin() as conn:
            conn.execute(insert(thread_links), stale_rows(alice.id, many, "a"))
            conn.execute(insert(thread_links), stale_rows(bob.id, 3, "b"))
        assert count_links(engine, alice.id) == len(live_alice) + many

        # The first start of the new version.
        prepare_data(config)
        assert links(engine, alice) == live_alice and links(engine, bob) == live_bob
        assert links(engine, carol) == {} and pending(engine) == set()
        assert threads_of(engine)["Re: Re: 안건"] in live_alice.values()

        # Once: a link left stale now (inserted behind the store's back) is not swept
        # at the next start (an expunge or `nmail dbsync` would take it).
        with engine.begin() as conn:
            conn.execute(insert(thread_links), stale_rows(alice.id, 1, "c"))
        prepare_data(config)
        assert len(links(engine, alice)) == len(live_alice) + 1
        assert store.dbsync(None).total.forgotten == 1
        assert links(engine, alice) == live_alice
    finally:
        store.close()
        engine.dispose()


def test_the_migration_lists_only_accounts_with_links_and_goes_back(
        tmp_path: Path, db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        alice, bob = make_account(engine, "alice"), make_account(engine, "bob")
        downgrade(engine, "0018")
        with engine.begin() as conn:
            conn.execute(insert(thread_links), stale_rows(alice.id, 2, "a"))
        upgrade(engine)
        assert pending(engine) == {alice.id} and bob.id not in pending(engine)
        # An account deleted before the sweep takes its row with it (foreign key).
        with engine.begin() as conn:
            conn.execute(delete(accounts).where(accounts.c.id == alice.id))
        assert pending(engine) == set()
        downgrade(engine, "0018")
        upgrade(engine)
        assert pending(engine) == set()  # nothing linked: nothing to sweep
    finally:
        engine.dispose()


def test_the_sweep_commits_each_step_and_holds_nothing_between(
        tmp_path: Path, db_url: str) -> None:
    engine = make_engine(db_url)
    other = make_engine(db_url)  # another process, as the server's writer would be
    store = MailStore(engine, tmp_path / "mail", "mx.example.test")
    try:
        alice = make_account(engine, "alice")
        store.ensure_account(alice)
        agenda(store, alice)
        live = links(engine, alice)
        live_thread = next(iter(live.values()))
        many, limit = 2500, 1000
        with engine.begin() as conn:
            conn.execute(insert(thread_links), stale_rows(alice.id, many, "a"))
            conn.execute(insert(thread_link_sweeps).values(account_id=alice.id))
        seen: list[tuple[int, int]] = []

        def between(account_id: int, forgotten: int) -> None:
            # Committed already: another connection sees it, and writes at once.
            seen.append((forgotten, count_links(other, account_id)))
            with other.begin() as conn:
                conn.execute(insert(thread_links).values(
                    account_id=account_id, link_key=f"n{len(seen):015x}",
                    thread_id=live_thread))

        total = sweep_pending(engine, limit=limit, on_step=between)
        assert total == many
        # 2,500 stale and 2 live conversations by id in steps of 1,000: 3 steps.
        assert len(seen) == 3 and all(f <= limit for f, _ in seen)
        expected = len(live) + many
        for step, (forgotten, visible) in enumerate(seen, start=1):
            expected -= forgotten
            assert visible == expected + step - 1, step  # (+ the links added between)
        assert pending(engine) == set()
        assert len(links(engine, alice)) == len(live) + len(seen)
        assert sweep_pending(engine) == 0  # nothing listed: nothing done
    finally:
        store.close()
        engine.dispose()
        other.dispose()
