"""Review app driven through Streamlit's AppTest against a real SQLite store and real scan images.

The cards are built here (a drawn card image plus an Extraction), so no OCR
engine runs. ``make_review_store`` is also used by the browser test.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from models.card import CardStatus, Extraction, FieldResult
from ocr.registry import load_registry
from ocr.review import correct_fields
from ocr.store import Store
from ocr.validate import validate_card

APP_FILE = Path(__file__).resolve().parent.parent / "review_app" / "app.py"
APP_TIMEOUT_S = 30

CARD_WIDTH, CARD_HEIGHT = 1420, 1000
FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)

# A complete, valid foreign_guest card: every value passes its rule.
CLEAN_VALUES = {
    "card_serial": "0012345",
    "surname": "SMITH",
    "given_names": "JOHN PAUL",
    "chinese_name": "",
    "sex": "M",
    "date_of_birth": "1985-03-12",
    "nationality": "USA",
    "document_type": "passport",
    "document_number": "561234987",
    "visa_type": "L",
    "visa_number": "V1234567",
    "valid_until": "2025-06-30",
    "entry_date": "2025-04-30",
    "entry_port": "上海浦东",
    "arrival_date": "2025-05-01",
    "departure_date": "2025-05-05",
    "room_number": "1208",
    "purpose_of_stay": "旅游",
    "received_by": "",
    "receptionist": "李娜",
}

# What the "OCR" suggests for the two flagged fields: a look-alike S for 5 and an impossible month.
SUGGESTED_DOCUMENT_NUMBER = "S61234987"
SUGGESTED_DATE_OF_BIRTH = "1985-13-12"
LOW_CONFIDENCE_REASON = "识别置信度 0.62 低于阈值 0.90，请核对。"


@dataclass
class ReviewStore:
    """A store in a temporary folder and the ids of the cards put into it."""

    store: Store
    db_url: str
    data_dir: Path
    card_ids: list[int]


def _font(size: int) -> ImageFont.ImageFont:
    for path in FONT_CANDIDATES:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def _draw_card(values: dict[str, str], seed: int) -> tuple[np.ndarray, dict[str, tuple[int, int, int, int]]]:
    """Draw a card-like image with the foreign_guest layout and return it with each value's pixel box."""
    registry = load_registry()
    template = registry.templates["foreign_guest_standard"]
    spec = registry.card_type("foreign_guest")

    rng = np.random.default_rng(seed)
    paper = np.full((CARD_HEIGHT, CARD_WIDTH, 3), 250, dtype=np.uint8)
    paper = np.clip(paper.astype(int) - rng.integers(0, 12, paper.shape), 0, 255).astype(np.uint8)
    image = Image.fromarray(paper)
    draw = ImageDraw.Draw(image)

    title = template.title_box.to_pixels(CARD_WIDTH, CARD_HEIGHT)
    draw.text((title[0], title[1]), "境外人员临时住宿登记表", fill=(20, 20, 20), font=_font(40))
    boxes: dict[str, tuple[int, int, int, int]] = {}
    for field in template.fields:
        if field.label_box is not None:
            label = field.label_box.to_pixels(CARD_WIDTH, CARD_HEIGHT)
            draw.rectangle(label, outline=(90, 90, 90), width=1)
            draw.text((label[0] + 4, label[1] + 4), spec.field(field.key).label_zh, fill=(40, 40, 40), font=_font(18))
        box = field.value_box.to_pixels(CARD_WIDTH, CARD_HEIGHT)
        draw.rectangle(box, outline=(90, 90, 90), width=1)
        ink = (190, 30, 30) if field.ink == "red" else (25, 35, 120)
        draw.text((box[0] + 8, box[1] + 6), values.get(field.key, ""), fill=ink, font=_font(26))
        boxes[field.key] = box
    return np.asarray(image), boxes


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _flagged_extraction(source: str, seed: int) -> tuple[Extraction, bytes]:
    """Return a foreign_guest extraction with document_number (low confidence) and date_of_birth (invalid) flagged."""
    spec = load_registry().card_type("foreign_guest")
    values = dict(CLEAN_VALUES)
    problems = validate_card(spec, values)
    assert not any(problems.values()), f"the clean test card fails its rules: {problems}"

    values["document_number"] = SUGGESTED_DOCUMENT_NUMBER
    values["date_of_birth"] = SUGGESTED_DATE_OF_BIRTH
    problems = validate_card(spec, values)
    image, boxes = _draw_card(values, seed)

    fields: dict[str, FieldResult] = {}
    for key, value in values.items():
        codes = [p.code for p in problems[key]]
        reasons = [p.message_zh for p in problems[key]]
        confidence = 0.97
        if key == "document_number":
            codes.insert(0, "low_confidence")
            reasons.insert(0, LOW_CONFIDENCE_REASON)
            confidence = 0.62
        fields[key] = FieldResult(
            key=key,
            raw_text=value,
            value=value,
            confidence=confidence,
            engine="test",
            box=boxes[key],
            needs_review=bool(codes),
            reason="；".join(reasons),
            reason_codes=codes,
            # The look-alike reading S -> 5 that the pipeline would offer for this number.
            candidates=["561234987"] if key == "document_number" else [],
        )
    extraction = Extraction(
        source=source,
        card_type="foreign_guest",
        template="foreign_guest_standard",
        fields=fields,
        full_text=" ".join(v for v in values.values() if v),
    )
    return extraction, _png(image)


