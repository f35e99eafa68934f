"""Draft a revision from the models: ``python -m ocr.migrations revision "message"``.

The draft compares the models with a scratch SQLite database migrated to the
current head, so it lists only what the models add. Read and edit it before
committing: autogenerate misses some changes (renames, server defaults).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine

from ocr.migrations import alembic_config, upgrade


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "revision":
        print('usage: python -m ocr.migrations revision "what the revision changes"', file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'draft.db'}")
        upgrade(engine)
        with engine.connect() as connection:
            command.revision(alembic_config(connection), message=argv[1], autogenerate=True)
            connection.commit()
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
