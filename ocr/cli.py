"""Command line: ``python -m ocr COMMAND``. Messages are Chinese unless ``--lang en`` is given."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import re
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from ocr.bench_accuracy import bench_accuracy_command
from ocr.calibrate import bench_calibrate_command
from ocr.bench_prep import bench_prep_command
from ocr.cli_admin import audit_app, key_app, retention_command
from ocr.cli_arrivals import arrivals_app
from ocr.bench_throughput import bench_throughput_command
from ocr.batchname import check_batch_name
from ocr.check import check_command
from ocr.engines import ENGINE_NAMES
from ocr.cli_template import template_app
from ocr.cli_user import first_admin_hint, user_app
from ocr.errors import CardCaptureError, ExitCode
from ocr.export import EXPORT_FORMATS
from ocr.quantize import quantize_command
from ocr.worker import worker_command

__all__ = ["app", "main"]

log = logging.getLogger(__name__)

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="户卡识别：把扫描的住宿登记卡变成经过校验的记录。 / Scanned guest registration cards to checked records.",
)

_state = {"lang": os.environ.get("HUKA_LANG", "zh")}

DbOption = Annotated[
    Optional[str],
    typer.Option("--db", help="数据库地址，默认 sqlite:///<数据目录>/cards.db / database URL"),
]
DataDirOption = Annotated[
    Optional[Path],
    typer.Option("--data-dir", help="数据目录（数据库与扫描图像），默认 ./ocr-data / data folder"),
]
# A Literal type makes typer reject any other value as a usage error, before the command starts its work.
EngineOption = Annotated[
    Literal[ENGINE_NAMES],
    typer.Option(
        "--engine",
        case_sensitive=False,
        help="识别引擎： rapidocr（默认）、 tesseract 或 paddleocr（可选安装）/ OCR engine",
    ),
]
TemplatesOption = Annotated[
    Optional[list[Path]],
    typer.Option("--templates", help="额外的模板目录，可多次指定 / extra template folder"),
]
DpiOption = Annotated[
    int, typer.Option("--dpi", min=50, max=1200, help="PDF 页面渲染分辨率（dpi）/ PDF render resolution")
]
WorkersOption = Annotated[
    Optional[int],
    typer.Option("--workers", min=1, help="本机识别进程数，默认每个 CPU 核一个 / OCR processes on this machine, default one per CPU core"),
]
ConfigOption = Annotated[
    Optional[Path],
    typer.Option(
        "--config",
        help="配置文件，默认 $HUKA_CONFIG 或 ./hukacapture.toml / config file (default $HUKA_CONFIG or ./hukacapture.toml)",
    ),
]


def say(zh: str, en: str) -> None:
    """Print a user message in the chosen language."""
    typer.echo(en if _state["lang"] == "en" else zh)


def warn(zh: str, en: str) -> None:
    typer.echo(en if _state["lang"] == "en" else zh, err=True)


@app.callback()
def _options(
    lang: Annotated[
        Optional[str], typer.Option("--lang", help="界面语言 zh 或 en，可写在任何位置 / message language")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="输出处理日志 / show progress logs")] = False,
) -> None:
    # main() takes --lang out of the arguments first; this applies it when the app is called directly.
    if lang is not None:
        _state["lang"] = "en" if lang.lower().startswith("en") else "zh"
    logging.basicConfig(
        level=logging.INFO if verbose else logging.ERROR,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Guests' names and document numbers are masked in every log record.
    from ocr.logmask import install as install_log_masking

    install_log_masking()


def _store(db: str | None, data_dir: Path | None, *, create: bool = True):
    from ocr.store import Store

    return Store(url=db, data_dir=data_dir, create=create)


def _report_problems(report) -> None:
    """Print the duplicates of a run, and a warning when it found nothing to read."""
    for source, page, card_id in report.duplicate_of:
        warn(
            f"重复：{Path(source).name} 第 {page} 页已作为卡片 {card_id} 入库，未再保存。",
            f"duplicate: {Path(source).name} page {page} is stored already as card {card_id}",
        )
    if report.pages == 0 and not report.failures:
        warn(
            "没有找到可读取的扫描文件（支持 JPEG、PNG、TIFF、PDF、BMP、WebP）。请检查路径。",
            "no scan files found (JPEG, PNG, TIFF, PDF, BMP, WebP are read); check the paths",
        )


def _folders(templates: list[Path] | None) -> list[str]:
    return [str(t) for t in templates or []]


def _exit_for(report) -> None:
    """End a run with exit code 2 when some inputs failed, or 3 when nothing could be read."""
    if report.failures:
        raise typer.Exit(ExitCode.PARTIAL)
    if report.pages == 0:
        raise typer.Exit(ExitCode.BAD_INPUT)


def _progress():
    """Return a per-page callback that prints each page read, or each failure at once, on stderr."""
    from ocr.ingest import IngestFailure

    counter = {"n": 0}

    def on_page(item) -> None:
        if isinstance(item, IngestFailure):
            warn(item.message("zh"), item.message("en"))
            return
        counter["n"] += 1
        typer.echo(f"[{counter['n']}] {Path(item.source).name} p{item.page}", err=True)

    return on_page


def _batch_value(value: str | None) -> str | None:
    """Return the batch name without surrounding spaces; raise a usage error before ingest stores anything."""
    if value is None:
        return None
    try:
        return check_batch_name(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="扫描文件或文件夹 / scan files or folders")],
    batch: Annotated[
        Optional[str],
        typer.Option("--batch", callback=_batch_value, help="批次名，默认今天的日期 / batch name, default today's date"),
    ] = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
    engine: EngineOption = "rapidocr",
    templates: TemplatesOption = None,
    dpi: DpiOption = 200,
    workers: WorkersOption = None,
    queue: Annotated[
        bool,
        typer.Option("--queue", help="只保存扫描件并排队，由 worker 识别（需要 PostgreSQL）/ store and queue the scans for OCR workers"),
    ] = False,
) -> None:
    """读取扫描件，识别并入库。 / Read scans into the store."""
    from ocr.pipeline import ingest_paths
    from ocr.pool import default_workers
    from ocr.store import default_db_url
    from ocr.worker import QueueSettings, verify_data_folder

    if queue:
        # A database without the task queue is rejected before the store opens, so none is created.
        QueueSettings.from_db_url(db or default_db_url(data_dir))
    # A data folder that is not the database's stops the run here, and no new folder is left behind.
    verify_data_folder(db, str(data_dir) if data_dir else None)
    store = _store(db, data_dir)
    batch_name = batch or date.today().isoformat()
    with _ingest_interrupted(store, batch_name, queue):
        if queue:
            _ingest_to_queue(paths, store, batch_name, engine, dpi)
            return
        report = ingest_paths(
            paths,
            store,
            batch=batch_name,
            engine_name=engine,
            template_dirs=_folders(templates),
            pdf_dpi=dpi,
            on_page=_progress(),
            workers=workers or default_workers(),
        )
    _report_problems(report)
    say(
        f"批次 {batch_name}：处理 {report.pages} 页，新入库 {report.stored} 张，重复跳过 {report.duplicates} 张，"
        f"待审核 {report.needs_review} 张，未识别类型 {report.unknown} 张，读取失败 {len(report.failures)} 个。",
        f"batch {batch_name}: {report.pages} pages, {report.stored} stored, {report.duplicates} duplicates skipped, "
        f"{report.needs_review} need review, {report.unknown} unknown type, {len(report.failures)} failed",
    )
    _exit_for(report)


def _stored_in_batch(store, batch_name: str, queue: bool) -> int:
    """Return how many pages of the batch are stored: queued scans with ``queue``, else cards."""
    if queue:
        from ocr.queue import queue_counts

        return sum(queue_counts(store).get(batch_name, {}).values())
    return len(store.list_cards(batch=batch_name))


@contextlib.contextmanager
def _ingest_interrupted(store, batch_name: str, queue: bool):
    """Report what an interrupted ingest stored and how to resume it, and turn a full disk into a StoreError."""
    from ocr.store import DISK_FULL_ERRNOS, disk_full_error

    before = _stored_in_batch(store, batch_name, queue)
    try:
        yield
    except KeyboardInterrupt:
        try:
            added = _stored_in_batch(store, batch_name, queue) - before
        except Exception as exc:  # noqa: BLE001 - the store may be what failed; the resume hint still applies
            log.warning("stored pages not counted after the interrupt: %s", type(exc).__name__)
            added = None
        done_zh = "（未能统计本次入库数）" if added is None else f"本次{'已排队' if queue else '新入库'} {added} 张"
        done_en = "(the pages stored could not be counted)" if added is None else (
            f"{added} page(s) {'queued' if queue else 'stored'} by this run"
        )
        warn(
            f"已中断：批次 {batch_name} {done_zh}，已入库的不受影响。重新运行同一命令即可继续，已入库的页会被跳过。",
            f"interrupted: batch {batch_name}, {done_en}, kept; run the same command again to go on, "
            "stored pages are skipped",
        )
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except OSError as exc:
        if exc.errno not in DISK_FULL_ERRNOS:
            raise
        raise disk_full_error(store.data_dir, exc.strerror or str(exc)) from exc


def _report_queue_duplicates(report) -> None:
    """Print each page of a queue ingest that is stored already, as a card or as a scan waiting in the queue."""
    for source, page, card_id, scan_id in report.duplicate_of:
        if card_id is not None:
            warn(
                f"重复：{Path(source).name} 第 {page} 页已作为卡片 {card_id} 入库，未再保存。",
                f"duplicate: {Path(source).name} page {page} is stored already as card {card_id}",
            )
        else:
            warn(
                f"重复：{Path(source).name} 第 {page} 页已在队列中（扫描页 {scan_id}，等待 worker 识别），未再保存。",
                f"duplicate: {Path(source).name} page {page} is queued already (scan {scan_id}, waiting for a worker)",
            )


def _ingest_to_queue(paths: list[Path], store, batch_name: str, engine: str, dpi: int) -> None:
    from ocr.worker import queue_paths

    report = queue_paths(paths, store, batch=batch_name, engine_name=engine, pdf_dpi=dpi, on_page=_progress())
    _report_queue_duplicates(report)
    # The duplicates are printed above, in the queue's own words.
    _report_problems(dataclasses.replace(report, duplicate_of=[]))
    say(
        f"批次 {batch_name}：处理 {report.pages} 页，已排队 {report.queued} 张（由 worker 识别），"
        f"重复跳过 {report.duplicates} 张，读取失败 {len(report.failures)} 个。",
        f"batch {batch_name}: {report.pages} pages, {report.queued} queued for the OCR workers, "
        f"{report.duplicates} duplicates skipped, {len(report.failures)} failed",
    )
    _exit_for(report)


@app.command()
def extract(
    paths: Annotated[list[Path], typer.Argument(help="扫描文件或文件夹 / scan files or folders")],
    out: Annotated[Path, typer.Option("--out", help="输出 JSON 的目录 / output folder")],
    engine: EngineOption = "rapidocr",
    templates: TemplatesOption = None,
    dpi: DpiOption = 200,
    workers: WorkersOption = None,
) -> None:
    """识别扫描件，每张卡写一个 JSON，不入库。 / Write one JSON per card; store nothing."""
    from ocr.pipeline import extract_paths
    from ocr.pool import default_workers

    report = extract_paths(
        paths,
        out,
        engine_name=engine,
        template_dirs=_folders(templates),
        pdf_dpi=dpi,
        on_page=_progress(),
        workers=workers or default_workers(),
    )
    _report_problems(report)
    say(
        f"已写出 {report.stored} 个 JSON 到 {out}（待审核 {report.needs_review}，未识别类型 {report.unknown}，"
        f"读取失败 {len(report.failures)}）。",
        f"wrote {report.stored} JSON files to {out} ({report.needs_review} need review, "
        f"{report.unknown} unknown type, {len(report.failures)} failed)",
    )
    _exit_for(report)


@app.command()
def status(
    batch: Annotated[Optional[str], typer.Option("--batch", help="只看此批次 / only this batch")] = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """查看各批次卡片的状态与上报期限；有逾期记录、审核中已逾期或自动通过未发送且已逾期的卡片时退出码为 10。 / Show card counts and transmission deadlines; exit 10 when a record is overdue, or a card in review or auto-accepted and not sent is past its deadline."""
    from models.card import CardStatus

    store = _store(db, data_dir, create=False)
    queued = _say_queue(store, batch)
    every_batch = store.list_batches()
    batches = [b for b in every_batch if batch is None or b.name == batch]
    # A batch stored by `ingest --queue` gets its batch row with its first card.
    _say_waiting_batches(queued.keys() - {b.name for b in every_batch}, queued)
    if not every_batch:
        if not queued:
            say("没有批次。先运行 ingest 或 demo。", "no batches yet; run ingest or demo first")
        return
    if not batches and batch in queued:
        return
    if not batches:
        names = [b.name for b in every_batch[:10]]
        warn(
            f"没有名为 {batch} 的批次。现有批次：{'、'.join(names)}。请检查 --batch。",
            f"no batch named {batch}; the batches are: {', '.join(names)}; check --batch",
        )
        raise typer.Exit(ExitCode.BAD_INPUT)
    labels = {
        CardStatus.NEEDS_REVIEW: ("待审核", "needs review"),
        CardStatus.AUTO_ACCEPTED: ("自动通过", "auto-accepted"),
        CardStatus.APPROVED: ("已审核", "approved"),
        CardStatus.REJECTED: ("已退回", "rejected"),
        CardStatus.EXPORTED: ("已导出", "exported"),
    }
    for summary in batches:
        zh = "，".join(f"{labels[s][0]} {summary.counts.get(str(s), 0)}" for s in labels)
        en = ", ".join(f"{labels[s][1]} {summary.counts.get(str(s), 0)}" for s in labels)
        say(f"{summary.name}：共 {summary.total} 张；{zh}", f"{summary.name}: {summary.total} card(s); {en}")
    _say_deadlines(store, config)


def _say_queue(store, batch: str | None) -> dict[str, int]:
    """Print the scans still waiting for an OCR worker, and those that failed, per batch.

    Returns the number of scans waiting per batch printed.
    """
    from ocr.queue import queue_counts

    printed: dict[str, int] = {}
    for name, counts in queue_counts(store).items():
        if batch is not None and name != batch:
            continue
        waiting, failed = counts.get("queued", 0), counts.get("failed", 0)
        if waiting or failed:
            say(
                f"{name}：排队等待识别 {waiting} 张，识别失败 {failed} 张",
                f"{name}: {waiting} scan(s) queued for OCR, {failed} failed",
            )
            printed[name] = waiting
    return printed


def _say_waiting_batches(names, waiting: dict[str, int]) -> None:
    """Print, for each batch with queued scans but no card yet, that its cards wait for a worker."""
    for name in sorted(names):
        if waiting[name]:
            say(
                f"{name}：还没有卡片，{waiting[name]} 张扫描页在排队等待 worker 识别。"
                "请在识别服务器上运行 python -m ocr worker。",
                f"{name}: no cards yet; {waiting[name]} scan(s) wait for an OCR worker; "
                "run python -m ocr worker on the OCR server",
            )


# Transmission: deadline lines of `status`, and the commands transmit, confirm and handover.

# Records listed one by one per deadline group; the rest are counted.
MAX_LISTED_RECORDS = 20


def _say_items(items, label_zh: str, label_en: str, now) -> None:
    for item in items[:MAX_LISTED_RECORDS]:
        when = item.deadline.strftime("%Y-%m-%d %H:%M")
        hours = item.hours_left(now)
        say(
            f"  {label_zh}：卡片 {item.card_id}（{item.card_type}，抵店 {item.arrival_date}，期限 {when}，剩余 {hours:.1f} 小时）",
            f"  {label_en}: card {item.card_id} ({item.card_type}, arrival {item.arrival_date}, due {when}, {hours:.1f} h left)",
        )
    if len(items) > MAX_LISTED_RECORDS:
        rest = len(items) - MAX_LISTED_RECORDS
        say(f"  …另有 {rest} 条{label_zh}记录", f"  … and {rest} more {label_en}")


def _say_deadlines(store, config_path: Path | None) -> None:
    """Print the records overdue, due soon, not delivered and unconfirmed; exit with OVERDUE when one is late.

    A record is late when it waits for sending past its deadline. It is late too when its card
    is still in review, or auto-accepted and not yet sent, past the deadline, because the office
    has not got it either. Cards due soon do not change the exit code.
    """
    from ocr.transmit.config import load_config
    from ocr.transmit.deadline import deadline_report

    config = load_config(config_path)
    report = deadline_report(store, config)
    hours = f"{config.deadline.due_soon_hours:g}"
    auto_overdue = len(report.auto_accepted_overdue)
    say(
        f"上报期限：已逾期 {len(report.overdue)} 条，{hours} 小时内到期 {len(report.due_soon)} 条；"
        f"审核中已逾期 {len(report.review_overdue)} 张，审核中 {hours} 小时内到期 {len(report.review_due_soon)} 张；"
        f"自动通过未发送 {len(report.auto_accepted)} 张（已逾期 {auto_overdue} 张）；"
        f"未送达 {len(report.undelivered)} 条，已发送待确认 {len(report.unconfirmed)} 条；"
        f"待发送的更正 {report.corrections_pending} 条，撤销 {report.cancellations_pending} 条。",
        f"transmission deadlines: {len(report.overdue)} overdue, {len(report.due_soon)} due within {hours} h; "
        f"{len(report.review_overdue)} in review past their deadline, "
        f"{len(report.review_due_soon)} in review due within {hours} h; "
        f"{len(report.auto_accepted)} auto-accepted and not sent yet ({auto_overdue} overdue); "
        f"{len(report.undelivered)} not delivered yet, {len(report.unconfirmed)} sent and awaiting acknowledgement; "
        f"{report.corrections_pending} corrections and {report.cancellations_pending} cancellations queued",
    )
    _say_items(report.overdue, "已逾期", "overdue", report.now)
    _say_items(report.due_soon, "即将到期", "due soon", report.now)
    _say_undelivered(store, report.undelivered)
    _say_items(report.unconfirmed, "已发送待确认", "sent, awaiting acknowledgement", report.now)
    if report.review_overdue:
        ids = _card_ids(report.review_overdue)
        say(
            f"  审核中已逾期：{len(report.review_overdue)} 张尚未审核的卡片已过上报期限，请尽快审核：卡片 {ids}",
            f"  in review past deadline: {len(report.review_overdue)} cards not yet approved are past their "
            f"deadline; review them: {ids}",
        )
    if report.review_due_soon:
        ids = _card_ids(report.review_due_soon)
        say(
            f"  审核中 {hours} 小时内到期 {len(report.review_due_soon)} 张：卡片 {ids}。请在期限前审核。",
            f"  in review, due within {hours} h: {len(report.review_due_soon)} cards: {ids}; "
            "review them before the deadline",
        )
    if report.auto_accepted:
        ids = _card_ids(report.auto_accepted)
        say(
            f"  自动通过未发送 {len(report.auto_accepted)} 张（已逾期 {auto_overdue} 张）：卡片 {ids}。"
            "请运行 python -m ocr transmit，它会审核通过并发送这些卡片。",
            f"  auto-accepted, not sent yet: {len(report.auto_accepted)} cards ({auto_overdue} overdue): {ids}; "
            "run python -m ocr transmit, which approves and sends them",
        )
    if report.has_overdue:
        raise typer.Exit(ExitCode.OVERDUE)


def _card_ids(items) -> str:
    """Return the first MAX_LISTED_RECORDS card ids of ``items``, comma-separated, and how many more there are."""
    ids = ", ".join(str(item.card_id) for item in items[:MAX_LISTED_RECORDS])
    more = len(items) - MAX_LISTED_RECORDS
    return ids + (f" …(+{more})" if more > 0 else "")


def _say_undelivered(store, items) -> None:
    """Print one line per batch whose records have not reached the office, by batch id, with its latest error.

    While a transmit run holds the run lock, that run sends these batches, so the lines do not ask
    the clerk to run transmit again.
    """
    from ocr.transmit.outbox import error_text, get_batch
    from ocr.transmit.runner import transmit_running

    counts: dict[int, int] = {}
    for item in items:
        counts[item.batch_id] = counts.get(item.batch_id, 0) + 1
    if not counts:
        return
    try:
        running = transmit_running(store)
    except OSError as exc:
        log.warning("cannot check whether a transmit run is in progress: %s", exc)
        running = False
    if running:
        say(
            "  transmit 正在运行，下列批次由它发送，无需重新运行。请等它结束后再运行 status 查看结果。",
            "  a transmit run is in progress and sends the batches below; do not run it again; "
            "run status again when it has finished",
        )
    for batch_id in sorted(counts):
        count = counts[batch_id]
        batch = get_batch(store, str(batch_id))
        error = error_text(batch.last_error, _state["lang"]) if batch else None
        attempts = batch.attempts if batch else 0
        if error:
            # The stored error already states that the next run sends the batch again.
            say(
                f"  未送达：批次 {batch_id}（{count} 条，已尝试 {attempts} 次）。最后一次错误：{error}",
                f"  not delivered: batch {batch_id} ({count} records, {attempts} attempt(s)); last error: {error}",
            )
            continue
        if running:
            say(
                f"  未送达：批次 {batch_id}（{count} 条，已尝试 {attempts} 次），正在运行的 transmit 会发送它。",
                f"  not delivered: batch {batch_id} ({count} records, {attempts} attempt(s)); "
                "the transmit run in progress sends it",
            )
            continue
        if attempts:
            zh_reason, en_reason = f"已尝试 {attempts} 次，发送中被中断", f"{attempts} attempt(s), interrupted"
        else:
            zh_reason, en_reason = "尚未发送：运行被中断或尚未运行", "not sent yet: the run was interrupted or has not run"
        say(
            f"  未送达：批次 {batch_id}（{count} 条，{zh_reason}）。请重新运行 python -m ocr transmit。",
            f"  not delivered: batch {batch_id} ({count} records, {en_reason}); run python -m ocr transmit again",
        )


@app.command()
def transmit(
    config: ConfigOption = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
    list_batches: Annotated[
        bool, typer.Option("--list", help="只列出已有的上报批次，不发送 / list the batches, send nothing")
    ] = False,
    purge_expired: Annotated[
        bool,
        typer.Option("--purge-expired", help="删除超过保存期限的归档 / delete archive folders past their retention period"),
    ] = False,
    templates: TemplatesOption = None,
) -> None:
    """把已审核、尚未确认的记录上报出入境管理部门，并归档。 / Send approved records not yet acknowledged, then archive them."""
    from ocr.registry import load_registry
    from ocr.transmit.config import load_config

    settings = load_config(config)
    store = _store(db, data_dir, create=False)
    if list_batches:
        _say_batches(store)
        return
    from ocr.transmit.runner import TransmitReport, run_transmit

    report = TransmitReport()
    try:
        run_transmit(store, settings, registry=load_registry(tuple(_folders(templates))), report=report)
    except KeyboardInterrupt:
        _say_transmit_interrupted(report)
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    if report.held_duplicates:
        _say_held_duplicates(report.held_duplicates)
    if report.approved:
        say(f"自动通过的卡片已审核通过：{report.approved} 张。", f"auto-accepted cards approved: {report.approved}")
    say(
        f"新建批次 {report.formed} 个；已确认 {len(report.acknowledged)} 个，等待人工确认 {len(report.awaiting_confirmation)} 个，"
        f"失败 {len(report.failed)} 个；归档记录 {report.archived} 条。",
        f"{report.formed} new batches; {len(report.acknowledged)} acknowledged, "
        f"{len(report.awaiting_confirmation)} awaiting manual confirmation, {len(report.failed)} failed; "
        f"{report.archived} records archived",
    )
    for batch_id in report.awaiting_confirmation:
        say(
            f"批次 {batch_id} 已放入待上传目录。上传后请运行：python -m ocr confirm {batch_id} --by 姓名 --receipt 回执编号",
            f"batch {batch_id} is in the upload folder; after uploading it run: "
            f"python -m ocr confirm {batch_id} --by NAME --receipt NUMBER",
        )
    for batch_id, message_zh, message_en in report.failed:
        warn(f"批次 {batch_id}：{message_zh}", f"batch {batch_id}: {message_en}")
    if purge_expired:
        from ocr.transmit.archive import purge_expired as purge

        result = purge(store)
        say(f"已删除超过保存期限的归档：{result.cards} 张卡片。", f"expired archive folders deleted: {result.cards} cards")
    if report.failed:
        raise typer.Exit(ExitCode.PARTIAL)


def _say_transmit_interrupted(report) -> None:
    """Tell what an interrupted run delivered, and that running it again is safe."""
    in_flight_zh = f"批次 {report.in_flight} 发送中被中断，" if report.in_flight is not None else ""
    in_flight_en = f"batch {report.in_flight} was interrupted while being sent; " if report.in_flight is not None else ""
    warn(
        f"transmit 已中断：已确认 {len(report.acknowledged)} 个批次，等待人工确认 {len(report.awaiting_confirmation)} 个，"
        f"失败 {len(report.failed)} 个；{in_flight_zh}其余批次均已保留。重新运行 python -m ocr transmit 会继续发送，"
        "每个批次沿用同一幂等键，接收方据此识别重发。",
        f"transmit interrupted: {len(report.acknowledged)} batches acknowledged, "
        f"{len(report.awaiting_confirmation)} awaiting manual confirmation, {len(report.failed)} failed; "
        f"{in_flight_en}the other batches are kept; running python -m ocr transmit again resumes, and each batch "
        "keeps its idempotency key, by which the receiver recognises a re-send",
    )


def _say_batches(store) -> None:
    from ocr.transmit.outbox import list_batches

    batches = list_batches(store)
    if not batches:
        say("还没有上报批次。", "no transmission batches yet")
    for batch in batches:
        receipt = batch.receipt or "-"
        say(
            f"{batch.id}\t{batch.card_type}\t抵店 {batch.arrival_date}\t{batch.kind}\t{len(batch.records)} 条\t"
            f"{batch.adapter}\t{batch.state}\t回执 {receipt}",
            f"{batch.id}\t{batch.card_type}\tarrival {batch.arrival_date}\t{batch.kind}\t{len(batch.records)} records\t"
            f"{batch.adapter}\t{batch.state}\treceipt {receipt}",
        )


@app.command()
def confirm(
    batch: Annotated[str, typer.Argument(help="批次编号或幂等键 / batch id or idempotency key")],
    by: Annotated[str, typer.Option("--by", help="确认人姓名 / name of the clerk who uploaded it")],
    receipt: Annotated[
        Optional[str], typer.Option("--receipt", help="上报系统给出的回执编号 / receipt number from the office")
    ] = None,
    phone: Annotated[bool, typer.Option("--phone", help="已电话确认，没有回执编号 / confirmed by phone")] = False,
    config: ConfigOption = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """记录人工上传批次的确认：谁、何时、回执编号或电话确认。 / Record the confirmation of a batch uploaded by hand."""
    from ocr.transmit.config import load_config
    from ocr.transmit.runner import confirm_manual

    # Checked before the store opens, so they are usage errors like any other bad option.
    if not by.strip():
        raise typer.BadParameter("确认人姓名为空 / the clerk's name is empty", param_hint="'--by'")
    if receipt is not None and phone:
        raise typer.BadParameter(
            "--receipt 与 --phone 只能选一个：有回执编号用 --receipt，电话确认用 --phone / give either --receipt "
            "or --phone, not both",
            param_hint="'--receipt'",
        )
    if not (receipt or "").strip() and not phone:
        raise typer.BadParameter(
            "请填写回执编号，或用 --phone 表示已电话确认 / give the receipt number, or --phone for a confirmation "
            "by phone",
            param_hint="'--receipt'",
        )
    settings = load_config(config)
    store = _store(db, data_dir, create=False)
    info = confirm_manual(store, settings, batch, clerk=by, receipt=receipt, by_phone=phone)
    say(
        f"批次 {info.id} 已确认（{len(info.records)} 条记录），回执：{info.receipt}。",
        f"batch {info.id} confirmed ({len(info.records)} records), receipt: {info.receipt}",
    )


def _month_value(value: str) -> str:
    """Return ``value`` when it is a month such as 2025-12; raise a usage error before the command runs otherwise."""
    try:
        # The same format that ocr.transmit.handover reads.
        datetime.strptime(value, "%Y-%m")
    except ValueError:
        raise typer.BadParameter(
            f"月份 '{value}' 无效，格式应为 YYYY-MM，如 2025-12 / invalid month '{value}'; use YYYY-MM, e.g. 2025-12"
        ) from None
    return value


@app.command()
def handover(
    month: Annotated[str, typer.Option("--month", callback=_month_value, help="月份 YYYY-MM / month")],
    out: Annotated[Path, typer.Option("--out", help="输出目录 / output folder")] = Path("handover"),
    config: ConfigOption = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """生成当月白联移交清单（XLSX 与可打印的 PDF）。 / Write the month's handover list of white copies (XLSX and PDF)."""
    from ocr.transmit.config import load_config
    from ocr.transmit.handover import write_handover

    settings = load_config(config)
    store = _store(db, data_dir, create=False)
    xlsx_path, pdf_path, listed, waiting = write_handover(store, settings, month, out)
    say(f"移交清单：{xlsx_path}、{pdf_path}（{listed} 张）", f"handover list: {xlsx_path}, {pdf_path} ({listed} cards)")
    if waiting:
        warn(
            f"注意：{month} 还有 {waiting} 张境外人员卡片未审核，未列入清单。",
            f"note: {waiting} foreign-guest cards of {month} are not approved yet and are not listed",
        )


