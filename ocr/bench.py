"""Benchmark: the whole pipeline on generated cards whose truth is known.

Reports field accuracy, automation rate (share of fields not sent to review),
error rate among auto-accepted fields, card-type accuracy, cards per second
and peak memory, and appends them to docs/benchmarks.md with the command and
the machine that produced them.
"""

from __future__ import annotations

import logging
import os
import platform
import resource
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ocr.engines import get_engine
from ocr.ingest import Page, iter_pages
from ocr.pipeline import process_page
from ocr.registry import load_registry

__all__ = ["BenchResult", "machine_description", "run_pipeline_bench", "write_report"]

log = logging.getLogger(__name__)


@dataclass
class Tally:
    """Field counts of one group of cards."""

    fields: int = 0
    correct: int = 0
    auto: int = 0
    auto_wrong: int = 0

    def add(self, correct: bool, auto: bool) -> None:
        self.fields += 1
        self.correct += int(correct)
        self.auto += int(auto)
        self.auto_wrong += int(auto and not correct)

    @property
    def accuracy(self) -> float:
        return self.correct / self.fields if self.fields else 0.0

    @property
    def automation(self) -> float:
        return self.auto / self.fields if self.fields else 0.0

    @property
    def auto_error(self) -> float:
        return self.auto_wrong / self.auto if self.auto else 0.0


@dataclass
class BenchResult:
    engine: str
    cards: int
    seconds: float
    peak_rss_mib: float
    card_type_right: int = 0
    overall: Tally = field(default_factory=Tally)
    by_style: dict[str, Tally] = field(default_factory=dict)
    by_field: dict[str, Tally] = field(default_factory=dict)

    @property
    def cards_per_second(self) -> float:
        return self.cards / self.seconds if self.seconds else 0.0


def machine_description() -> str:
    """Return a one-line description of this machine: CPU model, cores, memory, OS, Python."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{memory_kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        memory = "unknown memory"
    return f"{cpu}, {os.cpu_count()} cores, {memory}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_pipeline_bench(cards: int, seed: int, engine_name: str, dpi: int = 200) -> BenchResult:
    """Generate ``cards`` cards, run the pipeline on each, compare with the truth."""
    from sample_cards import generate_card

    engine = get_engine(engine_name)
    registry = load_registry()
    with tempfile.TemporaryDirectory(prefix="huka-bench-") as tmp:
        folder = Path(tmp)
        truths: dict[str, dict] = {}
        for index in range(cards):
            card_type = ("foreign_guest", "domestic_guest")[index % 2]
            image, truth = generate_card(seed + index, card_type, dpi=dpi)
            path = folder / f"card_{index:05d}.jpg"
            image.save(path, quality=90)
            truths[path.name] = truth

        # Warm the engine so that model loading is not counted as card time.
        engine.read_zone(__import__("numpy").full((48, 160, 3), 255, dtype="uint8"))

        result = BenchResult(engine=engine_name, cards=cards, seconds=0.0, peak_rss_mib=0.0)
        started = time.perf_counter()
        for item in iter_pages([folder], pdf_dpi=dpi):
            if not isinstance(item, Page):
                log.warning("bench card unreadable: %s", item.message("en"))
                continue
            truth = truths[Path(item.source).name]
            extraction = process_page(item, engine=engine, registry=registry).extraction
            result.card_type_right += int(extraction.card_type == truth["card_type"])
            style = truth.get("style", "printed")
            for key, expected in truth["fields"].items():
                got = extraction.fields.get(key)
                correct = got is not None and got.value == expected
                auto = got is not None and not got.needs_review and not extraction.card_reasons
                result.overall.add(correct, auto)
                result.by_style.setdefault(style, Tally()).add(correct, auto)
                result.by_field.setdefault(key, Tally()).add(correct, auto)
        result.seconds = time.perf_counter() - started
        result.peak_rss_mib = _peak_rss_mib()
    return result


def _row(name: str, tally: Tally) -> str:
    return (
        f"| {name} | {tally.fields} | {tally.accuracy:.1%} | {tally.automation:.1%} | "
        f"{tally.auto_error:.2%} ({tally.auto_wrong}/{tally.auto}) |"
    )


def format_report(result: BenchResult, command: str) -> str:
    """Return the Markdown section for one benchmark run."""
    lines = [
        f"## Pipeline, {result.engine}, {result.cards} cards ({datetime.now().strftime('%Y-%m-%d %H:%M')})",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine_description()}",
        f"- Card type right: {result.card_type_right}/{result.cards}",
        f"- Speed: {result.cards_per_second:.2f} cards/s ({result.seconds:.1f} s in all, one process), "
        f"peak memory {result.peak_rss_mib:.0f} MiB",
        "",
        "| group | fields | accuracy | automation | error among auto-accepted |",
        "|---|---|---|---|---|",
        _row("all", result.overall),
    ]
    lines += [_row(f"style: {style}", tally) for style, tally in sorted(result.by_style.items())]
    lines += [_row(f"field: {key}", tally) for key, tally in sorted(result.by_field.items())]
    return "\n".join(lines) + "\n"


def write_report(section: str, path: Path = Path("docs/benchmarks.md")) -> Path:
    """Append a section to the benchmark page, creating it with a heading when missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(
            "# Benchmarks\n\nEach section is appended by `python -m ocr bench …` and names the command and "
            "machine that produced it.\n\n",
            encoding="utf-8",
        )
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("\n" + section)
    return path


def command_line() -> str:
    return "python -m ocr " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
