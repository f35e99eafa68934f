"""Schema migrations of the store (Alembic), one chain for SQLite and PostgreSQL.

The store runs :func:`upgrade` when it opens a database, so every command
works on a database an older version created. To change the schema: declare
the table or column on ``ocr.store.Base`` (a module of its own may hold the
class: add that module to :data:`MODEL_MODULES`), then add a revision file in
``versions/`` whose ``down_revision`` is the current head. The test
tests/test_migrations.py fails while the migrated schema differs from the
models or the chain has more than one head.

To draft a revision from the models::

    python -m ocr.migrations revision "add users table"

and then read and edit the generated file: SQLite needs ``batch_alter_table``
for most column changes (autogenerate renders them so).
"""

from __future__ import annotations

import fcntl
import importlib
import logging
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import Connection

__all__ = ["BASELINE_REVISION", "MODEL_MODULES", "alembic_config", "load_models", "current_revision", "head_revision", "upgrade"]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent

# The schema as the first release created it with create_all, before migrations existed.
BASELINE_REVISION = "0001"

# Modules that declare tables on ocr.store.Base; all of them make up the schema.
MODEL_MODULES = [
    "ocr.store", "ocr.arrivals", "ocr.search", "ocr.accounts", "ocr.holds", "ocr.queue", "ocr.audit", "ocr.datafolder"
]

# Any constant works: it only has to be the same in every process that migrates this database.
_PG_ADVISORY_LOCK_ID = 0x4855_4B41


def load_models():
    """Import every module of :data:`MODEL_MODULES`; return the complete ``MetaData``."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
    from ocr.store import Base

    return Base.metadata


def alembic_config(connection: Connection | None = None) -> Config:
    """Return an Alembic configuration for the scripts in this package, bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """Return the newest revision of the scripts; raises if the chain has several heads."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """Return the revision the database is at, or None for a database without migrations."""
    return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations of one database across processes (stations and workers start together)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _PG_ADVISORY_LOCK_ID})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _PG_ADVISORY_LOCK_ID})
                connection.commit()
        return

    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock_path = Path(f"{database}.migrate-lock")
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _adopt_unversioned(connection: Connection) -> bool:
    """Bring a store made before migrations existed to the baseline; return whether it was one.

    Such a store has the tables of the baseline but no ``alembic_version``;
    one made before the ``fields.candidates`` column lacks that column too.
    """
    tables = set(inspect(connection).get_table_names())
    if "cards" not in tables or "alembic_version" in tables:
        return False
    columns = {column["name"] for column in inspect(connection).get_columns("fields")}
    if "candidates" not in columns:
        connection.execute(text("ALTER TABLE fields ADD COLUMN candidates JSON"))
    connection.commit()
    command.stamp(alembic_config(connection), BASELINE_REVISION)
    connection.commit()
    log.info("store without migrations adopted at revision %s", BASELINE_REVISION)
    return True


def upgrade(engine: Engine) -> None:
    """Migrate the database to the newest revision; a database at the head is left untouched."""
    head = head_revision()
    with engine.connect() as connection:
        if current_revision(connection) == head:
            return

    with _migration_lock(engine), engine.connect() as connection:
        # Another process may have migrated while this one waited for the lock.
        before = current_revision(connection)
        if before == head:
            return
        _adopt_unversioned(connection)
        command.upgrade(alembic_config(connection), "head")
        connection.commit()
        log.info("store migrated from %s to %s", before or "empty", head)