def _say_held_duplicates(card_ids: list[int]) -> None:
    """Name the auto-accepted cards that went back to review because another card has their serial number."""
    ids = ", ".join(map(str, card_ids))
    say(
        f"{len(card_ids)} 张自动通过的卡片与其他卡片编号相同，已退回审核，未导出或上报：卡片 {ids}。"
        "请在审核界面退回重复的一张，或确认两张确为不同的卡片。",
        f"{len(card_ids)} auto-accepted cards have the serial number of another card and went back to review "
        f"instead of being exported or sent: cards {ids}; reject the duplicate in the review app, or confirm that "
        "both are distinct cards",
    )


@app.command()
def export(
    batch: Annotated[str, typer.Option("--batch", help="要导出的批次 / batch to export")],
    fmt: Annotated[
        Literal[EXPORT_FORMATS], typer.Option("--format", case_sensitive=False, help="导出格式 csv 或 jsonl / export format")
    ] = "csv",
    out: Annotated[Path, typer.Option("--out", help="输出目录 / output folder")] = Path("export"),
    db: DbOption = None,
    data_dir: DataDirOption = None,
    only_approved: Annotated[
        bool, typer.Option("--only-approved", help="不导出自动通过、未经人工审核的卡片 / skip auto-accepted cards")
    ] = False,
    again: Annotated[
        bool, typer.Option("--again", help="连同已导出的卡片再导出一次 / include cards exported before")
    ] = False,
    templates: TemplatesOption = None,
) -> None:
    """导出批次中已审核的卡片，每次写新文件。 / Export a batch's approved cards to new files."""
    from ocr.export import export_batch
    from ocr.registry import load_registry

    store = _store(db, data_dir, create=False)
    held: list[int] = []
    try:
        files = export_batch(
            store,
            batch,
            fmt,
            out,
            actor=os.environ.get("USER", "cli"),
            include_auto_accepted=not only_approved,
            include_exported=again,
            registry=load_registry(tuple(_folders(templates))),
            held=held,
        )
    finally:
        if held:
            _say_held_duplicates(held)
    for path in files:
        say(f"已导出：{path}", f"exported: {path}")


