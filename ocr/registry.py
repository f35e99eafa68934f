"""Loading of card types and templates: the built-in data files plus a site's own folders.

A template's confidence calibration is the file ``<template name>.calibration.json``
in the same folder. A template without one (a layout learned at a site) uses
the calibration of the built-in template of its card type, whose weights and
thresholds were fitted on that layout.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from models.card_type import CardTypeSpec
from models.template import Calibration, Template
from ocr.errors import TemplateError

__all__ = ["Registry", "load_registry", "reload_registry"]

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).parent
# Suffix of a template's calibration file; such files are neither templates nor card types.
CALIBRATION_SUFFIX = ".calibration.json"


class Registry:
    """Card types by name and templates by name, checked against each other."""

    def __init__(
        self,
        card_types: dict[str, CardTypeSpec],
        templates: dict[str, Template],
        calibrations: dict[str, Calibration] | None = None,
    ) -> None:
        self.card_types = card_types
        self.templates = templates
        # Calibration by template name.
        self.calibrations = calibrations or {}
        for template in templates.values():
            spec = card_types.get(template.card_type)
            if spec is None:
                raise TemplateError(
                    f"模板 {template.name} 的卡片类型 {template.card_type} 未定义，请先添加该卡片类型文件。",
                    f"template {template.name} names card type {template.card_type}, which is not defined",
                )
            missing = set(spec.keys) - {f.key for f in template.fields}
            unknown = {f.key for f in template.fields} - set(spec.keys)
            if unknown:
                raise TemplateError(
                    f"模板 {template.name} 含有卡片类型 {spec.card_type} 没有的字段：{', '.join(sorted(unknown))}",
                    f"template {template.name} has fields unknown to {spec.card_type}: {', '.join(sorted(unknown))}",
                )
            if missing:
                log.warning("template %s has no zone for %d fields: %s", template.name, len(missing), sorted(missing))

    def card_type(self, name: str) -> CardTypeSpec:
        return self.card_types[name]

    def templates_for(self, card_type: str) -> list[Template]:
        return [t for t in self.templates.values() if t.card_type == card_type]

    def calibration(self, template_name: str) -> Calibration | None:
        """Return the template's calibration, else that of another template of its card type, else None."""
        found = self.calibrations.get(template_name)
        if found is not None:
            return found
        template = self.templates.get(template_name)
        if template is None:
            return None
        for other in sorted(self.templates_for(template.card_type), key=lambda t: t.name):
            if other.name in self.calibrations:
                return self.calibrations[other.name]
        return None


def _read_models(folder: Path, model: type, what_zh: str) -> list:
    """Read every JSON file in ``folder`` that is a ``model``: templates carry "title_box", card types do not."""
    items = []
    for path in sorted(folder.glob("*.json")):
        if path.name.endswith(CALIBRATION_SUFFIX):
            continue
        try:
            text = path.read_text(encoding="utf-8")
            is_template = '"title_box"' in text
            if is_template != (model is Template):
                continue
            items.append(model.model_validate_json(text))
        except (ValidationError, ValueError, UnicodeDecodeError) as exc:
            raise TemplateError(
                f"{what_zh}文件 {path} 无效：{exc}。请参照 ocr/templates 与 ocr/card_types 中的内置文件修改后重试。",
                f"invalid {model.__name__} file {path}: {exc}",
            ) from exc
    return items


def read_calibrations(folder: Path) -> dict[str, Calibration]:
    """Read every ``*.calibration.json`` in ``folder``, by template name; raise TemplateError naming a bad file."""
    found: dict[str, Calibration] = {}
    for path in sorted(folder.glob(f"*{CALIBRATION_SUFFIX}")):
        expected = path.name[: -len(CALIBRATION_SUFFIX)]
        try:
            calibration = Calibration.model_validate_json(path.read_text(encoding="utf-8"))
        except (ValidationError, ValueError, UnicodeDecodeError) as exc:
            raise TemplateError(
                f"置信度校准文件 {path} 无效：{exc}。请运行 python -m ocr bench calibrate 重新生成，或删除该文件"
                "（删除后此模板按引擎得分与卡片类型的阈值判断）。",
                f"invalid calibration file {path}: {exc}; rerun python -m ocr bench calibrate or delete the file",
            ) from exc
        if calibration.template != expected:
            raise TemplateError(
                f"置信度校准文件 {path} 属于模板 {calibration.template}，但文件名指向模板 {expected}。"
                f"请把文件改名为 {calibration.template}{CALIBRATION_SUFFIX}。",
                f"calibration file {path} is for template {calibration.template}, but its name says {expected}",
            )
        found[expected] = calibration
    return found


@lru_cache(maxsize=8)
def _load(extra_dirs: tuple[str, ...]) -> Registry:
    card_types = {c.card_type: c for c in _read_models(BUILTIN_DIR / "card_types", CardTypeSpec, "卡片类型")}
    templates = {t.name: t for t in _read_models(BUILTIN_DIR / "templates", Template, "模板")}
    calibrations = read_calibrations(BUILTIN_DIR / "templates")
    for extra in extra_dirs:
        folder = Path(extra)
        if not folder.is_dir():
            raise TemplateError(f"模板目录 {folder} 不存在。", f"template folder {folder} does not exist")
        for spec in _read_models(folder, CardTypeSpec, "卡片类型"):
            card_types[spec.card_type] = spec
        for template in _read_models(folder, Template, "模板"):
            templates[template.name] = template
            # A site's template replaces a built-in one of the same name, and so does its calibration.
            calibrations.pop(template.name, None)
        calibrations.update(read_calibrations(folder))
    return Registry(card_types, templates, calibrations)


def load_registry(extra_dirs: list[str] | tuple[str, ...] = ()) -> Registry:
    """Return the built-in card types and templates plus those found in ``extra_dirs``."""
    return _load(tuple(str(d) for d in extra_dirs))


def reload_registry() -> None:
    """Forget the loaded folders, so the next :func:`load_registry` reads files written since."""
    _load.cache_clear()
