"""OCR workers: processes on any machine that read queued scans and store their cards.

The task queue is procrastinate (a maintained PostgreSQL-backed job queue).
A multi-station set-up has PostgreSQL as its shared store already, so the queue
needs no broker server of its own. A worker claims a job with ``SELECT … FOR
UPDATE SKIP LOCKED``, so every job goes to one worker. Each worker writes a
heartbeat every few seconds. A job of a worker whose heartbeat stopped (the
process was killed, the machine lost power) is "stalled"; every worker looks
for stalled jobs every ``stall_timeout`` seconds and puts them back in the
queue. The same sweep queues again any scan left ``queued`` without a job (a
station killed between storing a scan and queueing its job). Processing a scan
twice stores one card (see :mod:`ocr.queue`).

The queue's tables live in their own PostgreSQL schema, so they never mix with
the store's Alembic migrations: ``huka_queue`` by default, or
``<store schema>_queue`` when the database URL sets a ``search_path``
(``?options=-csearch_path=NAME``), or ``$HUKA_QUEUE_SCHEMA``.
:func:`ensure_queue_schema` creates it with procrastinate's own schema file;
``python -m ocr worker --init`` runs it alone, and ``ingest --queue`` and
``worker`` run it when the tables are missing.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer
from sqlalchemy.engine import make_url

from ocr.confidence import field_history
from ocr.errors import CardCaptureError, ExitCode, StoreError
from ocr.ingest import IngestFailure, Page
from ocr.logmask import install as install_log_masking
from ocr.queue import MAX_ATTEMPTS, EnqueueReport, enqueue_paths, process_queued_scan, queued_scan_ids, requeue_failed
from ocr.store import Store, default_data_dir, normalize_db_url

__all__ = [
    "DEFAULT_STALL_TIMEOUT_S",
    "QUEUE_NAME",
    "QueueSettings",
    "ScanQueue",
    "ensure_queue_schema",
    "queue_paths",
    "run_workers",
    "stop_with_parent",
    "verify_data_folder",
    "worker_command",
]

log = logging.getLogger(__name__)

QUEUE_NAME = "ocr"
TASK_NAME = "hukacapture.process_scan"
# Seconds without a heartbeat after which a worker counts as dead and its job is queued again.
# Procrastinate's own default; a worker writes its heartbeat every third of it.
DEFAULT_STALL_TIMEOUT_S = 30.0
# Seconds before a job whose OCR raised an error runs again.
RETRY_WAIT_S = 10
# A worker process that has read this many scans finishes its job, exits with RECYCLE_EXIT_CODE and
# is replaced by a new one, so that memory the OCR libraries keep does not grow for days. The same
# count as the local process pool's (ocr.pool.PAGES_PER_PROCESS).
JOBS_PER_PROCESS = 200
RECYCLE_EXIT_CODE = 75
# Any constant: the same in every process that creates the queue tables of one database.
_SCHEMA_LOCK_ID = 0x4855_4B51
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SEARCH_PATH = re.compile(r"-c\s*search_path=(\S+)")


@dataclass(frozen=True)
class QueueSettings:
    """Connection of the queue: a libpq connection string, its PostgreSQL options and the queue schema."""

    conninfo: str
    options: str
    schema: str

    @classmethod
    def from_db_url(cls, db_url: str, schema: str | None = None) -> QueueSettings:
        """Derive the queue's connection from the store's SQLAlchemy URL; raise StoreError for a non-PostgreSQL URL."""
        url = make_url(normalize_db_url(db_url))
        if url.get_backend_name() != "postgresql":
            raise StoreError(
                "任务队列需要 PostgreSQL：请用 --db postgresql://用户@主机/库名。单机的 SQLite 请去掉 --queue，"
                "识别会在本机的多个进程中进行（--workers）。",
                "the task queue needs PostgreSQL: use --db postgresql://user@host/db; with the embedded SQLite "
                "leave out --queue and OCR runs in local processes (--workers)",
            )
        options = url.query.get("options", "")
        if isinstance(options, tuple):
            options = " ".join(options)
        found = _SEARCH_PATH.search(options)
        store_schema = found.group(1).split(",")[0].strip('"') if found else None
        name = schema or os.environ.get("HUKA_QUEUE_SCHEMA") or (f"{store_schema}_queue" if store_schema else "huka_queue")
        if not _IDENTIFIER.match(name):
            raise StoreError(
                f"队列 schema 名称 {name!r} 无效：只能用字母、数字和下划线，且不以数字开头，最长 63 个字符。",
                f"invalid queue schema name {name!r}: letters, digits and underscores, not starting with a digit, "
                "at most 63 characters",
            )
        rest = _SEARCH_PATH.sub("", options).strip()
        queue_options = f"{rest} -c search_path={name}".strip()
        conninfo = url.set(drivername="postgresql").difference_update_query(["options"])
        return cls(conninfo.render_as_string(hide_password=False), queue_options, name)


def ensure_queue_schema(settings: QueueSettings) -> bool:
    """Create the queue schema and procrastinate's tables in it unless they exist; return whether it created them."""
    import psycopg
    from procrastinate.schema import SchemaManager
    from psycopg import sql

    with psycopg.connect(settings.conninfo, options=settings.options) as connection:
        # Stations and workers may start together: one of them creates the tables, the others wait.
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_ID,))
        connection.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(settings.schema))
        )
        table = f'"{settings.schema}".procrastinate_jobs'
        if connection.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is not None:
            return False
        # The file is several statements; psycopg sends a query without parameters as is.
        # TODO: a newer procrastinate release needs its migrations applied to an existing schema.
        connection.execute(SchemaManager.get_schema())
        connection.commit()
    log.info("queue tables created schema=%s", settings.schema)
    return True


