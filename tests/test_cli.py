"""Command line: ``python -m ocr`` run as a subprocess on real scans, with the real OCR engine.

OCR runs on four pages in all: one JPEG and a two-page TIFF for ``extract``, one
JPEG for ``ingest``. Each command runs once per module and the tests check its
output, files and exit code.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from models.card import CardStatus
from ocr.errors import ExitCode
from ocr.registry import load_registry
from ocr.store import Store
from sample_cards import SAMPLES_DIR
from test_worker import _children

REGISTRY = load_registry()
CJK = re.compile(r"[\u4e00-\u9fff]")
OCR_TIMEOUT_S = 300
COMMAND_TIMEOUT_S = 60

FIELD_OUTPUT_KEYS = {"value", "confidence", "needs_review", "reason"}
REQUIRED_TOP_KEYS = {"source", "page", "card_type", "rotation_deg", "fields"}
# Deskew and layout fitting may leave this much rotation on a straight scan, in degrees.
ROTATION_TOLERANCE_DEG = 1.0

SINGLE_SAMPLE = "card_06_foreign_printed"
TIFF_SAMPLES = ("card_10_foreign_printed", "card_03_domestic_printed")
INGEST_SAMPLE = "card_09_domestic_printed"
INGEST_BATCH = "2025-08-13"


def run_cli(args: list[str], cwd: Path, timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run ``python -m ocr ARGS`` in ``cwd`` with the default data folder, database and language."""
    env = {k: v for k, v in os.environ.items() if k not in ("HUKA_DATA_DIR", "HUKA_DB_URL", "HUKA_LANG")}
    return subprocess.run(
        [sys.executable, "-m", "ocr", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
    )


def truth(stem: str) -> dict:
    return json.loads((SAMPLES_DIR / f"{stem}.json").read_text(encoding="utf-8"))


def assert_no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout


def assert_matches_truth(output: dict, stem: str) -> None:
    """Check one extract JSON against the truth of a sample: shape, every key, and the values."""
    expected = truth(stem)
    assert REQUIRED_TOP_KEYS <= set(output)
    assert output["card_type"] == expected["card_type"]
    assert isinstance(output["rotation_deg"], (int, float))
    assert -180 < output["rotation_deg"] <= 180
    assert math.isclose(output["rotation_deg"], expected["rotation_deg"], abs_tol=ROTATION_TOLERANCE_DEG)

    keys = REGISTRY.card_type(expected["card_type"]).keys
    assert list(output["fields"]) == keys
    for key, field in output["fields"].items():
        assert set(field) == FIELD_OUTPUT_KEYS, key
        assert isinstance(field["value"], str), key
        assert isinstance(field["confidence"], (int, float)), key
        assert 0.0 <= field["confidence"] <= 1.0, key
        assert isinstance(field["needs_review"], bool), key
        assert isinstance(field["reason"], str), key
        # A flagged field gives its reason in Chinese, and a field that passes has none.
        if field["needs_review"]:
            assert CJK.search(field["reason"]), key
        else:
            assert field["reason"] == "", key
            assert field["value"] == expected["fields"][key], key


# extract


@dataclass
class ExtractRun:
    workdir: Path
    out: Path
    result: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def extract_run(tmp_path_factory) -> ExtractRun:
    """Run ``extract`` once on a damaged JPEG, a sample JPEG, a text file named .png and a two-page TIFF."""
    workdir = tmp_path_factory.mktemp("extract")
    sample_bytes = (SAMPLES_DIR / f"{TIFF_SAMPLES[1]}.jpg").read_bytes()
    (workdir / "truncated.jpg").write_bytes(sample_bytes[: len(sample_bytes) // 3])
    (workdir / "notes.png").write_text("not an image\n", encoding="utf-8")
    shutil.copy(SAMPLES_DIR / f"{SINGLE_SAMPLE}.jpg", workdir / f"{SINGLE_SAMPLE}.jpg")

    pages = [Image.open(SAMPLES_DIR / f"{stem}.jpg").convert("RGB") for stem in TIFF_SAMPLES]
    pages[0].save(workdir / "two_cards.tif", save_all=True, append_images=pages[1:], compression="tiff_lzw")

    inputs = ["truncated.jpg", f"{SINGLE_SAMPLE}.jpg", "notes.png", "two_cards.tif"]
    result = run_cli(["extract", *inputs, "--out", "out"], workdir, timeout=OCR_TIMEOUT_S)
    return ExtractRun(workdir=workdir, out=workdir / "out", result=result)


def test_extract_partial_exit_code(extract_run):
    assert extract_run.result.returncode == ExitCode.PARTIAL, extract_run.result.stderr
    assert_no_traceback(extract_run.result)


def test_extract_writes_one_json_per_page(extract_run):
    names = sorted(p.name for p in extract_run.out.iterdir())
    assert names == sorted([f"{SINGLE_SAMPLE}.json", "two_cards_p1.json", "two_cards_p2.json"])


def test_extract_single_card_matches_truth(extract_run):
    output = json.loads((extract_run.out / f"{SINGLE_SAMPLE}.json").read_text(encoding="utf-8"))

    assert Path(output["source"]).name == f"{SINGLE_SAMPLE}.jpg"
    assert output["page"] == 1
    assert_matches_truth(output, SINGLE_SAMPLE)


@pytest.mark.parametrize("page", [1, 2])
def test_extract_tiff_pages_match_truth(extract_run, page):
    output = json.loads((extract_run.out / f"two_cards_p{page}.json").read_text(encoding="utf-8"))

    assert Path(output["source"]).name == "two_cards.tif"
    assert output["page"] == page
    assert_matches_truth(output, TIFF_SAMPLES[page - 1])


@pytest.mark.parametrize("name", ["truncated.jpg", "notes.png"])
def test_extract_reports_bad_file(extract_run, name):
    lines = [line for line in extract_run.result.stderr.splitlines() if name in line]

    assert len(lines) == 1, extract_run.result.stderr
    # The line gives a reason in Chinese after the file name.
    reason = lines[0].split(name, 1)[1]
    assert CJK.search(reason), lines[0]
    assert not (extract_run.out / f"{Path(name).stem}.json").exists()


def test_extract_bad_files_have_distinct_reasons(extract_run):
    stderr = extract_run.result.stderr.splitlines()
    truncated = next(line for line in stderr if "truncated.jpg" in line)
    not_image = next(line for line in stderr if "notes.png" in line)

    assert truncated.split("truncated.jpg", 1)[1] != not_image.split("notes.png", 1)[1]


def test_extract_stores_nothing(extract_run):
    assert not (extract_run.workdir / "ocr-data").exists()


# ingest and status


@dataclass
class IngestRuns:
    data_dir: Path
    first: subprocess.CompletedProcess
    second: subprocess.CompletedProcess
    english: subprocess.CompletedProcess
    status: subprocess.CompletedProcess
    status_english: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def ingest_runs(tmp_path_factory) -> IngestRuns:
    """Ingest one scan twice, then a byte-identical copy under another name, then ask for the status."""
    workdir = tmp_path_factory.mktemp("ingest")
    (workdir / "scans").mkdir()
    (workdir / "copy").mkdir()
    shutil.copy(SAMPLES_DIR / f"{INGEST_SAMPLE}.jpg", workdir / "scans" / "front_desk_0813.jpg")
    shutil.copy(SAMPLES_DIR / f"{INGEST_SAMPLE}.jpg", workdir / "copy" / "rescanned.jpg")
    store_args = ["--batch", INGEST_BATCH, "--data-dir", "data"]

    first = run_cli(["ingest", "scans/front_desk_0813.jpg", *store_args], workdir, timeout=OCR_TIMEOUT_S)
    second = run_cli(["ingest", "scans/front_desk_0813.jpg", *store_args], workdir, timeout=OCR_TIMEOUT_S)
    english = run_cli(["--lang", "en", "ingest", "copy/rescanned.jpg", *store_args], workdir, timeout=OCR_TIMEOUT_S)
    status = run_cli(["status", "--data-dir", "data"], workdir)
    status_english = run_cli(["--lang", "en", "status", "--data-dir", "data"], workdir)
    return IngestRuns(workdir / "data", first, second, english, status, status_english)


def test_ingest_stores_scan(ingest_runs):
    assert ingest_runs.first.returncode == 0, ingest_runs.first.stderr
    assert_no_traceback(ingest_runs.first)
    assert INGEST_BATCH in ingest_runs.first.stdout
    assert re.search(r"新入库\s*1\s*张", ingest_runs.first.stdout), ingest_runs.first.stdout


def test_ingest_twice_stores_once(ingest_runs):
    store = Store(data_dir=ingest_runs.data_dir)
    cards = store.list_cards(batch=INGEST_BATCH)
    store.close()

    assert len(cards) == 1
    assert Path(cards[0].source).name == "front_desk_0813.jpg"
    assert cards[0].status in (CardStatus.AUTO_ACCEPTED, CardStatus.NEEDS_REVIEW)


def test_ingest_again_reports_duplicate(ingest_runs):
    second = ingest_runs.second

    assert second.returncode == 0, second.stderr
    assert re.search(r"新入库\s*0\s*张", second.stdout), second.stdout
    assert re.search(r"重复\S*\s*1\s*张", second.stdout), second.stdout


def test_ingest_english_messages(ingest_runs):
    english = ingest_runs.english

    assert english.returncode == 0, english.stderr
    assert not CJK.search(english.stdout), english.stdout
    assert re.search(r"\b0 stored\b", english.stdout), english.stdout
    assert re.search(r"\b1 duplicates?\b", english.stdout), english.stdout


def test_status_counts_batch(ingest_runs):
    status = ingest_runs.status

    # The sample card arrived long ago and was never sent, so its record is overdue.
    assert status.returncode == ExitCode.OVERDUE, status.stderr
    lines = [line for line in status.stdout.splitlines() if INGEST_BATCH in line]
    assert len(lines) == 1, status.stdout
    assert re.search(r"共\s*1\s*张", lines[0]), lines[0]


def test_status_unknown_batch_named(ingest_runs):
    result = run_cli(["status", "--batch", "nosuch", "--data-dir", str(ingest_runs.data_dir)], ingest_runs.data_dir.parent)

    assert result.returncode == ExitCode.BAD_INPUT, result.stderr
    assert "没有名为 nosuch 的批次" in result.stderr
    assert INGEST_BATCH in result.stderr


def test_status_english(ingest_runs):
    status = ingest_runs.status_english

    assert status.returncode == ExitCode.OVERDUE, status.stderr
    assert not CJK.search(status.stdout), status.stdout
    lines = [line for line in status.stdout.splitlines() if INGEST_BATCH in line]
    assert len(lines) == 1, status.stdout
    assert re.search(r"\b1 cards?\b", lines[0]), lines[0]


# export and store errors


def test_reading_commands_create_no_store(tmp_path):
    for command in (["status"], ["export", "--batch", "b1"]):
        result = run_cli([*command, "--data-dir", "typo"], tmp_path)
        assert result.returncode == ExitCode.STORE_FAILED, result.stderr
        assert "找不到数据库" in result.stderr
        assert_no_traceback(result)
    assert not (tmp_path / "typo").exists()


def test_usage_error_is_short_chinese(tmp_path):
    for args in (["ingest"], ["bogus"], ["ingest", "x.jpg", "--dpi", "0"]):
        result = run_cli(args, tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("命令用法有误"), result.stderr
        assert_no_traceback(result)


# Arguments, the Chinese description, the --help hint, and the start of click's English detail.
USAGE_ERRORS = [
    (["status", "--foo"], "没有选项 --foo", "python -m ocr status --help", "No such option: --foo"),
    (["status", "--batc"], "可能是 --batch", "python -m ocr status --help", "No such option: --batc"),
    (["ingest"], "缺少参数 'paths'", "python -m ocr ingest --help", "Missing argument 'paths'"),
    (["export", "--format", "csv"], "缺少选项 '--batch'", "python -m ocr export --help", "Missing option '--batch'"),
    (["ingest", "x.jpg", "--dpi", "abc"], "选项 '--dpi' 的值无效：'abc' 不是整数", "python -m ocr ingest --help", "Invalid value for '--dpi'"),
    (["ingest", "x.jpg", "--dpi", "10"], "选项 '--dpi' 的值无效：'10' 小于最小值 50", "python -m ocr ingest --help", "Invalid value for '--dpi'"),
    # An option without its value fails before click makes the command's context; the hint still names the command.
    (["export", "--batch"], "选项 --batch 后缺少值", "python -m ocr export --help", "Option '--batch' requires an argument"),
    (["ingest", "--db"], "选项 --db 后缺少值", "python -m ocr ingest --help", "Option '--db' requires an argument"),
    (["key", "rotate", "--db"], "选项 --db 后缺少值", "python -m ocr key rotate --help", "Option '--db' requires an argument"),
    (["ingest", "--queue=yes", "x.jpg"], "选项 --queue 不接受值", "python -m ocr ingest --help", "Option '--queue' does not take a value"),
    # Values that the commands checked only after opening the store are choices checked while parsing.
    (
        ["ingest", "x.jpg", "--engine", "foo"],
        "选项 '--engine' 的值无效：'foo' 不是可选的值，可选：rapidocr、tesseract、paddleocr",
        "python -m ocr ingest --help",
        "Invalid value for '--engine'",
    ),
    (["extract", "x.jpg", "--out", "out", "--engine", "foo"], "'foo' 不是可选的值", "python -m ocr extract --help", "Invalid value for '--engine'"),
    (["demo", "--engine", "foo"], "'foo' 不是可选的值", "python -m ocr demo --help", "Invalid value for '--engine'"),
    (["bench", "throughput", "--cards", "2", "--engine", "foo"], "'foo' 不是可选的值", "python -m ocr bench throughput --help", "Invalid value for '--engine'"),
    (
        ["export", "--batch", "b1", "--format", "xml"],
        "选项 '--format' 的值无效：'xml' 不是可选的值，可选：csv、jsonl",
        "python -m ocr export --help",
        "Invalid value for '--format'",
    ),
    (["handover", "--month", "2025-13"], "月份 '2025-13' 无效", "python -m ocr handover --help", "Invalid value for '--month': invalid month '2025-13'"),
    (["user", "add", "王芳", "--role", "boss"], "角色 'boss' 无效", "python -m ocr user add --help", "Invalid value for '--role': invalid role 'boss'"),
    (["bogus"], "没有命令 'bogus'", "python -m ocr --help", "No such command 'bogus'"),
    (["key", "bogus"], "没有命令 'bogus'", "python -m ocr key --help", "No such command 'bogus'"),
    (["status", "extra"], "多余的参数 extra", "python -m ocr status --help", "Got unexpected extra argument(s) (extra)"),
    (["review", "--port", "99999"], "选项 '--port' 的值无效：'99999' 大于最大值 65535", "python -m ocr review --help", "Invalid value for '--port'"),
]


@pytest.mark.parametrize(
    ("args", "described", "help_hint", "detail"), USAGE_ERRORS, ids=[" ".join(case[0]) for case in USAGE_ERRORS]
)
def test_usage_error_chinese_first(tmp_path, args, described, help_hint, detail):
    result = run_cli(args, tmp_path)

    assert result.returncode == 2, result.stderr
    assert_no_traceback(result)
    first_line, _, rest = result.stderr.partition("\n")
    assert first_line.startswith("命令用法有误："), result.stderr
    assert described in first_line
    assert f"运行 {help_hint} 查看用法" in first_line
    # The English detail follows on its own line, never inside the Chinese sentence.
    assert detail not in first_line
    assert rest.startswith(f"usage error: {detail}"), result.stderr
    assert not CJK.search(rest), result.stderr
    assert not (tmp_path / "ocr-data").exists()
    assert not (tmp_path / "out").exists()


def test_usage_error_english(tmp_path):
    result = run_cli(["status", "--foo", "--lang", "en"], tmp_path)

    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "usage error: No such option: --foo; run python -m ocr status --help"


def test_usage_error_english_choice(tmp_path):
    result = run_cli(["ingest", "x.jpg", "--engine", "foo", "--lang", "en"], tmp_path)

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("usage error: Invalid value for '--engine'"), result.stderr
    assert "'foo' is not one of 'rapidocr', 'tesseract', 'paddleocr'" in result.stderr
    assert result.stderr.strip().endswith("run python -m ocr ingest --help")
    assert not CJK.search(result.stderr), result.stderr


def test_engine_choice_ignores_case(tmp_path):
    # Parsing accepts the name in any case, so the run starts and reports the missing scan file.
    result = run_cli(["extract", "missing.jpg", "--out", "out", "--engine", "Tesseract"], tmp_path)

    assert result.returncode == ExitCode.PARTIAL, result.stderr
    assert "无法读取文件 missing.jpg" in result.stderr
    assert "命令用法有误" not in result.stderr
    assert_no_traceback(result)


def test_help_still_works(tmp_path):
    for args in (["--help"], ["ingest", "--help"], ["key", "rotate", "--help"]):
        result = run_cli(args, tmp_path)

        assert result.returncode == 0, result.stderr
        assert "Usage: python -m ocr" in result.stdout
        assert result.stderr == ""


def test_lang_after_command(tmp_path):
    Store(data_dir=tmp_path / "ocr-data").close()
    result = run_cli(["status", "--lang", "en"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("no batches yet")


def test_export_unknown_batch(tmp_path):
    Store(data_dir=tmp_path / "ocr-data").close()
    result = run_cli(["export", "--batch", "2031-01-01", "--out", "out"], tmp_path)

    assert result.returncode not in (ExitCode.OK, ExitCode.PARTIAL)
    assert_no_traceback(result)
    assert "2031-01-01" in result.stderr
    assert CJK.search(result.stderr), result.stderr
    assert not (tmp_path / "out").exists()


def test_export_invalid_format(tmp_path):
    Store(data_dir=tmp_path / "ocr-data").close()
    result = run_cli(["export", "--batch", "2031-01-01", "--format", "xml", "--out", "out"], tmp_path)

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("命令用法有误"), result.stderr
    assert_no_traceback(result)
    assert "xml" in result.stderr
    assert "csv" in result.stderr
    assert "jsonl" in result.stderr
    assert CJK.search(result.stderr), result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", ["--db", "--data-dir"])
def test_unusable_store_location(tmp_path, option):
    blocker = tmp_path / "plain.txt"
    blocker.write_text("a regular file, not a folder\n", encoding="utf-8")
    location = f"sqlite:///{blocker / 'cards.db'}" if option == "--db" else str(blocker / "data")

    result = run_cli(["status", option, location], tmp_path)

    assert result.returncode not in (ExitCode.OK, ExitCode.PARTIAL)
    assert_no_traceback(result)
    assert CJK.search(result.stderr), result.stderr
    assert "plain.txt" in result.stderr


def test_extract_same_stem_not_overwritten(tmp_path):
    for folder, sample in (("a", "card_03_domestic_printed"), ("b", "card_09_domestic_printed")):
        (tmp_path / "in" / folder).mkdir(parents=True)
        shutil.copy(SAMPLES_DIR / f"{sample}.jpg", tmp_path / "in" / folder / "scan.jpg")
    result = run_cli(["extract", "in", "--out", "out"], tmp_path)

    assert result.returncode == 0, result.stderr
    outputs = sorted((tmp_path / "out").glob("*.json"))
    assert len(outputs) == 2
    names = sorted(path.name for path in outputs)
    assert "scan.json" in names
    assert [name for name in names if name != "scan.json"][0].startswith("scan-")
    ids = {json.loads(path.read_text(encoding="utf-8"))["fields"]["id_number"]["value"] for path in outputs}
    assert len(ids) == 2
    assert all(path.stat().st_mode & 0o077 == 0 for path in outputs)


def test_extract_empty_folder_warns(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli(["extract", "empty", "--out", "out"], tmp_path)
    assert result.returncode == ExitCode.BAD_INPUT
    assert "没有找到可读取的扫描文件" in result.stderr


def test_unknown_lang_is_usage_error(tmp_path):
    for args in (["--lang", "fr", "status"], ["status", "--lang=xx"]):
        result = run_cli(args, tmp_path)

        assert result.returncode == 2, result.stderr
        assert "只能是 zh 或 en" in result.stderr
        assert_no_traceback(result)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is a Linux prctl")
def test_review_app_stops_with_command(tmp_path):
    Store(data_dir=tmp_path / "data").close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("HUKA_DATA_DIR", "HUKA_DB_URL", "HUKA_LANG")}
    command = subprocess.Popen(
        [sys.executable, "-m", "ocr", "review", "--data-dir", str(tmp_path / "data"), "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    children: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not children and time.monotonic() < deadline and command.poll() is None:
            time.sleep(0.2)
            children = _children(command.pid)
        assert children, "the review app did not start"

        # SIGKILL leaves the command no chance to clean up: only the kernel's parent-death signal ends the app.
        command.kill()
        command.wait(timeout=10)

        deadline = time.monotonic() + 30
        while Path(f"/proc/{children[0]}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not Path(f"/proc/{children[0]}").exists(), "the review app outlived its stopped command"
    finally:
        command.kill()
        for child in children:
            if Path(f"/proc/{child}").exists():
                os.kill(child, signal.SIGKILL)
