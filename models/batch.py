"""Cards and batches as the store returns them, and audit events."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from models.card import CardStatus, FieldResult

__all__ = ["AuditEvent", "BatchSummary", "CardDetail", "CardSummary"]


class CardSummary(BaseModel):
    """One row of a card list."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    batch: str
    status: CardStatus
    card_type: str
    source: str
    page: int
    version: int
    flagged_fields: int
    created_at: datetime


class CardDetail(BaseModel):
    """A card with its fields, as the review app and export read it."""

    id: int
    batch: str
    status: CardStatus
    card_type: str
    template: str | None
    source: str
    page: int
    version: int
    rotation_deg: float
    original_image: str
    straight_image: str
    full_text: str
    card_reasons: list[str]
    fields: dict[str, FieldResult]
    created_at: datetime
    updated_at: datetime

    @property
    def flagged_keys(self) -> list[str]:
        return [k for k, f in self.fields.items() if f.needs_review]

    def values(self) -> dict[str, str]:
        return {k: f.value for k, f in self.fields.items()}


class AuditEvent(BaseModel):
    """One change to a card: who, when, what, old and new value."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    card_id: int
    at: datetime
    actor: str
    action: str
    field_key: str | None
    old_value: str | None
    new_value: str | None


class BatchSummary(BaseModel):
    """A batch and how many of its cards are in each state."""

    name: str
    created_at: datetime
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())
