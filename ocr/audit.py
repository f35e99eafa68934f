"""Tamper-evident audit log: every audit event is chained to the one before it by a SHA-256 hash.

Each event in ``audit_events`` stores its place in the chain (``chain_seq``),
``prev_hash`` (the hash of the event before it) and ``hash``, the SHA-256 of a
canonical JSON serialisation of its own fields, its place and ``prev_hash``.
The old and new values enter the hash only through ``value_digest``, the
SHA-256 of a random per-event salt and the two values. The retention job can
therefore erase a deleted card's values (and the salt) and the chain still
verifies. Without the salt, an erased value cannot be recovered from its
digest by trying likely values.

The one table row ``audit_chain_head`` contains the hash of the last event and
the number of chained events. The events a transaction adds are chained when
it commits. A ``before_commit`` hook flushes every other change first and then
locks the head: ``SELECT … FOR UPDATE`` on PostgreSQL, while on SQLite the
transaction holds the database's only write lock already. It appends the
events and updates the head. Concurrent writers thus extend one chain, never fork it,
and because the head is the last lock a transaction takes, waiting for it
cannot deadlock with the row locks of cards. The hooks listen on every
SQLAlchemy session, so each ``AuditRow`` the store adds is chained, wherever it
is added.

:func:`verify_chain` walks the events in chain order and reports the first one
whose place, link, values or hash do not match, an event outside the chain,
and a head that does not match the last event (events deleted from the end).
An attacker with write access to the database can still rewrite the whole
chain and its head. Copy the head hash that ``python -m ocr audit verify``
prints to somewhere else now and then, so such a rewrite shows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, Integer, String, event, func, inspect, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from ocr.errors import CardCaptureError, ExitCode
from ocr.store import AuditRow, Base, Store, _now

__all__ = [
    "GENESIS_HASH",
    "AuditChainError",
    "AuditChainHeadRow",
    "ChainReport",
    "event_hash",
    "value_digest",
    "verify_chain",
]

log = logging.getLogger(__name__)

# prev_hash of the first event of the chain.
GENESIS_HASH = "0" * 64
# Part of every hashed serialisation, so that a later format can tell its events apart.
CHAIN_FORMAT = 1
HEAD_ROW_ID = 1
# Events read per round trip while verifying.
VERIFY_BATCH = 1000


class AuditChainHeadRow(Base):
    """The end of the audit chain: hash of the last event and the number of chained events."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_hash: Mapped[str] = mapped_column(String(64))
    event_count: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=_now)


class AuditChainError(CardCaptureError):
    """The audit chain does not verify: an event was changed, inserted or deleted outside the product."""

    exit_code = ExitCode.STORE_FAILED


