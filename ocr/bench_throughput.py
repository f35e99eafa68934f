"""Throughput benchmark: cards per second and memory for 1, 2 and N workers on one generated stack.

``python -m ocr bench throughput --cards N [--workers 1,2,4]`` generates N
200-dpi A5 scans with :func:`sample_cards.generate_card` and stores them, end
to end (read, OCR, store into a new SQLite file), once per worker count, each
run in a fresh process so that no engine or cache carries over. It measures:

- wall seconds and cards per second;
- CPU seconds per card over every process of the run (the run process and its
  pool). A shared or loaded machine changes them far less than wall time.
  ``cards per CPU-second`` is the per-core throughput;
- peak resident memory of each OCR process (``ru_maxrss``: the run process for
  one worker, the largest pool process otherwise) and of the run process.

Every OCR process runs its engine on one thread, so the runs compare per core.
In the same run, on the same images, it times plain full-page OCR by each
engine with its own defaults but one thread: the ``tesseract`` command line
(chi_sim+eng, ``OMP_THREAD_LIMIT=1``) on each file, and rapidocr's
``RapidOCR()`` on each image, each in a process of its own.
The results are appended to docs/benchmarks.md.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from ocr.bench import command_line, machine_description, write_report
from ocr.engines import ENGINE_NAMES

__all__ = ["BaselineRun", "ThroughputReport", "WorkerRun", "bench_throughput_command", "format_throughput", "run_throughput"]

log = logging.getLogger(__name__)

# The goals the summary compares against.
GOAL_CARDS_PER_CORE_S = 2.0
GOAL_PEAK_MIB = 1024.0


@dataclass
class WorkerRun:
    """One end-to-end run of the stack with ``workers`` OCR processes."""

    workers: int
    threads_each: int
    cards: int
    stored: int
    wall_s: float
    cpu_s: float
    # Peak resident memory of the largest OCR process and of the run process, in MiB.
    peak_ocr_mib: float
    peak_run_mib: float

    @property
    def cards_per_s(self) -> float:
        return self.cards / self.wall_s if self.wall_s else 0.0

    @property
    def cpu_s_per_card(self) -> float:
        return self.cpu_s / self.cards if self.cards else 0.0

    @property
    def cards_per_cpu_s(self) -> float:
        return self.cards / self.cpu_s if self.cpu_s else 0.0


@dataclass
class BaselineRun:
    """Plain full-page OCR of every image of the stack by one engine, with the engine's defaults."""

    engine: str
    cards: int
    wall_s: float
    cpu_s: float
    peak_mib: float
    lines: int

    @property
    def cpu_s_per_card(self) -> float:
        return self.cpu_s / self.cards if self.cards else 0.0

    @property
    def wall_s_per_card(self) -> float:
        return self.wall_s / self.cards if self.cards else 0.0


@dataclass
class ThroughputReport:
    cards: int
    seed: int
    engine: str
    generate_s: float
    runs: list[WorkerRun] = field(default_factory=list)
    baselines: list[BaselineRun] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _rusage() -> tuple[float, float, float]:
    """Return (CPU seconds of this process and its waited-for children, peak MiB of this process, of the largest child)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    # ru_maxrss is in KiB on Linux.
    return cpu, own.ru_maxrss / 1024, children.ru_maxrss / 1024


def _generate(folder: Path, cards: int, seed: int) -> None:
    from sample_cards import generate_card

    for index in range(cards):
        card_type = ("foreign_guest", "domestic_guest")[index % 2]
        image, _truth = generate_card(seed + index, card_type, dpi=200)
        image.save(folder / f"card_{index:05d}.jpg", quality=90)


def _ingest_run(folder: str, data_dir: str, workers: int, engine: str, results) -> None:
    """Child process: ingest the stack into a new store and report times and memory."""
    from ocr.pipeline import ingest_paths
    from ocr.store import Store

    # One engine thread per OCR process, so that each worker uses one core and the runs compare per core.
    threads = 1
    os.environ["HUKA_OCR_THREADS"] = str(threads)
    store = Store(data_dir=Path(data_dir))
    cpu_before, _, _ = _rusage()
    started = time.perf_counter()
    report = ingest_paths([folder], store, batch="bench", engine_name=engine, workers=workers)
    wall = time.perf_counter() - started
    cpu_after, peak_self, peak_children = _rusage()
    store.close()
    # One worker reads in this process, and past PAGES_PER_PROCESS pages also in one pool process.
    peak_ocr = max(peak_self, peak_children) if workers == 1 else peak_children
    results.put(
        asdict(
            WorkerRun(
                workers=workers,
                threads_each=threads,
                cards=report.pages,
                stored=report.stored,
                wall_s=wall,
                cpu_s=cpu_after - cpu_before,
                peak_ocr_mib=peak_ocr,
                peak_run_mib=peak_self,
            )
        )
    )


def _rapidocr_run(images: list[str], results) -> None:
    """Child process: rapidocr full-page OCR of each image with the library's defaults."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import cv2
    from rapidocr import RapidOCR

    # The library's defaults except the thread count, which is one as in the pipeline runs.
    ocr = RapidOCR(params={"Global.log_level": "error", "EngineConfig.onnxruntime.intra_op_num_threads": 1})
    ocr(cv2.imread(images[0]))  # the model load is not counted
    cpu_before, _, _ = _rusage()
    started = time.perf_counter()
    lines = 0
    for path in images:
        result = ocr(cv2.imread(path))
        lines += len(result.txts or ())
    wall = time.perf_counter() - started
    cpu_after, peak, _ = _rusage()
    results.put(asdict(BaselineRun("rapidocr", len(images), wall, cpu_after - cpu_before, peak, lines)))


