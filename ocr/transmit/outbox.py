"""Outbox: the queued records, the batches made of them, and their acknowledgement.

Entries are queued by the store when a card is approved or a sent card is
changed. Here they are put into batches (``pending`` → ``batched``) and marked
``acknowledged`` when the receiver or a clerk confirms their batch. A batch is
never rebuilt: its records are kept as sent, so a re-send after a crash carries
the same records under the same idempotency key.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, or_, select

from models.card import CardStatus
from ocr.registry import Registry
from ocr.review import hold_duplicate_serials
from ocr.store import CardRow, OutboxRow, Store, TransmitBatchRow, _detail, _now
from ocr.transmit.batches import arrival_date_of, build_manifest, build_record
from ocr.transmit.config import Config

__all__ = [
    "ACKNOWLEDGED",
    "AWAITING_CONFIRMATION",
    "BatchInfo",
    "approve_auto_accepted",
    "error_text",
    "form_batches",
    "get_batch",
    "list_batches",
    "mark_acknowledged",
    "mark_attempt",
    "open_batches",
    "set_batch_files",
]

log = logging.getLogger(__name__)

# Card states whose records are sent; a card sent back to review waits. A rejected
# card's only entry is the cancellation of a record sent before its rejection.
TRANSMITTABLE = (CardStatus.APPROVED, CardStatus.EXPORTED)

CREATED = "created"
READY = "ready"
AWAITING_CONFIRMATION = "awaiting_confirmation"
ACKNOWLEDGED = "acknowledged"

AUTO_ACTOR = "auto"

# Between the Chinese and the English message in ``transmit_batches.last_error``.
ERROR_SEPARATOR = "\n"


def error_text(stored: str | None, lang: str) -> str | None:
    """Return the stored error of a batch in ``lang``; an error stored in one language only is returned as it is."""
    if not stored:
        return None
    chinese, separator, english = stored.partition(ERROR_SEPARATOR)
    if not separator:
        return stored
    return english if lang == "en" else chinese


@dataclass(frozen=True)
class BatchInfo:
    """A batch as the runner, the CLI and the tests read it."""

    id: int
    idempotency_key: str
    card_type: str
    arrival_date: str
    kind: str
    file_format: str
    adapter: str
    state: str
    data_file: str | None
    manifest: dict | None
    attempts: int
    last_error: str | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    receipt: str | None
    records: list[dict]
    card_ids: list[int]


def _info(session, row: TransmitBatchRow) -> BatchInfo:
    entries = session.scalars(select(OutboxRow).where(OutboxRow.batch_id == row.id).order_by(OutboxRow.id)).all()
    return BatchInfo(
        id=row.id,
        idempotency_key=row.idempotency_key,
        card_type=row.card_type,
        arrival_date=row.arrival_date,
        kind=row.kind,
        file_format=row.file_format,
        adapter=row.adapter,
        state=row.state,
        data_file=row.data_file,
        manifest=row.manifest,
        attempts=row.attempts,
        last_error=row.last_error,
        acknowledged_by=row.acknowledged_by,
        acknowledged_at=row.acknowledged_at,
        receipt=row.receipt,
        records=[e.record for e in entries if e.record is not None],
        card_ids=[e.card_id for e in entries],
    )


def approve_auto_accepted(store: Store, registry: Registry, *, held: list[int] | None = None) -> int:
    """Approve auto-accepted cards that have no flagged field, as ``export`` does; returns how many.

    A card whose serial number another card has goes back to review first, because the same card
    scanned twice must not be reported twice. ``held`` receives the ids of those cards.
    """
    held_ids = hold_duplicate_serials(store, registry, actor=AUTO_ACTOR)
    if held is not None:
        held.extend(held_ids)
    approved = 0
    for summary in store.list_cards(statuses=[CardStatus.AUTO_ACCEPTED]):
        if summary.flagged_fields:
            log.warning("auto-accepted card %s has %d flagged fields and is not transmitted", summary.id, summary.flagged_fields)
            continue
        store.set_status(summary.id, CardStatus.APPROVED, actor=AUTO_ACTOR, expected_version=summary.version)
        approved += 1
    return approved


def form_batches(store: Store, config: Config, registry: Registry, adapter: str) -> list[int]:
    """Put every pending entry of an approved card into a new batch; returns the new batch ids.

    One batch is made per card type, arrival date and kind. The entries, their
    record snapshots and the batch rows commit in one transaction.
    """
    zone = config.deadline.zone
    hotel_id = config.transmit.hotel_id
    created: list[int] = []
    with store.session() as session:
        entries = session.scalars(
            select(OutboxRow)
            .join(CardRow, OutboxRow.card_id == CardRow.id)
            .where(
                OutboxRow.state == "pending",
                or_(
                    and_(OutboxRow.kind != "cancellation", CardRow.status.in_([str(s) for s in TRANSMITTABLE])),
                    and_(OutboxRow.kind == "cancellation", CardRow.status == str(CardStatus.REJECTED)),
                ),
            )
            .order_by(OutboxRow.id)
        ).all()
        groups: dict[tuple[str, str, str], list[tuple[OutboxRow, dict]]] = {}
        for entry in entries:
            card = _detail(session.get(CardRow, entry.card_id))
            if card.card_type not in registry.card_types:
                log.warning("card %s has unknown card type and is not transmitted", card.id)
                continue
            record = build_record(
                card,
                record_id=entry.id,
                kind=entry.kind,
                corrects_id=entry.corrects_id,
                hotel_id=hotel_id,
                registry=registry,
            )
            key = (card.card_type, arrival_date_of(card, zone), entry.kind)
            groups.setdefault(key, []).append((entry, record))

        for (card_type, arrival_date, kind), members in sorted(groups.items()):
            earlier = session.scalars(
                select(OutboxRow.record)
                .join(TransmitBatchRow, OutboxRow.batch_id == TransmitBatchRow.id)
                .where(TransmitBatchRow.card_type == card_type, TransmitBatchRow.arrival_date == arrival_date)
            ).all()
            batch = TransmitBatchRow(
                idempotency_key=f"{hotel_id}-{uuid.uuid4()}",
                card_type=card_type,
                arrival_date=arrival_date,
                kind=kind,
                file_format=config.transmit.file_format,
                adapter=adapter,
                state=CREATED,
            )
            session.add(batch)
            session.flush()
            records = [record for _entry, record in members]
            batch.manifest = build_manifest(
                idempotency_key=batch.idempotency_key,
                hotel_id=hotel_id,
                card_type=card_type,
                arrival_date=arrival_date,
                kind=kind,
                file_format=batch.file_format,
                created_at=batch.created_at or _now(),
                records=records,
                earlier_serials=[str(r.get("card_serial", "")) for r in earlier if r],
            )
            for entry, record in members:
                entry.state = "batched"
                entry.batch_id = batch.id
                entry.record = record
            created.append(batch.id)
            log.info("transmit batch formed id=%s card_type=%s date=%s kind=%s records=%d", batch.id, card_type, arrival_date, kind, len(members))
    return created


def open_batches(store: Store) -> list[BatchInfo]:
    """Return the batches to deliver: formed or written but not delivered, oldest first.

    Batches waiting for a clerk's confirmation of a manual upload are not in the list.
    """
    with store.session() as session:
        rows = session.scalars(
            select(TransmitBatchRow)
            .where(TransmitBatchRow.state.in_([CREATED, READY]))
            .order_by(TransmitBatchRow.id)
        ).all()
        return [_info(session, row) for row in rows]


def list_batches(store: Store, *, states: tuple[str, ...] | None = None) -> list[BatchInfo]:
    with store.session() as session:
        query = select(TransmitBatchRow).order_by(TransmitBatchRow.id)
        if states is not None:
            query = query.where(TransmitBatchRow.state.in_(states))
        return [_info(session, row) for row in session.scalars(query).all()]


def get_batch(store: Store, reference: str) -> BatchInfo | None:
    """Return the batch with this id or idempotency key, or None."""
    with store.session() as session:
        row = session.scalar(select(TransmitBatchRow).where(TransmitBatchRow.idempotency_key == reference))
        if row is None and reference.isdigit():
            row = session.get(TransmitBatchRow, int(reference))
        return _info(session, row) if row is not None else None


def set_batch_files(store: Store, batch_id: int, data_file: str, manifest: dict) -> None:
    """Record the written data file and the manifest with its checksum; the batch becomes ready."""
    with store.session() as session:
        row = session.get(TransmitBatchRow, batch_id)
        row.data_file = data_file
        row.manifest = manifest
        if row.state == CREATED:
            row.state = READY


def mark_attempt(
    store: Store,
    batch_id: int,
    *,
    adapter: str,
    error: tuple[str, str] | None,
    state: str | None = None,
) -> None:
    """Count one delivery attempt through ``adapter``, with its (Chinese, English) error or None.

    The batch records the adapter of its latest attempt, so after a successful attempt it names
    the adapter that delivered it. That may differ from the one configured when the batch was
    formed. ``state`` optionally moves the batch on.
    """
    with store.session() as session:
        row = session.get(TransmitBatchRow, batch_id)
        row.attempts += 1
        row.adapter = adapter
        row.last_error = f"{error[0]}{ERROR_SEPARATOR}{error[1]}" if error else None
        row.sent_at = _now()
        if state is not None and row.state != ACKNOWLEDGED:
            row.state = state


def mark_acknowledged(
    store: Store,
    batch_id: int,
    *,
    by: str,
    receipt: str | None,
    acknowledgement: dict,
    at: datetime | None = None,
) -> bool:
    """Store the acknowledgement of a batch and mark its entries acknowledged.

    Returns False, and changes nothing, when the batch was acknowledged before:
    the first acknowledgement is the one kept.
    """
    stamp = (at.astimezone(UTC).replace(tzinfo=None) if at and at.tzinfo else at) or _now()
    with store.session() as session:
        row = session.get(TransmitBatchRow, batch_id)
        if row.state == ACKNOWLEDGED:
            log.info("transmit batch %s acknowledged again; the first acknowledgement is kept", batch_id)
            return False
        row.state = ACKNOWLEDGED
        row.acknowledged_at = stamp
        row.acknowledged_by = by
        row.receipt = receipt
        row.acknowledgement = acknowledgement
        row.last_error = None
        for entry in session.scalars(select(OutboxRow).where(OutboxRow.batch_id == batch_id)).all():
            entry.state = ACKNOWLEDGED
            entry.acknowledged_at = stamp
    log.info("transmit batch %s acknowledged by=%s", batch_id, "clerk" if by not in ("https", "folder") else by)
    return True
