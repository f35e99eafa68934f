"""Deadline panel of the sidebar: records due soon, overdue, not delivered, and sent but not confirmed.

Cards without a record yet are shown too: in review and overdue or due soon, and
auto-accepted cards that the next transmit run sends.

The deadlines come from :func:`ocr.transmit.deadline.deadline_report` with the
config file named by ``$HUKA_CONFIG`` (or ``./hukacapture.toml``); the panel
shows card ids only, never names or document numbers.
"""

from __future__ import annotations

import logging

import streamlit as st

from ocr.errors import CardCaptureError
from ocr.store import Store
from ocr.transmit.config import load_config
from ocr.transmit.deadline import deadline_report
from review_app.session import lang

__all__ = ["render_deadline_panel"]

log = logging.getLogger(__name__)

# Text id -> (Chinese, English); kept here so this panel does not touch the shared texts module.
TEXTS: dict[str, tuple[str, str]] = {
    "title": ("上报期限", "Transmission deadlines"),
    "overdue": ("已逾期 {count} 条：卡片 {ids}", "{count} overdue: cards {ids}"),
    "due_soon": ("{hours} 小时内到期 {count} 条：卡片 {ids}", "{count} due within {hours} h: cards {ids}"),
    "unconfirmed": ("已发送待确认 {count} 条：卡片 {ids}", "{count} sent, awaiting acknowledgement: cards {ids}"),
    "undelivered": (
        "未送达 {count} 条：卡片 {ids}。请检查网络后再运行 transmit",
        "{count} not delivered yet: cards {ids}; check the connection and run transmit again",
    ),
    "review_overdue": (
        "{count} 张待审核卡片已过上报期限：卡片 {ids}",
        "{count} cards in review are past their deadline: cards {ids}",
    ),
    "review_due_soon": (
        "审核中 {hours} 小时内到期 {count} 张：卡片 {ids}。请在期限前审核",
        "{count} cards in review due within {hours} h: cards {ids}; review them before the deadline",
    ),
    "auto_accepted": (
        "自动通过未发送 {count} 张（已逾期 {overdue} 张）：卡片 {ids}。请运行 transmit",
        "{count} auto-accepted cards not sent yet ({overdue} overdue): cards {ids}; run transmit",
    ),
    "all_clear": ("没有逾期或即将到期的记录。", "Nothing is overdue or due soon."),
    "failed": ("无法读取上报期限：{message}", "cannot read the deadlines: {message}"),
}

# Card ids shown per line; the count gives the rest.
MAX_IDS = 10


def _text(text_id: str, **values: object) -> str:
    zh, en = TEXTS[text_id]
    return (en if lang() == "en" else zh).format(**values)


def _ids(items) -> str:
    shown = ", ".join(str(item.card_id) for item in items[:MAX_IDS])
    return shown + (" …" if len(items) > MAX_IDS else "")


def render_deadline_panel(store: Store) -> None:
    """Show the deadline counts in the sidebar; a config or store error becomes one message."""
    st.sidebar.subheader(_text("title"))
    try:
        config = load_config()
        report = deadline_report(store, config)
    except CardCaptureError as exc:
        st.sidebar.error(_text("failed", message=exc.message(lang())))
        return
    if report.overdue:
        st.sidebar.error(_text("overdue", count=len(report.overdue), ids=_ids(report.overdue)))
    hours = f"{config.deadline.due_soon_hours:g}"
    if report.due_soon:
        st.sidebar.warning(_text("due_soon", hours=hours, count=len(report.due_soon), ids=_ids(report.due_soon)))
    if report.undelivered:
        st.sidebar.warning(_text("undelivered", count=len(report.undelivered), ids=_ids(report.undelivered)))
    if report.unconfirmed:
        st.sidebar.info(_text("unconfirmed", count=len(report.unconfirmed), ids=_ids(report.unconfirmed)))
    if report.review_overdue:
        st.sidebar.warning(
            _text("review_overdue", count=len(report.review_overdue), ids=_ids(report.review_overdue))
        )
    if report.review_due_soon:
        st.sidebar.warning(
            _text("review_due_soon", hours=hours, count=len(report.review_due_soon), ids=_ids(report.review_due_soon))
        )
    if report.auto_accepted:
        overdue = len(report.auto_accepted_overdue)
        values = {"count": len(report.auto_accepted), "overdue": overdue, "ids": _ids(report.auto_accepted)}
        show = st.sidebar.error if overdue else st.sidebar.warning
        show(_text("auto_accepted", **values))
    groups = (
        report.overdue,
        report.due_soon,
        report.undelivered,
        report.unconfirmed,
        report.review_overdue,
        report.review_due_soon,
        report.auto_accepted,
    )
    if not any(groups):
        st.sidebar.caption(_text("all_clear"))
