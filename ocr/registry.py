"""Loading of card types and templates: the built-in data files plus a site's own folders."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from models.card_type import CardTypeSpec
from models.template import Template
from ocr.errors import TemplateError

__all__ = ["Registry", "load_registry", "reload_registry"]

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).parent


class Registry:
    """Card types by name and templates by name, checked against each other."""

    def __init__(self, card_types: dict[str, CardTypeSpec], templates: dict[str, Template]) -> None:
        self.card_types = card_types
        self.templates = templates
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


def _read_models(folder: Path, model: type, what_zh: str) -> list:
    """Read every JSON file in ``folder`` that is a ``model``: templates carry "title_box", card types do not."""
    items = []
    for path in sorted(folder.glob("*.json")):
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


@lru_cache(maxsize=8)
def _load(extra_dirs: tuple[str, ...]) -> Registry:
    card_types = {c.card_type: c for c in _read_models(BUILTIN_DIR / "card_types", CardTypeSpec, "卡片类型")}
    templates = {t.name: t for t in _read_models(BUILTIN_DIR / "templates", Template, "模板")}
    for extra in extra_dirs:
        folder = Path(extra)
        if not folder.is_dir():
            raise TemplateError(f"模板目录 {folder} 不存在。", f"template folder {folder} does not exist")
        for spec in _read_models(folder, CardTypeSpec, "卡片类型"):
            card_types[spec.card_type] = spec
        for template in _read_models(folder, Template, "模板"):
            templates[template.name] = template
    return Registry(card_types, templates)


def load_registry(extra_dirs: list[str] | tuple[str, ...] = ()) -> Registry:
    """Return the built-in card types and templates plus those found in ``extra_dirs``."""
    return _load(tuple(str(d) for d in extra_dirs))


def reload_registry() -> None:
    """Forget the loaded folders, so the next :func:`load_registry` reads files written since."""
    _load.cache_clear()
