"""Shared fixtures: store URLs for both database back ends.

A test that takes ``store_url`` (or ``new_store_url``) runs twice, once on an
SQLite file and once on PostgreSQL. The PostgreSQL run needs a server whose
URL is in ``HUKA_TEST_POSTGRES_URL``, for example
``postgresql+psycopg://huka:huka@127.0.0.1:5432/huka_test``; ``.ci/run``
starts one. Without that variable the PostgreSQL run is skipped.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_URL_VARIABLE = "HUKA_TEST_POSTGRES_URL"


@pytest.fixture(autouse=True)
def _restore_main_module() -> Iterator[None]:
    """Put the ``__main__`` module back after each test.

    Streamlit's script runner (AppTest) installs the review app's script as
    ``__main__`` and leaves it there. A process pool started with ``spawn`` in a
    later test would then run that script in every child before its work.
    """
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


@pytest.fixture(params=["sqlite", "postgresql"])
def store_backend(request) -> str:
    """Return the database back end of this test run, and skip PostgreSQL when no server URL is set."""
    if request.param == "postgresql" and not os.environ.get(POSTGRES_URL_VARIABLE):
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set, so there is no PostgreSQL server to test against")
    return request.param


@pytest.fixture()
def new_store_url(store_backend: str, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Yield a function that returns the URL of a new, empty database on this test's back end.

    ``new_store_url(name)`` is ``sqlite:///<tmp_path>/<name>/cards.db`` on SQLite,
    the file that ``Store(data_dir=tmp_path / name)`` opens by default. On
    PostgreSQL it is the server URL with its own new schema as the search path.
    The schemas are dropped after the test.
    """
    if store_backend == "sqlite":
        yield lambda name: f"sqlite:///{(tmp_path / name / 'cards.db').as_posix()}"
        return

    server_url = make_url(os.environ[POSTGRES_URL_VARIABLE])
    admin = create_engine(server_url)
    schemas: list[str] = []

    def create_schema(name: str) -> str:
        schema = f"test_{name}_{uuid.uuid4().hex[:12]}"
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        schemas.append(schema)
        return server_url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )

    try:
        yield create_schema
    finally:
        with admin.begin() as connection:
            for schema in schemas:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture()
def store_url(new_store_url: Callable[[str], str]) -> str:
    """Return the URL of an empty database for the store in ``tmp_path / "data"``, on each back end in turn."""
    return new_store_url("data")
