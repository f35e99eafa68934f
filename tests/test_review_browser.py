"""Review app in headless Chromium: a reviewer corrects and approves a card through the browser.

The test builds a store with one flagged card, then runs this file as a driver
script in a subprocess. The driver starts ``python -m ocr review`` on
127.0.0.1, drives Chromium with Playwright and stops the server again. When the
test runs as root and ``unshare`` exists, the driver runs inside a new network
namespace that has only loopback, so neither the server nor the browser can
reach any other host. Screenshots go to ``test-artifacts/`` for a person to look at.

Driver use: ``python tests/test_review_browser.py DB_URL DATA_DIR ARTIFACTS_DIR RESULT_JSON [--isolated]``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from models.card import CardStatus
from test_review_app import make_review_store

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = PROJECT_ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_TIMEOUT_S = 60
# Upper bound for one browser step: a click and the script rerun it starts.
STEP_TIMEOUT_MS = 20_000
DRIVER_TIMEOUT_S = 240

CORRECT_DOCUMENT_NUMBER = "561234987"
CORRECT_DATE_OF_BIRTH = "1985-03-12"
REVIEWER = "王芳"


def _network_namespace_unavailable() -> str | None:
    """Return why the driver cannot run in its own network namespace, or None when it can."""
    if os.geteuid() != 0:
        return "not running as root, so no network namespace can be created"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    if shutil.which("ip") is None:
        return "ip (iproute2) is not installed, so loopback cannot be brought up"
    return None


# Driver: runs in the subprocess.


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_server(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"review server exited with code {server.returncode} before it answered the health check")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"review server at {url} did not answer within {SERVER_START_TIMEOUT_S} s")


def _stop_server(server: subprocess.Popen) -> None:
    """Stop the CLI and the streamlit process it started (same process group)."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=15)
    # The streamlit child may outlive the CLI by a moment.
    try:
        os.killpg(server.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait_until_idle(page) -> None:
    """Wait until the Streamlit script run that drew the page has finished, so nothing is half drawn."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()


def _review_in_browser(url: str, artifacts: Path) -> dict:
    """Drive one review from the queue to the approved card; return the timings in seconds."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1100}, locale="zh-CN")
            page.set_default_timeout(STEP_TIMEOUT_MS)
            expect.set_options(timeout=STEP_TIMEOUT_MS)

            started = time.perf_counter()
            page.goto(url)
            expect(page.get_by_role("heading", name="待审核队列")).to_be_visible()
            loaded = time.perf_counter()

            # Reviewer name, typed and committed with Enter.
            name_input = page.get_by_role("textbox", name="审核人", exact=True)
            name_input.click()
            page.keyboard.type(REVIEWER)
            page.keyboard.press("Enter")
            expect(page.get_by_text("请先在左侧栏填写审核人姓名")).to_have_count(0)
            _wait_until_idle(page)
            page.screenshot(path=str(artifacts / "review_01_queue.png"), full_page=True)

            page.get_by_role("button", name="打开").first.click()
            expect(page.get_by_role("heading", name="待核字段（2）")).to_be_visible()
            _wait_until_idle(page)
            page.screenshot(path=str(artifacts / "review_02_card.png"), full_page=True)

            # Corrections typed with the keyboard over the suggested values.
            for label, value in (("证件号码", CORRECT_DOCUMENT_NUMBER), ("出生日期", CORRECT_DATE_OF_BIRTH)):
                field = page.get_by_role("textbox", name=label, exact=True)
                field.click()
                page.keyboard.press("Control+A")
                page.keyboard.type(value)
            page.get_by_role("button", name="保存修改").click()
            expect(page.get_by_text("已保存卡片 1")).to_be_visible()
            expect(page.get_by_role("heading", name="待核字段（0）")).to_be_visible()
            _wait_until_idle(page)
            page.screenshot(path=str(artifacts / "review_03_saved.png"), full_page=True)

            page.get_by_role("button", name="审核通过").click()
            expect(page.get_by_text("卡片 1 已审核通过")).to_be_visible()
            approved = time.perf_counter()
            expect(page.get_by_text("批次 2025-05-01 中没有待审核的卡片")).to_be_visible()
            _wait_until_idle(page)
            page.screenshot(path=str(artifacts / "review_04_approved.png"), full_page=True)
        finally:
            browser.close()
    return {"load_s": loaded - started, "load_to_approve_s": approved - started}


def run_driver(db_url: str, data_dir: str, artifacts: Path, result_file: Path, isolated: bool) -> None:
    """Start the review server, run the browser review and write the result JSON."""
    if isolated:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    log_path = artifacts / "review_server.log"
    with open(log_path, "wb") as server_log:
        server = subprocess.Popen(
            [sys.executable, "-m", "ocr", "review", "--db", db_url, "--data-dir", data_dir, "--port", str(port)],
            env=env,
            cwd=data_dir,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_for_server(url, server)
            timings = _review_in_browser(url, artifacts)
        finally:
            _stop_server(server)
    result = {"isolated": isolated, "server_pid": server.pid, **timings}
    result_file.write_text(json.dumps(result), encoding="utf-8")


# Tests: run in pytest.


def _processes_using(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in process.info["cmdline"] or []):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found

@pytest.mark.browser
def test_review_in_browser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing; install the Debian package chromium")
    review = make_review_store(tmp_path, cards=1)
    card_id = review.card_ids[0]
    result_file = tmp_path / "result.json"
    command = [
        sys.executable,
        __file__,
        review.db_url,
        str(review.data_dir),
        str(ARTIFACTS_DIR),
        str(result_file),
    ]
    isolated = _network_namespace_unavailable() is None
    if isolated:
        command = ["unshare", "-n", *command, "--isolated"]

    driver = subprocess.run(command, capture_output=True, text=True, timeout=DRIVER_TIMEOUT_S, cwd=PROJECT_ROOT)
    assert driver.returncode == 0, f"browser driver failed:\n{driver.stdout}\n{driver.stderr}"
    result = json.loads(result_file.read_text(encoding="utf-8"))

    card = review.store.get_card(card_id)
    assert card.status == CardStatus.APPROVED
    assert card.fields["document_number"].value == CORRECT_DOCUMENT_NUMBER
    assert card.fields["date_of_birth"].value == CORRECT_DATE_OF_BIRTH
    events = review.store.audit_events(card_id)
    corrections = {e.field_key: e for e in events if e.action == "correct"}
    assert corrections["document_number"].actor == REVIEWER
    assert corrections["document_number"].old_value == "S61234987"
    assert corrections["date_of_birth"].new_value == CORRECT_DATE_OF_BIRTH
    assert [e.actor for e in events if e.action == "status"][-1] == REVIEWER

    for name in ("review_01_queue", "review_02_card", "review_03_saved", "review_04_approved"):
        assert (ARTIFACTS_DIR / f"{name}.png").stat().st_size > 10_000
    assert not _processes_using(str(review.data_dir)), "the review server is still running"

    with capsys.disabled():
        where = "in a network namespace without network" if isolated else "with the host network"
        print(
            f"\nreview in browser ({where}): page shown after {result['load_s']:.2f} s, "
            f"card approved {result['load_to_approve_s']:.2f} s after page load started"
        )

@pytest.mark.netns
def test_network_namespace_has_no_route() -> None:
    reason = _network_namespace_unavailable()
    if reason is not None:
        pytest.skip(f"{reason}; the browser test ran with the host network")
    probe = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('192.0.2.1', 80), timeout=3)\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__, exc.errno)\n"
        "else:\n"
        "    print('connected')\n"
    )
    result = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", probe], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    # A namespace with only loopback has no route at all, so the connect fails at once.
    assert result.stdout.split() == ["OSError", str(errno.ENETUNREACH)]


if __name__ == "__main__":
    db_url_arg, data_dir_arg, artifacts_arg, result_arg, *flags = sys.argv[1:]
    run_driver(db_url_arg, data_dir_arg, Path(artifacts_arg), Path(result_arg), isolated="--isolated" in flags)
