"""Monthly handover list of white copies: XLSX and a PDF with a Chinese font."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook

from ocr.store import Store
from ocr.transmit.config import load_config
from ocr.transmit.handover import FONT_CANDIDATES, HandoverError, handover_rows, write_handover
from ocr.transmit.runner import run_transmit
from test_transmit_support import REGISTRY, Cards, domestic_values, foreign_values, sample_png, write_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HAS_CJK_FONT = any(path.is_file() for path in FONT_CANDIDATES)


@pytest.fixture()
def month_of_cards(tmp_path: Path) -> tuple[Cards, object]:
    """Two foreign cards and one HK card on two days of December, one December card in review, one from November."""
    cards = Cards(Store(data_dir=tmp_path / "data"), sample_png())
    cards.add(foreign_values("0012346", "2025-12-02"))
    cards.add(foreign_values("0012345", "2025-12-01"))
    cards.add(
        foreign_values("0012347", "2025-12-01", nationality="HKG", document_type="hk_macao_permit", document_number="H12345678", visa_type="")
    )
    cards.add(foreign_values("0012348", "2025-12-03"), approve=False)
    cards.add(foreign_values("0012300", "2025-11-30"))
    cards.add(domestic_values("0000101", "2025-12-01"), card_type="domestic_guest")
    config = load_config(write_config(tmp_path / "hukacapture.toml", adapter="folder", folder=tmp_path / "drop", hotel_id="H001", include_auto_accepted=False))
    return cards, config


def test_rows_grouped_and_filtered(month_of_cards):
    cards, config = month_of_cards

    rows, waiting = handover_rows(cards.store, config, "2025-12")

    assert [(r.category, r.arrival_date, r.card_serial) for r in rows] == [
        ("foreign", "2025-12-01", "0012345"),
        ("foreign", "2025-12-02", "0012346"),
        ("hk_macao_taiwan", "2025-12-01", "0012347"),
    ]
    assert waiting == 1
    assert all(r.transmission.startswith("未上报") for r in rows)


def test_rows_show_acknowledged(month_of_cards):
    cards, config = month_of_cards
    run_transmit(cards.store, config, registry=REGISTRY)

    rows, _waiting = handover_rows(cards.store, config, "2025-12")

    assert all(r.transmission.startswith("已确认") for r in rows)


def test_invalid_month_rejected(month_of_cards):
    cards, config = month_of_cards

    with pytest.raises(HandoverError) as error:
        handover_rows(cards.store, config, "2025-13")

    assert "YYYY-MM" in error.value.message_zh


@pytest.mark.skipif(not HAS_CJK_FONT, reason="needs fonts-wqy-zenhei or fonts-arphic-uming")
def test_xlsx_and_pdf_written(tmp_path: Path, month_of_cards):
    cards, config = month_of_cards

    xlsx_path, pdf_path, listed, waiting = write_handover(cards.store, config, "2025-12", tmp_path / "out")

    assert (listed, waiting) == (3, 1)
    texts = [str(c) for row in load_workbook(xlsx_path).active.iter_rows(values_only=True) for c in row if c is not None]
    assert "外宾 / foreign" in texts
    assert "港澳台 / HK, Macao, Taiwan" in texts
    assert "团签 / group visa" in texts
    assert "外宾合计 / total foreign" in texts
    assert "总计 / grand total" in texts
    grand_total = texts[texts.index("总计 / grand total") + 1]
    assert grand_total == "3"
    pdf = pdf_path.read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert b"/FontFile2" in pdf
    assert oct(pdf_path.stat().st_mode & 0o777) == "0o600"


@pytest.mark.skipif(not HAS_CJK_FONT, reason="needs fonts-wqy-zenhei or fonts-arphic-uming")
def test_handover_command_line(tmp_path: Path, month_of_cards):
    cards, _config = month_of_cards
    cards.store.close()
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    env.pop("HUKA_CONFIG", None)

    result = subprocess.run(
        [sys.executable, "-m", "ocr", "handover", "--month", "2025-12", "--data-dir", "data", "--out", "out"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "handover_2025-12.pdf").is_file()
    assert (tmp_path / "out" / "handover_2025-12.xlsx").is_file()
    assert "3 张" in result.stdout
    assert "1 张境外人员卡片未审核" in result.stderr


@pytest.mark.skipif(not HAS_CJK_FONT, reason="needs fonts-wqy-zenhei or fonts-arphic-uming")
@pytest.mark.parametrize(
    ("out", "reason_zh"),
    [("afile", "已有同名的文件"), ("afile/sub", "路径中的某一级是文件，不是目录")],
)
def test_out_folder_error_in_chinese(tmp_path: Path, month_of_cards, out: str, reason_zh: str):
    cards, config = month_of_cards
    (tmp_path / "afile").write_text("")

    with pytest.raises(HandoverError) as error:
        write_handover(cards.store, config, "2025-12", tmp_path / out)

    assert f"无法创建目录 {tmp_path / out}：{reason_zh}。" in error.value.message_zh
    assert "File exists" not in error.value.message_zh
    assert "Not a directory" not in error.value.message_zh
