"""Per-browser-session state of the review app: language, open card, messages, and the page context.

Everything lives in ``st.session_state`` under the keys below, so tests can
read and set it. The store is shared by all sessions of one server process.
The signed-in user is kept by :mod:`review_app.auth`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import streamlit as st

from ocr.accounts import Account
from ocr.errors import TemplateError
from ocr.registry import Registry, load_registry
from ocr.store import Store, default_data_dir, default_db_url
from review_app.texts import text

__all__ = [
    "Flash",
    "PageContext",
    "current_card_id",
    "get_registry",
    "get_store",
    "lang",
    "open_card",
    "open_queue",
    "pop_flash",
    "push_flash",
    "show_flash",
    "template_dirs",
    "tr",
]

log = logging.getLogger(__name__)

LANG_KEY = "lang"
CARD_KEY = "card_id"
FLASH_KEY = "flash"
# The card as it was when its fields were put into the form (a CardDetail):
# its version is the one every save is based on.
LOADED_KEY = "loaded_card"
# (card id, keys of the fields flagged when the reviewer opened that card).
OPENED_FLAGS_KEY = "opened_flags"


@st.cache_resource(show_spinner=False)
def _open_store(url: str, data_dir: str) -> Store:
    log.info("review app opens store url=%s data_dir=%s", url, data_dir)
    return Store(url=url, data_dir=data_dir)


def get_store() -> Store:
    """Return the store named by ``$HUKA_DB_URL`` and ``$HUKA_DATA_DIR``, opened once per server process."""
    data_dir = default_data_dir()
    return _open_store(default_db_url(data_dir), str(data_dir))


# A site's own card types and templates: folders separated by os.pathsep (":" on Linux), as
# ``python -m ocr review --templates DIR`` sets it.
TEMPLATE_DIRS_ENV = "HUKA_TEMPLATE_DIRS"


def template_dirs() -> tuple[str, ...]:
    """Return the extra template folders named in ``$HUKA_TEMPLATE_DIRS``, in order."""
    raw = os.environ.get(TEMPLATE_DIRS_ENV, "")
    return tuple(part for part in raw.split(os.pathsep) if part.strip())


@st.cache_resource(show_spinner=False)
def _load_registry(folders: tuple[str, ...]) -> Registry:
    log.info("review app loads templates extra_dirs=%s", list(folders))
    return load_registry(folders)


def get_registry() -> Registry:
    """Return the built-in card types and templates plus those in ``$HUKA_TEMPLATE_DIRS``.

    An invalid folder is shown as an error and stops the page, because cards of
    a site's own type would otherwise show as unknown.
    """
    try:
        return _load_registry(template_dirs())
    except TemplateError as exc:
        log.error("template folders failed to load extra_dirs=%s error=%s", list(template_dirs()), exc)
        st.error(tr("templates_failed", message=exc.message(lang())))
        st.stop()


def lang() -> str:
    """Return the chosen screen language: "zh" (default) or "en"."""
    return st.session_state.get(LANG_KEY, "zh")


def tr(text_id: str, **values: object) -> str:
    """Return screen text ``text_id`` in the chosen language."""
    return text(text_id, lang(), **values)


def current_card_id() -> int | None:
    return st.session_state.get(CARD_KEY)


def open_card(card_id: int) -> None:
    """Show card ``card_id``, freshly loaded, on the next run."""
    st.session_state[CARD_KEY] = card_id
    st.session_state.pop(LOADED_KEY, None)
    st.session_state.pop(OPENED_FLAGS_KEY, None)


def open_queue() -> None:
    """Show the queue on the next run."""
    st.session_state[CARD_KEY] = None
    st.session_state.pop(LOADED_KEY, None)
    st.session_state.pop(OPENED_FLAGS_KEY, None)


@dataclass(frozen=True)
class PageContext:
    """The argument of every page function: the store, the card types and templates, and the signed-in user.

    ``user.name`` is the actor to record for every change the page makes.
    """

    store: Store
    registry: Registry
    user: Account


@dataclass(frozen=True)
class Flash:
    """A message kept across one rerun: ``kind`` is "success", "info", "warning" or "error"."""

    kind: str
    message: str


def push_flash(kind: str, message: str) -> None:
    """Keep ``message`` to show on the next run of the page."""
    st.session_state.setdefault(FLASH_KEY, []).append(Flash(kind, message))


def pop_flash() -> list[Flash]:
    """Return and forget the kept messages."""
    return st.session_state.pop(FLASH_KEY, None) or []


def show_flash() -> None:
    """Show and forget the kept messages."""
    for flash in pop_flash():
        getattr(st, flash.kind)(flash.message)
