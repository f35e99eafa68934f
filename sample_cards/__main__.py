"""Command line: ``python -m sample_cards OUT_DIR --count N --seed S``."""

from __future__ import annotations

import argparse
import logging
import sys

from sample_cards.fonts import FontNotFoundError
from ocr.errors import TemplateError
from ocr.registry import load_registry
from sample_cards.generate import IMAGE_FORMATS, STYLES, generate_stack, make_samples
from sample_cards.values import SUPPORTED_CARD_TYPES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sample_cards",
        description="生成带真值 JSON 的合成户卡扫描图。 / Generate synthetic registration-card scans with truth JSON.",
    )

    parser.add_argument("out_dir", help="输出目录 / output folder")
    parser.add_argument("--count", type=int, default=10, help="卡片数量（默认 10） / number of cards (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="第一张卡的种子，之后逐张加 1 / seed of the first card, +1 per card")

    parser.add_argument(
        "--card-type",
        action="append",
        help="卡片类型，可重复，轮流使用（默认两种内置类型都用） / card type, repeatable, used in turn "
        f"(default: both of {', '.join(SUPPORTED_CARD_TYPES)})",
    )
    parser.add_argument(
        "--templates",
        action="append",
        default=[],
        metavar="DIR",
        help="另含卡片类型与模板 JSON 的目录，可重复 / extra folder of card-type and template JSON files, repeatable",
    )
    parser.add_argument("--style", choices=STYLES, help="填写方式（默认随机） / filling style (default: random per card)")
    parser.add_argument("--dpi", type=int, default=200, help="分辨率，每英寸像素（默认 200） / resolution in dots per inch (default 200)")

    parser.add_argument(
        "--max-skew",
        type=float,
        default=4.0,
        help="最大倾斜角度，单位度，0 到 45（默认 4）；照片模式下为最大旋转角度 / maximum skew in degrees, "
        "0 to 45 (default 4); the maximum rotation with --photo",
    )
    parser.add_argument(
        "--quarter-turns",
        action="store_true",
        help="随机旋转 0/90/180/270 度 / turn scans by a random multiple of 90 degrees",
    )
    parser.add_argument(
        "--no-degrade",
        action="store_true",
        help="不加扫描效果：白纸、无倾斜、无噪声 / clean cards: white paper, no skew, noise, blur or JPEG artefacts",
    )
    parser.add_argument(
        "--photo",
        action="store_true",
        help="手机拍照：桌面背景、透视变形、光照不均与边缘阴影 / phone photos: desk background, perspective, "
        "uneven light and edge shadows",
    )
    parser.add_argument(
        "--border-shadow",
        action="store_true",
        help="扫描仪深色盖板边框及沿一边的阴影带 / dark scanner-lid border and a shadow band along one card edge",
    )
    parser.add_argument(
        "--stamp",
        action="store_true",
        help="在一个填写栏上加红色圆形公章 / a red round seal partly over one value zone",
    )
    parser.add_argument(
        "--blank",
        action="store_true",
        help="空白卡：只有印刷表格和编号 / blank cards: the printed form and serial number only",
    )
    parser.add_argument(
        "--alternative-layout",
        type=int,
        metavar="SEED",
        help="改用由种子生成的另一种版式 / use the alternative layout made from SEED instead of the built-in template",
    )
    parser.add_argument(
        "--invalid-rate",
        type=float,
        default=0.0,
        help="含一个无效值的卡片比例，0 到 1（默认 0） / share of cards with one invalid value, 0 to 1 (default 0)",
    )

    parser.add_argument("--format", choices=IMAGE_FORMATS, default="jpg", help="图像格式（默认 jpg） / image format (default jpg)")
    parser.add_argument(
        "--samples",
        action="store_true",
        help="改为重新生成仓库中的 12 张示例卡，忽略其他选项 / write the 12 committed sample cards instead; other options are ignored",
    )
    parser.add_argument("--quiet", action="store_true", help="不显示进度条 / hide the progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s")
    try:
        if args.samples:
            paths = make_samples(args.out_dir)
        else:
            paths = generate_stack(
                args.out_dir,
                args.count,
                seed=args.seed,
                card_types=args.card_type or SUPPORTED_CARD_TYPES,
                image_format=args.format,
                progress=not args.quiet,
                style=args.style,
                dpi=args.dpi,
                degrade=not args.no_degrade,
                max_skew_deg=args.max_skew,
                quarter_turns=args.quarter_turns,
                invalid_rate=args.invalid_rate,
                capture="photo" if args.photo else "scan",
                border_shadow=args.border_shadow,
                stamp=args.stamp,
                blank=args.blank,
                layout_seed=args.alternative_layout,
                registry=load_registry(args.templates),
            )
    except (ValueError, FontNotFoundError, TemplateError) as exc:
        print(f"错误 / error: {exc}", file=sys.stderr)
        return 2
    print(f"已生成 {len(paths)} 张卡片：{args.out_dir} / wrote {len(paths)} cards to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
