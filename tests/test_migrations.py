"""Schema migrations: one head, migrated schema equal to the models, old stores adopted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from ocr.migrations import BASELINE_REVISION, alembic_config, current_revision, head_revision, load_models, upgrade
from ocr.store import Store


def _engine(url: str):
    """Return an engine for ``url``, creating the folder of an SQLite file first."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(url)


def test_revision_chain_has_one_head():
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"several heads {heads}: set down_revision of the newest revision to the other head"


def test_migrated_schema_equals_models(store_url):
    engine = _engine(store_url)
    upgrade(engine)

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, load_models())
        revision = current_revision(connection)
    engine.dispose()

    assert differences == [], "models and migrations differ; add a revision for these changes"
    assert revision == head_revision()


def test_store_opens_at_head(store_url, tmp_path):
    store = Store(store_url, tmp_path / "data")
    with store.engine.connect() as connection:
        assert current_revision(connection) == head_revision()
    store.close()


def test_upgrade_twice_changes_nothing(store_url):
    engine = _engine(store_url)
    upgrade(engine)
    with engine.connect() as connection:
        tables_before = sorted(inspect(connection).get_table_names())
    upgrade(engine)
    with engine.connect() as connection:
        tables_after = sorted(inspect(connection).get_table_names())
        revision = current_revision(connection)
    engine.dispose()

    assert tables_after == tables_before
    assert revision == head_revision()


def _create_pre_migration_store(db_file: Path) -> None:
    """Write the schema of a store made before migrations and before fields.candidates, with one card."""
    engine = create_engine(f"sqlite:///{db_file}")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        script = ScriptDirectory.from_config(alembic_config())
        baseline = script.get_revision(BASELINE_REVISION)
        # Run only the baseline's upgrade(), without recording a version, as create_all did.
        with Operations.context(context):
            baseline.module.upgrade()
        connection.commit()
    engine.dispose()

    database = sqlite3.connect(db_file)
    database.executescript(
        """
        ALTER TABLE fields DROP COLUMN candidates;
        INSERT INTO batches (id, name, created_at) VALUES (1, 'old', '2026-01-01 00:00:00');
        INSERT INTO scans (id, content_key, source, page, image_path, created_at)
            VALUES (1, 'sha256:0', 'old.png', 0, 'old.png', '2026-01-01 00:00:00');
        INSERT INTO cards (id, batch_id, scan_id, card_type, template, status, rotation_deg,
            straight_image_path, full_text, card_reasons, version, created_at, updated_at)
            VALUES (1, 1, 1, 'foreign_guest', NULL, 'needs_review', 0, 'old.png', '', '[]', 1,
            '2026-01-01 00:00:00', '2026-01-01 00:00:00');
        INSERT INTO fields (id, card_id, position, key, raw_text, value, confidence, engine, box,
            needs_review, reason, reason_codes)
            VALUES (1, 1, 0, 'surname', 'LI', 'LI', 0.5, 'rapidocr', NULL, 1, '', '[]');
        """
    )
    database.commit()
    database.close()


def test_pre_migration_store_adopted(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    db_file = data_dir / "cards.db"
    _create_pre_migration_store(db_file)

    store = Store(data_dir=data_dir)
    card = store.get_card(1)
    with store.engine.connect() as connection:
        revision = current_revision(connection)
        columns = {column["name"] for column in inspect(connection).get_columns("fields")}
        version_rows = connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one()
    store.close()

    assert revision == head_revision()
    assert "candidates" in columns
    assert version_rows == 1
    assert card.fields["surname"].value == "LI"
    assert card.fields["surname"].candidates == []


def test_bare_postgresql_url_uses_psycopg():
    from ocr.store import normalize_db_url

    assert normalize_db_url("postgresql://u:p@127.0.0.1/db") == "postgresql+psycopg://u:p@127.0.0.1/db"
    assert normalize_db_url("postgres://u@127.0.0.1/db") == "postgresql+psycopg://u@127.0.0.1/db"
    assert normalize_db_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_db_url("sqlite:///x/cards.db") == "sqlite:///x/cards.db"
