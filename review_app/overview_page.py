"""Batch overview page: cards per state and batch with each batch's deadline, and expected arrivals per date.

The figures come from :mod:`ocr.arrivals`, the same as ``python -m ocr
arrivals show``. Deadline cells are coloured red when past, amber within the
configured ``due_soon_hours`` and green otherwise. The front desk's expected
arrivals are entered in a form or imported from CSV; a CSV file with an error
imports nothing and the message names the row and column.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from models.card import CardStatus
from ocr.arrivals import (
    CATEGORIES,
    DEFAULT_CARD_TYPE,
    ArrivalsError,
    ArrivalsReport,
    BatchDeadline,
    DayArrivals,
    arrivals_report,
    batch_deadlines,
    check_entry,
    parse_arrivals_csv,
    save_expected,
)
from ocr.errors import CardCaptureError
from ocr.registry import Registry
from ocr.transmit.config import Config, load_config
from review_app.session import lang, push_flash, show_flash, tr
from review_app.texts import status_label

if TYPE_CHECKING:
    from review_app.session import PageContext

__all__ = ["LEVEL_COLOURS", "RANGE_KEY", "date_range_input", "page_config", "render_overview"]

log = logging.getLogger(__name__)

RANGE_KEY = "ov_range"
# Days shown by default: today and the days before it, in the configured time zone.
DEFAULT_DAYS = 7
# Serial numbers listed in a table cell; the count gives the rest.
MAX_CELL_SERIALS = 8

# Background and text colour of a deadline cell per level: red past, amber near, green otherwise.
LEVEL_COLOURS = {
    "past": "background-color: #f8d7da; color: #842029",
    "near": "background-color: #ffe69c; color: #664d03",
    "ok": "background-color: #d1e7dd; color: #0f5132",
    "done": "background-color: #d1e7dd; color: #0f5132",
}
STATES = (
    CardStatus.NEEDS_REVIEW,
    CardStatus.AUTO_ACCEPTED,
    CardStatus.APPROVED,
    CardStatus.REJECTED,
    CardStatus.EXPORTED,
)


def page_config() -> Config:
    """Return the config file's settings; an unreadable file shows an error and the defaults apply."""
    try:
        return load_config()
    except CardCaptureError as exc:
        log.error("review page: config failed to load: %s", exc)
        st.error(tr("ov_config_failed", message=exc.message(lang())))
        return Config()


def date_range_input(label: str, key: str, today: date, days: int) -> tuple[date, date]:
    """Show a date range input, by default the ``days`` days up to ``today``; return its first and last day.

    While the user has picked only the first day of a new range, that day is the whole range.
    """
    if key not in st.session_state:
        st.session_state[key] = (today - timedelta(days=days - 1), today)
    chosen = st.date_input(label, key=key)
    if isinstance(chosen, date):
        return chosen, chosen
    if len(chosen) == 1:
        return chosen[0], chosen[0]
    return chosen[0], chosen[1]


def _time_left(hours: float | None, level: str) -> str:
    if level == "done" or hours is None:
        return tr("ov_all_done")
    if hours < 0:
        return tr("ov_hours_over", hours=f"{-hours:.1f}")
    return tr("ov_hours_left", hours=f"{hours:.1f}")


def _coloured(frame: pd.DataFrame, levels: list[str], column: str):
    """Return ``frame`` styled with each row's deadline colour on ``column``."""
    colours = [LEVEL_COLOURS[level] for level in levels]
    return frame.style.apply(lambda _column: colours, subset=[column], axis=0)


# Batches.


def _batch_table(store, deadlines: list[BatchDeadline]) -> tuple[pd.DataFrame, list[str]]:
    by_batch = {d.batch: d for d in deadlines}
    rows = []
    levels = []
    for summary in store.list_batches():
        deadline = by_batch.get(summary.name)
        row = {tr("ov_col_batch"): summary.name}
        for state in STATES:
            row[status_label(state, lang())] = summary.counts.get(str(state), 0)
        row[tr("ov_col_total")] = summary.total
        row[tr("ov_col_open")] = deadline.open_cards if deadline else 0
        row[tr("ov_col_deadline")] = deadline.deadline.strftime("%Y-%m-%d %H:%M") if deadline and deadline.deadline else ""
        level = deadline.level if deadline else "done"
        row[tr("ov_col_time_left")] = _time_left(deadline.hours_left if deadline else None, level)
        rows.append(row)
        levels.append(level)
    return pd.DataFrame(rows), levels