@app.command()
def review(
    db: DbOption = None,
    data_dir: DataDirOption = None,
    host: Annotated[str, typer.Option("--host", help="监听地址 / address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="端口，1–65535 / port, 1-65535")] = 8501,
    templates: TemplatesOption = None,
) -> None:
    """启动审核界面（Streamlit）。 / Start the review app."""
    from ocr.store import default_data_dir, default_db_url

    folder = data_dir or default_data_dir()
    url = db or default_db_url(folder)
    _store(url, folder, create=False).close()
    app_file = Path(__file__).resolve().parent.parent / "review_app" / "app.py"
    env = dict(os.environ, HUKA_DB_URL=url, HUKA_DATA_DIR=str(folder))
    if templates:
        # The review app loads a site's own card types and templates from these folders.
        env["HUKA_TEMPLATE_DIRS"] = os.pathsep.join(str(t.resolve()) for t in templates)
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_file),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]
    say(f"审核界面：http://{host}:{port}  （Ctrl+C 退出）", f"review app: http://{host}:{port} (Ctrl+C to stop)")
    # The app serves personal data: when this command is stopped or killed, the server stops too.
    from ocr.worker import stop_with_parent

    stop_on_exit = functools.partial(stop_with_parent, os.getpid())
    raise typer.Exit(subprocess.call(command, env=env, preexec_fn=stop_on_exit))


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="数据目录 / data folder")] = Path("ocr-data"),
    out: Annotated[Path, typer.Option("--out", help="导出目录 / export folder")] = Path("export"),
    engine: EngineOption = "rapidocr",
    templates: TemplatesOption = None,
    db: DbOption = None,
    workers: WorkersOption = None,
) -> None:
    """用随附的样例卡片跑通整个流程：识别、入库、导出。 / Run the bundled sample cards end to end."""
    from ocr.export import ExportError, export_batch
    from ocr.pipeline import ingest_paths
    from ocr.pool import default_workers
    from ocr.registry import load_registry
    from sample_cards import SAMPLES_DIR

    store = _store(db, data_dir)
    say(f"识别样例卡片：{SAMPLES_DIR}", f"reading the sample cards in {SAMPLES_DIR}")
    report = ingest_paths(
        [SAMPLES_DIR],
        store,
        batch="demo",
        engine_name=engine,
        template_dirs=_folders(templates),
        on_page=_progress(),
        workers=workers or default_workers(),
    )
    _report_problems(report)
    say(
        f"入库 {report.stored} 张（重复跳过 {report.duplicates}），其中 {report.needs_review} 张有字段待审核。",
        f"stored {report.stored} cards ({report.duplicates} duplicates skipped); {report.needs_review} need review",
    )
    try:
        files = export_batch(
        store, "demo", "csv", out, actor="demo", registry=load_registry(tuple(_folders(templates)))
    )
    except ExportError as exc:
        warn(exc.message_zh, exc.message_en)
        files = []
    for path in files:
        say(f"已导出自动通过的卡片：{path}", f"exported the auto-accepted cards: {path}")
    where = f"--data-dir {data_dir}"
    if db:
        # The password, if any, stays out of the terminal: the user types it back in.
        where += f" --db {store.engine.url.render_as_string(hide_password=True)}"
    first_admin_hint(store, where)
    say(
        f"下一步：python -m ocr review {where}  审核其余卡片，然后 python -m ocr export --batch demo {where}",
        f"next: python -m ocr review {where} to review the rest, then python -m ocr export --batch demo {where}",
    )


