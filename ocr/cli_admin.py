"""Command line for the data protection tasks: ``python -m ocr audit verify`` and ``python -m ocr retention``.

Messages are Chinese unless ``--lang en`` is given, as for every command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["audit_app"]

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
