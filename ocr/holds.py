"""Holds: a card being reviewed belongs to one reviewer for a limited time.

Opening a card in the review app (or answering one of its fields in the field
queue) takes the hold; each further action by the same reviewer renews it, and
approving, rejecting or leaving the card releases it. A hold nobody renews
expires after :func:`hold_minutes` minutes, so a closed browser blocks nobody
for long. While another reviewer holds a card, :func:`check_hold` raises
:class:`CardHeldError`, and the review actions in :mod:`ocr.review` call it
before they save. A supervisor may release any hold.

A hold only keeps two people from working on one card at once; the card
version check of the store still refuses a save based on an old version.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, ForeignKey, Integer, String, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from ocr.errors import CardCaptureError, ConfigError, ExitCode
from ocr.store import Base, Store

__all__ = [
    "DEFAULT_HOLD_MINUTES",
    "HOLD_MINUTES_ENV",
    "CardHeldError",
    "Hold",
    "HoldRow",
    "active_holds",
    "check_hold",
    "hold_minutes",
    "minutes_from_env",
    "release_hold",
    "release_holds_of",
    "take_hold",
]

log = logging.getLogger(__name__)

HOLD_MINUTES_ENV = "HUKA_HOLD_MIN"
DEFAULT_HOLD_MINUTES = 10.0


def minutes_from_env(variable: str, default: float) -> float:
    """Return the number of minutes in environment variable ``variable``, or ``default`` when it is unset or empty.

    Raises :class:`ConfigError` naming the variable when its value is not a number above 0.
    """
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        minutes = float(raw)
    except ValueError:
        minutes = 0.0
    if minutes <= 0:
        raise ConfigError(
            f"环境变量 {variable}={raw!r} 无效：应为大于 0 的分钟数，例如 {default:g}。",
            f"{variable}={raw!r} is invalid: give a number of minutes above 0, for example {default:g}",
        )
    return minutes


def hold_minutes() -> float:
    """Return how long a hold lasts without renewal, in minutes: ``$HUKA_HOLD_MIN`` or 10."""
    return minutes_from_env(HOLD_MINUTES_ENV, DEFAULT_HOLD_MINUTES)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class HoldRow(Base):
    """The reviewer who works on a card now, until ``expires_at`` (UTC)."""

    __tablename__ = "card_holds"

    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    taken_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


@dataclass(frozen=True)
class Hold:
    """A hold as the app shows it; times are naive UTC, like every time in the store."""

    card_id: int
    holder: str
    taken_at: datetime
    expires_at: datetime

    @classmethod
    def from_row(cls, row: HoldRow) -> Hold:
        return cls(card_id=row.card_id, holder=row.holder, taken_at=row.taken_at, expires_at=row.expires_at)


class CardHeldError(CardCaptureError):
    """Another reviewer holds the card, so this one may look at it but not change it."""

    exit_code = ExitCode.CONFLICT

    def __init__(self, hold: Hold) -> None:
        # Shown in the server's local time, which is the reviewers' clock at a hotel.
        until = hold.expires_at.replace(tzinfo=UTC).astimezone().strftime("%H:%M")
        super().__init__(
            f"卡片 {hold.card_id} 正由 {hold.holder} 审核（至少保留到 {until}），您暂时不能修改它。"
            "请先处理其他卡片，或请主管解除保留。",
            f"card {hold.card_id} is being reviewed by {hold.holder} (held until at least {until}), "
            "so you cannot change it now; work on another card or ask a supervisor to release the hold",
        )
        self.hold = hold


def take_hold(
    store: Store, card_id: int, holder: str, *, minutes: float | None = None, now: datetime | None = None
) -> Hold:
    """Hold card ``card_id`` for ``holder`` or renew their hold; raises :class:`CardHeldError` when someone else holds it.

    Safe against a second reviewer taking the same card at the same moment: the
    row's primary key lets only one insert win, and the update that renews or
    takes over an expired hold names the expected holder or expiry in its WHERE.
    """
    now = now or _now()
    expires_at = now + timedelta(minutes=minutes if minutes is not None else hold_minutes())
    # Two rounds: a hold that ends between the failed insert and the look-up gets one more try.
    for _ in range(2):
        hold = _renew_or_take_over(store, card_id, holder, now, expires_at)
        if hold is not None:
            return hold
        try:
            with store.session() as session:
                session.add(HoldRow(card_id=card_id, holder=holder, taken_at=now, expires_at=expires_at))
        except IntegrityError:
            # Someone else's unexpired row blocked both updates and the insert.
            current = _current_hold(store, card_id, now)
            if current is not None and current.holder != holder:
                raise CardHeldError(current) from None
            continue
        log.info("card %s held by=%s", card_id, holder)
        return Hold(card_id=card_id, holder=holder, taken_at=now, expires_at=expires_at)
    raise CardHeldError(_current_hold(store, card_id, now) or Hold(card_id, "?", now, expires_at))


def _renew_or_take_over(store: Store, card_id: int, holder: str, now: datetime, expires_at: datetime) -> Hold | None:
    """Renew ``holder``'s own hold or take over an expired one; return None when there is no row to update."""
    with store.session() as session:
        renewed = session.execute(
            update(HoldRow).where(HoldRow.card_id == card_id, HoldRow.holder == holder).values(expires_at=expires_at)
        ).rowcount
        if renewed:
            return Hold.from_row(session.get(HoldRow, card_id))
        taken_over = session.execute(
            update(HoldRow)
            .where(HoldRow.card_id == card_id, HoldRow.expires_at <= now)
            .values(holder=holder, taken_at=now, expires_at=expires_at)
        ).rowcount
    if taken_over:
        log.info("card %s hold taken over from an expired hold by=%s", card_id, holder)
        return Hold(card_id=card_id, holder=holder, taken_at=now, expires_at=expires_at)
    return None