bench_app = typer.Typer(help="基准测试 / benchmarks")
app.add_typer(bench_app, name="bench")
bench_app.command("prep")(bench_prep_command)
bench_app.command("accuracy")(bench_accuracy_command)
bench_app.command("calibrate")(bench_calibrate_command)
app.add_typer(template_app, name="template")
app.add_typer(audit_app, name="audit")
app.add_typer(key_app, name="key")
app.command("retention")(retention_command)
app.add_typer(user_app, name="user")
app.command("worker")(worker_command)
app.command("check")(check_command)
bench_app.command("throughput")(bench_throughput_command)
app.add_typer(arrivals_app, name="arrivals")
model_app = typer.Typer(help="识别模型 / OCR models")
model_app.command("quantize")(quantize_command)
app.add_typer(model_app, name="model")


@bench_app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context,
    cards: Annotated[int, typer.Option("--cards", help="生成的卡片数 / number of generated cards")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="随机种子 / generator seed")] = 1000,
    engine: EngineOption = "rapidocr",
    report: Annotated[
        Optional[Path], typer.Option("--report", help="结果追加到此文件 / Markdown file to append to")
    ] = Path("docs/benchmarks.md"),
) -> None:
    """在生成的卡片上测量准确率、自动化率与速度。 / Measure accuracy, automation and speed on generated cards."""
    if ctx.invoked_subcommand is not None:
        return
    from ocr.bench import command_line, format_report, run_pipeline_bench, write_report

    result = run_pipeline_bench(cards, seed, engine)
    section = format_report(result, command_line())
    typer.echo(section)
    if report is not None:
        say(f"结果已追加到 {write_report(section, report)}", f"results appended to {report}")