def _tesseract_run(images: list[str], results) -> None:
    """Child process: the tesseract command line on each image, one after another, with its default page segmentation."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    lines = 0
    for path in images:
        done = subprocess.run(
            ["tesseract", path, "stdout", "-l", "chi_sim+eng"],
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ, OMP_THREAD_LIMIT="1"),
        )
        lines += sum(1 for line in done.stdout.splitlines() if line.strip())
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    results.put(asdict(BaselineRun("tesseract", len(images), wall, cpu, cpu_after.ru_maxrss / 1024, lines)))


def _in_child(target, *args) -> dict:
    """Run ``target(*args, results)`` in a fresh spawned process and return what it put in ``results``."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=target, args=(*args, results))
    process.start()
    try:
        outcome = results.get()
    finally:
        process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"benchmark process {target.__name__} exited with {process.exitcode}")
    return outcome


def run_throughput(
    cards: int, worker_counts: list[int], *, seed: int = 5000, engine: str = "rapidocr", baselines: bool = True
) -> ThroughputReport:
    """Generate the stack once, then run it end to end for each worker count and time the plain-OCR baselines."""
    with tempfile.TemporaryDirectory(prefix="huka-throughput-") as tmp:
        folder = Path(tmp) / "stack"
        folder.mkdir()
        started = time.perf_counter()
        _generate(folder, cards, seed)
        report = ThroughputReport(cards=cards, seed=seed, engine=engine, generate_s=time.perf_counter() - started)

        for workers in worker_counts:
            data_dir = Path(tmp) / f"store-{workers}"
            outcome = _in_child(_ingest_run, str(folder), str(data_dir), workers, engine)
            report.runs.append(WorkerRun(**outcome))
            log.info("throughput run workers=%d cards/s=%.2f", workers, report.runs[-1].cards_per_s)
            shutil.rmtree(data_dir, ignore_errors=True)

        if baselines:
            images = sorted(str(path) for path in folder.glob("*.jpg"))
            if shutil.which("tesseract") is None:
                report.skipped.append("tesseract: command not found (apt-get install tesseract-ocr tesseract-ocr-chi-sim)")
            else:
                report.baselines.append(BaselineRun(**_in_child(_tesseract_run, images)))
            report.baselines.append(BaselineRun(**_in_child(_rapidocr_run, images)))
    return report


