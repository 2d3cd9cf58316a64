"""webmail time zones: web_prefs.time_zone (chosen), web_sessions.time_zone (the browser's)

Revision ID: 0015
Revises: 0014

Dates were shown in one server-wide zone ([web] time_zone). Now a user may
choose one; "" follows the browser, whose zone the login form sends (as
Roundcube's _timezone) and the session keeps. Both empty: the server's.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("web_prefs", "web_sessions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("time_zone", sa.String(64), nullable=False,
                                       server_default=""))


def downgrade() -> None:
    for table in ("web_prefs", "web_sessions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("time_zone")
