"""Review app in headless Chromium: a reviewer signs in and works through the field queue by keyboard alone.

The test builds a store with two flagged cards and adds a reviewer and an
admin with ``python -m ocr user add --password-stdin``. It then runs this file
as a driver script in a subprocess. The driver starts ``python -m ocr review``
on 127.0.0.1, drives Chromium with Playwright (``page.keyboard`` only on the
reviewer's path: sign-in, four fields, the approval) and stops the server
again. A second browser context signs the admin in on the same server. When
the test runs as root and ``unshare`` exists, the driver runs inside a new
network namespace that has only loopback, so neither the server nor the
browser can reach any other host. Screenshots of every page go to
``test-artifacts/`` (git-ignored) for a person to look at, and the driver
reports its timings, which docs/review-app.md quotes.

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
from ocr.holds import active_holds
from ocr.review import ILLEGIBLE_CODE
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
SUGGESTED_DOCUMENT_NUMBER = "S61234987"
REVIEWER = "王芳"
ADMIN = "孙管理"
PASSWORD = "kaishi-2025"
SCREENSHOTS = (
    "review_01_sign_in",
    "review_02_field_queue",
    "review_03_card_view",
    "review_04_front_desk",
    "review_05_cards",
    "review_06_users",
)


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


def _wait_for_focus(page, widget_key: str) -> None:
    """Wait until the app's keyboard script has put the focus in input ``widget_key`` (see review_app/keys.py)."""
    page.wait_for_function("key => document.body.dataset.hukaFocus === key", arg=widget_key)


def _sign_in(page, name: str) -> None:
    """Sign in with the keyboard alone: name, Tab, password, Enter."""
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name="请登录")).to_be_visible()
    page.get_by_role("textbox", name="用户名").focus()
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")


def _answer(page, keys: list[str], ready) -> float:
    """Press ``keys`` (text to type, or key names such as "Enter" and "Alt+1"), then call ``ready()`` to wait.

    Returns the seconds from the first key until ``ready`` returned: the
    reviewer's time on the field plus the app's answer.
    """
    started = time.perf_counter()
    for key in keys:
        if key.startswith(("Alt+", "Enter", "Tab")):
            page.keyboard.press(key)
        else:
            page.keyboard.type(key)
    ready()
    return time.perf_counter() - started