def _lang_value(value: str) -> str:
    """Return "zh" or "en" for a --lang value such as zh, zh-CN, en or en_US; exit with a usage error otherwise."""
    lowered = value.lower()
    for lang in ("zh", "en"):
        if lowered == lang or lowered.startswith((f"{lang}-", f"{lang}_")):
            return lang
    warn(
        f"命令用法有误：选项 '--lang' 的值 '{value}' 无效，只能是 zh 或 en。运行 python -m ocr --help 查看用法。",
        f"usage error: invalid value '{value}' for '--lang': use zh or en; run python -m ocr --help",
    )
    sys.exit(USAGE_EXIT_CODE)


def _take_lang(argv: list[str]) -> list[str]:
    """Remove ``--lang X`` from anywhere in ``argv`` and apply it, so it also works after the command."""
    rest: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--lang" and index + 1 < len(argv):
            _state["lang"] = _lang_value(argv[index + 1])
            index += 2
            continue
        if arg.startswith("--lang="):
            _state["lang"] = _lang_value(arg.split("=", 1)[1])
        else:
            rest.append(arg)
        index += 1
    return rest


# Exit code of a usage error, as click's own UsageError.exit_code.
USAGE_EXIT_CODE = 2
_CJK = re.compile(r"[\u4e00-\u9fff]")
# The message of typer's check of a Literal type, inside its BadParameter.
_NOT_A_CHOICE = re.compile(r"(?P<value>'.*') is not one of (?P<choices>.*?)\.?$")
# click's and typer's messages for a path that fails an exists, file_okay, dir_okay, readable or writable check.
_PATH_PROBLEMS = (
    (re.compile(r"^\w+ (?P<name>'.*') does not exist\.?$"), "{name} 不存在"),
    (re.compile(r"^\w+ (?P<name>'.*') is a file\.?$"), "{name} 是文件，应为文件夹"),
    (re.compile(r"^\w+ (?P<name>'.*') is a directory\.?$"), "{name} 是文件夹，应为文件"),
    (re.compile(r"^\w+ (?P<name>'.*') is not readable\.?$"), "{name} 不可读，请检查权限"),
    (re.compile(r"^\w+ (?P<name>'.*') is not writable\.?$"), "{name} 不可写，请检查权限"),
)
# Chinese reasons for the pydantic error types that typer reports for numbers and flags.
_VALUE_PROBLEMS = {
    "int_parsing": "{value}不是整数",
    "float_parsing": "{value}不是数字",
    "bool_parsing": "{value}不是 true 或 false",
    "greater_than_equal": "{value}小于最小值 {ge}",
    "greater_than": "{value}应大于 {gt}",
    "less_than_equal": "{value}大于最大值 {le}",
    "less_than": "{value}应小于 {lt}",
}
_NO_SUCH_COMMAND = re.compile(r"No such command '(?P<name>.*)'\.?$")
_EXTRA_ARGUMENTS = re.compile(r"Got unexpected extra argument\(s\) \((?P<args>.*)\)$")


