"""Store: states, audit events, duplicate scans and stale saves on a real SQLite file and on PostgreSQL."""

from __future__ import annotations

import stat
from collections.abc import Iterator

import pytest

from models.card import CardStatus, Extraction, FieldResult
from ocr.errors import StaleVersionError, StoreError
from ocr.store import Store


def _extraction(flag_sex: bool = True) -> Extraction:
    return Extraction(
        source="scan one.jpg",
        page=1,
        card_type="foreign_guest",
        fields={
            "surname": FieldResult(key="surname", raw_text="SMITH", value="SMITH", confidence=0.97, needs_review=False),
            "sex": FieldResult(
                key="sex", raw_text="X", value="X", confidence=0.4, needs_review=flag_sex, reason="性别无效"
            ),
        },
    )


@pytest.fixture()
def store(tmp_path, store_url) -> Iterator[Store]:
    store = Store(url=store_url, data_dir=tmp_path / "data")
    yield store
    store.close()


@pytest.fixture()
def sqlite_store(tmp_path) -> Iterator[Store]:
    store = Store(data_dir=tmp_path / "data")
    yield store
    store.close()


def _add(store: Store, key: str = "abc:1", flag_sex: bool = True) -> int:
    return store.add_card(
        batch="2026-12-01", content_key=key, extraction=_extraction(flag_sex), original_png=b"o", straight_png=b"s"
    )


def test_sqlite_file_uses_wal(sqlite_store, tmp_path):
    with sqlite_store.engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    assert mode == "wal"
    assert (tmp_path / "data" / "cards.db").exists()


def test_data_folder_owner_only(store, tmp_path):
    mode = stat.S_IMODE((tmp_path / "data").stat().st_mode)
    assert mode & 0o077 == 0
    assert stat.S_IMODE((tmp_path / "data" / "images").stat().st_mode) & 0o077 == 0


def test_flagged_card_needs_review(store):
    card_id = _add(store)
    card = store.get_card(card_id)
    assert card.status == CardStatus.NEEDS_REVIEW
    assert card.flagged_keys == ["sex"]
    assert card.fields["surname"].value == "SMITH"


def test_clean_card_auto_accepted(store):
    card_id = _add(store, flag_sex=False)
    assert store.get_card(card_id).status == CardStatus.AUTO_ACCEPTED


def test_pipeline_events_audited(store):
    card_id = _add(store)
    actions = [(e.action, e.field_key, e.new_value) for e in store.audit_events(card_id)]
    assert ("extracted", None, "foreign_guest") in actions
    assert ("field_read", "surname", "SMITH") in actions
    assert ("status", None, "needs_review") in actions
    assert all(e.actor == "pipeline" for e in store.audit_events(card_id))


def test_duplicate_scan_rejected(store):
    _add(store)
    assert store.find_scan("abc:1") is not None
    with pytest.raises(StoreError):
        _add(store)
    assert len(store.list_cards()) == 1


def test_correction_audited_with_old_value(store):
    card_id = _add(store)
    card = store.get_card(card_id)
    fixed = card.fields["sex"].model_copy(update={"value": "M", "needs_review": False, "reason": ""})
    version = store.save_fields(card_id, {"sex": fixed}, actor="li.na", expected_version=card.version)
    assert version == card.version + 1
    event = [e for e in store.audit_events(card_id) if e.action == "correct"][-1]
    assert (event.actor, event.field_key, event.old_value, event.new_value) == ("li.na", "sex", "X", "M")
    assert store.get_card(card_id).fields["sex"].value == "M"


def test_confirmation_audited(store):
    card_id = _add(store)
    card = store.get_card(card_id)
    confirmed = card.fields["sex"].model_copy(update={"needs_review": False})
    store.save_fields(card_id, {"sex": confirmed}, actor="li.na", expected_version=card.version)
    event = store.audit_events(card_id)[-1]
    assert (event.action, event.old_value, event.new_value) == ("confirm", "X", "X")