class ScanQueue:
    """The procrastinate app of one store: defers scan jobs and runs workers."""

    def __init__(self, db_url: str, schema: str | None = None) -> None:
        import procrastinate

        self.settings = QueueSettings.from_db_url(db_url, schema)
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(
                conninfo=self.settings.conninfo, kwargs={"options": self.settings.options}
            )
        )
        self.task = self.app.task(
            name=TASK_NAME,
            queue=QUEUE_NAME,
            retry=procrastinate.RetryStrategy(max_attempts=MAX_ATTEMPTS, wait=RETRY_WAIT_S),
        )(_run_scan_job)

    def ensure_schema(self) -> bool:
        return ensure_queue_schema(self.settings)

    def defer(self, scan_id: int) -> bool:
        """Queue a job for the scan; return False when one is waiting already. Call inside ``self.app.open()``."""
        from procrastinate.exceptions import AlreadyEnqueued

        try:
            self.task.configure(queueing_lock=f"scan-{scan_id}").defer(scan_id=scan_id)
        except AlreadyEnqueued:
            log.info("scan job waiting already scan=%s", scan_id)
            return False
        return True

    async def sweep(self, store: Store, stall_timeout: float) -> tuple[int, int]:
        """Queue again the jobs of dead workers and the queued scans without a job; return both counts."""
        from procrastinate.exceptions import AlreadyEnqueued

        manager = self.app.job_manager
        retried = 0
        for job in await manager.get_stalled_jobs(queue=QUEUE_NAME, seconds_since_heartbeat=stall_timeout):
            try:
                await manager.retry_job(job)
            except Exception as exc:  # noqa: BLE001 - another worker's sweep may have retried it first
                log.info("stalled job not retried job=%s: %s", job.id, type(exc).__name__)
                continue
            retried += 1
            log.warning("stalled job queued again job=%s scan=%s", job.id, job.task_kwargs.get("scan_id"))

        live: set[int] = set()
        for status in ("todo", "doing"):
            for job in await manager.list_jobs_async(queue=QUEUE_NAME, status=status):
                live.add(int(job.task_kwargs.get("scan_id", -1)))
        # A scan stored in the last seconds may be waiting for its station to queue the job.
        waiting = await asyncio.to_thread(queued_scan_ids, store, older_than_s=stall_timeout)
        requeued = 0
        for scan_id in waiting:
            if scan_id in live:
                continue
            try:
                await self.task.configure(queueing_lock=f"scan-{scan_id}").defer_async(scan_id=scan_id)
            except AlreadyEnqueued:
                continue
            requeued += 1
            log.warning("queued scan without a job queued again scan=%s", scan_id)
        return retried, requeued


def queue_paths(
    paths: Iterable[str | Path],
    store: Store,
    *,
    batch: str,
    engine_name: str = "rapidocr",
    pdf_dpi: int = 200,
    on_page: Callable[[Page | IngestFailure], None] | None = None,
) -> EnqueueReport:
    """Store the pages of the files as queued scans and queue a job for each; no OCR runs here.

    Each job is queued after its scan commits. A scan whose job was never queued
    (this process was killed in between) is queued by the next worker sweep.
    """
    queue = ScanQueue(store.url)
    queue.ensure_schema()
    with queue.app.open():
        return enqueue_paths(
            paths, store, batch=batch, engine_name=engine_name, pdf_dpi=pdf_dpi, on_page=on_page, on_queued=queue.defer
        )