def _param_hint(exc) -> str:
    """Return the option or argument that a click parameter error names, such as ``'--dpi'``, or ''."""
    hint = getattr(exc, "param_hint", None)
    if hint is None and getattr(exc, "param", None) is not None:
        hint = exc.param.get_error_hint()
    if hint is None:
        return ""
    return hint if isinstance(hint, str) else " / ".join(repr(item) for item in hint)


def _param_zh(exc) -> str:
    """Return the parameter of a click error in Chinese, such as ``选项 '--dpi'``, or ``参数`` when it is unknown."""
    kind = getattr(getattr(exc, "param", None), "param_type_name", None) or getattr(exc, "param_type", None)
    hint = _param_hint(exc)
    if kind == "option" or hint.startswith("'-"):
        name = "选项"
    else:
        name = "参数"
    return f"{name} {hint}" if hint else name


def _bad_value_reason_zh(exc) -> str:
    """Return the Chinese reason of a BadParameter of a common kind (number, range, choice, path), or ''."""
    cause = exc.__cause__
    errors = cause.errors() if cause is not None and callable(getattr(cause, "errors", None)) else []
    if errors:
        error = errors[0]
        bounds = error.get("ctx") or {}
        given = error.get("input")
        value = f"'{given}' " if isinstance(given, str) else ""
        template = _VALUE_PROBLEMS.get(error.get("type"))
        if template is not None:
            try:
                return template.format(value=value, **bounds)
            except KeyError:
                return ""
        choice = _NOT_A_CHOICE.search(str(bounds.get("error", "")))
        if choice is not None:
            choices = "、".join(item.strip("'") for item in choice["choices"].split(", "))
            return f"{choice['value']} 不是可选的值，可选：{choices}"
    message = str(getattr(exc, "message", "") or "").strip()
    for pattern, template in _PATH_PROBLEMS:
        if (match := pattern.match(message)) is not None:
            return template.format(name=match["name"])
    return ""


