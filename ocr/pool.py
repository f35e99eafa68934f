"""Process pool: OCR of a stack of pages on every core of one machine.

Each pool process loads its own engine and card-type registry once, then runs
:func:`ocr.pipeline.process_page` on the pages it is sent. The calling process
reads the files, sends pages to the pool and gets the results back in input
order. It alone writes the store, because SQLite allows one writer at a time,
and a run gives the same cards as a one-process run.

The pool processes are started with ``spawn``, not ``fork``, so no process
inherits the threads of an engine the parent may have loaded.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from ocr.errors import CardCaptureError
from ocr.ingest import IngestFailure, Page

__all__ = ["ThreadShare", "default_workers", "process_in_order"]

log = logging.getLogger(__name__)

# Pages sent ahead per pool process: enough to keep every process busy while the parent
# stores a result, few enough to bound memory (a 200-dpi A5 page is about 6 MiB decoded).
PAGES_AHEAD_PER_WORKER = 2
# Pages a pool process reads before it is replaced by a new one. The peak memory of a pool process
# grew from 905 MiB over 100 cards to 1014 MiB over 1,000 (bench throughput, 200-dpi A5 cards), so
# a long run restarts processes, at the cost of loading the engine again (a few seconds).
PAGES_PER_PROCESS = 200


def default_workers() -> int:
    """Return the number of pool processes to use by default: one per CPU core."""
    return os.cpu_count() or 1


@dataclass(frozen=True)
class ThreadShare:
    """Threads each pool process gives the OCR engine and OpenCV, so N processes do not oversubscribe the cores."""

    threads: int

    @classmethod
    def for_workers(cls, workers: int) -> ThreadShare:
        return cls(max(1, (os.cpu_count() or 1) // max(1, workers)))


@dataclass(frozen=True)
class _ChildError:
    """A product error raised in a pool process, carried back as plain fields (its class may not unpickle)."""

    message_zh: str
    message_en: str
    exit_code: int

    def to_exception(self) -> CardCaptureError:
        error = CardCaptureError(self.message_zh, self.message_en)
        error.exit_code = self.exit_code
        return error


# State of one pool process, set by _start_child.
_child: dict[str, object] = {}


def _start_child(
    engine_name: str, template_dirs: tuple[str, ...], threads: int, history: dict | None, parent_pid: int
) -> None:
    """Load the engine and registry once per pool process, and end the process when ``parent_pid`` dies."""
    # A spawned process starts with the standard record factory, so it masks its own logs.
    from ocr.logmask import install as install_log_masking
    from ocr.worker import stop_with_parent

    install_log_masking()
    # A parent stopped by SIGKILL, SIGTERM or SIGHUP shuts no pool down. Without this, each pool
    # process (hundreds of MiB with its engine) would live on under init, blocked writing a result.
    stop_with_parent(parent_pid)
    # The engine reads this variable when it is built; a value the user set wins.
    os.environ.setdefault("HUKA_OCR_THREADS", str(threads))
    import cv2

    cv2.setNumThreads(threads)
    from ocr.engines import get_engine
    from ocr.registry import load_registry

    try:
        _child["engine"] = get_engine(engine_name)
        _child["registry"] = load_registry(template_dirs)
        _child["history"] = history
    except CardCaptureError as exc:
        # Raised again for the first page, where the parent can report it.
        _child["error"] = _ChildError(exc.message_zh, exc.message_en, exc.exit_code)
    log.info("pool process ready pid=%d engine=%s threads=%d", os.getpid(), engine_name, threads)


def _process_in_child(page: Page, encode_images: bool = True):
    from ocr.pipeline import process_page

    if "error" in _child:
        return _child["error"]
    try:
        result = process_page(page, engine=_child["engine"], registry=_child["registry"], history=_child["history"])
        if not encode_images:
            # The caller stores no image, so none travels back.
            result.straight_image = None
            return result
        return result.pack(page.image)
    except CardCaptureError as exc:
        return _ChildError(exc.message_zh, exc.message_en, exc.exit_code)


def _result(future: Future | None):
    if future is None:
        return None
    try:
        outcome = future.result()
    except BrokenProcessPool as exc:
        raise CardCaptureError(
            "识别进程意外退出（可能内存不足或被系统终止）。已入库的卡片不受影响，请用较小的 --workers 重新运行。",
            "an OCR pool process exited unexpectedly (out of memory or killed?); stored cards are kept, "
            "rerun with a smaller --workers",
        ) from exc
    if isinstance(outcome, _ChildError):
        raise outcome.to_exception()
    return outcome


def process_in_order(
    items: Iterable[Page | IngestFailure],
    *,
    engine_name: str,
    template_dirs: Iterable[str] = (),
    workers: int = 1,
    wanted: Callable[[Page], bool] = lambda page: True,
    history: dict | None = None,
    encode_images: bool = True,
) -> Iterator[tuple[Page | IngestFailure, object | None]]:
    """Yield ``(item, PageResult or None)`` for every item, in input order.

    A page for which ``wanted`` returns False, and every :class:`IngestFailure`,
    comes back with None and is not processed. ``wanted`` is called in input
    order before the page is sent to the pool. With ``workers`` 1 this process
    reads the first :data:`PAGES_PER_PROCESS` pages itself, with no pool. A
    longer run hands the rest to one pool process, replaced as in a pool of
    several, so no process reads more pages than that. ``history`` is the store's
    correction history for the confidence (:func:`ocr.confidence.field_history`).
    With ``encode_images`` a pool process returns both images as PNG
    (:meth:`ocr.pipeline.PageResult.pack`); without it, it returns no image.
    """
    from ocr.engines import get_engine
    from ocr.pipeline import process_page
    from ocr.registry import load_registry

    folders = tuple(template_dirs)
    if workers <= 1:
        items = iter(items)
        engine = get_engine(engine_name)
        registry = load_registry(folders)
        read = 0
        for item in items:
            if not (isinstance(item, Page) and wanted(item)):
                yield item, None
                continue
            yield item, process_page(item, engine=engine, registry=registry, history=history)
            read += 1
            if read >= PAGES_PER_PROCESS:
                break
        else:
            return
        log.info("one-process run continues in a pool process pages_read=%d", read)
        yield from _in_pool(items, engine_name, folders, 1, wanted, history, encode_images)
        return

    yield from _in_pool(items, engine_name, folders, workers, wanted, history, encode_images)


def _in_pool(
    items: Iterable[Page | IngestFailure],
    engine_name: str,
    folders: tuple[str, ...],
    workers: int,
    wanted: Callable[[Page], bool],
    history: dict | None,
    encode_images: bool,
) -> Iterator[tuple[Page | IngestFailure, object | None]]:
    """Run :func:`process_in_order` on a pool of ``workers`` processes, each replaced after :data:`PAGES_PER_PROCESS` pages."""
    share = ThreadShare.for_workers(workers)
    context = multiprocessing.get_context("spawn")
    log.info("process pool starting workers=%d threads_each=%d", workers, share.threads)
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_start_child,
        initargs=(engine_name, folders, share.threads, history, os.getpid()),
        max_tasks_per_child=PAGES_PER_PROCESS,
    ) as pool:
        pending: deque[tuple[Page | IngestFailure, Future | None]] = deque()
        for item in items:
            future = pool.submit(_process_in_child, item, encode_images) if isinstance(item, Page) and wanted(item) else None
            pending.append((item, future))
            # Hand back finished results at the head, and wait once too many pages are in flight.
            while pending and (len(pending) > workers * PAGES_AHEAD_PER_WORKER or _done(pending[0][1])):
                head, head_future = pending.popleft()
                yield head, _result(head_future)
        while pending:
            head, head_future = pending.popleft()
            yield head, _result(head_future)


def _done(future: Future | None) -> bool:
    return future is None or future.done()
