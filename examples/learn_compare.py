"""Measure a template learned from one blank card against the template the cards were printed from.

For one printed layout (a template JSON file, or the name of a built-in template):

1. draw a blank card of the layout (skewed and turned, as a careless scan would be),
2. learn a template from that blank with ``ocr.template_learn.learn_template``,
3. draw filled cards of the layout with ``sample_cards.generate_card``,
4. read every card three times with ``ocr.pipeline.process_page``: with the learned
   template alone, with the printed layout's own template alone, and with the
   built-in templates (what the product reads before anyone learns the layout),
5. print field accuracy, card-type accuracy and automation for each.

Run from the repository root::

    python examples/learn_compare.py domestic_guest_standard --cards 10
    python examples/learn_compare.py alt:foreign_guest:3 --cards 10
    python examples/learn_compare.py examples/unseen_layout/print_layout/domestic_guest_compact_print.json --cards 10
    python examples/learn_compare.py examples/campus_card/print_layout/campus_card_print.json \\
        --templates examples/campus_card --cards 10

Cards of a site's own card type get values drawn by field kind.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.template import Template  # noqa: E402
from ocr.engines import get_engine  # noqa: E402
from ocr.ingest import Page  # noqa: E402
from ocr.pipeline import process_page  # noqa: E402
from ocr.registry import Registry, load_registry  # noqa: E402
from ocr.template_learn import learn_template  # noqa: E402
from sample_cards import generate_card  # noqa: E402


@dataclass
class Score:
    """Field counts of one way of reading the cards."""

    cards: int = 0
    card_type_right: int = 0
    fields: int = 0
    correct: int = 0
    auto: int = 0
    seconds: float = 0.0
    wrong_fields: dict[str, int] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.correct / self.fields if self.fields else 0.0

    @property
    def automation(self) -> float:
        return self.auto / self.fields if self.fields else 0.0


def load_layout(source: str, registry: Registry) -> Template:
    """Return the printed layout: a built-in template by name, ``alt:CARD_TYPE:SEED``, or a template JSON file."""
    if source in registry.templates:
        return registry.templates[source]
    if source.startswith("alt:"):
        from sample_cards.layouts import alternative_template

        _prefix, card_type, seed = source.split(":")
        return alternative_template(card_type, int(seed), card_type_spec=registry.card_type(card_type))
    return Template.model_validate_json(Path(source).read_text(encoding="utf-8"))


def draw_blank(layout: Template, seed: int, quarter_turn: int, registry: Registry) -> np.ndarray:
    """Draw a blank card of ``layout``, with only its red serial number, scanned with skew and a quarter turn (BGR)."""
    image, _truth = generate_card(
        seed,
        layout.card_type,
        "printed",
        template=layout,
        dpi=200,
        blank=True,
        max_skew_deg=3.0,
        quarter_turn=quarter_turn,
        card_type_spec=registry.card_type(layout.card_type),
    )
    return cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)


def filled_card(seed: int, layout: Template, registry: Registry):
    """Return (RGB image, truth) of a filled card of ``layout``."""
    if layout.card_type in ("foreign_guest", "domestic_guest"):
        return generate_card(seed, layout.card_type, template=layout, dpi=200)
    return generate_card(
        seed, layout.card_type, template=layout, dpi=200, card_type_spec=registry.card_type(layout.card_type)
    )


def as_page(image, name: str) -> Page:
    """Wrap a generated RGB image as an ingested page, keyed by a hash of its pixels."""
    bgr = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)
    digest = hashlib.sha256(bgr.tobytes()).hexdigest()
    return Page(source=Path(name), page=1, page_count=1, file_sha256=digest, image=bgr, dpi=200.0)


def score_card(score: Score, page: Page, truth: dict, registry: Registry, engine) -> None:
    started = time.perf_counter()
    extraction = process_page(page, engine=engine, registry=registry).extraction
    score.seconds += time.perf_counter() - started
    score.cards += 1
    score.card_type_right += int(extraction.card_type == truth["card_type"])
    for key, expected in truth["fields"].items():
        got = extraction.fields.get(key)
        right = got is not None and got.value == expected
        score.fields += 1
        score.correct += int(right)
        score.auto += int(got is not None and not got.needs_review)
        if not right:
            score.wrong_fields[key] = score.wrong_fields.get(key, 0) + 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("layout", help="built-in template name or template JSON file of the printed layout")
    parser.add_argument("--cards", type=int, default=10, help="filled cards to read (default 10)")
    parser.add_argument("--seed", type=int, default=700, help="first generator seed (default 700)")
    parser.add_argument("--blank-turn", type=int, default=90, choices=(0, 90, 180, 270), help="quarter turn of the blank scan")
    parser.add_argument("--templates", action="append", default=[], help="folder with a site's own card type")
    args = parser.parse_args(argv)

    base = load_registry(tuple(args.templates))
    layout = load_layout(args.layout, base)
    engine = get_engine("rapidocr")

    with tempfile.TemporaryDirectory(prefix="huka-learn-") as tmp:
        blank_path = Path(tmp) / "blank.png"
        cv2.imwrite(str(blank_path), draw_blank(layout, args.seed, args.blank_turn, base))
        started = time.perf_counter()
        result = learn_template(blank_path, layout.card_type, f"learned_{layout.name}", template_dirs=args.templates, engine=engine)
        learn_seconds = time.perf_counter() - started
    if result.template is None:
        print("no template learned:", [c.message_en for c in result.checks])
        return 1

    ways = {
        "learned template": Registry(base.card_types, {result.template.name: result.template}),
        "printed layout's template": Registry(base.card_types, {layout.name: layout}),
        "built-in templates": Registry(base.card_types, dict(load_registry().templates)),
    }
    scores = {name: Score() for name in ways}
    for index in range(args.cards):
        image, truth = filled_card(args.seed + index, layout, base)
        page = as_page(image, f"card_{index:03d}.png")
        for name, registry in ways.items():
            score_card(scores[name], page, truth, registry, engine)

    print(f"layout: {args.layout}; blank turned {args.blank_turn} degrees; learned in {learn_seconds:.1f} s")
    print(f"labels found: {len(result.found)}/{len(result.fields)}; checks: {len(result.checks)}")
    for check in result.checks:
        print(f"  check {check.key or '-'} {check.code}: {check.message_en}")
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()} {platform.release()}, Python {platform.python_version()}")
    print("| read with | cards | card type right | field accuracy | automation | s per card |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, score in scores.items():
        print(
            f"| {name} | {score.cards} | {score.card_type_right}/{score.cards} | {score.accuracy:.1%} "
            f"({score.correct}/{score.fields}) | {score.automation:.1%} | {score.seconds / max(1, score.cards):.2f} |"
        )
    for name, score in scores.items():
        worst = sorted(score.wrong_fields.items(), key=lambda item: -item[1])[:6]
        print(f"wrong fields, {name}: {', '.join(f'{k} {n}' for k, n in worst) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