def _describe_usage_error_zh(exc) -> str:
    """Return a Chinese description of a click usage error: what was wrong, on which option, argument or command.

    Typer bundles its own copy of click, so the error classes are recognised by name, which
    also covers an error raised with the click package itself.
    """
    kinds = {cls.__name__ for cls in type(exc).__mro__}
    message = str(getattr(exc, "message", "") or "").strip()
    if "NoSuchOption" in kinds:
        described = f"没有选项 {exc.option_name}"
        if getattr(exc, "possibilities", None):
            described += f"，可能是 {', '.join(sorted(exc.possibilities))}"
        return described
    if "MissingParameter" in kinds:
        return f"缺少{_param_zh(exc)}"
    if "BadParameter" in kinds:
        described = f"{_param_zh(exc)} 的值无效" if _param_hint(exc) else "参数的值无效"
        # Some commands of this project raise BadParameter with a message "Chinese / English".
        if _CJK.search(message):
            return f"{described}：{message.split(' / ', 1)[0].rstrip('。')}"
        reason = _bad_value_reason_zh(exc)
        return f"{described}：{reason}" if reason else described
    if "BadOptionUsage" in kinds:
        if "does not take a value" in message:
            return f"选项 {exc.option_name} 不接受值"
        if "requires" in message:
            return f"选项 {exc.option_name} 后缺少值"
        return f"选项 {exc.option_name} 用法有误"
    if "BadArgumentUsage" in kinds:
        return "参数的个数不对"
    if (match := _NO_SUCH_COMMAND.match(message)) is not None:
        return f"没有命令 '{match['name']}'"
    if (match := _EXTRA_ARGUMENTS.match(message)) is not None:
        return f"多余的参数 {match['args']}"
    if message.startswith("Missing command"):
        return "缺少命令"
    return "参数无效"


