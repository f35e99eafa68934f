"""The pipeline: one scanned page in, one checked card out.

A card goes through the stages in this order, each in its own module:
ingest → prepare (orientation, deskew) → layout (card type, alignment) →
recognize (OCR of field zones) → normalize and validate → confidence → store.
:func:`process_page` runs the stages from prepare to confidence for one page;
:func:`ingest_paths` and :func:`extract_paths` run it over a stack of files.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from models.card import Extraction, FieldResult, join_reasons
from models.card_type import UNKNOWN_CARD_TYPE, FieldSpec
from ocr.candidates import candidates_for
from ocr.confidence import CardDecision, FieldHistory, decide_card, field_history
from ocr.errors import DuplicateScanError, InputFileError, os_error_reason
from ocr.engines import OcrEngine, TextLine, _rect_points, get_engine
from ocr.ingest import IngestFailure, Page, iter_pages
from ocr.layout import read_labelled_values
from ocr.locate import locate
from ocr.normalize import normalize_value
from ocr.pool import process_in_order
from ocr.prepare import prepare, quality_problems
from ocr.recognize import ZoneRead, read_fields
from ocr.registry import Registry, load_registry
from ocr.store import Store
from ocr.validate import validate_card, validate_value

__all__ = [
    "PageResult",
    "RunReport",
    "extract_paths",
    "ingest_paths",
    "process_page",
]

log = logging.getLogger(__name__)

# Alignment residual, as a share of card height, above which the whole card goes to review.
MAX_LAYOUT_RESIDUAL = 0.02


@dataclass
class PageResult:
    """A processed page: the extraction and the straightened image (H x W x 3 BGR)."""

    extraction: Extraction
    # None once :meth:`pack` has kept only its PNG.
    straight_image: np.ndarray | None
    # Evidence behind each field's confidence; None for a card of unknown type.
    decision: CardDecision | None = None
    # The straightened image as PNG, encoded on first use.
    encoded_png: bytes | None = None
    # The page's original image as PNG, when a pool process encoded it (see :meth:`pack`).
    original_png: bytes | None = None

    def straight_png(self) -> bytes:
        """Return the straightened image as PNG, encoding it once."""
        if self.encoded_png is None:
            if self.straight_image is None:
                raise ValueError(
                    "the page result contains neither the straightened image nor its PNG; "
                    "process the page with encode_images=True to keep them"
                )
            self.encoded_png = _png(self.straight_image)
        return self.encoded_png

    def pack(self, original: np.ndarray | None = None) -> PageResult:
        """Keep the straightened image as PNG only, encode ``original`` (the page's image) too, and return self.

        A pool process sends its result back pickled: the PNG of a 200-dpi A5 card is about a
        quarter of the array's bytes, and encoding there takes that work off the storing process.
        """
        self.straight_png()
        self.straight_image = None
        if original is not None:
            self.original_png = _png(original)
        return self


@dataclass
class RunReport:
    """Counts and failures of one run over a stack of files."""

    pages: int = 0
    stored: int = 0
    duplicates: int = 0
    needs_review: int = 0
    unknown: int = 0
    failures: list[IngestFailure] = field(default_factory=list)
    # (source file, page, id of the card stored before) for each page skipped as a duplicate.
    duplicate_of: list[tuple[str, int, int]] = field(default_factory=list)
    card_ids: list[int] = field(default_factory=list)


def _normalize_angle(degrees: float) -> float:
    """Return the same angle in (-180, 180]."""
    angle = math.fmod(degrees, 360.0)
    if angle <= -180.0:
        angle += 360.0
    elif angle > 180.0:
        angle -= 360.0
    return angle


def _full_text(lines: list[TextLine]) -> str:
    """Return the page's text in reading order, one OCR line per row."""
    if not lines:
        return ""
    heights = [line.bbox[3] - line.bbox[1] for line in lines]
    row = max(1.0, float(np.median(heights)))
    ordered = sorted(lines, key=lambda line: (round(line.center[1] / row), line.bbox[0]))
    return "\n".join(line.text for line in ordered)


def _field_spec(key: str, registry: Registry) -> FieldSpec | None:
    """Return the first card type's definition of a field key, or None."""
    for card_type in registry.card_types.values():
        for spec in card_type.fields:
            if spec.key == key:
                return spec
    return None


def _with_zone_text(lines: list[TextLine], reads: Iterable[ZoneRead]) -> list[TextLine]:
    """Return the page lines outside every value zone, plus one line per zone with the text read there."""
    zones = [read for read in reads if read.raw_text.strip()]

    def in_zone(line: TextLine) -> bool:
        x, y = line.center
        return any(z.box[0] <= x <= z.box[2] and z.box[1] <= y <= z.box[3] for z in zones)

    # NOTE: printed text that is neither a label nor the title (footnotes, instructions) is not
    # recognised on a card of known type, so the page text leaves it out.
    outside = [line for line in lines if not in_zone(line)]
    outside += [TextLine(z.raw_text, z.score, _rect_points(*z.box)) for z in zones]
    return outside


def _labelled_fields(lines: list[TextLine], registry: Registry) -> dict[str, FieldResult]:
    """Read the fields a page of unknown layout shows beside printed labels; all go to review."""
    fields: dict[str, FieldResult] = {}
    for found in read_labelled_values(lines):
        spec = _field_spec(found.key, registry)
        raw = found.line.text.strip()
        value = normalize_value(spec.kind, raw) if spec else raw
        problems = validate_value(spec.model_copy(update={"required": False}), value) if spec else []
        reasons = [f"卡片类型未知：此值按印刷标签“{found.label}”读取，请核对。"] + [p.message_zh for p in problems]
        x0, y0, x1, y1 = found.line.bbox
        fields[found.key] = FieldResult(
            key=found.key,
            raw_text=raw,
            value=value,
            confidence=max(0.0, min(1.0, found.line.score)),
            engine="",
            box=(int(x0), int(y0), int(x1), int(y1)),
            needs_review=True,
            reason=join_reasons(reasons),
            reason_codes=["unknown_layout"] + [p.code for p in problems],
        )
    return fields


def process_page(
    page: Page,
    *,
    engine: OcrEngine | None = None,
    registry: Registry | None = None,
    history: dict[str, dict[str, FieldHistory]] | None = None,
    second_engine: OcrEngine | None = None,
    read_all_second: bool = False,
) -> PageResult:
    """Run one page through prepare, layout, recognize, normalise, validate and confidence.

    ``history`` is the store's correction history by card type and field key
    (:func:`ocr.confidence.field_history`). ``second_engine`` replaces the
    calibration's checking engine, and ``read_all_second`` makes it read every
    zone, as fitting the calibration needs.
    """
    engine = engine or get_engine("rapidocr")
    registry = registry or load_registry()

    # Prepare: crop the scanner border, remove skew, find the text direction.
    prepared = prepare(page.image)
    gray = cv2.cvtColor(prepared.image, cv2.COLOR_BGR2GRAY)
    quality = quality_problems(gray)

    # Layout: find the page's lines, pick the quarter turn and template that fit, align to it.
    located = locate(prepared.image, prepared.quarter_turn_candidates, engine, registry)
    image, lines, match, quarter = located.image, located.lines, located.match, located.quarter
    # The fit's rotation is clockwise on screen (image y points down), so the content still
    # leans counter-clockwise by its negative after deskew and the quarter turn.
    residual_turn = -match.rotation_deg if match.transform is not None else 0.0
    rotation = _normalize_angle(prepared.content_rotation_deg(quarter) + residual_turn)

    card_reasons = [message_zh for _code, message_zh, _en in quality]
    card_reasons += match.reasons
    if located.misplaced:
        pairs = "、".join(f"“{read}”在“{expected}”的位置" for read, expected in located.misplaced[:3])
        card_reasons.append(
            f"印刷标签与模板的位置不符（{pairs}）：此卡的字段顺序可能与模板不同，值可能读进了别的字段。"
            "请核对整张卡片；这种版式需要自己的模板。"
        )
    fields: dict[str, FieldResult] = {}
    decision: CardDecision | None = None
    text_lines = list(lines)

    if match.card_type != UNKNOWN_CARD_TYPE:
        spec = registry.card_type(match.card_type)
        if match.residual > MAX_LAYOUT_RESIDUAL:
            card_reasons.append(
                f"版式对齐误差较大（{match.residual:.1%} 卡高），字段位置可能不准，请核对整张卡片。"
            )

        # Recognize: OCR of every value zone.
        reads = read_fields(image, match, spec, engine, page_boxes=located.boxes)

        # The page text keeps the labels read on the page and takes the values from their zones.
        text_lines = _with_zone_text(lines, reads.values())

        # Normalise and validate: clean values, then per-field and cross-field rules.
        values = {key: normalize_value(spec.field(key).kind, read.raw_text) for key, read in reads.items()}
        for key in spec.keys:
            values.setdefault(key, "")
        problems = validate_card(spec, values)

        # Confidence: decide which fields a person must check, and why.
        decision = decide_card(
            spec, reads, values, problems, engine_name=engine.name,
            calibration=registry.calibration(match.template.name) if match.template else None,
            history=(history or {}).get(spec.card_type), second_engine=second_engine, read_all=read_all_second,
        )
        fields = decision.fields

        # Candidates: other readings a reviewer may pick for a doubtful field, never applied here.
        for key, result in fields.items():
            if result.needs_review and result.raw_text:
                result.candidates = candidates_for(spec, key, result.raw_text, values, other_reads=decision.other_reads(key))

    else:
        # Unknown layout: keep the whole text, and offer what generic labels show, all for review.
        fields = _labelled_fields(lines, registry)

    extraction = Extraction(
        source=str(page.source),
        page=page.page,
        card_type=match.card_type,
        template=match.template.name if match.template else None,
        card_type_confidence=max(0.0, min(1.0, match.score)),
        layout_residual=match.residual if match.transform is not None else None,
        rotation_deg=rotation,
        fields=fields,
        full_text=_full_text(text_lines),
        card_reasons=card_reasons,
    )
    flagged = sum(1 for f in fields.values() if f.needs_review)
    log.info(
        "page processed page=%s card_type=%s fields=%d flagged=%d rotation=%.1f lines=%d recognised=%d",
        page.key[:12],
        match.card_type,
        len(fields),
        flagged,
        rotation,
        located.detected,
        located.recognised,
    )
    return PageResult(extraction=extraction, straight_image=image, decision=decision)


def _png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("PNG encoding failed")
    return data.tobytes()


def ingest_paths(
    paths: Iterable[str | Path],
    store: Store,
    *,
    batch: str,
    engine_name: str = "rapidocr",
    template_dirs: Iterable[str] = (),
    pdf_dpi: int = 200,
    on_page: Callable[[Page | IngestFailure], None] | None = None,
    workers: int = 1,
) -> RunReport:
    """Read every page of the given files and folders into ``store`` under ``batch``.

    A page whose content is stored already is skipped; a file that cannot be read
    is reported in the result and the rest go on. With ``workers`` above 1 the OCR
    runs in a pool of that many processes (:mod:`ocr.pool`) and this process
    stores the cards, in input order.
    """
    report = RunReport()
    # A data folder that is not the database's stops the run before any OCR.
    store.ensure_data_folder()
    # Content keys sent for OCR in this run: a second copy of a page waits for the first one's card.
    sent: set[str] = set()

    def wanted(page: Page) -> bool:
        if page.key in sent or store.find_scan(page.key) is not None:
            return False
        sent.add(page.key)
        return True

    pages = _reported(iter_pages(paths, pdf_dpi=pdf_dpi), on_page)
    # Reviewer corrections so far tell the confidence which fields this site gets wrong.
    history = field_history(store)
    for item, result in process_in_order(
        pages, engine_name=engine_name, template_dirs=template_dirs, workers=workers, wanted=wanted, history=history
    ):
        if isinstance(item, IngestFailure):
            report.failures.append(item)
            continue
        report.pages += 1

        # A file scanned twice has the same content key: keep the first card only.
        existing = store.find_scan(item.key)
        if existing is not None or result is None:
            report.duplicates += 1
            report.duplicate_of.append((str(item.source), item.page, existing or 0))
            log.info("page skipped as duplicate page=%s card=%s", item.key[:12], existing)
            continue

        try:
            card_id = store.add_card(
                batch=batch,
                content_key=item.key,
                extraction=result.extraction,
                original_png=result.original_png or _png(item.image),
                straight_png=result.straight_png(),
            )
        except DuplicateScanError as exc:
            # Another station stored the same page after the look-up above: a duplicate, as on a rerun.
            report.duplicates += 1
            report.duplicate_of.append((str(item.source), item.page, exc.card_id or 0))
            log.info("page stored by another station meanwhile page=%s card=%s", item.key[:12], exc.card_id)
            continue
        report.stored += 1
        report.card_ids.append(card_id)
        report.needs_review += int(result.extraction.needs_review)
        report.unknown += int(result.extraction.card_type == UNKNOWN_CARD_TYPE)
    log.info(
        "ingest finished batch=%s pages=%d stored=%d duplicates=%d failed=%d",
        batch,
        report.pages,
        report.stored,
        report.duplicates,
        len(report.failures),
    )
    return report


def _reported(
    items: Iterable[Page | IngestFailure], on_page: Callable[[Page | IngestFailure], None] | None
) -> Iterator[Page | IngestFailure]:
    """Pass the items through, calling ``on_page`` on each as it is read."""
    for item in items:
        if on_page is not None:
            on_page(item)
        yield item


def output_name(page: Page) -> str:
    """Return the JSON file name for a page: ``<stem>.json``, or ``<stem>_p<N>.json`` in a multi-page file."""
    stem = Path(page.source).stem
    return f"{stem}_p{page.page}.json" if page.page_count > 1 else f"{stem}.json"


def extract_paths(
    paths: Iterable[str | Path],
    out_dir: Path,
    *,
    engine_name: str = "rapidocr",
    template_dirs: Iterable[str] = (),
    pdf_dpi: int = 200,
    on_page: Callable[[Page | IngestFailure], None] | None = None,
    workers: int = 1,
) -> RunReport:
    """Write one JSON per page to ``out_dir`` and store nothing; ``workers`` as in :func:`ingest_paths`."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise InputFileError(str(out_dir), f"无法创建输出目录（{os_error_reason(exc)[0]}），请换一个 --out 目录", str(exc)) from exc
    report = RunReport()
    written: set[str] = set()

    pages = _reported(iter_pages(paths, pdf_dpi=pdf_dpi), on_page)
    for item, result in process_in_order(
        pages, engine_name=engine_name, template_dirs=template_dirs, workers=workers, encode_images=False
    ):
        if isinstance(item, IngestFailure):
            report.failures.append(item)
            continue
        report.pages += 1

        # Two inputs with the same stem (a/scan.jpg, b/scan.png) must not overwrite each other.
        name = output_name(item)
        if name in written:
            stem, suffix = name.rsplit(".", 1)
            name = f"{stem}-{item.file_sha256[:8]}.{suffix}"
            # File names are not logged: a clerk may name a scan after the guest.
            log.warning("output name taken, page=%s written with a hash suffix", item.key[:12])
        written.add(name)
        target = out_dir / name
        text = json.dumps(result.extraction.to_output(), ensure_ascii=False, indent=2) + "\n"
        with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
            handle.write(text)
        report.stored += 1
        report.needs_review += int(result.extraction.needs_review)
        report.unknown += int(result.extraction.card_type == UNKNOWN_CARD_TYPE)
    return report
