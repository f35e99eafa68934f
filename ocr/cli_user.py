"""Command line for the review app's accounts: ``python -m ocr user add|list|disable|enable|passwd``.

Passwords are read from an interactive prompt that asks twice, or with
``--password-stdin`` from the first line of standard input, for scripts.
They never go on the command line, where other users of the machine could
read them in the process list. Messages are Chinese unless ``--lang en`` is given.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["first_admin_hint", "user_app"]

user_app = typer.Typer(
    no_args_is_help=True,
    help="审核界面的账户：添加、列出、停用、改密码。 / Accounts of the review app.",
)

DbOption = Annotated[
    Optional[str],
    typer.Option("--db", help="数据库地址，默认 sqlite:///<数据目录>/cards.db / database URL"),
]
DataDirOption = Annotated[
    Optional[Path],
    typer.Option("--data-dir", help="数据目录，默认 ./ocr-data / data folder"),
]
PasswordStdinOption = Annotated[
    bool,
    typer.Option("--password-stdin", help="从标准输入的第一行读取密码（供脚本使用） / read the password from stdin"),
]


def _say(zh: str, en: str) -> None:
    # Imported here, because ocr.cli imports this module while it loads.
    from ocr.cli import say

    say(zh, en)


def _lang() -> str:
    from ocr.cli import _state

    return _state["lang"]


def _store(db: str | None, data_dir: Path | None):
    from ocr.store import Store

    return Store(url=db, data_dir=data_dir)


def _read_password(from_stdin: bool) -> str:
    """Return the new password: the first line of stdin, or typed twice at a hidden prompt."""
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    english = _lang() == "en"
    return typer.prompt(
        "Password" if english else "密码",
        hide_input=True,
        confirmation_prompt="Repeat the password" if english else "再次输入密码",
    )


def _role_value(value: str) -> str:
    """Return the role named ``value``; raise a usage error before the command runs otherwise."""
    from ocr.accounts import AccountError, parse_role

    try:
        return parse_role(value).value
    except AccountError as exc:
        raise typer.BadParameter(f"{exc.message_zh} / {exc.message_en}") from None


@user_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="用户名，记入审核记录 / user name, written to the audit log")],
    role: Annotated[
        str, typer.Option("--role", callback=_role_value, help="reviewer、supervisor 或 admin / role")
    ] = "reviewer",
    password_stdin: PasswordStdinOption = False,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """添加用户。 / Add a user."""
    from ocr.accounts import AccountError, add_user, get_user, normalize_name, parse_role, role_label

    parsed = parse_role(role)
    store = _store(db, data_dir)
    # Checked before the prompt, so nobody types a password for a name that cannot be added.
    if get_user(store, normalize_name(name)) is not None:
        raise AccountError(
            f"用户 {name} 已存在。要改密码请运行 python -m ocr user passwd {name}。",
            f"user {name} exists already; run python -m ocr user passwd {name} to change the password",
        )
    account = add_user(store, name, parsed, _read_password(password_stdin))
    _say(
        f"已添加用户 {account.name}（{role_label(account.role, 'zh')}）。",
        f"user {account.name} ({role_label(account.role, 'en')}) added",
    )


@user_app.command("list")
def list_command(db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """列出全部用户。 / List the users."""
    from ocr.accounts import list_users

    accounts = list_users(_store(db, data_dir))
    if not accounts:
        _say("还没有用户。", "there are no users")
        return
    for account in accounts:
        last = account.last_sign_in_at.strftime("%Y-%m-%d %H:%M UTC") if account.last_sign_in_at else "-"
        state_zh, state_en = ("启用", "enabled") if account.active else ("已停用", "disabled")
        _say(
            f"{account.name}\t{account.role}\t{state_zh}\t最近登录 {last}",
            f"{account.name}\t{account.role}\t{state_en}\tlast sign-in {last}",
        )


@user_app.command("disable")
def disable(name: str, db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """停用用户：不能再登录，已登录的会话在下次操作时退出。 / Disable a user."""
    from ocr.accounts import set_active

    set_active(_store(db, data_dir), name, False)
    _say(f"已停用用户 {name}。", f"user {name} disabled")


@user_app.command("enable")
def enable(name: str, db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """重新启用用户。 / Enable a user again."""
    from ocr.accounts import set_active

    set_active(_store(db, data_dir), name, True)
    _say(f"已启用用户 {name}。", f"user {name} enabled")


@user_app.command("passwd")
def passwd(
    name: str, password_stdin: PasswordStdinOption = False, db: DbOption = None, data_dir: DataDirOption = None
) -> None:
    """设置用户的新密码。 / Set a user's new password."""
    from ocr.accounts import AccountError, get_user, set_password

    store = _store(db, data_dir)
    # Checked before the prompt, so nobody types a password for a misspelt name.
    if get_user(store, name) is None:
        raise AccountError(
            f"用户 {name} 不存在。运行 python -m ocr user list 查看全部用户。",
            f"user {name} not found; run python -m ocr user list to see the users",
        )
    set_password(store, name, _read_password(password_stdin))
    _say(f"已更改 {name} 的密码。", f"password of {name} changed")


def first_admin_hint(store, where: str) -> None:
    """Print how to create the first admin when the store has no user yet; ``where`` is the --data-dir/--db options."""
    from ocr.accounts import count_users

    if count_users(store) == 0:
        _say(
            f"审核界面需要登录。先创建第一个管理员：python -m ocr user add 您的姓名 --role admin {where}",
            f"the review app needs a sign-in; create the first admin first: "
            f"python -m ocr user add YOUR_NAME --role admin {where}",
        )