def test_stale_save_rejected(store):
    card_id = _add(store)
    card = store.get_card(card_id)
    first = card.fields["sex"].model_copy(update={"value": "M"})
    second = card.fields["sex"].model_copy(update={"value": "F"})
    store.save_fields(card_id, {"sex": first}, actor="a", expected_version=card.version)
    with pytest.raises(StaleVersionError) as error:
        store.save_fields(card_id, {"sex": second}, actor="b", expected_version=card.version)
    assert "已被他人修改" in error.value.message_zh
    assert store.get_card(card_id).fields["sex"].value == "M"


def test_status_chain_to_exported(store):
    card_id = _add(store)
    version = store.get_card(card_id).version
    version = store.set_status(card_id, CardStatus.APPROVED, actor="li.na", expected_version=version)
    assert store.mark_exported([card_id], actor="li.na", export_file="out.csv") == 1
    assert store.get_card(card_id).status == CardStatus.EXPORTED
    # A card that is not approved is never exported.
    other = _add(store, key="def:1")
    assert store.mark_exported([other], actor="li.na", export_file="out.csv") == 0
    statuses = [e.new_value for e in store.audit_events(card_id) if e.action == "status"]
    assert statuses == ["needs_review", "approved", "exported"]


def test_batches_counted_by_state(store):
    _add(store, key="a:1")
    _add(store, key="b:1", flag_sex=False)
    (batch,) = store.list_batches()
    assert batch.name == "2026-12-01"
    assert batch.counts == {"needs_review": 1, "auto_accepted": 1}
    assert batch.total == 2


def test_bad_database_url_message(tmp_path):
    with pytest.raises(StoreError) as error:
        Store(url="nosuchdb://x", data_dir=tmp_path)
    assert "数据库地址无效" in error.value.message_zh


def test_relative_data_dir_stores_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = Store(data_dir="data")
    card_id = _add(store)
    store.close()

    monkeypatch.chdir("/")
    reopened = Store(data_dir=tmp_path / "data", create=False)
    card = reopened.get_card(card_id)
    reopened.close()

    assert card.original_image.startswith(str(tmp_path))
    assert card.straight_image.startswith(str(tmp_path))


def test_open_without_create_makes_no_folder(tmp_path):
    Store(data_dir=tmp_path / "data").close()
    database = f"sqlite:///{tmp_path / 'data' / 'cards.db'}"
    elsewhere = tmp_path / "not-mounted" / "share"

    reader = Store(url=database, data_dir=elsewhere, create=False)
    reader.close()

    assert not (tmp_path / "not-mounted").exists()


def test_read_only_backup_opens(tmp_path, monkeypatch):
    # A backup on a read-only mount: the owner-only mode cannot be set again, and reading goes on.
    Store(data_dir=tmp_path / "data").close()
    database = tmp_path / "data" / "cards.db"
    database.chmod(0o644)

    def read_only_chmod(path, mode):
        raise OSError(30, "Read-only file system", str(path))

    monkeypatch.setattr("ocr.store.os.chmod", read_only_chmod)
    store = Store(data_dir=tmp_path / "data", create=False)

    assert store.list_batches() == []
    store.close()


def test_read_only_folder_named(tmp_path, monkeypatch):
    # SQLite cannot create its -wal and -shm files in a read-only folder, and the message names that cause.
    import os

    from sqlalchemy.exc import OperationalError

    Store(data_dir=tmp_path / "data").close()
    real_statvfs = os.statvfs

    class ReadOnly:
        def __init__(self, path):
            self.f_flag = real_statvfs(path).f_flag | os.ST_RDONLY

    def unable_to_open(engine):
        raise OperationalError("PRAGMA journal_mode=WAL", {}, Exception("unable to open database file"))

    monkeypatch.setattr("ocr.store.os.statvfs", ReadOnly)
    monkeypatch.setattr("ocr.store.upgrade_schema", unable_to_open)

    with pytest.raises(StoreError) as raised:
        Store(data_dir=tmp_path / "data", create=False)

    assert f"所在目录 {tmp_path / 'data'} 是只读的" in raised.value.message_zh
    assert "以可写方式挂载" in raised.value.message_zh
    assert "read-only" in raised.value.message_en