def make_review_store(folder: Path, cards: int = 1, batch: str = "2025-05-01") -> ReviewStore:
    """Create a SQLite store in ``folder`` holding ``cards`` flagged foreign_guest cards in ``batch``."""
    data_dir = folder / "data"
    db_url = f"sqlite:///{(folder / 'cards.db').as_posix()}"
    store = Store(url=db_url, data_dir=data_dir)
    card_ids = []
    for index in range(cards):
        extraction, png = _flagged_extraction(f"/scans/card_{index + 1:03d}.png", seed=index)
        card_ids.append(
            store.add_card(
                batch=batch,
                content_key=f"{index:064x}:1",
                extraction=extraction,
                original_png=png,
                straight_png=png,
            )
        )
    return ReviewStore(store=store, db_url=db_url, data_dir=data_dir, card_ids=card_ids)


def add_unknown_card(review: ReviewStore, batch: str = "2025-05-01") -> int:
    """Add a card whose type was not recognised: no fields, a card-level reason and its full text."""
    image = np.full((600, 900, 3), 245, dtype=np.uint8)
    extraction = Extraction(
        source="/scans/odd_form.png",
        card_type="unknown",
        fields={},
        full_text="某某酒店 宾客登记 Guest Folio 0099",
        card_reasons=["未能识别卡片类型：标题与任何模板都不匹配。"],
    )
    return review.store.add_card(
        batch=batch,
        content_key=f"{'f' * 64}:1",
        extraction=extraction,
        original_png=_png(image),
        straight_png=_png(image),
    )


# AppTest helpers.


@pytest.fixture
def review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ReviewStore:
    """Two flagged cards in one batch, with the app pointed at their store."""
    created = make_review_store(tmp_path, cards=2)
    monkeypatch.setenv("HUKA_DB_URL", created.db_url)
    monkeypatch.setenv("HUKA_DATA_DIR", str(created.data_dir))
    return created


def _start_app(reviewer: str | None = "王芳"):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(APP_FILE), default_timeout=APP_TIMEOUT_S)
    if reviewer is not None:
        app.session_state["reviewer"] = reviewer
    app.run()
    assert not app.exception, app.exception
    return app


def _open_card(app, card_id: int) -> None:
    app.button(key=f"open_{card_id}").click().run()
    assert not app.exception, app.exception


def _texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


def _page_text(app) -> str:
    """Return the text of the markdown, captions, headers and alerts of the page."""
    parts = [app.markdown, app.caption, app.header, app.subheader, app.error, app.warning, app.info, app.success]
    return "\n".join(_texts(part) for part in parts)


def _field_value(store: Store, card_id: int, key: str) -> str:
    return store.get_card(card_id).fields[key].value


# Tests.


def test_queue_lists_flagged_cards(review: ReviewStore) -> None:
    app = _start_app()
    text = _page_text(app)
    assert "待审核队列" in text
    assert "2 个字段待核" in text
    first, second = review.card_ids
    assert app.button(key=f"open_{first}").label == "打开"
    assert app.button(key=f"open_{second}").label == "打开"
    assert app.selectbox(key="batch").value == "2025-05-01"


def test_queue_leaves_out_reviewed_cards(review: ReviewStore) -> None:
    first, second = review.card_ids
    review.store.set_status(first, CardStatus.APPROVED, actor="test", expected_version=1)
    app = _start_app()
    keys = {button.key for button in app.button}
    assert f"open_{first}" not in keys
    assert f"open_{second}" in keys


