"""Command line for the data protection tasks: ``audit verify``, ``retention`` and ``key rotate|encrypt-existing``.

Messages are Chinese unless ``--lang en`` is given, as for every command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["audit_app", "key_app", "retention_command"]

audit_app = typer.Typer(
    no_args_is_help=True,
    help="审计日志：检查哈希链是否完整。 / Audit log: check that its hash chain is intact.",
)

key_app = typer.Typer(
    no_args_is_help=True,
    help="加密密钥：更换密钥，或加密启用加密之前的数据。 / Encryption key: rotate it, or encrypt data written without it.",
)

DbOption = Annotated[
    Optional[str],
    typer.Option("--db", help="数据库地址，默认 sqlite:///<数据目录>/cards.db / database URL"),
]
DataDirOption = Annotated[
    Optional[Path],
    typer.Option("--data-dir", help="数据目录（数据库与扫描图像），默认 ./ocr-data / data folder"),
]


def _say(zh: str, en: str) -> None:
    # Imported here, because ocr.cli imports this module while it loads.
    from ocr.cli import say

    say(zh, en)


def _store(db: str | None, data_dir: Path | None):
    from ocr.cli import _store as open_store

    return open_store(db, data_dir, create=False)


@audit_app.command("verify")
def audit_verify(db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """逐条检查审计事件的哈希链，报告第一处被改动的事件。 / Walk the audit chain and report the first changed event."""
    from ocr.audit import AuditChainError, verify_chain

    store = _store(db, data_dir)
    try:
        report = verify_chain(store)
    finally:
        store.close()
    if not report.intact:
        where_zh = f"事件 {report.broken_event_id}" if report.broken_event_id is not None else "链头"
        where_en = f"event {report.broken_event_id}" if report.broken_event_id is not None else "the chain head"
        raise AuditChainError(
            f"审计日志不完整：{where_zh}：{report.reason_zh}。此前 {report.events} 条事件完好。"
            "请停止使用该数据库，并与备份核对被改动的记录。",
            f"the audit log is not intact at {where_en}: {report.reason_en}; the {report.events} events before it "
            "verify. Stop using this database and compare the changed records with a backup.",
        )
    _say(
        f"审计日志完整：已验证 {report.events} 条事件，链头哈希 {report.head_hash}。",
        f"audit log intact: {report.events} events verified, head hash {report.head_hash}",
    )
    if report.unchained:
        _say(
            f"另有 {report.unchained} 条较早的事件写于启用哈希链之前，无法验证。",
            f"{report.unchained} earlier events were written before the hash chain existed and cannot be verified",
        )


def retention_command(
    days: Annotated[
        Optional[int],
        typer.Option("--days", min=1, help="保存期限（天），默认取配置文件 [retention] days / retention period in days"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="只统计将删除的数量，不删除 / count what would be deleted, delete nothing")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="连同尚未上报或未确认的卡片一起删除 / also delete cards whose records are not sent or not acknowledged",
        ),
    ] = False,
    config: Annotated[
        Optional[Path],
        typer.Option("--config", help="配置文件，默认 $HUKA_CONFIG 或 ./hukacapture.toml / config file"),
    ] = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """删除超过保存期限的扫描件与记录，审计链保持可验证。 / Delete scans and records past the retention period."""
    from ocr.errors import ConfigError
    from ocr.retention import retention_days_from_config, run_retention

    period = days or retention_days_from_config(config)
    if period is None:
        raise ConfigError(
            "未设置保存期限，未删除任何数据。请用 --days 天数，或在配置文件的 [retention] 中设置 days。",
            "no retention period is set and nothing was deleted; give --days N or set days under [retention] "
            "in the config file",
        )
    store = _store(db, data_dir)
    try:
        report = run_retention(store, period, dry_run=dry_run, force=force)
    finally:
        store.close()
    cutoff = report.cutoff.strftime("%Y-%m-%d %H:%M")
    if dry_run:
        _say(
            f"试运行（保存期限 {period} 天，{cutoff} UTC 之前）：将删除 {report.cards} 张卡片；"
            f"另有 {report.kept_unsettled} 张已过期限但尚未上报或未确认，予以保留。",
            f"dry run (retention {period} days, before {cutoff} UTC): {report.cards} cards would be deleted; "
            f"{report.kept_unsettled} more are past the period but not sent or not acknowledged, and are kept",
        )
        return
    _say(
        f"已删除 {report.cards} 张卡片（保存期限 {period} 天，{cutoff} UTC 之前）：图像文件 {report.files} 个，"
        f"文件夹 {report.folders} 个，清除审计事件中的值 {report.audit_events_erased} 条，搜索记录 {report.search_entries} 条。",
        f"deleted {report.cards} cards (retention {period} days, before {cutoff} UTC): {report.files} image files, "
        f"{report.folders} folders, values erased from {report.audit_events_erased} audit events, "
        f"{report.search_entries} search log entries",
    )
    if report.kept_unsettled:
        _say(
            f"另有 {report.kept_unsettled} 张卡片已过期限，但记录尚未上报或未确认，予以保留（加 --force 可一并删除）。",
            f"{report.kept_unsettled} more cards are past the period but their records are not sent or not "
            "acknowledged, and are kept (add --force to delete them too)",
        )


ConfigOption = Annotated[
    Optional[Path],
    typer.Option(
        "--config",
        help="配置文件，用于找到归档目录，默认 $HUKA_CONFIG 或 ./hukacapture.toml / config file, for the archive folder",
    ),
]


def _archive_folders(config: Path | None, data_dir: Path) -> list[Path]:
    from ocr.transmit.archive import archive_root
    from ocr.transmit.config import load_config

    return [archive_root(load_config(config), data_dir)]


# Rich wraps option help only at spaces, so the Chinese help has a space after each clause.
SkipMissingOption = Annotated[
    bool,
    typer.Option(
        "--skip-missing",
        help="数据库中登记的图像文件缺失， 或有文件已损坏（空文件、 不是图像或记录文件）时， 仍完成本命令；"
        " 损坏的文件保持原样； 这些文件找回后需再运行一次本命令 / "
        "finish although image files that the database names are missing or files are damaged (empty, or not an "
        "image or record); damaged files stay as they are; run again if the files turn up",
    ),
]
SkipUnreadableOption = Annotated[
    bool,
    typer.Option(
        "--skip-unreadable",
        help="有数据库值或文件 用本命令的密钥都无法解密（用别的密钥加密， 或已损坏）时， 仍完成本命令；"
        " 这些值和文件保持原样， 仍无法读取， 结束时按表名、 列名和行号列出， 文件按路径列出， 不显示内容。 / "
        "finish although database values or files open with no key of the run (another key, or damaged); they "
        "stay as they are, still unreadable, and are listed at the end by table, column and row id (files by "
        "path), never by content",
    ),
]


def _say_key_report(report, *, rotating: bool) -> None:
    kept_zh = "已是新密钥" if rotating else "已加密"
    kept_en = "under the new key already" if rotating else "encrypted already"
    _say(
        f"数据库值：重新加密 {report.values_reencrypted} 个，新加密（原为明文）{report.values_encrypted} 个，"
        f"{kept_zh} {report.values_current} 个。文件：重新加密 {report.files_reencrypted} 个，"
        f"新加密 {report.files_encrypted} 个，{kept_zh} {report.files_current} 个。",
        f"database values: {report.values_reencrypted} re-encrypted, {report.values_encrypted} encrypted "
        f"(were plain), {report.values_current} {kept_en}. Files: {report.files_reencrypted} re-encrypted, "
        f"{report.files_encrypted} encrypted, {report.files_current} {kept_en}",
    )
    if report.files_missing or report.damaged_files:
        _warn_skipped_files(report, rotating=rotating)
    if report.unreadable_values or report.unreadable_files:
        _warn_skipped_unreadable(report, rotating=rotating)


def _warn_skipped_unreadable(report, *, rotating: bool) -> None:
    """Warn that ``--skip-unreadable`` left values and files as they were, naming rows by id, never by value."""
    from ocr.cli import warn
    from ocr.crypto import KEY_ENV, NEW_KEY_ENV
    from ocr.keys import describe_unreadable

    unreadable_zh, unreadable_en = describe_unreadable(report, rotating=rotating)
    if rotating:
        warn(
            f"{unreadable_zh}。已按 --skip-unreadable 保持原样：它们在更换前已无法读取，更换后仍无法读取，"
            "读取这些行或文件的操作会报告无法解密。如能从备份恢复这些数据库行或文件（用原密钥加密的备份），"
            f"恢复后把原密钥放入 {KEY_ENV}、新密钥放入 {NEW_KEY_ENV}，再运行一次 python -m ocr key rotate，"
            "它们就会换成新密钥，所以请保留原密钥。",
            f"{unreadable_en}. Left as it is because of --skip-unreadable: it was unreadable before the rotation and "
            "still is, and reading these rows or files reports that they cannot be decrypted. If you can restore "
            "these database rows or files from a backup encrypted with the old key, put the old key in "
            f"${KEY_ENV} and the new key in ${NEW_KEY_ENV} and run python -m ocr key rotate once more to move them "
            "to the new key, so keep the old key",
        )
        return
    warn(
        f"{unreadable_zh}。已按 --skip-unreadable 保持原样，仍无法读取，读取这些行或文件的操作会报告无法解密。"
        "如能从备份恢复这些数据库行或文件（未加密或用当前密钥加密的备份），恢复后再运行一次 "
        "python -m ocr key encrypt-existing。",
        f"{unreadable_en}. Left as it is because of --skip-unreadable and still unreadable; reading these rows or "
        "files reports that they cannot be decrypted. If you can restore these database rows or files from a "
        "backup (plain or encrypted with the current key), run python -m ocr key encrypt-existing again",
    )


def _warn_skipped_files(report, *, rotating: bool) -> None:
    """Warn that ``--skip-missing`` left missing and damaged files out, and print what to do with a file that turns up."""
    from ocr.cli import warn
    from ocr.crypto import KEY_ENV, NEW_KEY_ENV
    from ocr.keys import describe_missing_files

    missing_zh, missing_en = describe_missing_files(report)
    if rotating:
        warn(
            f"{missing_zh}，已按 --skip-missing 跳过。这些文件如果找回，仍是用原密钥加密的，所以请保留原密钥："
            f"把文件放回原处（图像文件在数据目录的 images 中），再把原密钥放入 {KEY_ENV}、新密钥放入 {NEW_KEY_ENV}，"
            "运行一次 python -m ocr key rotate，它们就会换成新密钥。损坏的文件无法恢复时，请删除它们。",
            f"{missing_en}; skipped because of --skip-missing. If these files turn up, they are still encrypted with "
            f"the old key, so keep the old key: put them back where they belong (image files into the data folder's "
            f"images), put the old key in ${KEY_ENV} and the new key in ${NEW_KEY_ENV}, and run python -m ocr key "
            "rotate once more to move them to the new key. Delete damaged files that cannot be restored",
        )
        return
    warn(
        f"{missing_zh}，已按 --skip-missing 跳过，没有加密。这些文件如果找回，请放回原处（图像文件在数据目录的 "
        "images 中），再运行一次 python -m ocr key encrypt-existing。损坏的文件无法恢复时，请删除它们。",
        f"{missing_en}; skipped because of --skip-missing and not encrypted. If these files turn up, put them back "
        "where they belong (image files into the data folder's images) and run python -m ocr key encrypt-existing "
        "again. Delete damaged files that cannot be restored",
    )


@key_app.command("rotate")
def key_rotate(
    config: ConfigOption = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
    skip_missing: SkipMissingOption = False,
    skip_unreadable: SkipUnreadableOption = False,
) -> None:
    """用 $HUKA_NEW_ENCRYPTION_KEY 中的新密钥重新加密全部数据；中断后再运行即可继续。 / Re-encrypt everything under the key in $HUKA_NEW_ENCRYPTION_KEY; run again to resume.

    有文件缺失或损坏、或有数据用原密钥和新密钥都无法解密时，命令转换其余部分，列出这些文件和数据，以非零退出码结束，更换不完成。确认无法恢复时，加 --skip-missing 或 --skip-unreadable 再运行一次即可完成更换。

    When files are missing or damaged, or data opens with neither key, the command converts the rest, lists them and exits non-zero without finishing the rotation. If they cannot be restored, run it again with --skip-missing or --skip-unreadable to finish.
    """
    from ocr.crypto import KEY_ENV, NEW_KEY_ENV
    from ocr.keys import rotate_key

    # The key check is rotate_key's: a store with an unfinished rotation does not open otherwise.
    store = _store_unchecked(db, data_dir)
    try:
        report = rotate_key(
            store,
            archive_folders=_archive_folders(config, store.data_dir),
            skip_missing=skip_missing,
            skip_unreadable=skip_unreadable,
        )
    finally:
        store.close()
    _say_key_report(report, rotating=True)
    if report.finished_before:
        _say(
            f"此数据库在本次运行之前已改用 {NEW_KEY_ENV} 中的密钥（更换已完成），本次只检查了数据并转换了上面列出的部分。",
            f"the store used the key in ${NEW_KEY_ENV} before this run already (the rotation had finished); "
            "this run only checked the data and converted what is counted above",
        )
    else:
        _say("密钥已更换，数据库现在只接受新密钥。", "key rotated; the store now opens only with the new key")
    _say(
        f"请在每台工作站和识别机上把 {KEY_ENV} 改为新密钥，删除 {NEW_KEY_ENV}，再启动其他程序。"
        "原密钥请保留到用它加密的备份都已删除为止。",
        f"on every station and worker, set ${KEY_ENV} to the new key and remove ${NEW_KEY_ENV} before starting "
        "the other programs. Keep the old key until every backup encrypted with it is deleted",
    )


@key_app.command("encrypt-existing")
def key_encrypt_existing(
    config: ConfigOption = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
    skip_missing: SkipMissingOption = False,
    skip_unreadable: SkipUnreadableOption = False,
) -> None:
    """用 $HUKA_ENCRYPTION_KEY 加密未加密时写入的数据与文件；中断后再运行即可继续。 / Encrypt the data and files written without a key under $HUKA_ENCRYPTION_KEY; run again to resume.

    有文件缺失或损坏、或有数据用当前密钥无法解密时，命令加密其余部分，列出这些文件和数据，以非零退出码结束。确认无法恢复时，加 --skip-missing 或 --skip-unreadable 再运行一次。

    When files are missing or damaged, or data does not open with the key, the command encrypts the rest, lists them and exits non-zero. If they cannot be restored, run it again with --skip-missing or --skip-unreadable.
    """
    from ocr.crypto import KEY_ENV
    from ocr.keys import encrypt_existing

    store = _store_unchecked(db, data_dir)
    try:
        report = encrypt_existing(
            store,
            archive_folders=_archive_folders(config, store.data_dir),
            skip_missing=skip_missing,
            skip_unreadable=skip_unreadable,
        )
    finally:
        store.close()
    _say_key_report(report, rotating=False)
    if report.files_missing or report.damaged_files or report.unreadable_values or report.unreadable_files:
        _say(
            f"除上面列出的文件和数据外，已加密全部数据。此后每个打开此数据库的程序都需要设置 {KEY_ENV}。",
            f"all data but the files and values listed above is encrypted; from now on every program that opens "
            f"this store needs ${KEY_ENV}",
        )
        return
    _say(
        f"已加密全部数据。此后每个打开此数据库的程序都需要设置 {KEY_ENV}。",
        f"all data is encrypted; from now on every program that opens this store needs ${KEY_ENV}",
    )


def _store_unchecked(db: str | None, data_dir: Path | None):
    """Open the store without comparing the encryption key; the key commands check the keys themselves."""
    from ocr.store import Store

    return Store(url=db, data_dir=data_dir, create=False, check_key=False)