@dataclass
class _WorkerState:
    """State of a worker process for its job function: the store and the template folders."""

    store: Store
    template_dirs: tuple[str, ...]
    # Reviewer corrections by card type and field, read when the worker process starts. A process
    # that replaces another reads them again.
    history: dict
    # Jobs this process has finished, successful or not, and how many it takes before it is replaced (0: no limit).
    jobs_done: int = 0
    jobs_per_process: int = 0
    # Called from the job's thread when the limit is reached: stops the worker after this job.
    recycle: Callable[[], None] | None = None


_state: dict[str, _WorkerState] = {}


def _read_page(page, engine_name: str):
    from ocr.engines import get_engine
    from ocr.pipeline import process_page
    from ocr.registry import load_registry

    state = _state["worker"]
    return process_page(
        page, engine=get_engine(engine_name), registry=load_registry(state.template_dirs), history=state.history
    )


def _run_scan_job(scan_id: int) -> str:
    """Procrastinate job: OCR one queued scan; the return value is logged by procrastinate."""
    state = _state["worker"]
    try:
        outcome = process_queued_scan(state.store, scan_id, _read_page)
    finally:
        state.jobs_done += 1
        # Requested before this job returns, so that the worker fetches no further job.
        if state.recycle is not None and state.jobs_per_process and state.jobs_done >= state.jobs_per_process:
            state.recycle()
    return outcome.action


def run_worker_process(
    db_url: str,
    data_dir: str | None,
    template_dirs: tuple[str, ...],
    *,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT_S,
    once: bool = False,
    name: str = "worker",
    threads: int | None = None,
    jobs_per_process: int = JOBS_PER_PROCESS,
) -> bool:
    """Run one worker in this process until it is stopped (SIGTERM, SIGINT), or with ``once`` until the queue is empty.

    After ``jobs_per_process`` jobs (0: no limit) the worker stops taking jobs and finishes the
    one it is running. It then returns True, so that its process can be replaced. Otherwise it
    returns False.
    """
    if threads:
        os.environ.setdefault("HUKA_OCR_THREADS", str(threads))
    store = Store(url=db_url, data_dir=Path(data_dir) if data_dir else None)
    state = _WorkerState(store, template_dirs, field_history(store), jobs_per_process=jobs_per_process)
    _state["worker"] = state
    queue = ScanQueue(db_url)
    queue.ensure_schema()

    async def sweep_forever() -> None:
        while True:
            await asyncio.sleep(stall_timeout)
            try:
                await queue.sweep(store, stall_timeout)
            except Exception:  # noqa: BLE001 - a failed sweep is logged and tried again next round
                log.exception("queue sweep failed")

    async def main() -> bool:
        async with queue.app.open_async():
            await queue.sweep(store, stall_timeout)
            sweeper = None if once else asyncio.create_task(sweep_forever())
            worker = asyncio.create_task(
                queue.app.run_worker_async(
                    queues=[QUEUE_NAME],
                    name=name,
                    concurrency=1,
                    wait=not once,
                    update_heartbeat_interval=max(0.5, stall_timeout / 3),
                    stalled_worker_timeout=stall_timeout,
                    delete_jobs="successful",
                    install_signal_handlers=True,
                )
            )
            loop = asyncio.get_running_loop()
            requested = threading.Event()

            def recycle() -> None:
                log.info("worker recycling name=%s pid=%d jobs=%d", name, os.getpid(), state.jobs_done)
                requested.set()
                # Procrastinate stops taking jobs when its task is cancelled and waits for the running one.
                loop.call_soon_threadsafe(worker.cancel)

            state.recycle = recycle
            try:
                await worker
                return False
            except asyncio.CancelledError:
                if not requested.is_set():
                    raise
                return True
            finally:
                state.recycle = None
                if sweeper is not None:
                    sweeper.cancel()

    log.info("worker starting name=%s pid=%d once=%s jobs_per_process=%d", name, os.getpid(), once, jobs_per_process)
    try:
        recycled = asyncio.run(main())
    finally:
        store.close()
    log.info("worker stopped name=%s pid=%d recycled=%s", name, os.getpid(), recycled)
    return recycled


