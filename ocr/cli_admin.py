"""Command line for the data protection tasks: ``python -m ocr audit verify`` and ``python -m ocr retention``.

Messages are Chinese unless ``--lang en`` is given, as for every command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["audit_app", "retention_command"]

audit_app = typer.Typer(
    no_args_is_help=True,
    help="审计日志：检查哈希链是否完整。 / Audit log: check that its hash chain is intact.",
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
