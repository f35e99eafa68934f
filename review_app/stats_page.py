"""Statistics page: cards per day, automation rate, corrections per field and reviewer throughput, as charts.

The figures come from :func:`ocr.stats.statistics`; each chart has its data
table beneath it, so the numbers can be read and copied.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import altair as alt
import pandas as pd
import streamlit as st

from ocr.registry import Registry
from ocr.stats import Statistics, statistics, totals
from review_app.overview_page import date_range_input, page_config
from review_app.session import lang, tr

if TYPE_CHECKING:
    from review_app.session import PageContext

__all__ = ["RANGE_KEY", "field_label", "render_statistics"]

RANGE_KEY = "st_range"
# Days shown by default, up to today in the configured time zone.
DEFAULT_DAYS = 30


def field_label(registry: Registry, key: str) -> str:
    """Return the label of field ``key`` in the screen language, from the first card type that has it."""
    for spec in registry.card_types.values():
        if key in spec.keys:
            field = spec.field(key)
            return f"{field.label_en} ({key})" if lang() == "en" else f"{field.label_zh}（{key}）"
    return key


def _render_totals(stats: Statistics) -> None:
    summary = totals(stats)
    cards, fields, rate = st.columns(3)
    cards.metric(tr("st_cards"), summary["cards"])
    fields.metric(tr("st_fields"), summary["fields"])
    shown = "—" if summary["rate"] is None else f"{summary['rate']:.1%}"
    rate.metric(tr("st_rate"), shown, help=tr("st_rate_help"))


def _render_days(stats: Statistics) -> None:
    day_column = tr("st_col_day")
    st.subheader(tr("st_cards_per_day"))
    cards = pd.DataFrame(
        {day_column: [d.day.isoformat() for d in stats.cards_per_day], tr("st_col_cards"): [d.cards for d in stats.cards_per_day]}
    )
    st.bar_chart(cards, x=day_column, y=tr("st_col_cards"))

    st.subheader(tr("st_automation_per_day"))
    automation = pd.DataFrame(
        {
            day_column: [d.day.isoformat() for d in stats.automation_per_day],
            tr("st_col_fields"): [d.fields for d in stats.automation_per_day],
            tr("st_col_automated"): [d.automated for d in stats.automation_per_day],
            # Percent, so the chart's axis reads 0–100; a day without fields has no point.
            tr("st_col_rate"): [None if d.rate is None else round(d.rate * 100, 1) for d in stats.automation_per_day],
        }
    )
    # Points as well as the line, so a range with one busy day still shows its rate.
    rate_chart = (
        alt.Chart(automation)
        .mark_line(point=alt.OverlayMarkDef(size=60))
        .encode(
            x=alt.X(day_column, type="ordinal", title=day_column),
            y=alt.Y(tr("st_col_rate"), type="quantitative", scale=alt.Scale(domain=[0, 100]), title=f"{tr('st_col_rate')} (%)"),
            tooltip=list(automation.columns),
        )
    )
    st.altair_chart(rate_chart)
    with st.expander(tr("st_data")):
        st.dataframe(automation.merge(cards, on=day_column), hide_index=True, key="st_days")


def _render_corrections(stats: Statistics, registry: Registry) -> None:
    st.subheader(tr("st_corrections"))
    if not stats.corrections_per_field:
        st.info(tr("st_no_corrections"))
        return
    frame = pd.DataFrame(
        {
            tr("st_col_field"): [field_label(registry, c.field_key) for c in stats.corrections_per_field],
            tr("st_col_corrections"): [c.corrections for c in stats.corrections_per_field],
        }
    )
    st.bar_chart(frame, x=tr("st_col_field"), y=tr("st_col_corrections"), horizontal=True, sort=False)
    st.dataframe(frame, hide_index=True, key="st_corrections")


def _render_throughput(stats: Statistics) -> None:
    st.subheader(tr("st_throughput"))
    if not stats.reviewer_days:
        st.info(tr("st_no_throughput"))
        return
    counts = ("st_col_confirmed", "st_col_corrected", "st_col_illegible", "st_col_approved", "st_col_rejected")
    frame = pd.DataFrame(
        [
            {
                tr("st_col_day"): entry.day.isoformat(),
                tr("st_col_reviewer"): entry.reviewer,
                tr("st_col_confirmed"): entry.confirmed,
                tr("st_col_corrected"): entry.corrected,
                tr("st_col_illegible"): entry.illegible,
                tr("st_col_approved"): entry.approved,
                tr("st_col_rejected"): entry.rejected,
            }
            for entry in stats.reviewer_days
        ]
    )
    per_reviewer = frame.groupby(tr("st_col_reviewer"), as_index=False)[[tr(c) for c in counts]].sum()
    st.bar_chart(per_reviewer, x=tr("st_col_reviewer"), y=[tr(c) for c in counts], stack=True)
    st.dataframe(frame, hide_index=True, key="st_throughput")


def render_statistics(context: PageContext) -> None:
    """Draw the statistics of the chosen days: totals, then one chart and table per figure."""
    st.header(tr("st_title"))
    zone = page_config().deadline.zone
    today = datetime.now(UTC).astimezone(zone).date()
    start, end = date_range_input(tr("st_range"), RANGE_KEY, today, DEFAULT_DAYS)
    stats = statistics(context.store, start, end, zone)
    _render_totals(stats)
    _render_days(stats)
    _render_corrections(stats, context.registry)
    _render_throughput(stats)