def _review_in_browser(url: str, artifacts: Path) -> dict:
    """Sign in, answer four flagged fields and approve a card by keyboard; return the timings in seconds."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            reviewer = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
            page = reviewer.new_page()
            page.set_default_timeout(STEP_TIMEOUT_MS)
            expect.set_options(timeout=STEP_TIMEOUT_MS)

            started = time.perf_counter()
            page.goto(url)
            expect(page.get_by_role("heading", name="请登录")).to_be_visible()
            sign_in_shown = time.perf_counter()
            _wait_until_idle(page)
            page.screenshot(path=str(artifacts / "review_01_sign_in.png"))

            _sign_in(page, REVIEWER)
            # Worst first: the two invalid dates, then the two low-confidence document numbers.
            _wait_for_focus(page, "answer_1_date_of_birth_1")
            queue_shown = time.perf_counter()
            page.screenshot(path=str(artifacts / "review_02_field_queue.png"))

            per_field = [
                _answer(page, [CORRECT_DATE_OF_BIRTH, "Enter"], lambda: _wait_for_focus(page, "answer_2_date_of_birth_1")),
                _answer(page, [CORRECT_DATE_OF_BIRTH, "Enter"], lambda: _wait_for_focus(page, "answer_1_document_number_2")),
            ]
            # Alt+1 takes the candidate; card 1 has no flagged field left, so its card view opens.
            per_field.append(
                _answer(page, ["Alt+1"], lambda: expect(page.get_by_text("卡片 1 的待核字段已全部处理")).to_be_visible())
            )
            expect(page.get_by_role("heading", name="卡片 1", exact=True)).to_be_visible()
            _wait_until_idle(page)
            # Streamlit scrolls inside its own container, so a tall window is what shows the whole record.
            page.set_viewport_size({"width": 1440, "height": 2000})
            _wait_until_idle(page)
            page.screenshot(path=str(artifacts / "review_03_card_view.png"))
            page.set_viewport_size({"width": 1440, "height": 1000})

            page.keyboard.press("Alt+A")
            expect(page.get_by_text("卡片 1 已审核通过")).to_be_visible()
            approved = time.perf_counter()
            # Back in the field queue, on card 2's number: Alt+X marks it illegible for the front desk.
            _wait_for_focus(page, "answer_2_document_number_2")
            per_field.append(
                _answer(page, ["Alt+x"], lambda: expect(page.get_by_text("待退回前台（1 张）")).to_be_visible())
            )
            _wait_until_idle(page)
            page.screenshot(path=str(artifacts / "review_04_front_desk.png"), full_page=True)

            # A second person, an admin, on the same server: the card list and the users page.
            admin = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
            admin_page = admin.new_page()
            admin_page.set_default_timeout(STEP_TIMEOUT_MS)
            admin_page.goto(url)
            _sign_in(admin_page, ADMIN)
            expect(admin_page.get_by_role("heading", name="字段队列")).to_be_visible()
            admin_page.get_by_role("link", name="卡片", exact=True).click()
            expect(admin_page.get_by_role("heading", name="待审核卡片")).to_be_visible()
            _wait_until_idle(admin_page)
            admin_page.screenshot(path=str(artifacts / "review_05_cards.png"), full_page=True)
            admin_page.get_by_role("link", name="用户管理").click()
            expect(admin_page.get_by_role("heading", name="用户管理")).to_be_visible()
            _wait_until_idle(admin_page)
            admin_page.screenshot(path=str(artifacts / "review_06_users.png"), full_page=True)
        finally:
            browser.close()
    return {
        "sign_in_shown_s": sign_in_shown - started,
        "sign_in_to_first_field_s": queue_shown - sign_in_shown,
        "first_field_to_approved_s": approved - queue_shown,
        "load_to_approved_s": approved - started,
        "per_field_s": per_field,
    }


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

def _add_user(review, name: str, role: str) -> None:
    """Add an account through the command line, with the password on stdin as a script would."""
    result = subprocess.run(
        [sys.executable, "-m", "ocr", "user", "add", name, "--role", role, "--password-stdin",
         "--db", review.db_url, "--data-dir", str(review.data_dir)],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.browser
def test_review_in_browser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing; install the Debian package chromium")
    review = make_review_store(tmp_path, cards=2)
    first, second = review.card_ids
    _add_user(review, REVIEWER, "reviewer")
    _add_user(review, ADMIN, "admin")
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

    card = review.store.get_card(first)
    assert card.status == CardStatus.APPROVED
    assert card.fields["document_number"].value == CORRECT_DOCUMENT_NUMBER
    assert card.fields["date_of_birth"].value == CORRECT_DATE_OF_BIRTH
    events = review.store.audit_events(first)
    corrections = {e.field_key: e for e in events if e.action == "correct"}
    assert corrections["document_number"].actor == REVIEWER
    assert corrections["document_number"].old_value == SUGGESTED_DOCUMENT_NUMBER
    assert corrections["date_of_birth"].actor == REVIEWER
    assert corrections["date_of_birth"].new_value == CORRECT_DATE_OF_BIRTH
    status_events = [e for e in events if e.action == "status"]
    assert status_events[-1].new_value == CardStatus.APPROVED
    assert status_events[-1].actor == REVIEWER

    other = review.store.get_card(second)
    assert other.status == CardStatus.NEEDS_REVIEW
    assert other.fields["date_of_birth"].value == CORRECT_DATE_OF_BIRTH
    assert other.fields["document_number"].reason_codes[0] == ILLEGIBLE_CODE
    marks = [e for e in review.store.audit_events(second) if e.action == "illegible"]
    assert [(e.actor, e.field_key) for e in marks] == [(REVIEWER, "document_number")]
    assert active_holds(review.store) == {}, "a hold outlived the reviewer's work"

    for name in SCREENSHOTS:
        assert (ARTIFACTS_DIR / f"{name}.png").stat().st_size > 10_000
    assert not _processes_using(str(review.data_dir)), "the review server is still running"
    assert len(result["per_field_s"]) == 4

    with capsys.disabled():
        where = "in a network namespace without network" if isolated else "with the host network"
        fields = ", ".join(f"{seconds:.2f}" for seconds in result["per_field_s"])
        print(
            f"\nreview in browser ({where}): sign-in page after {result['sign_in_shown_s']:.2f} s, "
            f"first field {result['sign_in_to_first_field_s']:.2f} s after sign-in, "
            f"card approved {result['load_to_approved_s']:.2f} s after page load started "
            f"({result['first_field_to_approved_s']:.2f} s after the first field showed); "
            f"per field answer to next field: {fields} s"
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
