"""Deadline watch: which records are due soon, overdue, not delivered yet, or sent but not confirmed.

A record is due ``deadline.hours`` (24) after 00:00 of its arrival date in the
configured time zone. The card gives only the arrival date, not the hour, so
this is the earliest the 24 hours could end. A record is done when the
receiver, or the clerk for a manual upload, has acknowledged its first send.

A record in a batch counts as sent only when a delivery attempt of that batch
succeeded and the batch now waits for the clerk's confirmation of the manual
upload. A batch whose attempts all failed, or whose run was interrupted, is
not delivered yet: nothing of it is known to have reached the office.

A card that has no record yet is watched by its card state. A card in review
waits for the clerk. An auto-accepted card without flagged fields waits for the
next transmit run, which approves and sends it (``transmit.include_auto_accepted``).
When that setting is off, or the card has a flagged field, the card waits for
review instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select

from models.card import CardStatus
from ocr.store import CardRow, FieldRow, OutboxRow, Store, TransmitBatchRow, _detail
from ocr.transmit.batches import arrival_date_of
from ocr.transmit.config import Config
from ocr.transmit.outbox import AWAITING_CONFIRMATION

__all__ = ["DeadlineItem", "DeadlineReport", "deadline_report"]

# Card states without a record yet. Auto-accepted cards may wait for a transmit run instead of review.
WAITING_FOR_REVIEW = (CardStatus.EXTRACTED, CardStatus.NEEDS_REVIEW, CardStatus.AUTO_ACCEPTED)


@dataclass(frozen=True)
class DeadlineItem:
    card_id: int
    card_type: str
    arrival_date: str
    # Aware datetime in the configured time zone.
    deadline: datetime
    # "pending" (queued), "batched" (in a batch, not acknowledged), or the card state for review cards.
    state: str
    # The batch of a batched record, and its latest delivery error as stored (see outbox.error_text).
    batch_id: int | None = None
    last_error: str | None = None

    def hours_left(self, now: datetime) -> float:
        return (self.deadline - now).total_seconds() / 3600


@dataclass
class DeadlineReport:
    now: datetime
    overdue: list[DeadlineItem] = field(default_factory=list)
    due_soon: list[DeadlineItem] = field(default_factory=list)
    # Sent but not acknowledged: a delivery succeeded and the batch waits for the clerk's confirmation.
    # First sends and corrections alike.
    unconfirmed: list[DeadlineItem] = field(default_factory=list)
    # In a batch that no delivery attempt has handed over yet: failed, interrupted or not tried.
    undelivered: list[DeadlineItem] = field(default_factory=list)
    # Cards still in review whose deadline has passed: no record of them can reach the office in time.
    review_overdue: list[DeadlineItem] = field(default_factory=list)
    # Cards still in review due within ``deadline.due_soon_hours``.
    review_due_soon: list[DeadlineItem] = field(default_factory=list)
    # Auto-accepted cards that the next transmit run approves and sends, overdue or not, oldest card first.
    auto_accepted: list[DeadlineItem] = field(default_factory=list)
    # Queued corrections and cancellations of records sent before; they have no deadline of their own.
    corrections_pending: int = 0
    cancellations_pending: int = 0

    @property
    def auto_accepted_overdue(self) -> list[DeadlineItem]:
        """Return the auto-accepted cards waiting for a transmit run whose deadline has passed."""
        return [item for item in self.auto_accepted if item.deadline <= self.now]

    @property
    def has_overdue(self) -> bool:
        """Return whether a record is late: queued, still in review, or auto-accepted and not yet sent."""
        return bool(self.overdue or self.review_overdue or self.auto_accepted_overdue)


def _deadline(arrival: str, config: Config) -> datetime:
    zone = config.deadline.zone
    start = datetime.combine(datetime.fromisoformat(arrival).date(), time(0, 0), tzinfo=zone)
    return start + timedelta(hours=config.deadline.hours)


def deadline_report(store: Store, config: Config, now: datetime | None = None) -> DeadlineReport:
    """Return the records due within ``deadline.due_soon_hours``, overdue, undelivered and unconfirmed at ``now``."""
    zone = config.deadline.zone
    now = (now or datetime.now(UTC)).astimezone(zone)
    soon = timedelta(hours=config.deadline.due_soon_hours)
    report = DeadlineReport(now=now)
    with store.session() as session:
        entries = session.scalars(
            select(OutboxRow).where(OutboxRow.state != "acknowledged").order_by(OutboxRow.id)
        ).all()
        for entry in entries:
            card = session.get(CardRow, entry.card_id)
            sendable = card.status in (CardStatus.APPROVED, CardStatus.EXPORTED)
            cancelling = entry.kind == "cancellation" and card.status == CardStatus.REJECTED
            if not (sendable or cancelling):
                continue
            detail = _detail(card)
            arrival = (entry.record or {}).get("arrival_date") or arrival_date_of(detail, zone)
            try:
                deadline = _deadline(str(arrival), config)
            except ValueError:
                deadline = _deadline(arrival_date_of(detail, zone), config)
            batch = session.get(TransmitBatchRow, entry.batch_id) if entry.batch_id is not None else None
            item = DeadlineItem(
                card.id,
                card.card_type,
                str(arrival),
                deadline,
                entry.state,
                batch_id=entry.batch_id,
                last_error=batch.last_error if batch is not None else None,
            )
            if entry.state == "batched" and batch is not None:
                if batch.state == AWAITING_CONFIRMATION:
                    report.unconfirmed.append(item)
                else:
                    report.undelivered.append(item)
            # Corrections and cancellations of sent records are counted, not given a deadline of their own.
            if entry.kind == "correction":
                if entry.state == "pending":
                    report.corrections_pending += 1
                continue
            if entry.kind == "cancellation":
                if entry.state == "pending":
                    report.cancellations_pending += 1
                continue
            if deadline <= now:
                report.overdue.append(item)
            elif deadline - now <= soon:
                report.due_soon.append(item)

        flagged = (
            select(func.count(FieldRow.id))
            .where(FieldRow.card_id == CardRow.id, FieldRow.needs_review.is_(True))
            .scalar_subquery()
        )
        waiting = session.execute(
            select(CardRow, flagged)
            .where(CardRow.status.in_([str(s) for s in WAITING_FOR_REVIEW]))
            .order_by(CardRow.id)
        ).all()
        for card, flagged_count in waiting:
            detail = _detail(card)
            arrival = arrival_date_of(detail, zone)
            deadline = _deadline(arrival, config)
            item = DeadlineItem(card.id, card.card_type, arrival, deadline, card.status)
            # The same rule as outbox.approve_auto_accepted: a flagged field keeps the card for review.
            sent_by_transmit = (
                card.status == CardStatus.AUTO_ACCEPTED
                and config.transmit.include_auto_accepted
                and not flagged_count
            )
            if sent_by_transmit:
                report.auto_accepted.append(item)
            elif deadline <= now:
                report.review_overdue.append(item)
            elif deadline - now <= soon:
                report.review_due_soon.append(item)
    return report
