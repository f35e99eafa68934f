"""Review statistics: cards per day, automation rate, corrections per field and reviewer throughput.

Days are calendar days in the configured time zone (``[deadline] timezone``).
Cards and their automation rate count on the day a card was stored; reviewer
actions count on the day of their audit event. A field counts as automated
when it is not flagged now and no person corrected or confirmed it, so a field
that a reviewer changed without a flag counts against the rate too.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import and_, case, exists, func, or_, select

from models.card import CardStatus
from ocr.store import PIPELINE_ACTOR, AuditRow, CardRow, FieldRow, Store
from ocr.transmit.outbox import AUTO_ACTOR

__all__ = [
    "CORRECTION_ACTIONS",
    "REVIEW_ACTIONS",
    "DayAutomation",
    "DayCards",
    "FieldCorrections",
    "ReviewerDay",
    "Statistics",
    "statistics",
    "totals",
]

log = logging.getLogger(__name__)

# Audit actions of a person on one field: a changed value, a flagged value accepted as it is,
# or a field marked unreadable on the scan for the front desk to fill in.
CORRECTION_ACTIONS = ("correct", "approve")
CONFIRM_ACTIONS = ("confirm",)
ILLEGIBLE_ACTIONS = ("illegible",)
REVIEW_ACTIONS = CORRECTION_ACTIONS + CONFIRM_ACTIONS + ILLEGIBLE_ACTIONS

# Actors that are programs, not reviewers: the pipeline and the automatic approval before transmission.
MACHINE_ACTORS = (PIPELINE_ACTOR, AUTO_ACTOR)


class DayCards(BaseModel):
    day: date
    cards: int


class DayAutomation(BaseModel):
    day: date
    fields: int
    automated: int
    # automated / fields; None on a day without fields.
    rate: float | None


class FieldCorrections(BaseModel):
    field_key: str
    corrections: int


class ReviewerDay(BaseModel):
    """One reviewer's work on one day."""

    day: date
    reviewer: str
    confirmed: int = 0
    corrected: int = 0
    illegible: int = 0
    approved: int = 0
    rejected: int = 0


class Statistics(BaseModel):
    start: date
    end: date
    # Every day from start to end, days without cards included.
    cards_per_day: list[DayCards]
    automation_per_day: list[DayAutomation]
    # Most corrected first.
    corrections_per_field: list[FieldCorrections]
    # By day, then reviewer.
    reviewer_days: list[ReviewerDay]


def _utc_bounds(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Return naive UTC times (as the store keeps them) of 00:00 on ``start`` and on the day after ``end``."""
    low = datetime.combine(start, time(0, 0), tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
    high = datetime.combine(end + timedelta(days=1), time(0, 0), tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
    return low, high


def _local_day(stamp: datetime, zone: ZoneInfo) -> date:
    return stamp.replace(tzinfo=UTC).astimezone(zone).date()


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def _card_counts(store: Store, low: datetime, high: datetime, zone: ZoneInfo) -> tuple[Counter, Counter, Counter]:
    """Return per local day: cards stored, their fields, and their fields that needed a person."""
    reviewed = exists().where(
        and_(
            AuditRow.card_id == FieldRow.card_id,
            AuditRow.field_key == FieldRow.key,
            AuditRow.action.in_(REVIEW_ACTIONS),
        )
    )
    needed_person = func.sum(case((or_(FieldRow.needs_review.is_(True), reviewed), 1), else_=0))
    per_card = (
        select(FieldRow.card_id, func.count(FieldRow.id), needed_person)
        .join(CardRow, FieldRow.card_id == CardRow.id)
        .where(CardRow.created_at >= low, CardRow.created_at < high)
        .group_by(FieldRow.card_id)
    )
    cards: Counter[date] = Counter()
    fields: Counter[date] = Counter()
    needed: Counter[date] = Counter()
    with store.session() as session:
        stored = session.execute(
            select(CardRow.id, CardRow.created_at).where(CardRow.created_at >= low, CardRow.created_at < high)
        ).all()
        day_of = {card_id: _local_day(created, zone) for card_id, created in stored}
        for card_id, field_count, needed_count in session.execute(per_card):
            fields[day_of[card_id]] += field_count
            needed[day_of[card_id]] += needed_count or 0
    cards.update(day_of.values())
    return cards, fields, needed


def _reviewer_events(store: Store, low: datetime, high: datetime) -> list[tuple[datetime, str, str, str | None, str | None]]:
    """Return (time, actor, action, field key, new value) of the people's review events in the range."""
    query = (
        select(AuditRow.at, AuditRow.actor, AuditRow.action, AuditRow.field_key, AuditRow.new_value)
        .where(AuditRow.at >= low, AuditRow.at < high)
        .where(AuditRow.action.in_((*REVIEW_ACTIONS, "status")))
        .where(AuditRow.actor.not_in(MACHINE_ACTORS))
        .order_by(AuditRow.id)
    )
    with store.session() as session:
        return [tuple(row) for row in session.execute(query)]


def statistics(store: Store, start: date, end: date, zone: ZoneInfo) -> Statistics:
    """Return the statistics of the days from ``start`` to ``end`` (both included) in time zone ``zone``."""
    low, high = _utc_bounds(start, end, zone)
    cards, fields, needed = _card_counts(store, low, high, zone)
    days = _days(start, end)
    automation = [
        DayAutomation(
            day=day,
            fields=fields[day],
            automated=fields[day] - needed[day],
            rate=(fields[day] - needed[day]) / fields[day] if fields[day] else None,
        )
        for day in days
    ]

    corrections: Counter[str] = Counter()
    work: dict[tuple[date, str], ReviewerDay] = {}
    for at, actor, action, field_key, new_value in _reviewer_events(store, low, high):
        day = _local_day(at, zone)
        entry = work.setdefault((day, actor), ReviewerDay(day=day, reviewer=actor))
        if action in CORRECTION_ACTIONS:
            entry.corrected += 1
            corrections[field_key or ""] += 1
        elif action in CONFIRM_ACTIONS:
            entry.confirmed += 1
        elif action in ILLEGIBLE_ACTIONS:
            entry.illegible += 1
        elif new_value == CardStatus.APPROVED:
            entry.approved += 1
        elif new_value == CardStatus.REJECTED:
            entry.rejected += 1
    # A status event that is neither approval nor rejection (e.g. back to review) leaves an empty row.
    reviewer_days = [
        entry
        for _key, entry in sorted(work.items())
        if entry.confirmed or entry.corrected or entry.illegible or entry.approved or entry.rejected
    ]
    log.info("statistics start=%s end=%s cards=%d reviewer_days=%d", start, end, sum(cards.values()), len(reviewer_days))
    return Statistics(
        start=start,
        end=end,
        cards_per_day=[DayCards(day=day, cards=cards[day]) for day in days],
        automation_per_day=automation,
        corrections_per_field=[
            FieldCorrections(field_key=key, corrections=count)
            for key, count in sorted(corrections.items(), key=lambda item: (-item[1], item[0]))
        ],
        reviewer_days=reviewer_days,
    )


def totals(stats: Statistics) -> dict[str, float | int | None]:
    """Return the range's totals: cards, fields, automated fields and the overall automation rate."""
    fields = sum(day.fields for day in stats.automation_per_day)
    automated = sum(day.automated for day in stats.automation_per_day)
    return {
        "cards": sum(day.cards for day in stats.cards_per_day),
        "fields": fields,
        "automated": automated,
        "rate": automated / fields if fields else None,
    }
