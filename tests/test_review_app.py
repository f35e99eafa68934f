"""Review app driven through Streamlit's AppTest against a real store and real scan images.

The cards are built here (a drawn card image plus an Extraction), so no OCR
engine runs. Each test signs in through the sign-in form with an account
stored with its Argon2 hash. ``make_review_store`` is also used by the
browser test. The tests of holds run two AppTest sessions, one per reviewer,
on one store, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from models.card import CardStatus, Extraction, FieldResult
from ocr.accounts import Role, SignInThrottle, add_user, authenticate, get_user, set_active
from ocr.holds import active_holds, release_hold, take_hold
from ocr.registry import load_registry
from ocr.export import export_batch
from ocr.review import CONFIRM_NOTE_ACTION, ILLEGIBLE_CODE, approve_card, correct_fields
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


def _flagged_extraction(source: str, seed: int, serial: str = CLEAN_VALUES["card_serial"]) -> tuple[Extraction, bytes]:
    """Return a foreign_guest extraction with document_number (low confidence) and date_of_birth (invalid) flagged."""
    spec = load_registry().card_type("foreign_guest")
    values = dict(CLEAN_VALUES, card_serial=serial)
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


def make_review_store(folder: Path, cards: int = 1, batch: str = "2025-05-01", db_url: str | None = None) -> ReviewStore:
    """Create a store in ``folder`` (SQLite unless ``db_url`` names another) holding ``cards`` flagged cards in ``batch``."""
    data_dir = folder / "data"
    db_url = db_url or f"sqlite:///{(folder / 'cards.db').as_posix()}"
    store = Store(url=db_url, data_dir=data_dir)
    card_ids = []
    for index in range(cards):
        # Each card has a serial of its own, as distinct printed cards do, because equal serials are flagged as duplicates.
        serial = f"{int(CLEAN_VALUES['card_serial']) + index:07d}"
        extraction, png = _flagged_extraction(f"/scans/card_{index + 1:03d}.png", seed=index, serial=serial)
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

PASSWORD = "kaishi-2025"
REVIEWER = "王芳"
OTHER_REVIEWER = "李雷"
SUPERVISOR = "赵主管"
ADMIN = "孙管理"


@pytest.fixture(autouse=True)
def fresh_throttle() -> None:
    """Give each test its own sign-in throttle: the app keeps one per server process, and tests share the process."""
    from review_app.auth import get_throttle

    get_throttle.clear()


def _add_accounts(store: Store) -> None:
    add_user(store, REVIEWER, Role.REVIEWER, PASSWORD)
    add_user(store, OTHER_REVIEWER, Role.REVIEWER, PASSWORD)
    add_user(store, SUPERVISOR, Role.SUPERVISOR, PASSWORD)
    add_user(store, ADMIN, Role.ADMIN, PASSWORD)


def _point_app_at(monkeypatch: pytest.MonkeyPatch, review: ReviewStore) -> None:
    monkeypatch.setenv("HUKA_DB_URL", review.db_url)
    monkeypatch.setenv("HUKA_DATA_DIR", str(review.data_dir))


@pytest.fixture
def review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ReviewStore:
    """Two flagged cards in one batch, the four accounts, and the app pointed at their store."""
    created = make_review_store(tmp_path, cards=2)
    _add_accounts(created.store)
    _point_app_at(monkeypatch, created)
    return created


@pytest.fixture
def shared_review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_url: str) -> ReviewStore:
    """Like ``review``, on SQLite and on PostgreSQL in turn, for the tests of two reviewers at once."""
    created = make_review_store(tmp_path, cards=2, db_url=store_url)
    _add_accounts(created.store)
    _point_app_at(monkeypatch, created)
    return created


def _new_app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(APP_FILE), default_timeout=APP_TIMEOUT_S)


def _sign_in(app, name: str, password: str = PASSWORD):
    app.text_input(key="sign_in_name").input(name)
    app.text_input(key="sign_in_password").input(password)
    app.button(key="sign_in").click().run()
    assert not app.exception, app.exception
    return app


def _start_app(user: str = REVIEWER, page: str | None = None):
    """Start a session, sign ``user`` in, and show ``page`` (the field queue when None)."""
    app = _new_app().run()
    assert not app.exception, app.exception
    _sign_in(app, user)
    assert app.session_state["user"].name == user
    if page is not None:
        _go(app, page)
    return app


def _go(app, page: str) -> None:
    app.session_state["goto_page"] = page
    app.run()
    assert not app.exception, app.exception


def _open_card(app, card_id: int) -> None:
    _go(app, "cards")
    app.button(key=f"open_{card_id}").click().run()
    assert not app.exception, app.exception


def _start_on_card(card_id: int, user: str = REVIEWER):
    app = _start_app(user)
    _open_card(app, card_id)
    return app


def _texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


def _page_text(app) -> str:
    """Return the text of the markdown, captions, headers and alerts of the page."""
    parts = [app.markdown, app.caption, app.header, app.subheader, app.error, app.warning, app.info, app.success]
    return "\n".join(_texts(part) for part in parts)


def _html(app) -> str:
    """Return the bodies of the st.html elements: the keyboard script and the scan with its boxes."""
    return "\n".join(element.proto.body for element in app.get("html"))


def _field_value(store: Store, card_id: int, key: str) -> str:
    return store.get_card(card_id).fields[key].value


def _person_events(store: Store, card_id: int, actor: str) -> list:
    return [event for event in store.audit_events(card_id) if event.actor == actor]


# Sign-in, sessions and roles.


def test_sign_in_page_first(review: ReviewStore) -> None:
    app = _new_app().run()
    assert not app.exception, app.exception
    assert app.title[0].value == "户卡审核"
    assert app.button(key="sign_in").label == "登录"
    keys = {button.key for button in app.button}
    assert f"open_{review.card_ids[0]}" not in keys
    assert "sign_out" not in keys
    # Accounts exist, so no first-admin hint.
    assert "python -m ocr user add" not in _page_text(app)


def test_sign_in_hint_without_accounts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    created = make_review_store(tmp_path, cards=1)
    _point_app_at(monkeypatch, created)
    app = _new_app().run()
    assert "python -m ocr user add 姓名 --role admin" in _texts(app.info)


def test_sign_in_records_user(review: ReviewStore) -> None:
    app = _start_app(REVIEWER)
    assert "已登录：**王芳**（审核员）" in _texts(app.sidebar.markdown)
    assert app.header[0].value == "字段队列"
    account = get_user(review.store, REVIEWER)
    assert account.last_sign_in_at is not None


def test_wrong_name_or_password_same_message(review: ReviewStore) -> None:
    app = _new_app().run()
    _sign_in(app, REVIEWER, "wrong-password")
    wrong_password = _texts(app.error)
    _sign_in(app, "没有此人", PASSWORD)
    wrong_name = _texts(app.error)
    assert wrong_password == "用户名或密码不正确。"
    assert wrong_name == wrong_password
    assert "user" not in app.session_state
    # The password input is emptied after each try.
    assert app.text_input(key="sign_in_password").value == ""


def test_disabled_account_cannot_sign_in(review: ReviewStore) -> None:
    set_active(review.store, OTHER_REVIEWER, False)
    app = _new_app().run()
    _sign_in(app, OTHER_REVIEWER)
    assert _texts(app.error) == "用户名或密码不正确。"
    assert "user" not in app.session_state


def test_repeated_failures_lock_sign_in(review: ReviewStore) -> None:
    app = _new_app().run()
    for _ in range(SignInThrottle().max_failures):
        _sign_in(app, OTHER_REVIEWER, "wrong-password")
        assert _texts(app.error) == "用户名或密码不正确。"
    # The next try waits until the lock ends, even with the right password.
    _sign_in(app, OTHER_REVIEWER, PASSWORD)
    assert "登录失败次数过多，请 5 分钟后再试" in _texts(app.error)
    assert "user" not in app.session_state


def test_idle_session_signs_out(review: ReviewStore) -> None:
    app = _start_on_card(review.card_ids[0])
    assert active_holds(review.store)[review.card_ids[0]].holder == REVIEWER
    # The last activity lies beyond the 30-minute default timeout.
    app.session_state["last_active"] = time.monotonic() - 31 * 60
    app.run()
    assert "user" not in app.session_state
    assert "您已 30 分钟未操作，已自动退出" in _texts(app.warning)
    assert app.button(key="sign_in").label == "登录"
    assert active_holds(review.store) == {}


def test_session_timeout_from_environment(review: ReviewStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUKA_SESSION_TIMEOUT_MIN", "5")
    app = _start_app()
    app.session_state["last_active"] = time.monotonic() - 4 * 60
    app.run()
    assert app.session_state["user"].name == REVIEWER
    app.session_state["last_active"] = time.monotonic() - 6 * 60
    app.run()
    assert "user" not in app.session_state
    assert "您已 5 分钟未操作" in _texts(app.warning)


def test_disabled_user_signed_out_at_next_run(review: ReviewStore) -> None:
    app = _start_app(OTHER_REVIEWER)
    set_active(review.store, OTHER_REVIEWER, False)
    app.run()
    assert "user" not in app.session_state
    assert "您的账户已停用" in _texts(app.warning)


def test_sign_out_button(review: ReviewStore) -> None:
    app = _start_app()
    app.sidebar.button(key="sign_out").click().run()
    assert "user" not in app.session_state
    assert app.button(key="sign_in").label == "登录"


def test_reviewer_cannot_open_users_page(review: ReviewStore) -> None:
    app = _start_app(REVIEWER, page="users")
    assert app.header[0].value == "字段队列"
    assert "add_user" not in {button.key for button in app.button}


# Field queue.


def test_field_queue_worst_first(review: ReviewStore) -> None:
    first, second = review.card_ids
    app = _start_app()
    # Both invalid dates (a failed rule) come before the low-confidence numbers.
    assert app.text_input(key=f"answer_{first}_date_of_birth_1").value == SUGGESTED_DATE_OF_BIRTH
    text = _page_text(app)
    assert "还有 4 个待核字段，分布在 2 张卡片中" in text
    assert "出生日期不是有效日期" in text
    assert "识别置信度 0.97" in text
    assert f"#{second} · 出生日期" in text
    assert f"#{first} · 证件号码" in text
    assert active_holds(review.store)[first].holder == REVIEWER


def test_field_queue_shows_crop_and_keys(review: ReviewStore) -> None:
    app = _start_app()
    assert len(app.get("image")) == 1
    keys_help = _texts(app.info)
    for key in ("Enter", "Alt+1", "Alt+X", "Alt+O"):
        assert key in keys_help
    assert app.button(key="accept").label == "接受（Enter）"
    assert app.button(key="illegible").label == "无法辨认，退回前台（Alt+X）"
    script = _html(app)
    assert '"focus": "answer_1_date_of_birth_1"' in script
    assert '"KeyX": {"click": "illegible"' in script


def test_field_queue_typed_value_saved(review: ReviewStore) -> None:
    first, second = review.card_ids
    app = _start_app()
    app.text_input(key=f"answer_{first}_date_of_birth_1").input(CLEAN_VALUES["date_of_birth"])
    app.button(key="accept").click().run()
    assert not app.exception, app.exception

    assert _field_value(review.store, first, "date_of_birth") == CLEAN_VALUES["date_of_birth"]
    events = _person_events(review.store, first, REVIEWER)
    assert [(e.action, e.field_key) for e in events] == [("correct", "date_of_birth")]
    assert events[0].old_value == SUGGESTED_DATE_OF_BIRTH
    # The next worst field is the other card's invalid date, with the focus in its input.
    assert f"answer_{second}_date_of_birth_1" in {element.key for element in app.text_input}
    assert f'"focus": "answer_{second}_date_of_birth_1"' in _html(app)
    assert "上一项：卡片 #1 出生日期 → 1985-03-12" in _page_text(app)


def test_field_queue_rejects_invalid_accept(review: ReviewStore) -> None:
    first = review.card_ids[0]
    app = _start_app()
    app.button(key="accept").click().run()
    assert "此值仍未通过校验：出生日期不是有效日期" in _texts(app.error)
    assert review.store.get_card(first).version == 1
    assert app.text_input(key=f"answer_{first}_date_of_birth_1").value == SUGGESTED_DATE_OF_BIRTH


def _answer_both_dates(app, review: ReviewStore) -> None:
    for card_id in review.card_ids:
        app.text_input(key=f"answer_{card_id}_date_of_birth_1").input(CLEAN_VALUES["date_of_birth"])
        app.button(key="accept").click().run()
        assert not app.exception, app.exception


def test_field_queue_enter_confirms_suggestion(review: ReviewStore) -> None:
    first = review.card_ids[0]
    app = _start_app()
    _answer_both_dates(app, review)
    # Card 1's number is flagged for low confidence only; accepting keeps the suggestion as confirmed.
    assert app.text_input(key=f"answer_{first}_document_number_2").value == SUGGESTED_DOCUMENT_NUMBER
    app.button(key="accept").click().run()
    card = review.store.get_card(first)
    assert card.fields["document_number"].value == SUGGESTED_DOCUMENT_NUMBER
    assert not card.fields["document_number"].needs_review
    assert [e.action for e in _person_events(review.store, first, REVIEWER) if e.field_key == "document_number"] == [
        "confirm"
    ]


def test_field_queue_candidate_then_card_view(review: ReviewStore) -> None:
    first, second = review.card_ids
    app = _start_app()
    _answer_both_dates(app, review)
    assert app.button(key="pick_1").label == "1) 561234987（Alt+1）"
    app.button(key="pick_1").click().run()
    assert not app.exception, app.exception

    assert _field_value(review.store, first, "document_number") == "561234987"
    # The card has no flagged field left, so its card view opens for the approval.
    assert app.session_state["card_id"] == first
    assert app.header[0].value == f"卡片 {first}"
    assert "请核对整张记录，无误后按 Alt+A 审核通过" in _texts(app.info)
    assert '"KeyA": {"click": "approve"' in _html(app)

    app.button(key="approve").click().run()
    assert not app.exception, app.exception
    card = review.store.get_card(first)
    assert card.status == CardStatus.APPROVED
    assert [e.actor for e in card_events(review.store, first, "status")][-1] == REVIEWER
    # Back in the field queue, on the other card.
    assert app.header[0].value == "字段队列"
    assert f"answer_{second}_document_number_2" in {element.key for element in app.text_input}
    assert first not in active_holds(review.store)


def card_events(store: Store, card_id: int, action: str) -> list:
    return [event for event in store.audit_events(card_id) if event.action == action]


def test_field_queue_illegible_lists_card(review: ReviewStore) -> None:
    first = review.card_ids[0]
    app = _start_app()
    app.button(key="illegible").click().run()
    assert not app.exception, app.exception

    card = review.store.get_card(first)
    assert card.fields["date_of_birth"].reason_codes[0] == ILLEGIBLE_CODE
    assert card.fields["date_of_birth"].value == SUGGESTED_DATE_OF_BIRTH
    marks = card_events(review.store, first, "illegible")
    assert [(e.actor, e.field_key) for e in marks] == [(REVIEWER, "date_of_birth")]
    assert "上一项：卡片 #1 出生日期 → 已标记为无法辨认" in _page_text(app)

    # The card's remaining field is still in the queue; after it, the card waits for the front desk.
    app.text_input(key=f"answer_{review.card_ids[1]}_date_of_birth_1").input(CLEAN_VALUES["date_of_birth"])
    app.button(key="accept").click().run()
    app.button(key="pick_1").click().run()
    assert not app.exception, app.exception
    text = _page_text(app)
    assert "卡片 1 有无法辨认的字段，已列入下方的退回前台清单" in text
    assert "待退回前台（1 张）" in text
    assert "卡片 #1 · card_001.png · 无法辨认：出生日期" in text

    # The card view offers the front-desk return with the field named, and approval is refused.
    app.button(key=f"front_desk_{first}").click().run()
    assert app.radio(key="reject_kind").value == "front_desk"
    assert app.text_input(key="reject_note").value == "以下字段无法辨认，请前台核实补填：date_of_birth"
    app.button(key="approve").click().run()
    assert "以下字段已标记为无法辨认，不能通过：出生日期" in _texts(app.error)
    assert review.store.get_card(first).status == CardStatus.NEEDS_REVIEW

    app.button(key="reject").click().run()
    assert not app.exception, app.exception
    assert review.store.get_card(first).status == CardStatus.REJECTED
    assert [e.new_value for e in card_events(review.store, first, "note")] == [
        "退回前台补填：以下字段无法辨认，请前台核实补填：date_of_birth"
    ]


def test_field_queue_skips_card_held_by_other(review: ReviewStore) -> None:
    first, second = review.card_ids
    take_hold(review.store, first, OTHER_REVIEWER)
    app = _start_app()
    assert f"answer_{second}_date_of_birth_1" in {element.key for element in app.text_input}
    assert "另有 2 个字段所在的卡片正由他人审核，已跳过" in _page_text(app)
    assert active_holds(review.store)[first].holder == OTHER_REVIEWER


def test_field_queue_empty_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    created = make_review_store(tmp_path, cards=1)
    _add_accounts(created.store)
    _point_app_at(monkeypatch, created)
    created.store.set_status(created.card_ids[0], CardStatus.APPROVED, actor="test", expected_version=1)
    app = _start_app()
    assert "批次 2025-05-01 中没有待核字段了" in _texts(app.success)


# Card list and card view.


def test_queue_lists_flagged_cards(review: ReviewStore) -> None:
    app = _start_app(page="cards")
    text = _page_text(app)
    assert "待审核卡片" in text
    assert "2 个字段待核" in text
    first, second = review.card_ids
    assert app.button(key=f"open_{first}").label == "打开"
    assert app.button(key=f"open_{second}").label == "打开"
    assert app.selectbox(key="cards_batch").value == "2025-05-01"


def test_queue_leaves_out_reviewed_cards(review: ReviewStore) -> None:
    first, second = review.card_ids
    review.store.set_status(first, CardStatus.APPROVED, actor="test", expected_version=1)
    app = _start_app(page="cards")
    keys = {button.key for button in app.button}
    assert f"open_{first}" not in keys
    assert f"open_{second}" in keys


def test_queue_shows_holder(review: ReviewStore) -> None:
    take_hold(review.store, review.card_ids[1], OTHER_REVIEWER)
    app = _start_app(page="cards")
    assert "李雷 审核中" in _texts(app.markdown)


def test_card_page_shows_reasons_and_suggestions(review: ReviewStore) -> None:
    app = _start_on_card(review.card_ids[0])
    text = _page_text(app)
    assert LOW_CONFIDENCE_REASON in text
    assert "出生日期不是有效日期" in text
    assert "**证件号码**" in text
    assert "Document No." in text
    assert app.text_input(key="field_document_number").value == SUGGESTED_DOCUMENT_NUMBER
    assert app.text_input(key="field_date_of_birth").value == SUGGESTED_DATE_OF_BIRTH
    # Every field of the record is editable.
    assert app.text_input(key="field_surname").value == "SMITH"
    assert app.text_input(key="field_room_number").value == "1208"
    assert app.button(key="save").label == "保存修改（Enter）"
    assert app.button(key="approve").label == "审核通过（Alt+A）"
    assert app.button(key="reject").label == "退回"
    assert "Alt+A 审核通过" in text


def test_card_page_boxes_coloured_by_state(review: ReviewStore) -> None:
    card_id = review.card_ids[0]
    app = _start_on_card(card_id)
    scan = _html(app)
    assert 'data-field="field_document_number" data-state="flagged"' in scan
    assert 'data-field="field_surname" data-state="ok"' in scan
    assert "data:image/jpeg;base64," in scan

    app.text_input(key="field_document_number").input("561234987")
    app.button(key="save").click().run()
    scan = _html(app)
    assert 'data-field="field_document_number" data-state="corrected"' in scan
    assert 'data-field="field_date_of_birth" data-state="flagged"' in scan
    # Alt+N and Alt+P walk through the fields that were flagged when the card was opened.
    assert '"KeyN": {"click": null, "cycle": ["field_date_of_birth", "field_document_number"], "step": 1}' in scan


def test_save_writes_correction_and_audit(review: ReviewStore) -> None:
    card_id = review.card_ids[0]
    app = _start_on_card(card_id)
    app.text_input(key="field_document_number").input("561234987")
    app.button(key="save").click().run()
    assert not app.exception, app.exception

    card = review.store.get_card(card_id)
    assert card.fields["document_number"].value == "561234987"
    assert not card.fields["document_number"].needs_review
    # Left unchanged, the invalid date stays flagged after being confirmed.
    assert card.fields["date_of_birth"].needs_review
    assert card.status == CardStatus.NEEDS_REVIEW
    corrections = [e for e in card_events(review.store, card_id, "correct") if e.field_key == "document_number"]
    assert len(corrections) == 1
    assert corrections[0].actor == REVIEWER
    assert corrections[0].old_value == SUGGESTED_DOCUMENT_NUMBER
    assert corrections[0].new_value == "561234987"
    assert "已保存卡片" in _page_text(app)
    # The form shows the saved values of the new version, and the corrected field stays in view.
    assert app.text_input(key="field_document_number").value == "561234987"
    assert "已通过校验" in _page_text(app)
    assert "待核字段（1）" in _page_text(app)


def test_card_page_shows_candidates(review: ReviewStore) -> None:
    app = _start_on_card(review.card_ids[0])
    assert "候选值：1) 561234987" in _page_text(app)
    # A candidate is only shown: the field keeps the suggested value until the reviewer types.
    assert app.text_input(key="field_document_number").value == SUGGESTED_DOCUMENT_NUMBER


def test_save_sends_only_changed_and_flagged(review: ReviewStore) -> None:
    card_id = review.card_ids[0]
    app = _start_on_card(card_id)
    app.text_input(key="field_room_number").input("1209")
    app.button(key="save").click().run()

    events = _person_events(review.store, card_id, REVIEWER)
    touched = {e.field_key for e in events}
    assert touched == {"room_number", "document_number"}
    assert _field_value(review.store, card_id, "room_number") == "1209"
    # The unchanged low-confidence field counts as confirmed by the reviewer.
    assert [e.action for e in events if e.field_key == "document_number"] == ["confirm"]


def test_approve_after_corrections_opens_next_card(review: ReviewStore) -> None:
    first, second = review.card_ids
    app = _start_on_card(first)
    app.text_input(key="field_document_number").input("561234987")
    app.text_input(key="field_date_of_birth").input("1985-03-12")
    app.button(key="approve").click().run()
    assert not app.exception, app.exception

    card = review.store.get_card(first)
    assert card.status == CardStatus.APPROVED
    assert card.fields["date_of_birth"].value == "1985-03-12"
    status_events = card_events(review.store, first, "status")
    assert status_events[-1].new_value == CardStatus.APPROVED
    assert status_events[-1].actor == REVIEWER

    assert app.session_state["card_id"] == second
    assert "卡片 1 已审核通过" in _page_text(app)
    # The next card's form contains its own suggestions, not the values typed on the first card.
    assert app.text_input(key="field_date_of_birth").value == SUGGESTED_DATE_OF_BIRTH
    holds = active_holds(review.store)
    assert first not in holds
    assert holds[second].holder == REVIEWER


def test_approve_last_card_returns_to_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    created = make_review_store(tmp_path, cards=1)
    _add_accounts(created.store)
    _point_app_at(monkeypatch, created)
    app = _start_on_card(created.card_ids[0])
    app.text_input(key="field_document_number").input("561234987")
    app.text_input(key="field_date_of_birth").input("1985-03-12")
    app.button(key="approve").click().run()

    assert created.store.get_card(created.card_ids[0]).status == CardStatus.APPROVED
    assert app.session_state["card_id"] is None
    assert "批次 2025-05-01 中没有待审核的卡片" in _page_text(app)


def test_approve_blocked_by_failing_rule(review: ReviewStore) -> None:
    card_id = review.card_ids[0]
    app = _start_on_card(card_id)
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
    app = _start_on_card(card_id)

    # The same reviewer saves the card from another window after this one loaded it.
    correct_fields(review.store, card_id, {"document_number": "561234988"}, actor=REVIEWER, expected_version=1)

    app.text_input(key="field_document_number").input("561234987")
    app.button(key="save").click().run()
    assert not app.exception, app.exception

    assert "已被他人修改" in _texts(app.error)
    assert _field_value(review.store, card_id, "document_number") == "561234988"
    # The reviewer's typing is still on screen to compare with the reloaded card.
    assert app.text_input(key="field_document_number").value == "561234987"

    app.button(key="reload_card").click().run()
    assert app.text_input(key="field_document_number").value == "561234988"


def test_stale_approve_does_not_approve(review: ReviewStore) -> None:
    card_id = review.card_ids[0]
    app = _start_on_card(card_id)
    correct_fields(review.store, card_id, {"room_number": "1210"}, actor=REVIEWER, expected_version=1)

    app.text_input(key="field_document_number").input("561234987")
    app.text_input(key="field_date_of_birth").input("1985-03-12")
    app.button(key="approve").click().run()

    assert "已被他人修改" in _texts(app.error)
    card = review.store.get_card(card_id)
    assert card.status == CardStatus.NEEDS_REVIEW
    assert card.fields["document_number"].value == SUGGESTED_DOCUMENT_NUMBER


def test_reject_requires_reason_and_note(review: ReviewStore) -> None:
    first = review.card_ids[0]
    app = _start_on_card(first)
    assert app.radio(key="reject_kind").value is None
    app.button(key="reject").click().run()
    assert "请选择退回原因" in _texts(app.error)

    app.radio(key="reject_kind").set_value("rescan")
    app.button(key="reject").click().run()
    assert "请写明退回说明" in _texts(app.error)
    assert review.store.get_card(first).status == CardStatus.NEEDS_REVIEW


def test_reject_for_front_desk_with_note(review: ReviewStore) -> None:
    first, second = review.card_ids
    app = _start_on_card(first)
    app.radio(key="reject_kind").set_value("front_desk")
    app.text_input(key="reject_note").input("出生日期空白")
    app.button(key="reject").click().run()
    assert not app.exception, app.exception

    assert review.store.get_card(first).status == CardStatus.REJECTED
    notes = card_events(review.store, first, "note")
    assert [e.new_value for e in notes] == ["退回前台补填：出生日期空白"]
    assert notes[0].actor == REVIEWER
    assert app.session_state["card_id"] == second


def test_unknown_card_type_offers_only_reject(review: ReviewStore) -> None:
    card_id = add_unknown_card(review)
    app = _start_on_card(card_id)

    text = _page_text(app)
    assert "未能识别卡片类型：标题与任何模板都不匹配。" in text
    assert "只能退回" in text
    assert app.text_area(key="full_text").value == "某某酒店 宾客登记 Guest Folio 0099"
    keys = {button.key for button in app.button}
    assert "save" not in keys
    assert "approve" not in keys

    app.radio(key="reject_kind").set_value("rescan")
    app.text_input(key="reject_note").input("版式未知")
    app.button(key="reject").click().run()
    assert review.store.get_card(card_id).status == CardStatus.REJECTED


def _show_card(app, card_id: int) -> None:
    """Open card ``card_id`` directly, as a link from search or the overview does, whatever its state."""
    app.session_state["card_id"] = card_id
    _go(app, "cards")


def _fix_card(store: Store, card_id: int, **changes: str) -> int:
    """Correct the two flagged fields of a built card (and apply ``changes``); return the new version."""
    entries = {"document_number": "561234987", "date_of_birth": "1985-03-12", **changes}
    return correct_fields(store, card_id, entries, actor=OTHER_REVIEWER, expected_version=store.get_card(card_id).version)


def test_exported_card_can_be_corrected(review: ReviewStore, tmp_path: Path) -> None:
    card_id = review.card_ids[0]
    approve_card(review.store, card_id, actor=OTHER_REVIEWER, expected_version=_fix_card(review.store, card_id))
    export_batch(review.store, "2025-05-01", "csv", tmp_path / "out", actor=OTHER_REVIEWER)
    assert review.store.get_card(card_id).status == CardStatus.EXPORTED

    app = _start_app()
    _show_card(app, card_id)
    assert "此卡片已导出" in _page_text(app)
    keys = {button.key for button in app.button}
    assert "save" in keys
    assert "approve" not in keys

    app.text_input(key="field_room_number").input("1209")
    app.button(key="save").click().run()
    assert not app.exception, app.exception

    card = review.store.get_card(card_id)
    assert card.fields["room_number"].value == "1209"
    assert card.status == CardStatus.APPROVED
    corrections = [e for e in card_events(review.store, card_id, "correct") if e.field_key == "room_number"]
    assert [(e.actor, e.new_value) for e in corrections] == [(REVIEWER, "1209")]


def test_confirm_expiring_visa_and_approve(review: ReviewStore) -> None:
    card_id = review.card_ids[0]
    # The guest's visa ends two days before the booked departure of 2025-05-05.
    _fix_card(review.store, card_id, valid_until="2025-05-03")
    app = _start_on_card(card_id)
    assert "早于离店日期" in _page_text(app)

    app.checkbox(key="confirm_true").check()
    app.text_input(key="confirm_note").input("签证 5 月 3 日到期，已告知前台")
    app.button(key="approve").click().run()
    assert not app.exception, app.exception

    card = review.store.get_card(card_id)
    assert card.status == CardStatus.APPROVED
    assert card.fields["valid_until"].value == "2025-05-03"
    notes = card_events(review.store, card_id, CONFIRM_NOTE_ACTION)
    assert [(e.actor, e.new_value) for e in notes] == [(REVIEWER, "签证 5 月 3 日到期，已告知前台")]


def test_confirm_without_reason_rejected(review: ReviewStore) -> None:
    card_id = review.card_ids[0]
    _fix_card(review.store, card_id, valid_until="2025-05-03")
    app = _start_on_card(card_id)

    app.checkbox(key="confirm_true").check()
    app.button(key="approve").click().run()
    assert not app.exception, app.exception

    assert "请写明确认原因" in _texts(app.error)
    assert review.store.get_card(card_id).status == CardStatus.NEEDS_REVIEW
    assert not card_events(review.store, card_id, CONFIRM_NOTE_ACTION)


def test_no_confirm_box_for_format_rule(review: ReviewStore) -> None:
    # The flagged fields of a built card are a misread number and an impossible date: neither can be confirmed.
    app = _start_on_card(review.card_ids[0])
    assert not [box for box in app.checkbox if box.key == "confirm_true"]


def test_duplicate_serial_named_on_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    created = make_review_store(tmp_path, cards=1)
    extraction, png = _flagged_extraction("/scans/photo_of_card_001.png", seed=7)
    twin = created.store.add_card(
        batch="2025-05-01", content_key=f"{'e' * 64}:1", extraction=extraction, original_png=png, straight_png=png
    )
    _add_accounts(created.store)
    _point_app_at(monkeypatch, created)
    app = _start_on_card(twin)

    warnings = _texts(app.warning)
    assert f"编号与卡片 {created.card_ids[0]} 相同" in warnings
    assert "SMITH" not in warnings
    app.text_input(key="field_document_number").input("561234987")
    app.text_input(key="field_date_of_birth").input("1985-03-12")
    app.button(key="approve").click().run()
    assert created.store.get_card(twin).status == CardStatus.NEEDS_REVIEW
    assert f"编号与卡片 {created.card_ids[0]} 相同" in _texts(app.error)


def _twin_serial_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ReviewStore:
    """Return a store with two cards of one card serial whose only flagged field is that serial."""
    created = make_review_store(tmp_path, cards=1)
    extraction, png = _flagged_extraction("/scans/photo_of_card_001.png", seed=7)
    twin = created.store.add_card(
        batch="2025-05-01", content_key=f"{'e' * 64}:1", extraction=extraction, original_png=png, straight_png=png
    )
    created.card_ids.append(twin)
    # Correcting the other flagged fields runs the duplicate check, which flags the serial of both cards.
    for card_id in created.card_ids:
        _fix_card(created.store, card_id)
    for card_id in created.card_ids:
        card = created.store.get_card(card_id)
        assert card.flagged_keys == ["card_serial"]
        assert "duplicate_serial" in card.fields["card_serial"].reason_codes
    _add_accounts(created.store)
    _point_app_at(monkeypatch, created)
    return created


def _serial_input_key(store: Store, card_id: int) -> str:
    return f"answer_{card_id}_card_serial_{store.get_card(card_id).version}"


def test_field_queue_skips_duplicate_serial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    created = _twin_serial_store(tmp_path, monkeypatch)
    first, twin = created.card_ids
    versions = {card_id: created.store.get_card(card_id).version for card_id in created.card_ids}
    app = _start_app()
    assert "还有 2 个待核字段" in _page_text(app)
    assert app.text_input(key=_serial_input_key(created.store, first)).value == CLEAN_VALUES["card_serial"]
    assert "字段队列中不能退回卡片，也不能确认属实" in _texts(app.warning)

    app.button(key="accept").click().run()
    assert not app.exception, app.exception

    text = _page_text(app)
    assert f"上一项：卡片 #{first} 编号" not in text
    assert f"卡片 #{first} 编号 未保存" in _texts(app.warning)
    assert "不能在字段队列中处理" in _texts(app.warning)
    # The queue goes on to the twin's serial instead of showing the same field again.
    keys = {element.key for element in app.text_input}
    assert _serial_input_key(created.store, first) not in keys
    assert _serial_input_key(created.store, twin) in keys
    assert "还有 1 个待核字段" in text
    assert "需打开整张卡片处理（1 个字段）" in text
    assert created.store.get_card(first).version == versions[first]
    assert not _person_events(created.store, first, REVIEWER)

    app.button(key="accept").click().run()
    assert not app.exception, app.exception
    assert "字段队列能处理的待核字段已处理完；还有 2 个字段需打开整张卡片处理" in _texts(app.success)
    assert created.store.get_card(twin).version == versions[twin]
    assert not _person_events(created.store, twin, REVIEWER)

    # The list opens the card, where the duplicate can be rejected or confirmed.
    app.button(key=f"card_view_{first}_card_serial").click().run()
    assert not app.exception, app.exception
    assert app.session_state["card_id"] == first
    assert app.header[0].value == f"卡片 {first}"


def test_field_queue_saves_corrected_serial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    created = _twin_serial_store(tmp_path, monkeypatch)
    first, twin = created.card_ids
    app = _start_app()
    app.text_input(key=_serial_input_key(created.store, first)).input("0039054")
    app.button(key="accept").click().run()
    assert not app.exception, app.exception

    assert _field_value(created.store, first, "card_serial") == "0039054"
    assert not created.store.get_card(first).fields["card_serial"].needs_review
    events = _person_events(created.store, first, REVIEWER)
    assert [(e.action, e.field_key) for e in events] == [("correct", "card_serial")]
    # The last flagged field of the card is answered, so its card view opens for the approval.
    assert app.session_state["card_id"] == first

    # The twin's stored flag is out of date now: accepting its serial in the queue saves it.
    _go(app, "fields")
    assert app.text_input(key=_serial_input_key(created.store, twin)).value == CLEAN_VALUES["card_serial"]
    app.button(key="accept").click().run()
    assert not app.exception, app.exception
    assert not created.store.get_card(twin).fields["card_serial"].needs_review
    assert [e.field_key for e in _person_events(created.store, twin, REVIEWER)] == ["card_serial"]


def test_field_queue_skips_expiring_visa(review: ReviewStore) -> None:
    first, second = review.card_ids
    # The guest's visa ends two days before the booked departure of 2025-05-05.
    _fix_card(review.store, first, valid_until="2025-05-03")
    version = review.store.get_card(first).version
    app = _start_app()
    assert app.text_input(key=f"answer_{first}_departure_date_{version}").value == CLEAN_VALUES["departure_date"]

    app.button(key="accept").click().run()
    assert not app.exception, app.exception

    assert f"卡片 #{first} 离店日期 未保存" in _texts(app.warning)
    assert "上一项：" not in _page_text(app)
    assert f"answer_{second}_date_of_birth_1" in {element.key for element in app.text_input}
    assert review.store.get_card(first).version == version
    assert not _person_events(review.store, first, REVIEWER)


def test_field_queue_card_view_message_english(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _twin_serial_store(tmp_path, monkeypatch)
    app = _start_app()
    app.sidebar.radio(key="lang").set_value("en").run()
    assert "The field queue cannot reject a card or confirm a value as true" in _texts(app.warning)

    app.button(key="accept").click().run()
    assert not app.exception, app.exception
    warnings = _texts(app.warning)
    assert "is not saved: its problem (a card serial shared with another card" in warnings
    assert "To settle on the whole card (1 fields)" in _page_text(app)


def test_english_switch_shows_english_labels(review: ReviewStore) -> None:
    app = _start_app(page="cards")
    assert app.sidebar.radio(key="lang").value == "zh"
    app.sidebar.radio(key="lang").set_value("en").run()
    assert "Cards to review" in _page_text(app)
    assert app.button(key=f"open_{review.card_ids[0]}").label == "Open"

    app.button(key=f"open_{review.card_ids[0]}").click().run()
    text = _page_text(app)
    assert "**Document No.**" in text
    assert "证件号码" in text
    assert app.button(key="save").label == "Save corrections (Enter)"
    assert app.button(key="approve").label == "Approve (Alt+A)"
    assert app.text_input(key="field_surname").label == "Surname · 英文姓"
    # The signed-in user survives the language switch.
    assert app.session_state["user"].name == REVIEWER


def test_leaving_card_releases_hold(review: ReviewStore) -> None:
    card_id = review.card_ids[0]
    app = _start_on_card(card_id)
    assert active_holds(review.store)[card_id].holder == REVIEWER
    app.button(key="back_to_queue").click().run()
    assert not app.exception, app.exception
    assert app.session_state["card_id"] is None
    assert active_holds(review.store) == {}


# Two reviewers at once: two sessions on one store.


def test_held_card_read_only_for_other(shared_review: ReviewStore) -> None:
    card_id = shared_review.card_ids[0]
    first = _start_on_card(card_id, REVIEWER)
    second = _start_on_card(card_id, OTHER_REVIEWER)

    assert "此卡片正由 王芳 审核，您只能查看，不能修改" in _texts(second.warning)
    keys = {button.key for button in second.button}
    assert "save" not in keys
    assert "approve" not in keys
    # A reviewer cannot release someone else's hold.
    assert "release_hold" not in keys
    assert second.text_input(key="held_document_number").disabled

    # The holder works on undisturbed.
    first.text_input(key="field_document_number").input("561234987")
    first.text_input(key="field_date_of_birth").input("1985-03-12")
    first.button(key="approve").click().run()
    assert shared_review.store.get_card(card_id).status == CardStatus.APPROVED


def test_field_queues_of_two_reviewers_differ(shared_review: ReviewStore) -> None:
    first_card, second_card = shared_review.card_ids
    first = _start_app(REVIEWER)
    second = _start_app(OTHER_REVIEWER)
    assert f"answer_{first_card}_date_of_birth_1" in {element.key for element in first.text_input}
    assert f"answer_{second_card}_date_of_birth_1" in {element.key for element in second.text_input}
    holds = active_holds(shared_review.store)
    assert holds[first_card].holder == REVIEWER
    assert holds[second_card].holder == OTHER_REVIEWER


def test_supervisor_release_blocks_old_holder(shared_review: ReviewStore) -> None:
    card_id = shared_review.card_ids[0]
    reviewer = _start_on_card(card_id, REVIEWER)
    supervisor = _start_on_card(card_id, SUPERVISOR)
    assert "此卡片正由 王芳 审核" in _texts(supervisor.warning)

    supervisor.button(key="release_hold").click().run()
    assert not supervisor.exception, supervisor.exception
    assert "已解除卡片 1 的保留" in _texts(supervisor.info)
    assert active_holds(shared_review.store)[card_id].holder == SUPERVISOR
    assert supervisor.button(key="save").label == "保存修改（Enter）"

    # The reviewer's next save is refused and names the new holder; nothing is written.
    reviewer.text_input(key="field_document_number").input("561234987")
    reviewer.button(key="save").click().run()
    assert "卡片 1 正由 赵主管 审核" in _texts(reviewer.error)
    assert "此卡片正由 赵主管 审核，您只能查看" in _texts(reviewer.warning)
    assert _field_value(shared_review.store, card_id, "document_number") == SUGGESTED_DOCUMENT_NUMBER
    assert _person_events(shared_review.store, card_id, REVIEWER) == []


def test_stale_save_between_sessions(shared_review: ReviewStore) -> None:
    card_id = shared_review.card_ids[0]
    reviewer = _start_on_card(card_id, REVIEWER)
    # The hold ends (it expired, say) and another reviewer saves a new version.
    release_hold(shared_review.store, card_id)
    other = _start_on_card(card_id, OTHER_REVIEWER)
    other.text_input(key="field_room_number").input("1210")
    other.button(key="save").click().run()
    other.button(key="back_to_queue").click().run()
    assert active_holds(shared_review.store) == {}

    reviewer.text_input(key="field_document_number").input("561234987")
    reviewer.button(key="save").click().run()
    assert "已被他人修改" in _texts(reviewer.error)
    assert _field_value(shared_review.store, card_id, "document_number") == SUGGESTED_DOCUMENT_NUMBER
    assert _field_value(shared_review.store, card_id, "room_number") == "1210"


# Users page.


def test_users_page_lists_and_adds(review: ReviewStore) -> None:
    app = _start_app(ADMIN, page="users")
    assert app.header[0].value == "用户管理"
    table = app.dataframe[0].value
    assert list(table["用户名"]) == [REVIEWER, OTHER_REVIEWER, SUPERVISOR, ADMIN]

    app.text_input(key="new_user_name").input("周新")
    app.selectbox(key="new_user_role").set_value(Role.SUPERVISOR)
    app.text_input(key="new_user_password").input("zhou-2025-pw")
    app.text_input(key="new_user_repeat").input("zhou-2025-pw")
    app.button(key="add_user").click().run()
    assert not app.exception, app.exception
    assert "已添加用户 周新（主管）" in _texts(app.success)
    assert get_user(review.store, "周新").role == Role.SUPERVISOR
    assert authenticate(review.store, "周新", "zhou-2025-pw") is not None


def test_users_page_rejects_bad_input(review: ReviewStore) -> None:
    app = _start_app(ADMIN, page="users")
    app.text_input(key="new_user_name").input("周新")
    app.text_input(key="new_user_password").input("zhou-2025-pw")
    app.text_input(key="new_user_repeat").input("zhou-2025-px")
    app.button(key="add_user").click().run()
    assert "两次输入的密码不一致" in _texts(app.error)

    app.text_input(key="new_user_name").input(REVIEWER)
    app.text_input(key="new_user_password").input("short")
    app.text_input(key="new_user_repeat").input("short")
    app.button(key="add_user").click().run()
    assert "密码至少需要 8 个字符" in _texts(app.error)
    assert get_user(review.store, "周新") is None


def test_users_page_changes_user(review: ReviewStore) -> None:
    app = _start_app(ADMIN, page="users")
    app.selectbox(key="change_user_name").set_value(OTHER_REVIEWER).run()
    app.selectbox(key=f"change_role_{OTHER_REVIEWER}").set_value(Role.SUPERVISOR)
    app.button(key="change_role").click().run()
    assert get_user(review.store, OTHER_REVIEWER).role == Role.SUPERVISOR

    app.text_input(key="reset_password").input("new-pass-2025")
    app.text_input(key="reset_repeat").input("new-pass-2025")
    app.button(key="reset_password_button").click().run()
    assert authenticate(review.store, OTHER_REVIEWER, "new-pass-2025") is not None
    assert authenticate(review.store, OTHER_REVIEWER, PASSWORD) is None

    app.button(key="toggle_user").click().run()
    assert not get_user(review.store, OTHER_REVIEWER).active
    assert "已停用 李雷" in _texts(app.success)


def test_users_page_keeps_last_admin(review: ReviewStore) -> None:
    app = _start_app(ADMIN, page="users")
    app.selectbox(key="change_user_name").set_value(ADMIN).run()
    app.button(key="toggle_user").click().run()
    assert "孙管理 是唯一启用的管理员，不能停用" in _texts(app.error)
    assert get_user(review.store, ADMIN).active
