from __future__ import annotations

from sqlalchemy import Engine, inspect

from nmail.db.engine import make_engine
from nmail.db.migrate import downgrade, upgrade
from nmail.db.tables import metadata


def test_migrations_create_every_table(engine: Engine) -> None:
    names = set(inspect(engine).get_table_names())
    assert {t.name for t in metadata.sorted_tables} <= names


def test_migrations_downgrade_and_upgrade_again(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        downgrade(engine, "base")
        assert "messages" not in inspect(engine).get_table_names()
        upgrade(engine)
        assert "messages" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