def test_card_page_shows_reasons_and_suggestions(review: ReviewStore) -> None:
    app = _start_app()
    _open_card(app, review.card_ids[0])
    text = _page_text(app)
    assert LOW_CONFIDENCE_REASON in text
    assert "出生日期不是有效日期" in text
    assert "**证件号码**" in text
    assert "Document No." in text
    assert app.text_input(key="field_document_number").value == SUGGESTED_DOCUMENT_NUMBER
    assert app.text_input(key="field_date_of_birth").value == SUGGESTED_DATE_OF_BIRTH
    # A field that passed is editable too, in the collapsed section.
    assert app.text_input(key="field_surname").value == "SMITH"
    assert app.button(key="save").label == "保存修改"
    assert app.button(key="approve").label == "审核通过"
    assert app.button(key="reject").label == "退回"


def test_save_writes_correction_and_audit(review: ReviewStore) -> None:
    card_id = review.card_ids[0]
    app = _start_app(reviewer="王芳")
    _open_card(app, card_id)
    app.text_input(key="field_document_number").input("561234987")
    app.button(key="save").click().run()
    assert not app.exception, app.exception

    card = review.store.get_card(card_id)
    assert card.fields["document_number"].value == "561234987"
    assert not card.fields["document_number"].needs_review
    # Left unchanged, the invalid date stays flagged after being confirmed.
    assert card.fields["date_of_birth"].needs_review
    assert card.status == CardStatus.NEEDS_REVIEW
    corrections = [
        event
        for event in review.store.audit_events(card_id)
        if event.action == "correct" and event.field_key == "document_number"
    ]
    assert len(corrections) == 1
    assert corrections[0].actor == "王芳"
    assert corrections[0].old_value == SUGGESTED_DOCUMENT_NUMBER
    assert corrections[0].new_value == "561234987"
    assert "已保存卡片" in _page_text(app)
    # The form shows the saved values of the new version, and the corrected field stays in view.
    assert app.text_input(key="field_document_number").value == "561234987"
    assert "已通过校验" in _page_text(app)
    assert "待核字段（1）" in _page_text(app)


def test_card_page_shows_candidates(review: ReviewStore) -> None:
    app = _start_app()
    _open_card(app, review.card_ids[0])
    assert "候选值：1) 561234987" in _page_text(app)
    # A candidate is only shown: the field keeps the suggested value until the reviewer types.
    assert app.text_input(key="field_document_number").value == SUGGESTED_DOCUMENT_NUMBER


def test_save_sends_only_changed_and_flagged(review: ReviewStore) -> None:
    card_id = review.card_ids[0]
    app = _start_app()
    _open_card(app, card_id)
    app.text_input(key="field_room_number").input("1209")
    app.button(key="save").click().run()

    events = [e for e in review.store.audit_events(card_id) if e.actor == "王芳"]
    touched = {e.field_key for e in events}
    assert touched == {"room_number", "document_number"}
    assert _field_value(review.store, card_id, "room_number") == "1209"
    # The unchanged low-confidence field counts as confirmed by the reviewer.
    assert [e.action for e in events if e.field_key == "document_number"] == ["confirm"]


def test_save_requires_reviewer_name(review: ReviewStore) -> None:
    card_id = review.card_ids[0]
    app = _start_app(reviewer=None)
    assert "请先在左侧栏填写审核人姓名" in _texts(app.sidebar.warning)
    _open_card(app, card_id)
    app.text_input(key="field_document_number").input("561234987")
    app.button(key="save").click().run()

    assert "请先在左侧栏填写审核人姓名" in _texts(app.error)
    assert _field_value(review.store, card_id, "document_number") == SUGGESTED_DOCUMENT_NUMBER
    assert review.store.get_card(card_id).version == 1


def test_approve_after_corrections_opens_next_card(review: ReviewStore) -> None:
    first, second = review.card_ids
    app = _start_app()
    _open_card(app, first)
    app.text_input(key="field_document_number").input("561234987")
    app.text_input(key="field_date_of_birth").input("1985-03-12")
    app.button(key="approve").click().run()
    assert not app.exception, app.exception

    card = review.store.get_card(first)
    assert card.status == CardStatus.APPROVED
    assert card.fields["date_of_birth"].value == "1985-03-12"
    status_events = [e for e in review.store.audit_events(first) if e.action == "status"]
    assert status_events[-1].new_value == CardStatus.APPROVED
    assert status_events[-1].actor == "王芳"

    assert app.session_state["card_id"] == second
    assert "卡片 1 已审核通过" in _page_text(app)
    # The next card's form contains its own suggestions, not the values typed on the first card.
    assert app.text_input(key="field_date_of_birth").value == SUGGESTED_DATE_OF_BIRTH


