"""Accounts: Argon2 hashes in the store, the sign-in check, its throttle and the admin rules, on SQLite and PostgreSQL.

``pytest.raises(match=…)`` reads the English message; the command line tests check the Chinese one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from ocr.accounts import (
    AccountError,
    Role,
    SignInThrottle,
    UserRow,
    add_user,
    authenticate,
    count_users,
    get_user,
    list_users,
    normalize_name,
    parse_role,
    role_allows,
    set_active,
    set_password,
    set_role,
    sign_in,
)
from ocr.store import Store

PASSWORD = "kaishi-2025"


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Store:
    opened = Store(url=store_url, data_dir=tmp_path / "data")
    yield opened
    opened.close()


def _hash_of(store: Store, name: str) -> str:
    with store.session() as session:
        return session.scalar(select(UserRow.password_hash).where(UserRow.name == name))


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_add_user_stores_argon2_hash(store: Store) -> None:
    account = add_user(store, "王芳", "reviewer", PASSWORD)
    assert account.role == Role.REVIEWER
    assert account.active
    stored = _hash_of(store, "王芳")
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert count_users(store) == 1


def test_authenticate_checks_password(store: Store) -> None:
    add_user(store, "王芳", Role.REVIEWER, PASSWORD)
    assert authenticate(store, "王芳", PASSWORD).name == "王芳"
    assert authenticate(store, "王芳", PASSWORD + "x") is None
    assert authenticate(store, "李雷", PASSWORD) is None
    assert authenticate(store, "", PASSWORD) is None
    assert get_user(store, "王芳").last_sign_in_at is not None


def test_disabled_user_cannot_authenticate(store: Store) -> None:
    add_user(store, "王芳", Role.REVIEWER, PASSWORD)
    add_user(store, "孙管理", Role.ADMIN, PASSWORD)
    set_active(store, "王芳", False)
    assert authenticate(store, "王芳", PASSWORD) is None
    set_active(store, "王芳", True)
    assert authenticate(store, "王芳", PASSWORD) is not None


def test_old_hash_renewed_at_sign_in(store: Store) -> None:
    add_user(store, "王芳", Role.REVIEWER, PASSWORD)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with store.session() as session:
        session.scalar(select(UserRow).where(UserRow.name == "王芳")).password_hash = weak

    assert authenticate(store, "王芳", PASSWORD) is not None
    renewed = _hash_of(store, "王芳")
    assert renewed != weak
    assert not PasswordHasher().check_needs_rehash(renewed)
    assert authenticate(store, "王芳", PASSWORD) is not None


def test_set_password_replaces_old(store: Store) -> None:
    add_user(store, "王芳", Role.REVIEWER, PASSWORD)
    set_password(store, "王芳", "new-pass-2025")
    assert authenticate(store, "王芳", PASSWORD) is None
    assert authenticate(store, "王芳", "new-pass-2025") is not None


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "at least 8 characters"), ("王芳", "at least 8 characters"), ("x" * 1025, "longer than 1024")],
)
def test_weak_password_rejected(store: Store, password: str, message: str) -> None:
    with pytest.raises(AccountError, match=message):
        add_user(store, "王芳", Role.REVIEWER, password)
    assert count_users(store) == 0


def test_password_equal_to_name_rejected(store: Store) -> None:
    with pytest.raises(AccountError, match="must differ from the user name"):
        add_user(store, "wangfang1", Role.REVIEWER, "WangFang1")


def test_duplicate_name_rejected(store: Store) -> None:
    add_user(store, "王芳", Role.REVIEWER, PASSWORD)
    with pytest.raises(AccountError, match="exists already"):
        add_user(store, " 王芳 ", Role.ADMIN, PASSWORD)
    assert [account.name for account in list_users(store)] == ["王芳"]


def test_normalize_name_cases() -> None:
    assert normalize_name("  ＷＡＮＧ Fang ") == "WANG Fang"
    for bad, message in (("", "is empty"), ("pipeline", "reserved"), ("Demo", "reserved"), ("a\tb", "control characters"), ("名" * 101, "at most 100")):
        with pytest.raises(AccountError, match=message):
            normalize_name(bad)


def test_full_width_name_signs_in(store: Store) -> None:
    add_user(store, "WANG", Role.REVIEWER, PASSWORD)
    assert authenticate(store, "ＷＡＮＧ", PASSWORD).name == "WANG"


def test_parse_role_and_ranks() -> None:
    assert parse_role(" Admin ") == Role.ADMIN
    with pytest.raises(AccountError, match="reviewer, supervisor, admin"):
        parse_role("boss")
    assert role_allows(Role.ADMIN, Role.SUPERVISOR)
    assert role_allows(Role.SUPERVISOR, Role.REVIEWER)
    assert not role_allows(Role.REVIEWER, Role.SUPERVISOR)
    assert not role_allows(Role.SUPERVISOR, Role.ADMIN)


def test_last_admin_kept(store: Store) -> None:
    add_user(store, "孙管理", Role.ADMIN, PASSWORD)
    with pytest.raises(AccountError, match="only active admin and cannot be disabled"):
        set_active(store, "孙管理", False)
    with pytest.raises(AccountError, match="must keep that role"):
        set_role(store, "孙管理", Role.REVIEWER)

    add_user(store, "周新", Role.REVIEWER, PASSWORD)
    set_role(store, "周新", Role.ADMIN)
    set_active(store, "孙管理", False)
    assert not get_user(store, "孙管理").active
    assert get_user(store, "周新").role == Role.ADMIN


def test_unknown_user_change_rejected(store: Store) -> None:
    with pytest.raises(AccountError, match="user 李雷 not found"):
        set_password(store, "李雷", PASSWORD)


def test_throttle_locks_and_unlocks() -> None:
    clock = FakeClock()
    throttle = SignInThrottle(max_failures=3, window_s=60, lockout_s=120, clock=clock)
    for _ in range(2):
        throttle.failed("name:a")
    assert throttle.wait_seconds("name:a") == 0
    throttle.failed("name:a")
    assert throttle.wait_seconds("name:a") == 120
    assert throttle.wait_seconds("name:b") == 0
    clock.now += 121
    assert throttle.wait_seconds("name:a") == 0


def test_throttle_forgets_old_failures() -> None:
    clock = FakeClock()
    throttle = SignInThrottle(max_failures=3, window_s=60, lockout_s=120, clock=clock)
    throttle.failed("name:a")
    throttle.failed("name:a")
    clock.now += 61
    throttle.failed("name:a")
    assert throttle.wait_seconds("name:a") == 0


def test_sign_in_locks_name_and_client(store: Store) -> None:
    add_user(store, "王芳", Role.REVIEWER, PASSWORD)
    add_user(store, "李雷", Role.REVIEWER, PASSWORD)
    throttle = SignInThrottle(max_failures=3, window_s=60, lockout_s=120, clock=FakeClock())

    # One client trying one password on many names is locked as a client.
    for name in ("甲", "乙", "丙"):
        assert sign_in(store, throttle, name, "guess-2025", "client-1").account is None
    locked = sign_in(store, throttle, "王芳", PASSWORD, "client-1")
    assert locked.account is None
    assert locked.wait_s == 120

    # Another client still signs in; a success clears its keys.
    assert sign_in(store, throttle, "王芳", PASSWORD, "client-2").account.name == "王芳"

    # Guessing one user's password from many clients locks the name.
    for client in ("c3", "c4", "c5"):
        assert sign_in(store, throttle, "李雷", "guess-2025", client).account is None
    assert sign_in(store, throttle, "李雷", PASSWORD, "c6").wait_s == 120
