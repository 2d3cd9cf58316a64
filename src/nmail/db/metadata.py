"""The schema's one SQLAlchemy MetaData, with the names of its constraints.

Apart from tables.py because the tables are defined in more than one
module (tables.py, web_tables.py) and must share it: one naming convention
(the names the migrations create and drop), one dependency order for
creating and emptying tables, one target for Alembic. Import `metadata`
from tables.py, which registers every table before it hands it out.
"""

from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