def test_approve_last_card_returns_to_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    review = make_review_store(tmp_path, cards=1)
    monkeypatch.setenv("HUKA_DB_URL", review.db_url)
    monkeypatch.setenv("HUKA_DATA_DIR", str(review.data_dir))
    app = _start_app()
    _open_card(app, review.card_ids[0])
    app.text_input(key="field_document_number").input("561234987")
    app.text_input(key="field_date_of_birth").input("1985-03-12")
    app.button(key="approve").click().run()

    assert review.store.get_card(review.card_ids[0]).status == CardStatus.APPROVED
    assert app.session_state["card_id"] is None
    assert "批次 2025-05-01 中没有待审核的卡片" in _page_text(app)


def test_approve_blocked_by_failing_rule(review: ReviewStore) -> None:
    card_id = review.card_ids[0]
    app = _start_app()
    _open_card(app, card_id)
    app.text_input(key="field_document_number").input("561234987")
    app.button(key="approve").click().run()
    assert not app.exception, app.exception

    errors = _texts(app.error)
    assert "以下字段仍未通过校验，不能通过：出生日期" in errors
    card = review.store.get_card(card_id)
    assert card.status == CardStatus.NEEDS_REVIEW
    # The correction made before the failed approval is kept.
    assert card.fields["document_number"].value == "561234987"
    assert app.session_state["card_id"] == card_id


def test_stale_save_shows_conflict(review: ReviewStore) -> None:
    card_id = review.card_ids[0]
    app = _start_app()
    _open_card(app, card_id)

    # Someone else saves the card after this reviewer opened it.
    correct_fields(review.store, card_id, {"document_number": "561234988"}, actor="李雷", expected_version=1)

    app.text_input(key="field_document_number").input("561234987")
    app.button(key="save").click().run()
    assert not app.exception, app.exception

    assert "已被他人修改" in _texts(app.error)
    assert _field_value(review.store, card_id, "document_number") == "561234988"
    assert not [e for e in review.store.audit_events(card_id) if e.actor == "王芳"]
    # The reviewer's typing is still on screen to compare with the reloaded card.
    assert app.text_input(key="field_document_number").value == "561234987"

    app.button(key="reload_card").click().run()
    assert app.text_input(key="field_document_number").value == "561234988"


def test_stale_approve_does_not_approve(review: ReviewStore) -> None:
    card_id = review.card_ids[0]
    app = _start_app()
    _open_card(app, card_id)
    correct_fields(review.store, card_id, {"room_number": "1210"}, actor="李雷", expected_version=1)

    app.text_input(key="field_document_number").input("561234987")
    app.text_input(key="field_date_of_birth").input("1985-03-12")
    app.button(key="approve").click().run()

    assert "已被他人修改" in _texts(app.error)
    card = review.store.get_card(card_id)
    assert card.status == CardStatus.NEEDS_REVIEW
    assert card.fields["document_number"].value == SUGGESTED_DOCUMENT_NUMBER


def test_reject_for_front_desk_with_note(review: ReviewStore) -> None:
    first, second = review.card_ids
    app = _start_app()
    _open_card(app, first)
    app.radio(key="reject_kind").set_value("front_desk")
    app.text_input(key="reject_note").input("出生日期空白")
    app.button(key="reject").click().run()
    assert not app.exception, app.exception

    assert review.store.get_card(first).status == CardStatus.REJECTED
    notes = [e.new_value for e in review.store.audit_events(first) if e.action == "note"]
    assert notes == ["退回前台补填：出生日期空白"]
    assert app.session_state["card_id"] == second


def test_unknown_card_type_offers_only_reject(review: ReviewStore) -> None:
    card_id = add_unknown_card(review)
    app = _start_app()
    _open_card(app, card_id)

    text = _page_text(app)
    assert "未能识别卡片类型：标题与任何模板都不匹配。" in text
    assert "只能退回" in text
    assert app.text_area(key="full_text").value == "某某酒店 宾客登记 Guest Folio 0099"
    keys = {button.key for button in app.button}
    assert "save" not in keys
    assert "approve" not in keys

    app.button(key="reject").click().run()
    assert review.store.get_card(card_id).status == CardStatus.REJECTED


def test_english_switch_shows_english_labels(review: ReviewStore) -> None:
    app = _start_app()
    assert app.sidebar.radio(key="lang").value == "zh"
    app.sidebar.radio(key="lang").set_value("en").run()
    assert "Review queue" in _page_text(app)
    assert app.button(key=f"open_{review.card_ids[0]}").label == "Open"

    _open_card(app, review.card_ids[0])
    text = _page_text(app)
    assert "**Document No.**" in text
    assert "证件号码" in text
    assert app.button(key="save").label == "Save corrections"
    assert app.button(key="approve").label == "Approve"
    assert app.text_input(key="field_surname").label == "Surname · 英文姓"
    # The reviewer name survives the language switch.
    assert app.session_state["reviewer"] == "王芳"