def stop_with_parent(parent_pid: int) -> None:
    """Have Linux send this process SIGTERM when its parent dies, so no worker or review app outlives its parent.

    Uses prctl(PR_SET_PDEATHSIG), which an exec keeps, so it also works as a subprocess
    ``preexec_fn``. Elsewhere, or if the call fails, a warning is logged and the process keeps
    running on its own.
    """
    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(pr_set_pdeathsig, signal.SIGTERM) != 0:
        log.warning("prctl PR_SET_PDEATHSIG failed errno=%d; this worker survives its parent", ctypes.get_errno())
        return
    # The parent may have died before the call, and then no signal comes.
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


def _child_main(kwargs: dict) -> None:
    logging.basicConfig(level=kwargs.pop("log_level"), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A spawned process starts with the standard record factory, so it masks its own logs.
    install_log_masking()
    stop_with_parent(kwargs.pop("parent_pid"))
    if run_worker_process(**kwargs):
        raise SystemExit(RECYCLE_EXIT_CODE)


def _missing_folders(folder: Path) -> list[Path]:
    """Return ``folder`` and each of its parents that does not exist, innermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def verify_data_folder(db_url: str | None, data_dir: str | None) -> None:
    """Raise :class:`StoreError` unless the data folder is the database's, leaving no folder behind when it is not.

    Opening a :class:`Store` creates the data folder and its ``images/`` before the check can
    run, so a rejected folder would stay as an empty ``./ocr-data`` or an empty local folder
    where the share should be mounted. When the check or the opening fails, the folders that
    did not exist before are removed again, innermost first, and only while they are empty.
    """
    folder = (Path(data_dir) if data_dir else default_data_dir()).absolute()
    created = _missing_folders(folder / "images")
    store = None
    try:
        store = Store(url=db_url, data_dir=folder)
        store.ensure_data_folder()
    except CardCaptureError:
        _remove_empty_folders(created)
        raise
    finally:
        if store is not None:
            store.close()


def _remove_empty_folders(folders: list[Path]) -> None:
    """Remove ``folders`` in order, stopping at the first one that is not empty or cannot be removed."""
    for path in folders:
        try:
            path.rmdir()
        except OSError as exc:
            # Another process wrote into it meanwhile, so it and its parents stay.
            log.warning("data folder not removed path=%s error=%s", path, exc.strerror or exc)
            return


def run_workers(
    db_url: str,
    data_dir: str | None,
    template_dirs: tuple[str, ...],
    *,
    processes: int,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT_S,
    once: bool = False,
    jobs_per_process: int = JOBS_PER_PROCESS,
) -> int:
    """Run ``processes`` worker processes and wait for them; return how many ended with an error.

    Each worker runs in a process of its own, also when there is one, so that it can be replaced.
    A worker process that read ``jobs_per_process`` scans (0: no limit) exits and a new one takes
    its place, also with ``once``. A worker process that dies (killed, out of memory) is started
    again unless this process is stopping or ``once`` is set. The stalled-job sweep of the other
    workers, or of its successor, queues its job again.
    """
    from ocr.pool import ThreadShare

    threads = ThreadShare.for_workers(processes).threads
    # A worker without the shared data folder cannot read a scan: stop here, not once per scan in
    # restarted children.
    verify_data_folder(db_url, data_dir)

    # Create the queue tables once here, not in N processes at the same time.
    ensure_queue_schema(QueueSettings.from_db_url(db_url))
    context = multiprocessing.get_context("spawn")
    base = {
        "db_url": db_url,
        "data_dir": data_dir,
        "template_dirs": template_dirs,
        "stall_timeout": stall_timeout,
        "once": once,
        "threads": threads,
        "jobs_per_process": jobs_per_process,
        "log_level": logging.getLogger().level,
        "parent_pid": os.getpid(),
    }

    def start(index: int):
        process = context.Process(target=_child_main, args=({**base, "name": f"worker-{index}"},), daemon=False)
        process.start()
        return process

    children = {index: start(index) for index in range(processes)}
    stopping = False

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        for process in children.values():
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    failed = 0
    try:
        while children:
            for index, process in list(children.items()):
                process.join(timeout=0.5)
                if process.exitcode is None:
                    continue
                del children[index]
                if process.exitcode == RECYCLE_EXIT_CODE:
                    if not stopping:
                        children[index] = start(index)
                elif process.exitcode != 0:
                    failed += 1
                    log.error("worker process ended name=worker-%d exit=%s", index, process.exitcode)
                    if not stopping and not once:
                        time.sleep(1.0)
                        children[index] = start(index)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return failed


def worker_command(
    db: Annotated[
        Optional[str],
        typer.Option("--db", help="共享的 PostgreSQL 数据库地址，默认 $HUKA_DB_URL / shared PostgreSQL URL (default $HUKA_DB_URL)"),
    ] = None,
    data_dir: Annotated[
        Optional[Path],
        typer.Option("--data-dir", help="各机器共享的数据目录（扫描图像）/ data folder shared by every machine (scan images)"),
    ] = None,
    processes: Annotated[
        Optional[int],
        typer.Option("--processes", min=1, help="识别进程数，默认每个 CPU 核一个 / worker processes, default one per CPU core"),
    ] = None,
    templates: Annotated[
        Optional[list[Path]], typer.Option("--templates", help="额外的模板目录，可多次指定 / extra template folder")
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="队列空了就退出，不再等待新任务 / exit when the queue is empty")
    ] = False,
    init: Annotated[
        bool, typer.Option("--init", help="只创建任务队列的数据表，然后退出 / only create the queue tables, then exit")
    ] = False,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed",
            help="把识别失败的扫描件重新排队，然后退出 / queue the scans whose OCR failed again, then exit",
        ),
    ] = False,
    stall_timeout: Annotated[
        float,
        typer.Option(
            "--stall-timeout",
            min=1.0,
            help="多少秒没有心跳就认为某个 worker 已停止，并把它的任务重新排队 / "
            "seconds without a heartbeat after which a worker counts as dead and its job is queued again",
        ),
    ] = DEFAULT_STALL_TIMEOUT_S,
    jobs_per_process: Annotated[
        int,
        typer.Option(
            "--jobs-per-process",
            min=0,
            help="每个识别进程处理这么多张扫描件后由新进程接替，以免内存增长；0 表示不替换 / "
            "replace a worker process by a new one after this many scans, so that its memory does not grow; 0: never",
        ),
    ] = JOBS_PER_PROCESS,
) -> None:
    """从任务队列取出扫描件进行识别并入库（需要 PostgreSQL）。 / Run OCR workers on the queued scans (PostgreSQL)."""
    from ocr.cli import say
    from ocr.pool import default_workers
    from ocr.store import default_db_url

    url = db or os.environ.get("HUKA_DB_URL") or default_db_url(data_dir)
    settings = QueueSettings.from_db_url(url)
    if init:
        created = ensure_queue_schema(settings)
        Store(url=url, data_dir=data_dir).close()
        say(
            f"任务队列{'已创建' if created else '已存在'}（schema {settings.schema}），数据库已升级到最新版本。",
            f"queue tables {'created' if created else 'exist already'} (schema {settings.schema}); store schema up to date",
        )
        return
    if retry_failed:
        store = Store(url=url, data_dir=data_dir, create=False)
        ids = requeue_failed(store)
        store.close()
        say(
            f"已重新排队 {len(ids)} 张识别失败的扫描件；运行中的 worker 会在 {stall_timeout:g} 秒内取走它们。",
            f"{len(ids)} failed scans queued again; running workers take them within {stall_timeout:g} s",
        )
        return
    count = processes or default_workers()
    # A wrong data folder stops here, before the start is announced.
    verify_data_folder(url, str(data_dir) if data_dir else None)
    say(
        f"识别 worker 启动：{count} 个进程，队列 schema {settings.schema}。按 Ctrl+C 停止（正在识别的卡片会先完成）。",
        f"OCR workers starting: {count} processes, queue schema {settings.schema}; Ctrl+C stops them "
        "(cards being read are finished first)",
    )
    failed = run_workers(
        url,
        str(data_dir) if data_dir else None,
        tuple(str(t) for t in templates or []),
        processes=count,
        stall_timeout=stall_timeout,
        once=once,
        jobs_per_process=jobs_per_process,
    )
    if failed:
        from ocr.cli import warn

        warn(
            f"有 {failed} 个识别进程异常退出（被终止或内存不足）。它们正在识别的扫描件没有丢失，"
            f"会在 {stall_timeout:g} 秒无心跳后由运行中的 worker 重新排队；请用 python -m ocr status 查看。",
            f"{failed} OCR processes ended abnormally (killed or out of memory). The scans they were reading are "
            f"not lost: a running worker queues them again after {stall_timeout:g} s without a heartbeat; "
            "see python -m ocr status",
        )
        raise typer.Exit(ExitCode.PARTIAL)