def format_throughput(report: ThroughputReport, command: str) -> str:
    """Return the Markdown section for one throughput run."""
    lines = [
        f"## Throughput, {report.engine}, {report.cards} cards ({datetime.now().strftime('%Y-%m-%d %H:%M')})",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine_description()}",
        f"- Stack: {report.cards} generated 200-dpi A5 scans (`sample_cards.generate_card`, seed {report.seed}, "
        "JPEG quality 90), foreign and domestic cards in turn; generating them took "
        f"{report.generate_s:.1f} s and is not counted.",
        "- End to end: read, OCR and store into a new SQLite file (`ingest --workers N`), each worker count in a "
        "fresh process. CPU seconds count every process of the run; cards per CPU-second is the per-core rate.",
        "",
        "| workers | threads each | cards stored | wall s | cards/s | CPU s per card | cards per CPU-second "
        "| peak MiB per OCR process | peak MiB of the run process |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in report.runs:
        lines.append(
            f"| {run.workers} | {run.threads_each} | {run.stored}/{run.cards} | {run.wall_s:.1f} | {run.cards_per_s:.2f} "
            f"| {run.cpu_s_per_card:.2f} | {run.cards_per_cpu_s:.2f} | {run.peak_ocr_mib:.0f} | {run.peak_run_mib:.0f} |"
        )
    if report.runs:
        first = report.runs[0]
        lines.append("")
        for run in report.runs[1:]:
            if first.workers == 1 and first.cards_per_s:
                lines.append(
                    f"- Scaling: {run.workers} workers ran {run.cards_per_s / first.cards_per_s:.2f}x as fast as 1 "
                    f"in wall time (linear would be {run.workers}x on {os.cpu_count()} free cores); their per-core rate "
                    f"was {run.cards_per_cpu_s / first.cards_per_cpu_s:.2f}x that of 1 worker (1.00 is linear)."
                )
    if report.baselines:
        lines += [
            "",
            "Plain full-page OCR of the same images, one process, each engine with its own defaults but one thread "
            "(`tesseract FILE stdout -l chi_sim+eng` with OMP_THREAD_LIMIT=1; rapidocr `RapidOCR()` with "
            "intra_op_num_threads 1):",
            "",
            "| engine | images | wall s per image | CPU s per image | lines read | peak MiB |",
            "|---|---|---|---|---|---|",
        ]
        for base in report.baselines:
            lines.append(
                f"| {base.engine} | {base.cards} | {base.wall_s_per_card:.2f} | {base.cpu_s_per_card:.2f} "
                f"| {base.lines} | {base.peak_mib:.0f} |"
            )
        same = next((b for b in report.baselines if b.engine == report.engine), None)
        one = next((r for r in report.runs if r.workers == 1), None)
        if same is not None and one is not None and same.cpu_s_per_card:
            lines += [
                "",
                f"- The pipeline took {one.cpu_s_per_card / same.cpu_s_per_card:.2f}x the CPU time of plain "
                f"full-page {same.engine} OCR per card (goal: at most 0.5x).",
            ]
    for skipped in report.skipped:
        lines.append(f"- Skipped {skipped}")
    return "\n".join(lines) + "\n"


def _parse_workers(value: str) -> list[int]:
    try:
        counts = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise typer.BadParameter(f"无效的进程数列表 {value!r}，例如 1,2,4 / invalid worker list {value!r}, e.g. 1,2,4")
    return list(dict.fromkeys(counts))


def bench_throughput_command(
    cards: Annotated[int, typer.Option("--cards", min=1, help="生成的卡片数 / number of generated cards")] = 20,
    workers: Annotated[
        Optional[str],
        typer.Option("--workers", help="逗号分隔的进程数，默认 1,2,<CPU 核数> / comma-separated worker counts, default 1,2,<cores>"),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="随机种子 / generator seed")] = 5000,
    engine: Annotated[
        Literal[ENGINE_NAMES], typer.Option("--engine", case_sensitive=False, help="识别引擎 / OCR engine")
    ] = "rapidocr",
    baselines: Annotated[
        bool,
        typer.Option("--baselines/--no-baselines", help="同时测量整页 OCR 的耗时 / also time plain full-page OCR"),
    ] = True,
    report: Annotated[
        Optional[Path], typer.Option("--report", help="结果追加到此文件 / Markdown file to append to")
    ] = Path("docs/benchmarks.md"),
) -> None:
    """测量 1、2、N 个识别进程的吞吐量与内存，并与整页 OCR 对比。 / Measure throughput and memory for 1, 2 and N workers against full-page OCR."""
    counts = _parse_workers(workers or f"1,2,{os.cpu_count() or 1}")
    result = run_throughput(cards, counts, seed=seed, engine=engine, baselines=baselines)
    section = format_throughput(result, command_line())
    typer.echo(section)
    if report is not None:
        path = write_report(section, report)
        typer.echo(f"结果已追加到 {path} / results appended to {path}")
