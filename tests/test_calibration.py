"""Calibration files and fitting: the stored thresholds, their loading errors, threshold choice and field history."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.card import CardStatus
from models.template import Calibration
from ocr.bench_accuracy import plan_cards
from ocr.calibrate import (
    min_threshold,
    PAIRED_FEATURES,
    SINGLE_FEATURES,
    FittingRow,
    Scored,
    choose_threshold,
    fit_calibrations,
    raise_for_counted_error,
    load_rows,
    save_rows,
    simulate,
)
from ocr.confidence import FieldHistory, field_history, history_rate
from ocr.errors import TemplateError
from ocr.registry import BUILTIN_DIR, CALIBRATION_SUFFIX, load_registry
from ocr.review import approve_card, correct_fields
from ocr.store import Store
from card_builders import build_extraction, sample_scan_png, truth_values

TEMPLATES = BUILTIN_DIR / "templates"


def test_builtin_calibrations_cover_every_field():
    registry = load_registry()

    assert set(registry.calibrations) == set(registry.templates)
    for name, calibration in registry.calibrations.items():
        keys = registry.card_type(registry.templates[name].card_type).keys
        assert set(calibration.fields) == set(keys), name
        assert calibration.engine == "rapidocr"
        assert calibration.second_engine == "tesseract"
        assert calibration.target_error <= 0.005
        for key, field in calibration.fields.items():
            assert min_threshold(calibration.target_error) <= field.threshold <= 1.0, key
            assert field.fitted_fields > 0, key
            assert field.fitted_auto_wrong <= field.fitted_auto <= field.fitted_fields, key


def test_builtin_calibration_seeds_apart_from_accuracy_bench():
    """The accuracy bench's default cards (seed 3000 on) must be held out from the fitting cards."""
    bench_seeds = {plan.seed for plan in plan_cards(200, 3000)}
    for calibration in load_registry().calibrations.values():
        text = calibration.fitted_with["seeds"]
        assert text, calibration.template
        for part in text.split(","):
            low, _dash, high = part.strip().partition("-")
            fitted = range(int(low), int(high or low) + 1)
            assert not bench_seeds.intersection(fitted), part


def test_builtin_calibration_files_validate():
    for path in sorted(TEMPLATES.glob(f"*{CALIBRATION_SUFFIX}")):
        calibration = Calibration.model_validate_json(path.read_text(encoding="utf-8"))
        assert path.name == f"{calibration.template}{CALIBRATION_SUFFIX}"
        assert calibration.single.features == SINGLE_FEATURES
        assert calibration.paired.features == PAIRED_FEATURES


def _site_folder(tmp_path: Path, calibration_text: str, name: str = "foreign_guest_standard") -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    shutil.copy(TEMPLATES / "foreign_guest_standard.json", folder / "foreign_guest_standard.json")
    (folder / f"{name}{CALIBRATION_SUFFIX}").write_text(calibration_text, encoding="utf-8")
    return folder


def test_broken_calibration_names_file(tmp_path):
    folder = _site_folder(tmp_path, '{"template": "foreign_guest_standard", "target_error": 0.002')

    with pytest.raises(TemplateError) as raised:
        load_registry((str(folder),))

    message = raised.value.message_zh
    assert "置信度校准文件" in message
    assert str(folder / f"foreign_guest_standard{CALIBRATION_SUFFIX}") in message
    assert "python -m ocr bench calibrate" in message


def test_negative_score_weight_rejected(tmp_path):
    data = json.loads((TEMPLATES / f"foreign_guest_standard{CALIBRATION_SUFFIX}").read_text(encoding="utf-8"))
    data["single"]["coefficients"][0] = -1.0
    folder = _site_folder(tmp_path, json.dumps(data))

    with pytest.raises(TemplateError) as raised:
        load_registry((str(folder),))

    assert "score_logit" in raised.value.message_zh


