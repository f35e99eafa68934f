"""Pages of the review app and moving between them.

A page is one :class:`AppPage` line in ``review_app/app.py``: its URL path, its
title in Chinese and English, the ``"module:function"`` that draws it and the
lowest role that sees it. The function takes a
:class:`review_app.session.PageContext` and is imported only when its page is
shown, so a page module never imports the app.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import streamlit as st

from ocr.accounts import Role, role_allows
from review_app.session import PageContext, lang

__all__ = ["GOTO_KEY", "AppPage", "build_pages", "go_to_page", "switch_if_requested"]

log = logging.getLogger(__name__)

# Session-state key of the URL path of the page the next run switches to.
GOTO_KEY = "goto_page"


@dataclass(frozen=True)
class AppPage:
    """One page of the app: where it is, what it is called and who sees it."""

    url_path: str
    # (Chinese, English)
    title: tuple[str, str]
    # "package.module:function"; the function takes a PageContext.
    render: str
    role: Role = Role.REVIEWER
    icon: str | None = None
    default: bool = False

    def title_in(self, language: str) -> str:
        return self.title[1] if language == "en" else self.title[0]


def _page_function(entry: AppPage, context: Callable[[], PageContext]) -> Callable[[], None]:
    """Return the function st.Page runs for ``entry``: import the render function and call it."""

    def run_page() -> None:
        module_name, _, function_name = entry.render.partition(":")
        render = getattr(importlib.import_module(module_name), function_name)
        render(context())

    # st.Page names a callable page after its function, so each page gets its own name.
    run_page.__name__ = f"page_{entry.url_path}"
    return run_page


def build_pages(
    entries: Sequence[AppPage], role: Role, context: Callable[[], PageContext]
) -> dict[str, st.Page]:
    """Return the st.Page of every entry that ``role`` may see, by URL path, in the order of ``entries``."""
    pages: dict[str, st.Page] = {}
    for entry in entries:
        if not role_allows(role, entry.role):
            continue
        pages[entry.url_path] = st.Page(
            _page_function(entry, context),
            title=entry.title_in(lang()),
            icon=entry.icon,
            url_path=entry.url_path,
            default=entry.default,
        )
    return pages


def go_to_page(url_path: str) -> None:
    """Show the page at ``url_path`` from the next run on, and start that run now."""
    st.session_state[GOTO_KEY] = url_path
    st.rerun()


def switch_if_requested(pages: dict[str, st.Page]) -> None:
    """Switch to the page that :func:`go_to_page` asked for, when this user may see it."""
    target = st.session_state.pop(GOTO_KEY, None)
    if target is None:
        return
    page = pages.get(target)
    if page is None:
        log.warning("page switch ignored: page %s is not shown to this user", target)
        return
    st.switch_page(page)