def _canonical(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def value_digest(salt_hex: str, old_value: str | None, new_value: str | None) -> str:
    """Return the SHA-256 (hex) of the salt and the event's old and new values."""
    return hashlib.sha256(bytes.fromhex(salt_hex) + _canonical([old_value, new_value])).hexdigest()


def event_hash(row: AuditRow, prev_hash: str) -> str:
    """Return the SHA-256 (hex) of the event's fields, its value digest and ``prev_hash``."""
    payload = {
        "format": CHAIN_FORMAT,
        "chain_seq": row.chain_seq,
        "card_id": row.card_id,
        "at": row.at.isoformat(timespec="microseconds"),
        "actor": row.actor,
        "action": row.action,
        "field_key": row.field_key,
        "value_digest": row.value_digest,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(_canonical(payload)).hexdigest()


def _lock_head(session: Session) -> AuditChainHeadRow:
    """Return the chain head, locked until the session's transaction ends."""
    if session.get_bind().dialect.name == "sqlite":
        # SQLite has no row locks. The transaction wrote its events, so it holds
        # the database's write lock already; this write makes that explicit.
        session.execute(
            update(AuditChainHeadRow)
            .where(AuditChainHeadRow.id == HEAD_ROW_ID)
            .values(event_count=AuditChainHeadRow.event_count)
        )
    head = session.scalars(
        select(AuditChainHeadRow)
        .where(AuditChainHeadRow.id == HEAD_ROW_ID)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if head is None:
        # The migration that adds the chain writes this row, so only a database
        # made without migrations gets here.
        head = AuditChainHeadRow(id=HEAD_ROW_ID, last_hash=GENESIS_HASH, event_count=0, updated_at=_now())
        session.add(head)
    return head


_PENDING_KEY = "audit_events_to_chain"


def _collect_new_events(session: Session, _flush_context, _instances) -> None:
    """Remember the audit events this flush inserts, in the order the store added them, for the commit."""
    new_events = [item for item in session.new if isinstance(item, AuditRow)]
    if not new_events:
        return
    new_events.sort(key=lambda item: inspect(item).insert_order)
    for row in new_events:
        if row.at is None:
            row.at = _now()
    session.info.setdefault(_PENDING_KEY, []).extend(new_events)


def _chain_on_commit(session: Session) -> None:
    """Append the transaction's new audit events to the chain, holding the head until the commit ends."""
    unflushed = any(isinstance(item, AuditRow) for item in session.new)
    if not unflushed and not session.info.get(_PENDING_KEY):
        return
    # Every other change first (the commit's own flush comes after this hook):
    # after the head lock, this transaction waits for no other lock.
    session.flush()
    pending = session.info.pop(_PENDING_KEY, [])
    rows = [row for row in pending if inspect(row).persistent]
    if not rows:
        return
    head = _lock_head(session)
    previous = head.last_hash
    position = head.event_count
    for row in rows:
        position += 1
        row.chain_seq = position
        row.value_salt = secrets.token_hex(16)
        row.value_digest = value_digest(row.value_salt, row.old_value, row.new_value)
        row.prev_hash = previous
        row.hash = event_hash(row, previous)
        previous = row.hash
    head.last_hash = previous
    head.event_count = position
    head.updated_at = _now()


def _forget_pending(session: Session, *_args) -> None:
    session.info.pop(_PENDING_KEY, None)


event.listen(Session, "before_flush", _collect_new_events)
event.listen(Session, "before_commit", _chain_on_commit)
event.listen(Session, "after_rollback", _forget_pending)


@dataclass
class ChainReport:
    """Result of walking the audit chain."""

    events: int  # chained events checked
    unchained: int  # events written before the chain existed, at the start of the log
    head_hash: str
    broken_event_id: int | None = None  # first event that fails, or the last event when the head does not match
    reason_zh: str = ""
    reason_en: str = ""

    @property
    def intact(self) -> bool:
        return not self.reason_en


def _check_values(row: AuditRow) -> tuple[str, str] | None:
    if row.value_salt is None:
        # Erased by the retention job: the values must be gone too.
        if row.old_value is not None or row.new_value is not None:
            return ("事件的值已被清除过，却又出现了新的值", "the event's values were erased but values are present again")
        return None
    if value_digest(row.value_salt, row.old_value, row.new_value) != row.value_digest:
        return ("旧值或新值与记录的摘要不符，值被改动过", "the old or new value does not match its digest; a value was changed")
    return None


def _check_event(row: AuditRow, previous: str, position: int) -> tuple[str, str] | None:
    """Return (reason in Chinese, in English) when the event breaks the chain at ``position``, else None."""
    if row.prev_hash != previous:
        return (
            "事件记录的前一哈希与前一事件不符：其前的事件被删除、插入或改动过",
            "the event's previous hash does not match the event before it; an event before it was deleted, "
            "inserted or changed",
        )
    if row.chain_seq != position:
        return (
            f"事件在链中的序号为 {row.chain_seq}，应为 {position}：其前的事件被删除过",
            f"the event's place in the chain is {row.chain_seq}, expected {position}; an event before it was deleted",
        )
    problem = _check_values(row)
    if problem is not None:
        return problem
    if event_hash(row, previous) != row.hash:
        return ("事件内容与其哈希不符，事件被改动过", "the event's fields do not match its hash; the event was changed")
    return None


def _unchained_events(session: Session) -> tuple[int, int | None]:
    """Return (events before the chain began, id of the first event outside the chain after it began or None)."""
    first_chained = session.scalar(select(func.min(AuditRow.id)).where(AuditRow.chain_seq.is_not(None)))
    outside = AuditRow.chain_seq.is_(None)
    if first_chained is None:
        return session.scalar(select(func.count(AuditRow.id)).where(outside)) or 0, None
    before = session.scalar(select(func.count(AuditRow.id)).where(outside, AuditRow.id < first_chained)) or 0
    stray = session.scalar(select(func.min(AuditRow.id)).where(outside, AuditRow.id > first_chained))
    return before, stray


def verify_chain(store: Store) -> ChainReport:
    """Walk the audit events in chain order; return where the chain first breaks, if it does."""
    previous = GENESIS_HASH
    checked = 0
    last_id: int | None = None
    with store.session() as session:
        unchained, stray = _unchained_events(session)
        query = (
            select(AuditRow)
            .where(AuditRow.chain_seq.is_not(None))
            .order_by(AuditRow.chain_seq)
            .execution_options(yield_per=VERIFY_BATCH)
        )
        for row in session.execute(query).scalars():
            problem = _check_event(row, previous, checked + 1)
            if problem is not None:
                log.warning("audit chain broken event=%s after=%d events", row.id, checked)
                return ChainReport(checked, unchained, previous, row.id, *problem)
            previous = row.hash
            checked += 1
            last_id = row.id
            session.expunge(row)
        head = session.get(AuditChainHeadRow, HEAD_ROW_ID)

    head_hash = head.last_hash if head is not None else GENESIS_HASH
    head_count = head.event_count if head is not None else 0
    if head_hash != previous or head_count != checked:
        log.warning("audit chain head mismatch events=%d head_events=%d", checked, head_count)
        return ChainReport(
            checked,
            unchained,
            previous,
            last_id,
            f"链头记录了 {head_count} 条事件，实际可验证 {checked} 条，或最后一条事件的哈希与链头不同："
            "链尾的事件被删除，或链头被改动",
            f"the chain head records {head_count} events and {checked} verify, or the last event's hash differs "
            "from the head; events were deleted from the end or the head was changed",
        )
    if stray is not None:
        log.warning("audit event outside the chain event=%s", stray)
        return ChainReport(
            checked,
            unchained,
            previous,
            stray,
            "事件不在哈希链中，是绕过本程序写入的",
            "the event is not in the hash chain; it was written around the product",
        )
    log.info("audit chain verified events=%d unchained=%d", checked, unchained)
    return ChainReport(checked, unchained, previous)