def test_calibration_for_other_template_rejected(tmp_path):
    text = (TEMPLATES / f"domestic_guest_standard{CALIBRATION_SUFFIX}").read_text(encoding="utf-8")
    folder = _site_folder(tmp_path, text)

    with pytest.raises(TemplateError) as raised:
        load_registry((str(folder),))

    assert "domestic_guest_standard" in raised.value.message_zh
    assert "改名" in raised.value.message_zh


def test_learned_template_borrows_card_type_calibration(tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    data = json.loads((TEMPLATES / "foreign_guest_standard.json").read_text(encoding="utf-8"))
    data["name"] = "hotel_own_layout"
    (folder / "hotel_own_layout.json").write_text(json.dumps(data), encoding="utf-8")

    registry = load_registry((str(folder),))

    assert "hotel_own_layout" not in registry.calibrations
    assert registry.calibration("hotel_own_layout") is registry.calibrations["foreign_guest_standard"]
    assert registry.calibration("no_such_template") is None


# --------------------------------------------------------------------------
# Threshold choice and fitting on rows made here
# --------------------------------------------------------------------------


def _row(card: int, key: str, score: float, correct: bool, agree: bool | None = True, rule_failed: bool = False) -> FittingRow:
    return FittingRow(
        card=card, card_type="foreign_guest", template="foreign_guest_standard", key=key, kind="document_number",
        style="printed", condition="plain scan", score=score, blank=False, unreadable=False, ink=0.1,
        rule_failed=rule_failed, agree=agree, correct=correct, second_score=0.9,
    )


def test_simulate_follows_pipeline_rule():
    sure = Scored(_row(1, "document_number", 0.9995, True), single=0.999, if_agree=0.9999, paired=0.9999)
    checked = Scored(_row(2, "document_number", 0.995, True), single=0.999, if_agree=0.9999, paired=0.9998)
    disagreeing = Scored(_row(3, "document_number", 0.9, True, agree=False), single=0.9, if_agree=0.999, paired=0.995)
    hopeless = Scored(_row(4, "document_number", 0.5, True), single=0.5, if_agree=0.8, paired=0.8)
    failed = Scored(_row(5, "document_number", 0.9995, True, rule_failed=True), single=0.999, if_agree=0.9999, paired=0.9999)

    assert simulate(sure, 0.99) == (True, 0.999, False)
    # A number read under 0.999 is checked by the second engine even when it would pass alone.
    assert simulate(checked, 0.99) == (True, 0.9998, True)
    # A disagreeing second read sends the field to review whatever its confidence.
    assert simulate(disagreeing, 0.99) == (False, 0.995, True)
    assert simulate(hopeless, 0.99) == (False, 0.5, False)
    assert simulate(failed, 0.5)[0] is False


def _latin(card: int, correct: bool, single: float) -> Scored:
    row = dataclasses.replace(_row(card, "surname", 0.9995, correct, agree=None), kind="latin_name")
    return Scored(row, single=single, if_agree=single, paired=single)


def test_threshold_floor_when_nothing_passes():
    items = [Scored(_row(i, "document_number", 0.6, i % 2 == 0, agree=None), 0.6, 0.6, 0.6) for i in range(20)]

    threshold = choose_threshold(items, target=0.002)

    assert threshold == min_threshold(0.002)
    assert not any(simulate(item, threshold)[0] for item in items)


def test_threshold_raised_for_mean_doubt():
    # With three quarters of the reads at 0.997, the expected error among the accepted is 0.24%.
    items = [_latin(i, True, 0.9995) for i in range(50)] + [_latin(100 + i, True, 0.997) for i in range(150)]

    threshold = choose_threshold(items, target=0.002)

    assert 0.997 < threshold <= 0.9995


def test_counted_error_raises_one_field():
    sure = [_latin(i, True, 0.9995) for i in range(600)]
    risky = [_latin(1000 + i, True, 0.999) for i in range(50)] + [_latin(2000, False, 0.998), _latin(2001, False, 0.998)]
    groups = {("t", "given_names"): sure, ("t", "surname"): risky}
    start = {group: 0.996 for group in groups}

    raised = raise_for_counted_error(groups, start, target=0.002)

    assert raised[("t", "given_names")] == 0.996
    assert 0.998 < raised[("t", "surname")] <= 0.999
    accepted = [item for group, items in groups.items() for item in items if simulate(item, raised[group])[0]]
    assert all(item.row.correct for item in accepted)
    assert len(accepted) == 650


def _synthetic_rows(cards: int, seed: int) -> list[FittingRow]:
    """Rows where a low score or a disagreeing second read often means a wrong value."""
    rng = random.Random(seed)
    rows = []
    for card in range(cards):
        for key in ("document_number", "visa_number", "surname"):
            correct = rng.random() > 0.05
            score = rng.uniform(0.97, 1.0) if correct else rng.uniform(0.6, 0.999)
            agree = rng.random() > (0.1 if correct else 0.9)
            rows.append(_row(card, key, score, correct, agree=agree))
    return rows


def test_fit_meets_target_out_of_fold():
    rows = _synthetic_rows(400, seed=5)

    calibrations, summary = fit_calibrations(rows, target=0.005, fitted_with={"seeds": "0-399"})

    calibration = calibrations["foreign_guest_standard"]
    assert set(calibration.fields) == {"document_number", "visa_number", "surname"}
    weights = dict(zip(calibration.paired.features, calibration.paired.coefficients))
    assert weights["score_logit"] > 0
    assert weights["agree"] > weights["disagree"]
    assert summary.fields_auto > 0.5 * summary.rows
    assert summary.auto_wrong <= 0.005 * summary.fields_auto


def test_rows_round_trip(tmp_path):
    rows = _synthetic_rows(3, seed=1)
    path = tmp_path / "rows.jsonl"

    save_rows(rows, path)

    assert load_rows(path) == rows


# --------------------------------------------------------------------------
# Field history from the store
# --------------------------------------------------------------------------


def test_history_rate_blends_prior():
    assert history_rate(0.01, None, 200) == 0.01
    assert history_rate(0.01, FieldHistory(0, 0), 200) == 0.01
    assert history_rate(0.01, FieldHistory(10, 200), 200) == pytest.approx(0.03)
    assert history_rate(0.01, FieldHistory(500, 10_000), 200) == pytest.approx(502 / 10_200)


@pytest.fixture()
def store(tmp_path: Path, store_url: str) -> Iterator[Store]:
    store = Store(url=store_url, data_dir=tmp_path / "data")
    yield store
    store.close()


def test_field_history_counts_reviewer_corrections(store):
    scan = sample_scan_png()
    truth = truth_values("card_01_foreign_printed")
    ids = []
    for index in range(3):
        # Each card its own serial: cards sharing one are held as the same card scanned twice.
        serial = f"{60000 + index:07d}"
        misread = dict(truth, surname="SM1TH", card_serial=serial) if index < 2 else dict(truth, card_serial=serial)
        extraction = build_extraction("foreign_guest", misread, f"/scans/history_{index}.jpg", ("surname",))
        ids.append(store.add_card(batch="b", content_key=f"{index:064d}:1", extraction=extraction,
                                  original_png=scan, straight_png=scan))
    # Two cards get their surname corrected and approved; the third stays unreviewed.
    for card_id in ids[:2]:
        version = correct_fields(store, card_id, {"surname": truth["surname"]}, actor="王芳",
                                 expected_version=store.get_card(card_id).version)
        approve_card(store, card_id, actor="王芳", expected_version=version)

    history = field_history(store)

    foreign = history["foreign_guest"]
    assert foreign["surname"] == FieldHistory(corrections=2, fields=2)
    assert foreign["room_number"] == FieldHistory(corrections=0, fields=2)
    assert store.get_card(ids[2]).status == CardStatus.NEEDS_REVIEW
