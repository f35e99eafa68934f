"""Pydantic models of everything that crosses a stage boundary.

Card types (the fields a card carries and the rules they follow), templates
(where those fields sit on one printed layout), field results, cards and
batches.
"""

from models.batch import AuditEvent, BatchSummary, CardDetail, CardSummary
from models.card import CardStatus, Extraction, FieldOutput, FieldResult
from models.card_type import CardTypeSpec, FieldSpec, FieldKind
from models.template import Box, Template, TemplateField

__all__ = [
    "AuditEvent",
    "BatchSummary",
    "CardDetail",
    "CardSummary",
    "Box",
    "CardStatus",
    "CardTypeSpec",
    "Extraction",
    "FieldKind",
    "FieldOutput",
    "FieldResult",
    "FieldSpec",
    "Template",
    "TemplateField",
]
