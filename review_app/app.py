"""Review app (Streamlit): a person checks the flagged fields of scanned cards and approves or rejects them.

Start it with ``python -m ocr review``, which sets ``$HUKA_DB_URL`` and
``$HUKA_DATA_DIR`` and runs ``streamlit run review_app/app.py``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

# `streamlit run` puts only this file's folder on sys.path. The project root is
# added so the app also runs from a checkout that was not pip-installed.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

import streamlit as st  # noqa: E402

from ocr.errors import CardCaptureError  # noqa: E402
from ocr.logmask import install as install_log_masking  # noqa: E402
from review_app.card_page import render_card  # noqa: E402
from review_app.deadline_panel import render_deadline_panel  # noqa: E402
from review_app.queue_page import render_queue  # noqa: E402
from review_app.session import (  # noqa: E402
    LANG_KEY,
    REVIEWER_KEY,
    current_card_id,
    get_registry,
    get_store,
    lang,
    reviewer,
    tr,
)
from review_app.texts import LANGUAGES  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
# Guests' names and document numbers are masked in every log record.
install_log_masking()


def render_sidebar() -> None:
    """Show the language selector and the reviewer name input."""
    st.sidebar.title(tr("app_title"))
    st.sidebar.radio(
        tr("language"),
        options=list(LANGUAGES),
        format_func=LANGUAGES.get,
        key=LANG_KEY,
        horizontal=True,
    )
    st.sidebar.text_input(tr("reviewer"), key=REVIEWER_KEY, help=tr("reviewer_help"))
    if not reviewer():
        st.sidebar.warning(tr("reviewer_missing"))


def main() -> None:
    st.set_page_config(page_title="户卡审核 / Card review", layout="wide")
    render_sidebar()

    try:
        store = get_store()
        registry = get_registry()
    except CardCaptureError as exc:
        st.error(tr("store_failed", message=exc.message(lang())))
        st.stop()

    render_deadline_panel(store)
    card_id = current_card_id()
    if card_id is None:
        render_queue(store)
    else:
        render_card(store, registry, card_id)


main()