def _render_batches(store, config: Config, now: datetime) -> None:
    st.subheader(tr("ov_states"))
    deadlines = batch_deadlines(store, config, now=now)
    frame, levels = _batch_table(store, deadlines)
    if frame.empty:
        st.info(tr("no_batches"))
        return
    st.dataframe(_coloured(frame, levels, tr("ov_col_time_left")), hide_index=True, key="ov_batches")
    for item in deadlines:
        when = item.deadline.strftime("%Y-%m-%d %H:%M") if item.deadline else ""
        if item.level == "past":
            st.error(tr("ov_batch_past", batch=item.batch, count=item.open_cards, deadline=when))
        elif item.level == "near":
            hours = f"{item.hours_left:.1f}"
            st.warning(tr("ov_batch_near", batch=item.batch, count=item.open_cards, hours=hours, deadline=when))
    st.caption(tr("ov_legend", hours=f"{config.deadline.due_soon_hours:g}"))


# Arrivals.


def _listed(numbers: list[str], total: int) -> str:
    shown = ", ".join(numbers[:MAX_CELL_SERIALS])
    return shown + (f" …(+{total - MAX_CELL_SERIALS})" if total > MAX_CELL_SERIALS else "")


def _card_type_label(registry: Registry, card_type: str, language: str | None = None) -> str:
    spec = registry.card_types.get(card_type)
    if spec is None:
        return card_type
    return spec.title_en if (language or lang()) == "en" else spec.title_zh


def _category_label(zh: str, en: str) -> str:
    return en if lang() == "en" else zh


def _day_row(day: DayArrivals, registry: Registry) -> dict[str, object]:
    serials = day.serials
    low = serials.expected_first or serials.first
    high = serials.expected_last or serials.last
    # The coloured time left comes early, so it shows without scrolling the table sideways.
    row: dict[str, object] = {
        tr("ov_col_date"): day.arrival_date,
        tr("ov_col_card_type"): _card_type_label(registry, day.card_type),
        tr("ov_col_time_left"): _time_left(day.hours_left, day.level),
        tr("ov_col_deadline"): day.deadline.strftime("%Y-%m-%d %H:%M"),
        tr("ov_col_expected"): "" if day.expected is None else str(day.expected),
        tr("ov_col_scanned"): day.scanned,
        tr("ov_col_difference"): "" if day.difference is None else f"{day.difference:+d}",
        tr("ov_col_rejected"): day.rejected,
    }
    for key, zh, en in CATEGORIES:
        row[_category_label(zh, en)] = day.categories.get(key, 0)
    row[tr("ov_col_serial_range")] = f"{low}–{high}" if low else ""
    row[tr("ov_col_gaps")] = _listed(serials.gaps, serials.gap_count)
    row[tr("ov_col_duplicates")] = _listed(serials.duplicates, len(serials.duplicates))
    row[tr("ov_col_outside")] = _listed(serials.outside_range, len(serials.outside_range))
    return row


def _render_category_totals(report: ArrivalsReport) -> None:
    st.markdown(f"**{tr('ov_categories')}**")
    columns = st.columns(len(CATEGORIES))
    for column, (key, zh, en) in zip(columns, CATEGORIES):
        column.metric(_category_label(zh, en), sum(day.categories.get(key, 0) for day in report.days))


