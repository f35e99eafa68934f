"""``python -m ocr user …`` run as a subprocess against a real store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ocr.accounts import Role, authenticate, get_user
from ocr.cli_user import first_admin_hint
from ocr.errors import ExitCode
from ocr.store import Store

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "kaishi-2025"


def _user(data_dir: Path, *args: str, stdin: str = "", lang: str = "zh") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ocr", "--lang", lang, "user", *args, "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
    )


def _store(data_dir: Path) -> Store:
    return Store(data_dir=data_dir)


def test_add_from_stdin_and_list(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    added = _user(data_dir, "add", "王芳", "--role", "supervisor", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "已添加用户 王芳（主管）。"
    store = _store(data_dir)
    assert get_user(store, "王芳").role == Role.SUPERVISOR
    assert authenticate(store, "王芳", PASSWORD) is not None

    listed = _user(data_dir, "list", lang="en")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split("\t")[:3] == ["王芳", "supervisor", "enabled"]
    assert PASSWORD not in listed.stdout


def test_add_from_prompt_twice(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    added = _user(data_dir, "add", "李雷", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert added.returncode == 0, added.stderr
    assert authenticate(_store(data_dir), "李雷", PASSWORD).role == Role.REVIEWER


def test_add_rejects_bad_input(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    short = _user(data_dir, "add", "王芳", "--password-stdin", stdin="short\n")
    assert short.returncode == ExitCode.BAD_INPUT
    assert "密码至少需要 8 个字符" in short.stderr
    role = _user(data_dir, "add", "王芳", "--role", "boss", "--password-stdin", stdin=PASSWORD + "\n")
    # A usage error, found while parsing: the store is not opened and no password is read.
    assert role.returncode == 2
    assert role.stderr.startswith("命令用法有误：选项 '--role' 的值无效：角色 'boss' 无效")
    assert "python -m ocr user add --help" in role.stderr
    capitalised = _user(data_dir, "add", "赵六", "--role", "Admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert capitalised.returncode == 0, capitalised.stderr

    assert _user(data_dir, "add", "王芳", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    again = _user(data_dir, "add", "王芳", "--password-stdin", stdin=PASSWORD + "\n", lang="en")
    assert again.returncode == ExitCode.BAD_INPUT
    assert "user 王芳 exists already" in again.stderr


def test_disable_enable_and_passwd(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert _user(data_dir, "add", "王芳", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0

    disabled = _user(data_dir, "disable", "王芳")
    assert disabled.returncode == 0, disabled.stderr
    assert authenticate(_store(data_dir), "王芳", PASSWORD) is None
    assert _user(data_dir, "enable", "王芳").returncode == 0

    changed = _user(data_dir, "passwd", "王芳", "--password-stdin", stdin="new-pass-2025\n")
    assert changed.returncode == 0, changed.stderr
    store = _store(data_dir)
    assert authenticate(store, "王芳", "new-pass-2025") is not None
    assert authenticate(store, "王芳", PASSWORD) is None

    missing = _user(data_dir, "passwd", "没有此人", "--password-stdin", stdin="new-pass-2025\n")
    assert missing.returncode == ExitCode.BAD_INPUT
    assert "用户 没有此人 不存在" in missing.stderr


def test_last_admin_cannot_be_disabled(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert _user(data_dir, "add", "孙管理", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    refused = _user(data_dir, "disable", "孙管理")
    assert refused.returncode == ExitCode.BAD_INPUT
    assert "唯一启用的管理员" in refused.stderr


def test_first_admin_hint_only_without_users(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = _store(tmp_path / "data")
    first_admin_hint(store, "--data-dir demo-data")
    assert "python -m ocr user add 您的姓名 --role admin --data-dir demo-data" in capsys.readouterr().out
    store.close()

    data_dir = tmp_path / "data"
    assert _user(data_dir, "add", "孙管理", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    first_admin_hint(_store(data_dir), "--data-dir demo-data")
    assert capsys.readouterr().out == ""
