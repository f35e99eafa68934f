"""Templates: where each field of a card type sits on one printed layout.

Coordinates are relative to the card: x from the left edge, y from the top
edge, both in [0, 1] of the card's width and height. A template is a data file
(``ocr/templates/<name>.json``) validated by :class:`Template`. Its confidence
calibration, written by ``python -m ocr bench calibrate``, is a file beside it
(``<name>.calibration.json``) validated by :class:`Calibration`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Box", "Calibration", "FieldCalibration", "LogisticModel", "Template", "TemplateField"]

# Names of the evidence features a calibration model may weigh (see ocr.confidence.evidence_features).
FEATURE_NAMES = (
    "score_logit", "low_score", "blank", "blank_ink_log", "rule_failed", "free_text", "history_logit", "agree",
    "disagree",
)


class Box(BaseModel):
    """Axis-aligned rectangle in relative card coordinates (0..1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x0: float = Field(ge=0.0, le=1.0)
    y0: float = Field(ge=0.0, le=1.0)
    x1: float = Field(ge=0.0, le=1.0)
    y1: float = Field(ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> "Box":
        if not (self.x0 < self.x1 and self.y0 < self.y1):
            raise ValueError(f"box corners out of order: ({self.x0}, {self.y0}) - ({self.x1}, {self.y1})")
        return self

    def to_pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Return (x0, y0, x1, y1) in pixels of a card image of the given size."""
        return (
            round(self.x0 * width),
            round(self.y0 * height),
            round(self.x1 * width),
            round(self.y1 * height),
        )

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)


class TemplateField(BaseModel):
    """Position of one field's printed label and written value on the card."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    label_box: Box | None = None
    value_box: Box
    # Text printed in the label box, as OCR should find it (Chinese line first).
    label_text: tuple[str, ...] = ()
    # Colour of the printed value: "red" for the pre-printed serial number.
    ink: str = "any"


class Template(BaseModel):
    """One printed layout of a card type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    card_type: str
    version: int = 1
    # Card width divided by height, e.g. 1.419 for A5 landscape (210 x 148 mm).
    aspect_ratio: float = Field(gt=0.2, lt=5.0)
    title_box: Box
    title_text: tuple[str, ...]
    # Rectangles of the printed table (cell borders), used to draw and to align.
    rules: tuple[Box, ...] = ()
    fields: tuple[TemplateField, ...]

    @model_validator(mode="after")
    def _keys_unique(self) -> "Template":
        keys = [f.key for f in self.fields]
        if len(keys) != len(set(keys)):
            raise ValueError(f"template {self.name!r} lists a field key twice")
        return self

    def field(self, key: str) -> TemplateField:
        for spec in self.fields:
            if spec.key == key:
                return spec
        raise KeyError(f"template {self.name!r} has no field {key!r}")


class LogisticModel(BaseModel):
    """Logistic regression weights: P(value right) = 1 / (1 + exp(-(intercept + coefficients · features)))."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    features: tuple[str, ...]
    intercept: float
    coefficients: tuple[float, ...]

    @model_validator(mode="after")
    def _consistent(self) -> "LogisticModel":
        unknown = [name for name in self.features if name not in FEATURE_NAMES]
        if unknown:
            raise ValueError(f"unknown features {unknown}; known: {', '.join(FEATURE_NAMES)}")
        if len(self.coefficients) != len(self.features):
            raise ValueError(f"{len(self.features)} features but {len(self.coefficients)} coefficients")
        # A higher engine score must never lower the confidence.
        if "score_logit" in self.features and self.coefficients[self.features.index("score_logit")] < 0:
            raise ValueError("the coefficient of score_logit must not be negative")
        if "low_score" in self.features and self.coefficients[self.features.index("low_score")] > 0:
            raise ValueError("the coefficient of low_score must not be positive")
        return self


class FieldCalibration(BaseModel):
    """Threshold and error prior of one field, measured on the fitting cards."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Fields whose calibrated confidence is below this go to review.
    threshold: float = Field(ge=0.0, le=1.0)
    # Share of wrong first-engine values of this field on the fitting cards, smoothed; the error
    # history starts from it.
    prior_error: float = Field(gt=0.0, lt=1.0)
    fitted_fields: int = Field(ge=0)
    fitted_wrong: int = Field(ge=0)
    # Auto-accepted and wrong auto-accepted fields at ``threshold`` on the fitting cards.
    fitted_auto: int = Field(default=0, ge=0)
    fitted_auto_wrong: int = Field(default=0, ge=0)


class Calibration(BaseModel):
    """Confidence calibration of one template: evidence weights and per-field thresholds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template: str
    # The engine whose zone reads and scores the weights are fitted for, and the engine that checks them.
    engine: str = "rapidocr"
    second_engine: str = "tesseract"
    # Error rate among auto-accepted fields that the thresholds were chosen for.
    target_error: float = Field(gt=0.0, lt=1.0)
    # Weight of the prior error rate, in reviewed fields, when it is blended with the store's history.
    history_weight: float = Field(default=200.0, gt=0.0)
    # Weights without and with the second engine's read of the zone.
    single: LogisticModel
    paired: LogisticModel
    fields: dict[str, FieldCalibration]
    # How the file was made: command, seeds, card count, date.
    fitted_with: dict[str, str] = Field(default_factory=dict)
