"""Results of reading one card: per-field results and the whole extraction."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["REASON_SEPARATOR", "CardStatus", "Extraction", "FieldOutput", "FieldResult", "PixelBox", "join_reasons", "split_reasons"]

# (x0, y0, x1, y1) in pixels of the straightened card image.
PixelBox = tuple[int, int, int, int]

# Separator of the sentences in FieldResult.reason.
REASON_SEPARATOR = "；"
_SENTENCE_END = "。"


def join_reasons(reasons: list[str]) -> str:
    """Join Chinese reason sentences with "；" into one text that ends with "。".

    Each sentence loses its own final "。" first, so that no "。；" appears, and a
    sentence given twice is kept once. Returns "" for no reasons.
    """
    parts = [reason.strip().rstrip(_SENTENCE_END + REASON_SEPARATOR) for reason in reasons]
    parts = list(dict.fromkeys(part for part in parts if part))
    return REASON_SEPARATOR.join(parts) + _SENTENCE_END if parts else ""


def split_reasons(reason: str) -> list[str]:
    """Split a text made by :func:`join_reasons` back into its sentences, without their final "。"."""
    return [part.rstrip(_SENTENCE_END) for part in reason.strip().split(REASON_SEPARATOR) if part.rstrip(_SENTENCE_END)]


class CardStatus(StrEnum):
    """Life of a card in the store; every change is an audit event."""

    EXTRACTED = "extracted"
    NEEDS_REVIEW = "needs_review"
    AUTO_ACCEPTED = "auto_accepted"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPORTED = "exported"


class FieldResult(BaseModel):
    """One field as read, normalised and checked."""

    model_config = ConfigDict(extra="forbid")

    key: str
    # Text exactly as the engine returned it, before normalisation.
    raw_text: str = ""
    # Clean value in the card specification's format ("" when the card is blank there).
    value: str = ""
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    engine: str = ""
    box: PixelBox | None = None
    needs_review: bool = True
    # Chinese, one sentence per problem, joined by "；" and ending with "。" (see join_reasons).
    # Empty when nothing is wrong.
    reason: str = ""
    # Machine-readable problem codes, e.g. "low_confidence", "invalid_date".
    reason_codes: list[str] = Field(default_factory=list)
    # Other plausible clean values for the reviewer, best first; never applied automatically.
    candidates: list[str] = Field(default_factory=list)


class FieldOutput(BaseModel):
    """One field as written by ``extract``."""

    value: str
    confidence: float
    needs_review: bool
    reason: str


class Extraction(BaseModel):
    """Everything the pipeline learned from one page of one scan."""

    model_config = ConfigDict(extra="forbid")

    source: str
    page: int = Field(default=1, ge=1)
    card_type: str
    template: str | None = None
    # Share of the template's printed labels found where the fitted layout expects them, in [0, 1].
    card_type_confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    # Median distance of the found labels from the fitted layout, as a share of the card height.
    layout_residual: float | None = None
    # How far the card content was turned counter-clockwise from upright, degrees in (-180, 180].
    rotation_deg: float = 0.0
    fields: dict[str, FieldResult]
    # All text found on the page, in reading order; kept for unknown cards and search.
    full_text: str = ""
    # Card-level problems (unknown type, poor image), Chinese.
    card_reasons: list[str] = Field(default_factory=list)

    @property
    def needs_review(self) -> bool:
        return bool(self.card_reasons) or any(f.needs_review for f in self.fields.values())

    def to_output(self) -> dict:
        """Return the JSON object that ``extract`` writes for one card."""
        return {
            "source": self.source,
            "page": self.page,
            "card_type": self.card_type,
            "card_type_confidence": round(self.card_type_confidence, 3),
            "rotation_deg": round(self.rotation_deg, 2),
            "fields": {
                key: FieldOutput(
                    value=f.value,
                    confidence=round(f.confidence, 4),
                    needs_review=f.needs_review,
                    reason=f.reason,
                ).model_dump()
                for key, f in self.fields.items()
            },
            # Card-level problems (unknown type, poor scan), Chinese; empty when there are none.
            "card_reasons": list(self.card_reasons),
        }