def _current_hold(store: Store, card_id: int, now: datetime) -> Hold | None:
    with store.session() as session:
        row = session.get(HoldRow, card_id)
        if row is None or row.expires_at <= now:
            return None
        return Hold.from_row(row)


def active_holds(store: Store, card_ids: Iterable[int] | None = None, *, now: datetime | None = None) -> dict[int, Hold]:
    """Return the unexpired holds by card id, of all cards or of ``card_ids``."""
    now = now or _now()
    query = select(HoldRow).where(HoldRow.expires_at > now)
    if card_ids is not None:
        query = query.where(HoldRow.card_id.in_(list(card_ids)))
    with store.session() as session:
        return {row.card_id: Hold.from_row(row) for row in session.scalars(query)}


def check_hold(store: Store, card_id: int, actor: str, *, now: datetime | None = None) -> None:
    """Raise :class:`CardHeldError` when someone other than ``actor`` holds card ``card_id`` now."""
    current = _current_hold(store, card_id, now or _now())
    if current is not None and current.holder != actor:
        raise CardHeldError(current)


def release_hold(store: Store, card_id: int, *, holder: str | None = None, released_by: str = "") -> bool:
    """End the hold on ``card_id``: only ``holder``'s own when given, any hold otherwise; returns whether one ended.

    ``released_by`` names the supervisor who ends another reviewer's hold, for the log.
    """
    query = delete(HoldRow).where(HoldRow.card_id == card_id)
    if holder is not None:
        query = query.where(HoldRow.holder == holder)
    with store.session() as session:
        ended = session.execute(query).rowcount > 0
    if ended and released_by:
        log.info("card %s hold released by=%s", card_id, released_by)
    return ended


def release_holds_of(store: Store, holder: str, *, keep: int | None = None) -> int:
    """End every hold of ``holder`` except the one on card ``keep``; returns how many ended."""
    query = delete(HoldRow).where(HoldRow.holder == holder)
    if keep is not None:
        query = query.where(HoldRow.card_id != keep)
    with store.session() as session:
        return session.execute(query).rowcount
