"""Accounts of the review app: users with a role and a password hash, the sign-in check and its throttle.

Passwords are hashed with Argon2id by argon2-cffi's ``PasswordHasher`` (its
defaults follow the low-memory profile of RFC 9106). A hash made with older
parameters is replaced at the user's next successful sign-in, so raising the
parameters in a new argon2-cffi release reaches every account.

Roles rank reviewer < supervisor < admin, and a role may do everything a lower
one may: a reviewer corrects and approves cards, a supervisor also releases
holds of other reviewers and sees the supervisor pages, an admin also manages
the accounts. The user's name is the actor in the audit log of every change.
"""

from __future__ import annotations

import logging
import threading
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Boolean, DateTime, Integer, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from ocr.errors import CardCaptureError, ExitCode
from ocr.store import PIPELINE_ACTOR, Base, Store

__all__ = [
    "Account",
    "AccountError",
    "MIN_PASSWORD_LENGTH",
    "Role",
    "SignInResult",
    "SignInThrottle",
    "UserRow",
    "add_user",
    "authenticate",
    "count_users",
    "get_user",
    "list_users",
    "normalize_name",
    "parse_role",
    "role_allows",
    "role_label",
    "set_active",
    "set_password",
    "set_role",
    "sign_in",
]

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 8
# Argon2 takes any length; this bound only stops a pasted file from being hashed.
MAX_PASSWORD_LENGTH = 1024
# The actor column of the audit log is String(100).
MAX_NAME_LENGTH = 100
# Actor names the product writes itself, so no person may sign in under them.
RESERVED_NAMES = frozenset({PIPELINE_ACTOR, "demo"})


class Role(StrEnum):
    REVIEWER = "reviewer"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


_ROLE_RANK = {Role.REVIEWER: 0, Role.SUPERVISOR: 1, Role.ADMIN: 2}
_ROLE_LABELS = {
    Role.REVIEWER: ("审核员", "reviewer"),
    Role.SUPERVISOR: ("主管", "supervisor"),
    Role.ADMIN: ("管理员", "administrator"),
}


def role_allows(role: Role | str, required: Role | str) -> bool:
    """Return whether ``role`` may do what ``required`` may (roles rank reviewer < supervisor < admin)."""
    return _ROLE_RANK[Role(role)] >= _ROLE_RANK[Role(required)]


def role_label(role: Role | str, lang: str = "zh") -> str:
    zh, en = _ROLE_LABELS[Role(role)]
    return en if lang == "en" else zh


class AccountError(CardCaptureError):
    """An account change or look-up that cannot be done; the message names the user and the fix."""

    exit_code = ExitCode.BAD_INPUT


def parse_role(text: str) -> Role:
    """Return the role named ``text``; raises :class:`AccountError` listing the roles otherwise."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        names = ", ".join(role.value for role in Role)
        raise AccountError(f"角色 {text!r} 无效，可选：{names}。", f"invalid role {text!r}; choose one of {names}") from None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class UserRow(Base):
    """A person who signs in to the review app."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    # Argon2 hash in PHC string form ("$argon2id$v=19$m=…"); about 100 characters.
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now)
    password_changed_at: Mapped[datetime] = mapped_column(DateTime, default=_now)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


@dataclass(frozen=True)
class Account:
    """A user as the app and the command line show it; never carries the hash."""

    name: str
    role: Role
    active: bool
    created_at: datetime
    last_sign_in_at: datetime | None

    @classmethod
    def from_row(cls, row: UserRow) -> Account:
        return cls(
            name=row.name,
            role=Role(row.role),
            active=row.active,
            created_at=row.created_at,
            last_sign_in_at=row.last_sign_in_at,
        )