def _typed_command_path(args: list[str]) -> str:
    """Return the command that ``args`` name, such as ``python -m ocr key rotate``, for an error without a context.

    click raises some errors, such as an option given without its value, before the command's context exists.
    """
    import typer.main

    command = typer.main.get_command(app)
    path = ["python -m ocr"]
    for arg in args:
        commands = getattr(command, "commands", None)
        if not commands:
            break
        if arg.startswith("-"):
            continue
        if arg not in commands:
            break
        path.append(arg)
        command = commands[arg]
    return " ".join(path)


def _report_usage_error(exc, args: list[str]) -> None:
    """Print a click usage error: Chinese first with the typed command's --help hint, then click's English detail."""
    context = getattr(exc, "ctx", None)
    command = context.command_path if context is not None else _typed_command_path(args)
    detail = exc.format_message().strip().rstrip(".")
    message = str(getattr(exc, "message", "") or "")
    if _CJK.search(message) and " / " in message:
        # A "Chinese / English" message of this project: the English line keeps the English half only.
        detail = detail.replace(message.strip().rstrip("."), message.split(" / ", 1)[1].strip().rstrip("."))
    warn(
        f"命令用法有误：{_describe_usage_error_zh(exc)}。运行 {command} --help 查看用法。\nusage error: {detail}",
        f"usage error: {detail}; run {command} --help",
    )


def main(argv: list[str] | None = None) -> None:
    """Run the command line, turning product and usage errors into a message and an exit code."""
    args = _take_lang(list(sys.argv[1:] if argv is None else argv))
    try:
        code = app(args=args, prog_name="python -m ocr", standalone_mode=False)
    except CardCaptureError as exc:
        typer.echo(exc.message(_state["lang"]), err=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        warn("已中断。已入库的卡片不受影响，重新运行会跳过它们。", "interrupted; stored cards are kept and skipped on a rerun")
        sys.exit(130)
    except Exception as exc:
        # Typer bundles its own click, so usage errors are recognised by their interface, not their class.
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.exit(0)
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            _report_usage_error(exc, args)
            sys.exit(USAGE_EXIT_CODE)
        raise
    sys.exit(code if isinstance(code, int) else 0)
