"""Card types: which fields a card carries, their printed labels and rules.

A card type is a data file (``ocr/card_types/<name>.json``) validated by
:class:`CardTypeSpec`. The field keys are the contract shared by extraction,
review, export and evaluation, so they follow the card specification exactly.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["CardTypeSpec", "FieldKind", "FieldSpec", "UNKNOWN_CARD_TYPE"]

UNKNOWN_CARD_TYPE = "unknown"


class FieldKind(StrEnum):
    """Validator family of a field: decides normalisation and the rule it must pass."""

    SERIAL = "serial"
    LATIN_NAME = "latin_name"
    TEXT = "text"
    SEX = "sex"
    DATE = "date"
    NATIONALITY = "nationality"
    DOCUMENT_TYPE = "document_type"
    DOCUMENT_NUMBER = "document_number"
    VISA_TYPE = "visa_type"
    VISA_NUMBER = "visa_number"
    ROOM = "room"
    ETHNICITY = "ethnicity"
    ID_TYPE = "id_type"
    RESIDENT_ID = "resident_id"


class FieldSpec(BaseModel):
    """One field of a card type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label_zh: str
    label_en: str
    kind: FieldKind
    required: bool = True
    # Fields whose confidence is below this go to review; 0.0 means "never for confidence alone".
    threshold: float = Field(default=0.90, ge=0.0, le=1.0)


class CardTypeSpec(BaseModel):
    """A card type: its title, its fields and the cross-field rules that apply."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    card_type: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title_zh: str
    title_en: str
    fields: tuple[FieldSpec, ...]
    # Names of cross-field rules from ocr.validate.CROSS_RULES.
    cross_rules: tuple[str, ...] = ()

    @field_validator("fields")
    @classmethod
    def _keys_unique(cls, fields: tuple[FieldSpec, ...]) -> tuple[FieldSpec, ...]:
        keys = [f.key for f in fields]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"duplicate field keys: {', '.join(duplicates)}")
        return fields

    @property
    def keys(self) -> list[str]:
        return [f.key for f in self.fields]

    def field(self, key: str) -> FieldSpec:
        for spec in self.fields:
            if spec.key == key:
                return spec
        raise KeyError(f"card type {self.card_type!r} has no field {key!r}")