_hasher = PasswordHasher()
# Verified against when the name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def normalize_name(name: str) -> str:
    """Return ``name`` in NFKC form without surrounding spaces; raises :class:`AccountError` when it cannot be a user name.

    NFKC makes a name typed with full-width letters (ＷＡＮＧ) the same as its half-width form.
    """
    cleaned = unicodedata.normalize("NFKC", name).strip()
    if not cleaned:
        raise AccountError("用户名不能为空。", "the user name is empty")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise AccountError(
            f"用户名过长（{len(cleaned)} 个字符），最多 {MAX_NAME_LENGTH} 个。",
            f"the user name has {len(cleaned)} characters; at most {MAX_NAME_LENGTH} are allowed",
        )
    if any(unicodedata.category(char).startswith("C") for char in cleaned):
        raise AccountError("用户名含有控制字符，请只用文字、数字和空格。", "the user name contains control characters")
    if cleaned.lower() in RESERVED_NAMES:
        raise AccountError(
            f"用户名 {cleaned} 由系统保留，请换一个。", f"the user name {cleaned} is reserved by the product; choose another"
        )
    return cleaned


def _check_password(password: str, name: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"密码至少需要 {MIN_PASSWORD_LENGTH} 个字符。", f"the password needs at least {MIN_PASSWORD_LENGTH} characters"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(
            f"密码过长，最多 {MAX_PASSWORD_LENGTH} 个字符。", f"the password is longer than {MAX_PASSWORD_LENGTH} characters"
        )
    if password.strip().lower() == name.lower():
        raise AccountError("密码不能与用户名相同。", "the password must differ from the user name")


def _user_row(session, name: str) -> UserRow:
    row = session.scalar(select(UserRow).where(UserRow.name == name))
    if row is None:
        raise AccountError(
            f"用户 {name} 不存在。运行 python -m ocr user list 查看全部用户。",
            f"user {name} not found; run python -m ocr user list to see the users",
        )
    return row


def _count_active_admins(session) -> int:
    return session.scalar(
        select(func.count(UserRow.id)).where(UserRow.role == Role.ADMIN, UserRow.active.is_(True))
    ) or 0


def add_user(store: Store, name: str, role: Role | str, password: str) -> Account:
    """Create an active user; raises :class:`AccountError` for an invalid name or password or a name in use."""
    name = normalize_name(name)
    role = parse_role(str(role))
    _check_password(password, name)
    password_hash = _hasher.hash(password)
    with store.session() as session:
        if session.scalar(select(UserRow.id).where(UserRow.name == name)) is not None:
            raise AccountError(
                f"用户 {name} 已存在。要改密码请运行 python -m ocr user passwd {name}。",
                f"user {name} exists already; run python -m ocr user passwd {name} to change the password",
            )
        row = UserRow(name=name, role=role, password_hash=password_hash, active=True)
        session.add(row)
        session.flush()
        account = Account.from_row(row)
    log.info("user added name=%s role=%s", name, role)
    return account


def get_user(store: Store, name: str) -> Account | None:
    """Return the user called ``name`` (after :func:`normalize_name`), or None."""
    try:
        name = normalize_name(name)
    except AccountError:
        return None
    with store.session() as session:
        row = session.scalar(select(UserRow).where(UserRow.name == name))
        return Account.from_row(row) if row is not None else None


def list_users(store: Store) -> list[Account]:
    """Return every user, in the order they were added."""
    with store.session() as session:
        return [Account.from_row(row) for row in session.scalars(select(UserRow).order_by(UserRow.id))]


def count_users(store: Store) -> int:
    with store.session() as session:
        return session.scalar(select(func.count(UserRow.id))) or 0


def set_active(store: Store, name: str, active: bool) -> Account:
    """Enable or disable a user; the last active admin cannot be disabled."""
    name = normalize_name(name)
    with store.session() as session:
        row = _user_row(session, name)
        if not active and row.active and row.role == Role.ADMIN and _count_active_admins(session) <= 1:
            raise AccountError(
                f"{name} 是唯一启用的管理员，不能停用。请先为另一位用户设置管理员角色。",
                f"{name} is the only active admin and cannot be disabled; make another user an admin first",
            )
        row.active = active
        account = Account.from_row(row)
    log.info("user %s name=%s", "enabled" if active else "disabled", name)
    return account


def set_role(store: Store, name: str, role: Role | str) -> Account:
    """Change a user's role; the last active admin keeps the admin role."""
    name = normalize_name(name)
    role = parse_role(str(role))
    with store.session() as session:
        row = _user_row(session, name)
        if row.role == Role.ADMIN and role != Role.ADMIN and row.active and _count_active_admins(session) <= 1:
            raise AccountError(
                f"{name} 是唯一启用的管理员，不能改为其他角色。请先为另一位用户设置管理员角色。",
                f"{name} is the only active admin and must keep that role; make another user an admin first",
            )
        row.role = role
        account = Account.from_row(row)
    log.info("user role changed name=%s role=%s", name, role)
    return account


def set_password(store: Store, name: str, password: str) -> None:
    """Replace a user's password."""
    name = normalize_name(name)
    _check_password(password, name)
    password_hash = _hasher.hash(password)
    with store.session() as session:
        row = _user_row(session, name)
        row.password_hash = password_hash
        row.password_changed_at = _now()
    log.info("user password changed name=%s", name)


def authenticate(store: Store, name: str, password: str) -> Account | None:
    """Return the active user whose name and password match, or None; the caller learns nothing more.

    A successful check records the sign-in time and renews a hash made with
    older Argon2 parameters.
    """
    try:
        name = normalize_name(name)
    except AccountError:
        name = ""
    with store.session() as session:
        row = session.scalar(select(UserRow).where(UserRow.name == name)) if name else None
        if row is None or not row.active:
            _verify(_DUMMY_HASH, password)
            return None
        if not _verify(row.password_hash, password):
            return None
        if _hasher.check_needs_rehash(row.password_hash):
            row.password_hash = _hasher.hash(password)
            log.info("password hash renewed name=%s", name)
        row.last_sign_in_at = _now()
        return Account.from_row(row)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except VerifyMismatchError:
        return False
    except (InvalidHashError, VerificationError) as exc:
        log.error("stored password hash cannot be checked: %s", exc)
        return False


class SignInThrottle:
    """Counts failed sign-ins per key (a user name, a browser session) and refuses tries for a while after too many.

    After ``max_failures`` failures within ``window_s`` seconds, the key is
    locked for ``lockout_s`` seconds. A success clears the key.
    """

    def __init__(
        self, max_failures: int = 5, window_s: float = 900.0, lockout_s: float = 300.0, clock=time.monotonic
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self._clock = clock
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait_seconds(self, key: str) -> float:
        """Return how many seconds ``key`` must still wait before it may try again (0 when it may)."""
        with self._lock:
            return max(0.0, self._locked_until.get(key, 0.0) - self._clock())

    def failed(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            recent = [at for at in self._failures.get(key, []) if now - at < self.window_s]
            recent.append(now)
            if len(recent) >= self.max_failures:
                self._locked_until[key] = now + self.lockout_s
                recent = []
                log.warning("sign-in locked for %.0f s after %d failures", self.lockout_s, self.max_failures)
            self._failures[key] = recent

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
            self._locked_until.pop(key, None)


@dataclass(frozen=True)
class SignInResult:
    """The outcome of one sign-in: the account, or None with the seconds to wait when locked (0 otherwise)."""

    account: Account | None
    wait_s: float = 0.0


def sign_in(store: Store, throttle: SignInThrottle, name: str, password: str, client_key: str) -> SignInResult:
    """Check ``name`` and ``password`` unless the name or the client (``client_key``) is locked by the throttle.

    Failures count against both the name and the client, so neither guessing
    one user's password nor trying one password on many names goes unchecked.
    """
    try:
        name_key = "name:" + normalize_name(name).lower()
    except AccountError:
        name_key = "name:"
    keys = (name_key, "client:" + client_key)
    wait = max(throttle.wait_seconds(key) for key in keys)
    if wait > 0:
        return SignInResult(None, wait)
    account = authenticate(store, name, password)
    if account is None:
        for key in keys:
            throttle.failed(key)
        log.info("sign-in failed")
        return SignInResult(None, 0.0)
    for key in keys:
        throttle.succeeded(key)
    log.info("sign-in name=%s role=%s", account.name, account.role)
    return SignInResult(account, 0.0)
