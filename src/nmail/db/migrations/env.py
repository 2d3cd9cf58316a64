"""Alembic environment: the engine comes from nmail, never from an ini file.

On SQLite, migrations run with foreign keys off: a batch "recreate" drops the
old table, and with foreign keys on that DROP deletes every child row through
ON DELETE CASCADE. The PRAGMA only works outside a transaction, so it is set
before the migrations begin; `foreign_key_check` must find nothing before the
commit, and foreign keys are turned back on for the pooled connection.
"""

from __future__ import annotations

from alembic import context

from nmail.db.tables import metadata

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=sqlite,
    )
    try:
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left rows without their parent: {broken[:5]}")
        connection.commit()
    finally:
        if sqlite:
            connection.rollback()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