def _render_arrivals(store, registry: Registry, config: Config, now: datetime) -> None:
    st.subheader(tr("ov_arrivals"))
    today = now.astimezone(config.deadline.zone).date()
    start, end = date_range_input(tr("ov_range"), RANGE_KEY, today, DEFAULT_DAYS)
    report = arrivals_report(store, config, start, end, now=now)
    if not report.days:
        st.info(tr("ov_no_days"))
        return
    _render_category_totals(report)
    frame = pd.DataFrame([_day_row(day, registry) for day in report.days])
    levels = [day.level for day in report.days]
    st.dataframe(_coloured(frame, levels, tr("ov_col_time_left")), hide_index=True, key="ov_days")
    for day in report.days:
        if day.serials.gap_count or day.serials.duplicates:
            st.warning(
                tr(
                    "ov_serial_problems",
                    date=day.arrival_date,
                    card_type=_card_type_label(registry, day.card_type),
                    gaps=day.serials.gap_count,
                    duplicates=len(day.serials.duplicates),
                )
            )


# Entering and importing expected arrivals.


def _render_entry_form(store, registry: Registry, actor: str, today: date) -> None:
    with st.form("ov_entry_form"):
        st.markdown(f"**{tr('ov_enter')}**")
        arrival = st.date_input(tr("ov_enter_date"), value=today, key="ov_enter_date")
        types = list(registry.card_types)
        card_type = st.selectbox(
            tr("ov_enter_card_type"),
            options=types,
            index=types.index(DEFAULT_CARD_TYPE) if DEFAULT_CARD_TYPE in types else 0,
            # The language is fixed now, so a call of format_func after this run gives the same label.
            format_func=lambda name, language=lang(): _card_type_label(registry, name, language),
            key="ov_enter_card_type",
        )
        expected = st.number_input(tr("ov_enter_expected"), min_value=0, step=1, value=0, key="ov_enter_expected")
        first = st.text_input(tr("ov_enter_serial_first"), key="ov_enter_serial_first")
        last = st.text_input(tr("ov_enter_serial_last"), key="ov_enter_serial_last")
        if not st.form_submit_button(tr("ov_enter_save")):
            return
    values = {
        "date": arrival.isoformat(),
        "expected": str(int(expected)),
        "card_type": card_type,
        "serial_first": first,
        "serial_last": last,
    }
    labels = {
        "date": tr("ov_enter_date"),
        "expected": tr("ov_enter_expected"),
        "card_type": tr("ov_enter_card_type"),
        "serial_first": tr("ov_enter_serial_first"),
        "serial_last": tr("ov_enter_serial_last"),
    }
    try:
        entry = check_entry(values, known_card_types=registry.card_types, headers=labels)
    except ArrivalsError as exc:
        st.error(exc.message(lang()))
        return
    save_expected(store, [entry], actor=actor)
    label = _card_type_label(registry, entry.card_type)
    push_flash("success", tr("ov_entered", date=entry.arrival_date, card_type=label, count=entry.expected))
    st.rerun()


def _render_import(store, registry: Registry, actor: str) -> None:
    st.markdown(f"**{tr('ov_import')}**")
    st.caption(tr("ov_import_help"))
    uploaded = st.file_uploader(tr("ov_import_file"), type=["csv", "txt"], key="ov_csv")
    if not st.button(tr("ov_import_button"), key="ov_import", disabled=uploaded is None):
        return
    try:
        entries = parse_arrivals_csv(uploaded.getvalue(), source=uploaded.name, known_card_types=registry.card_types)
    except ArrivalsError as exc:
        log.info("expected arrivals import rejected by=%s", actor)
        st.error(exc.message(lang()))
        return
    added, updated = save_expected(store, entries, actor=actor)
    push_flash("success", tr("ov_imported", file=uploaded.name, added=added, updated=updated))
    st.rerun()


def render_overview(context: PageContext) -> None:
    """Draw the batch overview: batches with deadlines, arrivals per date, and the expected-arrivals input."""
    st.header(tr("ov_title"))
    show_flash()
    config = page_config()
    now = datetime.now(UTC)
    _render_batches(context.store, config, now)
    _render_arrivals(context.store, context.registry, config, now)

    today = now.astimezone(config.deadline.zone).date()
    entry_column, import_column = st.columns(2)
    with entry_column:
        _render_entry_form(context.store, context.registry, context.user.name, today)
    with import_column:
        _render_import(context.store, context.registry, context.user.name)
