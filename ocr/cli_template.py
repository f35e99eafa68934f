"""Command line for templates: ``python -m ocr template learn BLANK --card-type TYPE --name NAME --out DIR``.

Messages are Chinese unless ``--lang en`` is given, as for every command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ocr.errors import ExitCode

__all__ = ["template_app"]

template_app = typer.Typer(
    no_args_is_help=True,
    help="模板：从空白卡学习本单位的卡片版式。 / Templates: learn a site's own card layout from a blank card.",
)


def _say(zh: str, en: str) -> None:
    # Imported here, because ocr.cli imports this module while it loads.
    from ocr.cli import say

    say(zh, en)


def _warn(zh: str, en: str) -> None:
    from ocr.cli import warn

    warn(zh, en)


def _percent(box) -> str:
    """Format a relative box as percentages of the card: (x0, y0)-(x1, y1)."""
    return f"({box.x0:.1%}, {box.y0:.1%})-({box.x1:.1%}, {box.y1:.1%})"


_METHODS = {
    "next_cell": ("标签右侧的单元格", "the cell right of the label"),
    "same_cell": ("标签所在单元格的其余部分", "the rest of the label's cell"),
    "underline": ("标签右侧的下划线", "the underline right of the label"),
    "row_space": ("同一行到下一个标签的空白", "the space up to the next label on the row"),
    "red_ink": ("红色印刷编号", "the red printed number"),
}


def _report(result, path: Path | None) -> None:
    """Print the fields found, those not found with the label text looked for, and what to check."""
    template = result.template
    total = len(result.fields)
    _say(f"找到 {len(result.found)}/{total} 个字段：", f"found {len(result.found)} of {total} fields:")
    for learned in result.found:
        spec = learned.spec
        zone = template.field(spec.key).value_box if template is not None and learned.value_px is not None else None
        method_zh, method_en = _METHODS.get(learned.method, ("未定", "none"))
        labels = " / ".join(learned.label_text)
        zone_text = _percent(zone) if zone is not None else "—"
        _say(
            f"  {spec.key}（{spec.label_zh} / {spec.label_en}）：标签“{labels}”，相似度 {learned.similarity:.2f}；"
            f"填写区 {zone_text}，取自{method_zh}",
            f"  {spec.key} ({spec.label_zh} / {spec.label_en}): label “{labels}”, similarity {learned.similarity:.2f}; "
            f"value zone {zone_text}, from {method_en}",
        )
    for learned in result.missing:
        spec = learned.spec
        looked_for = "”、“".join(text for text in (spec.label_zh, spec.label_en) if text.strip())
        required_zh, required_en = ("必填", "required") if spec.required else ("选填", "optional")
        zone_zh = zone_en = ""
        if learned.value_px is not None and template is not None:
            zone_zh = f"；已按红色印刷编号定出填写区 {_percent(template.field(spec.key).value_box)}"
            zone_en = f"; its zone was placed on the red printed number, {_percent(template.field(spec.key).value_box)}"
        _say(
            f"  未找到 {spec.key}（{required_zh}）：卡上没有找到标签“{looked_for}”{zone_zh}",
            f"  not found: {spec.key} ({required_en}): no printed label “{looked_for.replace('”、“', '” or “')}” "
            f"on the card{zone_en}",
        )
    if result.checks:
        _say("请核对：", "please check:")
        for check in result.checks:
            prefix = f"  [{check.key}] " if check.key else "  "
            _say(prefix + check.message_zh, prefix + check.message_en)
    if template is not None:
        _say(
            f"标题：{' / '.join(template.title_text)}；版式宽高比 {template.aspect_ratio:.3f}；"
            f"表格线 {len(template.rules)} 条。",
            f"title: {' / '.join(template.title_text)}; aspect ratio {template.aspect_ratio:.3f}; "
            f"{len(template.rules)} printed lines.",
        )
    if path is not None:
        _say(
            f"已写出模板 {path}。识别时用 --templates {path.parent} 载入。",
            f"template written to {path}; load it with --templates {path.parent}",
        )


@template_app.command("learn")
def learn(
    blank: Annotated[Path, typer.Argument(help="空白卡的扫描件（JPEG、PNG、TIFF、PDF 第 1 页）/ scan of a blank card")],
    card_type: Annotated[str, typer.Option("--card-type", help="卡片类型名，如 domestic_guest / card type name")],
    name: Annotated[str, typer.Option("--name", help="模板名（字母、数字、_ . -）/ template name")],
    out: Annotated[Path, typer.Option("--out", help="写出 <模板名>.json 的目录 / folder for <name>.json")],
    templates: Annotated[
        Optional[list[Path]],
        typer.Option("--templates", help="自定义卡片类型与模板所在目录，可多次指定 / folder of a site's own card types"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="覆盖已有的同名模板文件 / overwrite an existing file")] = False,
    dpi: Annotated[
        int, typer.Option("--dpi", min=50, max=1200, help="PDF 页面渲染分辨率（dpi）/ PDF render resolution")
    ] = 200,
) -> None:
    """从一张空白卡学习版式，写出模板。 / Learn a layout from one blank card and write its template.

    退出码：0 成功；5 必填字段的标签未找到（已写出含其余字段的模板，请补全）或标签太少无法生成模板。
    Exit codes: 0 done; 5 a required field's label was not found (the template is written with the
    other fields, complete it by hand) or too few labels were found to make a template.
    """
    from ocr.template_learn import learn_template, write_template

    template_dirs = [str(folder) for folder in templates or []]
    _say(f"学习版式：{blank}（卡片类型 {card_type}）", f"learning the layout of {blank} (card type {card_type})")
    result = learn_template(blank, card_type, name, template_dirs=template_dirs, pdf_dpi=dpi)

    path = None
    if result.template is not None:
        path = write_template(result.template, out, template_dirs=template_dirs, overwrite=force)
    _report(result, path)

    if result.template is None:
        _warn("标签太少，未生成模板。", "too few labels found; no template written")
        raise typer.Exit(ExitCode.TEMPLATE_INVALID)
    if result.missing_required:
        keys = ", ".join(f.spec.key for f in result.missing_required)
        _warn(
            f"必填字段的标签未找到：{keys}。模板已写出但缺少这些字段，请在 {path} 中补上其位置，或检查卡片类型的标签文字。",
            f"labels of required fields not found: {keys}; the template is written without them, so add their "
            f"zones to {path} by hand or check the card type's label text",
        )
        raise typer.Exit(ExitCode.TEMPLATE_INVALID)
