"""Learning a template from one blank card: labels, zones, checks, the command, and reading with the result.

Blank and filled cards are drawn by ``sample_cards.generate_card`` and read by
the real rapidocr engine. Each blank is read by page OCR once: the engine is
wrapped so that a second learn of the same image reuses the page lines.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from models.card import CardStatus
from models.card_type import CardTypeSpec
from models.template import Box, Template
from ocr.cli import app
from ocr.engines import get_engine
from ocr.export import export_batch
from ocr.ingest import Page
from ocr.pipeline import ingest_paths, process_page
from ocr.registry import Registry, load_registry
from ocr.review import approve_card, correct_fields
from ocr.store import Store
from ocr.template_learn import learn_from_lines, learn_template
from sample_cards import generate_card

ROOT = Path(__file__).resolve().parent.parent
CAMPUS_DIR = ROOT / "examples" / "campus_card"
CAMPUS_PRINT = CAMPUS_DIR / "print_layout" / "campus_card_print.json"
UNSEEN_PRINT = ROOT / "examples" / "unseen_layout" / "print_layout" / "domestic_guest_compact_print.json"
FILLED_CARDS = 3


class PageCache:
    """The real engine, with page reads remembered by image content, so one blank is read by page OCR once."""

    def __init__(self, engine) -> None:
        self._engine = engine
        self.name = engine.name
        self._pages: dict[str, list] = {}

    def read_page(self, image: np.ndarray) -> list:
        key = hashlib.sha256(image.tobytes()).hexdigest() + str(image.shape)
        if key not in self._pages:
            self._pages[key] = self._engine.read_page(image)
        return self._pages[key]

    def read_zone(self, image: np.ndarray) -> list:
        return self._engine.read_zone(image)


@pytest.fixture(scope="module")
def engine() -> PageCache:
    return PageCache(get_engine("rapidocr"))


def _save(image, path: Path) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR))
    return path


def _page(image, name: str) -> Page:
    bgr = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)
    return Page(Path(name), 1, 1, hashlib.sha256(bgr.tobytes()).hexdigest(), bgr, 200.0)


def _iou(a: Box, b: Box) -> float:
    width = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    height = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    inter = width * height
    union = (a.x1 - a.x0) * (a.y1 - a.y0) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter
    return inter / union


@pytest.fixture(scope="module")
def standard_blank(tmp_path_factory) -> Path:
    """A flat blank of the built-in domestic layout, turned by a quarter turn, with its red serial number."""
    image, _truth = generate_card(
        31, "domestic_guest", "printed", template=load_registry().templates["domestic_guest_standard"],
        blank=True, degrade=False, quarter_turn=90,
    )
    return _save(image, tmp_path_factory.mktemp("blank") / "domestic_blank.png")


@pytest.fixture(scope="module")
def standard_learned(standard_blank, engine):
    return learn_template(standard_blank, "domestic_guest", "domestic_learned", engine=engine)


# Labels and zones.


def test_learn_finds_every_label(standard_learned) -> None:
    spec = load_registry().card_type("domestic_guest")
    assert [f.spec.key for f in standard_learned.found] == spec.keys
    assert standard_learned.missing == []
    for learned in standard_learned.found:
        assert learned.similarity >= 0.95, learned.spec.key
    assert standard_learned.template.field("name").label_text == ("姓名", "Name")
    assert standard_learned.template.field("card_serial").label_text == ("No.",)


def test_learn_turns_blank_upright(standard_learned) -> None:
    # The blank's content was turned 90 degrees counter-clockwise, so a 270-degree turn undoes it.
    assert standard_learned.quarter_turn == 270
    assert standard_learned.template.aspect_ratio == pytest.approx(1.419, abs=0.01)


def test_learned_zones_overlap_drawn_zones(standard_learned) -> None:
    drawn = load_registry().templates["domestic_guest_standard"]
    for spec in drawn.fields:
        learned = standard_learned.template.field(spec.key)
        assert _iou(learned.value_box, spec.value_box) > 0.6, spec.key


def test_learned_serial_zone_is_red(standard_learned) -> None:
    serial = standard_learned.template.field("card_serial")
    assert serial.ink == "red"
    assert serial.value_box.x0 > 0.7
    assert serial.value_box.y1 < 0.15


def test_learned_title_and_rules(standard_learned) -> None:
    template = standard_learned.template
    assert template.title_text == ("旅客住宿登记表",)
    assert _iou(template.title_box, load_registry().templates["domestic_guest_standard"].title_box) > 0.3
    assert len(template.rules) >= 10


def test_missing_label_reported(standard_learned) -> None:
    spec = load_registry().card_type("domestic_guest")
    with_fax = spec.model_copy(
        update={"fields": spec.fields + (spec.field("name").model_copy(update={"key": "fax", "label_zh": "传真", "label_en": "Fax"}),)}
    )
    result = learn_from_lines(standard_learned.image, standard_learned.lines, with_fax, "domestic_fax")
    assert [f.spec.key for f in result.missing_required] == ["fax"]
    assert result.template is not None
    assert "fax" not in {f.key for f in result.template.fields}


def test_low_similarity_label_checked(standard_learned) -> None:
    lines = [
        type(line)("Date of berth", line.score, line.points) if line.text == "Date of birth" else line
        for line in standard_learned.lines
        if line.text != "出生日期"
    ]
    spec = load_registry().card_type("domestic_guest")
    result = learn_from_lines(standard_learned.image, lines, spec, "domestic_low")
    birth = next(f for f in result.fields if f.spec.key == "date_of_birth")
    assert birth.found
    assert birth.label_text == ("Date of birth",)
    codes = {(check.key, check.code) for check in result.checks}
    assert ("date_of_birth", "low_label_similarity") in codes


def test_too_few_labels_give_no_template(standard_learned) -> None:
    spec = load_registry().card_type("domestic_guest")
    result = learn_from_lines(standard_learned.image, standard_learned.lines[:3], spec, "domestic_few")
    assert result.template is None
    assert "too_few_labels" in {check.code for check in result.checks}


def _text_line(text: str, x0: float, y0: float, x1: float, y1: float):
    from ocr.engines import TextLine

    return TextLine(text, 0.99, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32))


def test_zones_from_underline_and_row_space() -> None:
    # A form without a table: "姓名" with an underline after it, "性别" further along the row with
    # none, and two more labels below so that the template can be aligned.
    image = np.full((1000, 1400, 3), 250, dtype=np.uint8)
    cv2.line(image, (260, 238), (640, 238), (30, 30, 30), 3)
    lines = [
        _text_line("旅客住宿登记表", 450, 40, 950, 110),
        _text_line("姓名", 100, 190, 180, 230),
        _text_line("性别", 800, 190, 880, 230),
        _text_line("民族", 100, 390, 180, 430),
        _text_line("出生日期", 800, 390, 960, 430),
    ]
    spec = load_registry().card_type("domestic_guest")
    result = learn_from_lines(image, lines, spec, "no_table")
    fields = {f.spec.key: f for f in result.fields}

    name = fields["name"]
    assert name.method == "underline"
    assert name.value_px[0] == pytest.approx(260, abs=5)
    assert name.value_px[2] == pytest.approx(640, abs=5)
    assert name.value_px[3] == pytest.approx(246, abs=10)

    ethnicity = fields["ethnicity"]
    assert ethnicity.method == "row_space"
    # The space runs up to the next label on the row, "出生日期" at x = 800.
    assert ethnicity.value_px[2] < 800
    assert ethnicity.value_px[0] > 180
    checks = {(check.key, check.code) for check in result.checks}
    assert ("ethnicity", "zone_without_table") in checks
    assert ("name", "zone_without_table") not in checks


# The command.


def _run_learn(args: list[str], engine, monkeypatch):
    monkeypatch.setattr("ocr.template_learn.get_engine", lambda name="rapidocr": engine)
    monkeypatch.setenv("HUKA_LANG", "zh")
    return CliRunner().invoke(app, ["template", "learn", *args])


def test_cli_writes_loadable_template(standard_blank, engine, tmp_path, monkeypatch) -> None:
    out = tmp_path / "site"
    result = _run_learn(
        [str(standard_blank), "--card-type", "domestic_guest", "--name", "domestic_site", "--out", str(out)],
        engine,
        monkeypatch,
    )
    assert result.exit_code == 0, result.output
    assert "找到 11/11 个字段" in result.output
    assert (out / "domestic_site.json").is_file()
    registry = load_registry((str(out),))
    assert registry.templates["domestic_site"].card_type == "domestic_guest"


def test_cli_refuses_to_overwrite(standard_blank, engine, tmp_path, monkeypatch) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "domestic_site.json").write_text("{}", encoding="utf-8")
    args = [str(standard_blank), "--card-type", "domestic_guest", "--name", "domestic_site", "--out", str(out)]
    result = _run_learn(args, engine, monkeypatch)
    assert result.exit_code != 0
    assert (out / "domestic_site.json").read_text(encoding="utf-8") == "{}"


def test_cli_fails_on_missing_required_label(standard_blank, engine, tmp_path, monkeypatch) -> None:
    types = tmp_path / "types"
    types.mkdir()
    spec = json.loads((ROOT / "ocr" / "card_types" / "domestic_guest.json").read_text(encoding="utf-8"))
    spec["card_type"] = "domestic_fax"
    spec["fields"].append({"key": "fax", "label_zh": "传真", "label_en": "Fax", "kind": "text", "required": True})
    (types / "domestic_fax.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "out"

    result = _run_learn(
        [str(standard_blank), "--card-type", "domestic_fax", "--name", "fax_site", "--out", str(out), "--templates", str(types)],
        engine,
        monkeypatch,
    )
    assert result.exit_code == 5, result.output
    assert "未找到 fax（必填）" in result.output
    assert "“传真”、“Fax”" in result.output
    # The template is written with the fields found, so a person can complete it.
    registry = load_registry((str(types), str(out)))
    assert "fax" not in {f.key for f in registry.templates["fax_site"].fields}


# Reading filled cards with a learned template.


def _field_accuracy(registry: Registry, pages: list[tuple[Page, dict]], engine) -> tuple[float, int]:
    correct = total = typed = 0
    for page, truth in pages:
        extraction = process_page(page, engine=engine, registry=registry).extraction
        typed += int(extraction.card_type == truth["card_type"])
        for key, expected in truth["fields"].items():
            got = extraction.fields.get(key)
            total += 1
            correct += int(got is not None and got.value == expected)
    return correct / total, typed


def test_learned_unseen_layout_reads_as_well(tmp_path, engine) -> None:
    registry = load_registry()
    printed = Template.model_validate_json(UNSEEN_PRINT.read_text(encoding="utf-8"))
    blank, _truth = generate_card(
        41, "domestic_guest", "printed", template=printed, blank=True, max_skew_deg=3.0, quarter_turn=90
    )
    result = learn_template(_save(blank, tmp_path / "unseen_blank.png"), "domestic_guest", "unseen_learned", engine=engine)
    assert result.missing == []

    pages = []
    for index in range(FILLED_CARDS):
        image, truth = generate_card(500 + index, "domestic_guest", template=printed)
        pages.append((_page(image, f"unseen_{index}.png"), truth))
    learned_accuracy, learned_typed = _field_accuracy(
        Registry(registry.card_types, {result.template.name: result.template}), pages, engine
    )
    printed_accuracy, _typed = _field_accuracy(Registry(registry.card_types, {printed.name: printed}), pages, engine)

    assert learned_typed == FILLED_CARDS
    assert learned_accuracy >= printed_accuracy - 0.05, (learned_accuracy, printed_accuracy)
    assert learned_accuracy >= 0.85


# A site's own card type from ingest to export.


def test_campus_card_flows_to_export(tmp_path, monkeypatch) -> None:
    spec = CardTypeSpec.model_validate_json((CAMPUS_DIR / "campus_card.json").read_text(encoding="utf-8"))
    printed = Template.model_validate_json(CAMPUS_PRINT.read_text(encoding="utf-8"))
    scans = tmp_path / "scans"
    scans.mkdir()
    truths = {}
    for index in range(2):
        image, truth = generate_card(
            60 + index, "campus_card", "printed", template=printed, card_type_spec=spec, max_skew_deg=2.0
        )
        _save(image, scans / f"campus_{index}.png")
        truths[f"campus_{index}.png"] = truth["fields"]

    store = Store(data_dir=tmp_path / "data")
    report = ingest_paths([scans], store, batch="campus", template_dirs=[str(CAMPUS_DIR)])
    assert report.stored == 2
    assert report.unknown == 0

    registry = load_registry((str(CAMPUS_DIR),))
    read_right = total = 0
    card_ids = [summary.id for summary in store.list_cards(batch="campus")]
    for card_id in card_ids:
        card = store.get_card(card_id)
        assert card.card_type == "campus_card"
        assert card.template == "campus_card_a5"
        truth = truths[Path(card.source).name]
        values = card.values()
        read_right += sum(values.get(key) == value for key, value in truth.items())
        total += len(truth)
    assert read_right / total >= 0.8, f"{read_right}/{total} fields read right"

    _check_review_app_labels(store, tmp_path / "data", card_ids[0], monkeypatch)

    for card_id in card_ids:
        card = store.get_card(card_id)
        truth = truths[Path(card.source).name]
        entries = {key: value for key, value in truth.items() if card.values().get(key) != value}
        version = card.version
        if entries:
            version = correct_fields(store, card_id, entries, actor="王芳", expected_version=version, registry=registry)
        if store.get_card(card_id).status != CardStatus.AUTO_ACCEPTED:
            approve_card(store, card_id, actor="王芳", expected_version=version, registry=registry)

    files = export_batch(store, "campus", "csv", tmp_path / "export", actor="王芳", registry=registry)
    assert [path.name.split("_")[1] for path in files] == ["campus"]
    with open(files[0], encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert set(spec.keys) <= set(rows[0])
    assert "student_number" in rows[0]
    assert "department" in rows[0]
    for row in rows:
        truth = truths[row["source"]]
        assert {key: row[key] for key in spec.keys} == truth


def _check_review_app_labels(store: Store, data_dir: Path, card_id: int, monkeypatch) -> None:
    """Open a campus card in the review app, which loads the card type from $HUKA_TEMPLATE_DIRS."""
    from streamlit.testing.v1 import AppTest

    from ocr.accounts import Role, add_user

    monkeypatch.setenv("HUKA_DB_URL", store.url)
    monkeypatch.setenv("HUKA_DATA_DIR", str(data_dir))
    monkeypatch.setenv("HUKA_TEMPLATE_DIRS", str(CAMPUS_DIR))
    add_user(store, "王芳", Role.REVIEWER, "kaishi-2025")
    review = AppTest.from_file(str(ROOT / "review_app" / "app.py"), default_timeout=60)
    review.run()
    review.text_input(key="sign_in_name").input("王芳")
    review.text_input(key="sign_in_password").input("kaishi-2025")
    review.button(key="sign_in").click().run()
    # The card may be auto-accepted and so not in the list of cards to review: open it directly.
    review.session_state["card_id"] = card_id
    review.session_state["goto_page"] = "cards"
    review.run()
    assert not review.exception, review.exception
    shown = "\n".join(str(element.value) for element in [*review.caption, *review.markdown])
    shown += "\n" + "\n".join(widget.label for widget in review.text_input)
    assert "学生公寓住宿登记表" in shown
    assert "学号" in shown
    assert "未能识别此卡片的类型" not in shown
