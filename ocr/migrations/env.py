"""Alembic environment: runs the revisions on the connection that ocr.migrations passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from ocr.migrations import load_models

target_metadata = load_models()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot alter most columns in place; batch mode copies the table.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url or pass a connection in config.attributes['connection']")
    with create_engine(url).connect() as own_connection:
        _run(own_connection)
        own_connection.commit()
